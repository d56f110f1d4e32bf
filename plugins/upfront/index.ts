import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import { Socket } from 'node:net'
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  RouteOptions
} from 'fastify'
import fp from 'fastify-plugin'
import {
  AlreadyRegisteredError,
  BodyTooLargeError,
  ExpectationFailedError,
  InvalidOptionError,
  RefusedBeforeBodyError,
  UnsupportedMediaTypeError
} from './errors.js'
import {
  BodyWatch,
  concludeBeforeAnswer,
  countChunk,
  endBody,
  countRefusal,
  holdToLimit,
  REFUSAL_REASONS,
  ROUTE_LIMIT_SOURCE,
  sendContinue
} from './lib/body-watch.js'
import type { BodyLimit, PluginContext } from './lib/body-watch.js'
import { lingerAfterAnswer } from './lib/connection.js'
import { unsupportedExpectation } from './lib/expectation.js'
import { acceptsMediaType, compileMediaTypes, contentLength, isMediaRange } from './lib/http.js'
import type { MediaTypeMatcher } from './lib/http.js'
import { beforeFirstRead, beforeWriteHead, filterPush } from './lib/node-overrides.js'

export * from './errors.js'
export { unsupportedExpectation } from './lib/expectation.js'
export { REFUSAL_REASONS } from './lib/body-watch.js'

/** Pre-body checks of one route, under `config.upfront`. */
export interface UpfrontRouteConfig {
  /**
   * Largest body accepted, in bytes. A declared `Content-Length` above it is
   * refused with 413 before the body; a body without one is counted as it
   * is read and ends in 413 when it passes the limit.
   * Default: the route's `bodyLimit`, else the plugin's `maxBytes`.
   */
  maxBytes?: number
  /** Media types (`type/subtype` or `type/*`) a body may have; others get 415. Default: any. */
  contentTypes?: readonly string[]
}

export interface UpfrontOptions extends UpfrontRouteConfig {
  /**
   * How a 401 or 403 given to a 100-continue request before its body is
   * answered: `'status'` (default) sends it as it is; `'expectation-failed'`
   * turns it into a 417, for clients that only stop on a 417.
   */
  authRefusal?: 'status' | 'expectation-failed'
  /**
   * When a request without a pending 100-continue is answered before its
   * body was read, a remainder of at most this many bytes is read and
   * discarded so the connection can be kept; a larger or unknown remainder
   * closes the connection. Default 262144 (256 KiB).
   */
  drainMaxBytes?: number
  /**
   * After an answer on a connection that then closes: the longest time, in
   * ms, the server goes on reading and discarding what the client still
   * sends, after its own FIN, before it closes (nginx's `lingering_time`).
   * Default 30000.
   */
  lingerMs?: number
  /**
   * The longest wait, in ms, for more bytes from a client during that time:
   * a client that stops sending is closed after it (nginx's
   * `lingering_timeout`). Default 5000.
   */
  lingerIdleMs?: number
}

export interface UpfrontStats {
  /** The plugin's refusals (by reason) and the app's answers >= 400 given before the body (by status), each counted once. */
  refused: Record<string, number>
  /** Declared body bytes that clients never sent, because they were answered before a 100. */
  unsentBytes: number
  /** `100 Continue` responses sent. */
  continued: number
}

export interface UpfrontDecorator {
  /** A snapshot of the counters since the app started. */
  readonly stats: UpfrontStats
  /**
   * Lowers the body limit of one request to `maxBytes` (a whole number of
   * bytes, or Infinity); a higher value than the current limit changes
   * nothing. `source` completes the 413's message "exceeds the N-byte
   * limit …", such as `'that your token allows'`.
   *
   * Call it from a hook that runs before the body is read (an `onRequest`
   * hook after your authentication, typically). Before the plugin's checks
   * (its `preParsing` hook) the limit is recorded and checked with them;
   * after, it applies at once: a declared `Content-Length` over it throws
   * `BodyTooLargeError` (413), which the hook answers by throwing it or
   * passing it to `done`; a body of unknown length is held to it as it
   * arrives. Requests without a body are not affected. Throws
   * `InvalidOptionError` for a `maxBytes` that is not a byte count.
   */
  limitBody: (request: FastifyRequest, maxBytes: number, source?: string) => void
  /**
   * For an answer given outside the plugin's hooks (Fastify's
   * `frameworkErrors`, say) to a request whose body will not be read:
   * `Connection: close`, then the same lingering close as the plugin's own
   * refusals, so that a client still sending gets the answer, not a reset.
   * Call it before sending; nothing happens once the head is out, nor
   * over HTTP/2.
   */
  closeAfterAnswer: (reply: FastifyReply) => void
  /**
   * Ends a request's body with `error` for whoever reads it (a shutdown
   * that cannot wait any longer, an upload too slow to go on), keeping the
   * connection so that the answer the reader's failure leads to still
   * reaches the client; the connection closes after it. Requests without a
   * body, or whose body has ended, are not affected.
   */
  abortBody: (request: FastifyRequest, error: Error) => void
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Pre-body checks for this route; `false` turns them off. */
    upfront?: UpfrontRouteConfig | false
  }
  interface FastifyInstance {
    upfront: UpfrontDecorator
  }
}

const DEFAULT_DRAIN_MAX_BYTES = 256 * 1024
// nginx's lingering_time and lingering_timeout: a client that keeps
// sending is read for up to 30 s in all, one that pauses for 5 s is
// closed. Enough for a client writing a body of tens of MB at a few MB/s
// before it reads; bounded, so a client cannot hold a socket for long.
const DEFAULT_LINGER_MS = 30_000
const DEFAULT_LINGER_IDLE_MS = 5_000
const LIMIT_SET_FOR_REQUEST = 'set for this request'

const kWatch = Symbol('upfront.watch')
const kRouteSettings = Symbol('upfront.route')

interface RouteSettings {
  readonly maxBytes: number
  readonly mediaTypes: MediaTypeMatcher | null
}

type WatchedRequest = FastifyRequest & { [kWatch]: BodyWatch | null }

function checkByteCount (name: string, value: unknown, allowInfinity: boolean): number | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'number' && ((Number.isSafeInteger(value) && value >= 0) || (allowInfinity && value === Infinity))) {
    return value
  }
  throw new InvalidOptionError(name, `expected a whole number of bytes >= 0${allowInfinity ? ' or Infinity' : ''}, got ${String(value)}`)
}

function checkMediaTypes (name: string, value: unknown): MediaTypeMatcher | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidOptionError(name, 'expected a non-empty array of media types such as "image/png" or "image/*"; leave it out to accept any type')
  }
  for (const entry of value) {
    if (typeof entry !== 'string' || !isMediaRange(entry)) {
      throw new InvalidOptionError(name, `"${String(entry)}" is not a media type ("type/subtype" or "type/*")`)
    }
  }
  return compileMediaTypes(value as string[])
}

function compileRoute (
  config: UpfrontRouteConfig | false | undefined,
  routeBodyLimit: number | undefined,
  defaults: RouteSettings,
  where: string
): RouteSettings | null {
  if (config === false) return null
  if (config !== undefined && (typeof config !== 'object' || config === null)) {
    throw new InvalidOptionError(`config.upfront of ${where}`, 'expected an object or false')
  }
  const maxBytes = checkByteCount(`config.upfront.maxBytes of ${where}`, config?.maxBytes, true) ??
    routeBodyLimit ?? defaults.maxBytes
  const mediaTypes = checkMediaTypes(`config.upfront.contentTypes of ${where}`, config?.contentTypes)
  return { maxBytes, mediaTypes: mediaTypes ?? defaults.mediaTypes }
}

function bodyWithoutLength (raw: IncomingMessage, stream: ServerHttp2Stream | null): boolean {
  if (stream !== null) return !stream.endAfterHeaders
  return raw.headers['transfer-encoding'] !== undefined
}

/** The lower of two limits; null when neither is set. */
function lowest (a: BodyLimit | null, b: BodyLimit | null): BodyLimit | null {
  if (a === null) return b
  if (b === null) return a
  return b.maxBytes < a.maxBytes ? b : a
}

const installedOn = new WeakSet<object>()

// Overrides of request.headers (Fastify merges them over the raw headers).
const NO_BODY = { 'content-length': '0', 'content-type': undefined, 'transfer-encoding': undefined }

const upfrontPlugin: FastifyPluginAsync<UpfrontOptions> = async (fastify: FastifyInstance, opts: UpfrontOptions) => {
  if (opts.authRefusal !== undefined && opts.authRefusal !== 'status' && opts.authRefusal !== 'expectation-failed') {
    throw new InvalidOptionError('authRefusal', `expected "status" or "expectation-failed", got ${String(opts.authRefusal)}`)
  }
  const defaults: RouteSettings = {
    // Fastify always fills initialConfig.bodyLimit (default 1 MiB).
    maxBytes: checkByteCount('maxBytes', opts.maxBytes, true) ?? fastify.initialConfig.bodyLimit as number,
    mediaTypes: checkMediaTypes('contentTypes', opts.contentTypes) ?? null
  }
  const authRefusal = opts.authRefusal === 'expectation-failed'
  const ctx: PluginContext = {
    drainMaxBytes: checkByteCount('drainMaxBytes', opts.drainMaxBytes, false) ?? DEFAULT_DRAIN_MAX_BYTES,
    linger: {
      totalMs: checkByteCount('lingerMs', opts.lingerMs, false) ?? DEFAULT_LINGER_MS,
      idleMs: checkByteCount('lingerIdleMs', opts.lingerIdleMs, false) ?? DEFAULT_LINGER_IDLE_MS
    },
    refused: {},
    unsentBytes: 0,
    continued: 0
  }

  const server = fastify.server
  if (installedOn.has(server)) throw new AlreadyRegisteredError()
  installedOn.add(server)

  // With a listener on these events Node neither sends its automatic
  // 100 Continue nor its bare 417: the request is routed like any other,
  // and the plugin decides.
  const heldBack = new WeakSet<IncomingMessage>()
  const routeHeldBack = (req: IncomingMessage, res: ServerResponse): void => {
    heldBack.add(req)
    fastify.routing(req, res)
  }
  server.on('checkContinue', routeHeldBack)
  server.on('checkExpectation', routeHeldBack)
  fastify.addHook('onClose', (_instance, done) => {
    server.off('checkContinue', routeHeldBack)
    server.off('checkExpectation', routeHeldBack)
    installedOn.delete(server)
    done()
  })

  fastify.decorateRequest(kWatch, null)
  const watchOf = (request: FastifyRequest): BodyWatch | null => (request as WatchedRequest)[kWatch]

  fastify.decorate('upfront', {
    get stats (): UpfrontStats {
      return { refused: { ...ctx.refused }, unsentBytes: ctx.unsentBytes, continued: ctx.continued }
    },
    limitBody (request: FastifyRequest, maxBytes: number, source: string = LIMIT_SET_FOR_REQUEST): void {
      const bytes = checkByteCount('limitBody(maxBytes)', maxBytes, true) as number
      const watch = watchOf(request)
      if (watch === null || (watch.lowered !== null && watch.lowered.maxBytes <= bytes)) return
      const limit = { maxBytes: bytes, source }
      watch.lowered = limit
      if (!watch.checked || request.is404) return
      // The checks have run: the new limit applies at once.
      if (watch.declared !== null) {
        if (watch.declared > bytes) {
          countRefusal(watch, REFUSAL_REASONS.tooLarge, 413)
          throw new BodyTooLargeError(watch.declared, bytes, source)
        }
      } else if (watch.streamLimit === null || bytes < watch.streamLimit.maxBytes) {
        holdToLimit(watch, limit)
      }
    },
    abortBody (request: FastifyRequest, error: Error): void {
      const watch = watchOf(request)
      if (watch === null || watch.raw.complete || watch.raw.destroyed) return
      endBody(watch, error)
    },
    closeAfterAnswer (reply: FastifyReply): void {
      const socket = reply.raw.socket
      // Too late once the head is out; and HTTP/2 closes streams, not connections.
      if (reply.raw.headersSent || reply.request.raw.httpVersionMajor !== 1 || !(socket instanceof Socket)) return
      reply.header('connection', 'close')
      lingerAfterAnswer(socket, reply.request.raw, ctx.linger)
    }
  })

  const serverBodyLimit = fastify.initialConfig.bodyLimit
  const compiledFor = new WeakMap<object, RouteSettings | null>()

  fastify.addHook('onRoute', (route: RouteOptions) => {
    const settings = compileRoute(route.config?.upfront, route.bodyLimit, defaults, `route ${String(route.method)} ${route.url}`)
    route.config = { ...route.config, [kRouteSettings]: settings } as RouteOptions['config']
  })

  function routeSettingsOf (request: FastifyRequest): RouteSettings | null {
    const { config, bodyLimit } = request.routeOptions
    const compiled = (config as unknown as Record<symbol, RouteSettings | null | undefined>)[kRouteSettings]
    if (compiled !== undefined) return compiled
    // A route added before the plugin was registered: compiled on first use.
    let settings = compiledFor.get(config)
    if (settings === undefined) {
      settings = compileRoute(config.upfront, bodyLimit === serverBodyLimit ? undefined : bodyLimit, defaults, `route ${config.method} ${config.url}`)
      compiledFor.set(config, settings)
    }
    return settings
  }

  // First, from the request's head alone: the expectation (417), and
  // the watch on a body still to come.
  fastify.addHook('onRequest', function admitRequest (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    const raw = request.raw
    const headers = raw.headers
    const expect = headers.expect
    const declared = contentLength(headers)
    const stream = (raw as { stream?: ServerHttp2Stream }).stream ?? null
    const hasBody = declared !== null ? declared > 0 : bodyWithoutLength(raw, stream)
    if (!hasBody && expect === undefined) {
      done()
      return
    }
    const unsupported = expect === undefined ? null : unsupportedExpectation(expect)
    if (!hasBody && unsupported === null) {
      done()
      return
    }
    const awaiting = expect !== undefined && unsupported === null && heldBack.has(raw) &&
      (raw.httpVersionMajor > 1 || raw.httpVersionMinor >= 1)
    if (request.is404 && hasBody) {
      // Fastify parses a body before it calls the 404 handler: shown as
      // bodiless, the request goes straight to the handler, whose answer
      // then comes before the body.
      request.headers = NO_BODY
    }
    const socket = raw.httpVersionMajor === 1 && raw.socket instanceof Socket ? raw.socket : null
    const watch = new BodyWatch(ctx, request, reply, declared, awaiting, socket, stream)
    ;(request as WatchedRequest)[kWatch] = watch

    if (unsupported !== null) {
      watch.closeAfter = true
      beforeWriteHead(reply.raw, (statusCode) => { concludeBeforeAnswer(watch, reply.raw, statusCode) })
      countRefusal(watch, REFUSAL_REASONS.expectation, 417)
      done(new ExpectationFailedError(JSON.stringify(unsupported)))
      return
    }
    // A plain HTTP/1 upload, small enough to drain if it goes unread:
    // Node's own handling is already right, and its objects are left as
    // they are.
    if (!awaiting && declared !== null && declared <= ctx.drainMaxBytes && stream === null) {
      done()
      return
    }
    // Closures carry the watch to the replacements: no property is added
    // to Node's objects, which would give them another shape.
    beforeWriteHead(reply.raw, (statusCode) => { concludeBeforeAnswer(watch, reply.raw, statusCode) })
    if (awaiting) beforeFirstRead(raw, () => { sendContinue(watch) })
    // A declared length is enforced by Node's parser; a body of unknown
    // length is counted as it arrives.
    if (declared === null) filterPush(raw, (chunk) => countChunk(watch, chunk))
    done()
  })

  // Then, once every onRequest hook has run (authentication among them:
  // who before how big), the route's limit and media types. Still before
  // the body: content-type parsers read it after preParsing.
  fastify.addHook('preParsing', function checkBody (request, _reply, payload, done) {
    const watch = watchOf(request)
    if (watch === null || watch.checked) {
      done(null, payload)
      return
    }
    watch.checked = true
    if (request.is404) {
      done(null, payload)
      return
    }
    const route = routeSettingsOf(request)
    const limit = lowest(route === null ? null : { maxBytes: route.maxBytes, source: ROUTE_LIMIT_SOURCE }, watch.lowered)
    if (limit !== null && watch.declared !== null && watch.declared > limit.maxBytes) {
      countRefusal(watch, REFUSAL_REASONS.tooLarge, 413)
      done(new BodyTooLargeError(watch.declared, limit.maxBytes, limit.source))
      return
    }
    const contentType = request.headers['content-type']
    if (route?.mediaTypes != null && !acceptsMediaType(route.mediaTypes, contentType)) {
      countRefusal(watch, REFUSAL_REASONS.mediaType, 415)
      done(new UnsupportedMediaTypeError(contentType === undefined ? '(none)' : JSON.stringify(contentType), route.mediaTypes.description))
      return
    }
    if (limit !== null && watch.declared === null) holdToLimit(watch, limit)
    done(null, payload)
  })

  // A body that passed its limit ends in the 413, whoever was reading it:
  // a form parser, a pipeline, storage or the app may have turned the
  // stream's error into an answer of their own.
  fastify.addHook('onSend', function answerLimitPassed (request, reply, payload, done) {
    const tripped = watchOf(request)?.tripped
    if (tripped == null || reply.statusCode === 413) {
      done(null, payload)
      return
    }
    const { code, message } = tripped as Error & { code: string }
    reply.code(413).header('content-type', 'application/json; charset=utf-8')
    done(null, JSON.stringify({ statusCode: 413, code, error: 'Payload Too Large', message }))
  })

  if (authRefusal) {
    fastify.addHook('onSend', function refuseAuthBeforeBody (request, reply, payload, done) {
      const watch = watchOf(request)
      const status = reply.statusCode
      if (watch?.awaiting !== true || (status !== 401 && status !== 403)) {
        done(null, payload)
        return
      }
      const error = new RefusedBeforeBodyError(status, status === 401 ? 'Unauthorized' : 'Forbidden')
      reply.code(417).header('content-type', 'application/json; charset=utf-8')
      // Counted under the app's own status, not the 417 it became.
      countRefusal(watch, String(status), status)
      done(null, JSON.stringify({ statusCode: 417, code: error.code, error: 'Expectation Failed', message: error.message }))
    })
  }
}

/** The expectation validator: lazy `100 Continue` and pre-body checks for every route. */
export const upfront = fp(upfrontPlugin, { name: 'upfront', fastify: '5.x' })
export default upfront
// CommonJS: `require('upfront')` (Node >= 20.19) returns the plugin itself,
// which also carries itself as `.default` and `.upfront`.
export { upfront as 'module.exports' }
