import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { constants as http2 } from 'node:http2'
import type { ServerHttp2Stream } from 'node:http2'
import { Socket } from 'node:net'
import { Readable } from 'node:stream'
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
  StreamTooLargeError,
  UnsupportedMediaTypeError
} from './errors.js'
import { unsupportedExpectation } from './expectation.js'
import { acceptsMediaType, compileMediaTypes, invalidMediaRange } from './media-type.js'
import type { MediaTypeMatcher } from './media-type.js'

export * from './errors.js'
export { unsupportedExpectation } from './expectation.js'

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
   * After a final answer on a connection that is then closed, how long the
   * server keeps reading and discarding what the client still sends, after
   * its own FIN, before it closes the socket: without it the client's kernel
   * can drop the answer when a reset arrives. Default 2000 ms.
   */
  lingerMs?: number
}

export interface UpfrontStats {
  /** Final answers (>= 400) given before the body was read, by reason. */
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
   * For an answer given outside the plugin's hooks (Fastify's
   * `frameworkErrors`, say) to a request whose body will not be read:
   * `Connection: close`, then the same lingering close as the plugin's own
   * refusals, so that a client still sending gets the answer, not a reset.
   * Call it before sending; nothing happens once the head is out, nor
   * over HTTP/2.
   */
  closeAfterAnswer: (reply: FastifyReply) => void
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

/** Reasons under which refusals are counted, beside the HTTP status of the app's own. */
export const REFUSAL_REASONS = {
  expectation: 'expectation',
  tooLarge: 'too-large',
  mediaType: 'media-type',
  tooLargeWhileStreaming: 'too-large-while-streaming'
} as const

const DEFAULT_DRAIN_MAX_BYTES = 256 * 1024
const DEFAULT_LINGER_MS = 2000

const kHeldBack = Symbol('upfront.heldBack')
const kState = Symbol('upfront.state')
const kRouteSettings = Symbol('upfront.route')
const kLingerMs = Symbol('upfront.lingerMs')

interface RouteSettings {
  readonly maxBytes: number
  readonly mediaTypes: MediaTypeMatcher | null
}

interface PluginContext {
  readonly drainMaxBytes: number
  readonly lingerMs: number
  readonly refused: Record<string, number>
  unsentBytes: number
  continued: number
}

type RawRequest = Readable & {
  headers: IncomingHttpHeaders
  httpVersionMajor: number
  httpVersionMinor: number
  complete: boolean
  socket: unknown
  stream?: ServerHttp2Stream
  [kHeldBack]?: true
  [kState]?: BodyState
}

type RawResponse = ServerResponse

type LingeringSocket = Socket & { [kLingerMs]?: number }

/** What the plugin knows of one request that has a body or an Expect header. */
class BodyState {
  /** A 100 is owed: the client waits for it before sending the body. Cleared by the 100, the first body byte, or the answer. */
  awaiting: boolean
  received = 0
  tripped = false
  closeAfter = false
  reason: string | null = null

  constructor (
    readonly ctx: PluginContext,
    readonly request: FastifyRequest,
    readonly reply: FastifyReply,
    readonly declared: number,
    awaiting: boolean,
    readonly limit: number,
    readonly socket: LingeringSocket | null
  ) {
    this.awaiting = awaiting
  }
}

function checkByteCount (name: string, value: unknown, allowInfinity: boolean): number | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'number' && ((Number.isSafeInteger(value) && value >= 0) || (allowInfinity && value === Infinity))) {
    return value
  }
  throw new InvalidOptionError(name, `expected a whole number of bytes >= 0${allowInfinity ? ' or Infinity' : ''}, got ${String(value)}`)
}

function checkMediaTypes (name: string, value: unknown): MediaTypeMatcher | null | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidOptionError(name, 'expected a non-empty array of media types such as "image/png" or "image/*"; leave it out to accept any type')
  }
  const invalid = invalidMediaRange(value)
  if (invalid !== null) {
    throw new InvalidOptionError(name, `"${invalid}" is not a media type ("type/subtype" or "type/*")`)
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
  return { maxBytes, mediaTypes: mediaTypes === undefined ? defaults.mediaTypes : mediaTypes }
}

// Node's HTTP/1 and HTTP/2 parsers have already refused a malformed length.
function declaredLength (value: string | undefined): number {
  return value === undefined ? -1 : Number(value)
}

function bodyWithoutLength (raw: RawRequest): boolean {
  if (raw.stream !== undefined) return !raw.stream.endAfterHeaders
  return raw.headers['transfer-encoding'] !== undefined
}

/**
 * Undoes a per-request override by assignment, never with `delete`: a
 * deleted property turns a V8 object into a slow dictionary, and every later
 * request then pays for it in Node's and Fastify's hot paths.
 */
function restoreFromPrototype<T extends object> (target: T, key: keyof T): void {
  target[key] = (Object.getPrototypeOf(target) as T)[key]
}

/** The first read of the body is the moment to send the 100. */
function sendContinue (state: BodyState, raw: RawRequest): void {
  if (!state.awaiting) return
  state.awaiting = false
  // RFC 9110 §10.1.1: no 100 is needed once body bytes came without one.
  if (raw.readableLength > 0) return
  state.reply.raw.writeContinue()
  state.ctx.continued++
}

/** Replaces `push` while the body arrives: counts it and enforces the limit on bodies of unknown length. */
function countingPush (this: RawRequest, chunk: unknown, encoding?: BufferEncoding): boolean {
  const state = this[kState] as BodyState
  // Past the limit, what still arrives is read only to be discarded, and
  // the body never ends normally: its reader gets the limit error.
  if (state.tripped) return true
  if (chunk !== null) {
    // A client that sends its body without waiting needs no 100 any more
    // (RFC 9110 §10.1.1), and is no longer held back.
    state.awaiting = false
    state.received += (chunk as Buffer).length
    if (state.received > state.limit) {
      tripLimit(this, state)
      return false
    }
  }
  return Readable.prototype.push.call(this, chunk, encoding)
}

function destroyKeepingConnection (error: Error | null, callback: (error: Error | null) => void): void {
  callback(error)
}

function tripLimit (raw: RawRequest, state: BodyState): void {
  state.tripped = true
  state.closeAfter = true
  state.reason = REFUSAL_REASONS.tooLargeWhileStreaming
  if (raw.listenerCount('error') > 0) failConsumer(raw, state)
  // Nobody reads yet: a consumer that starts later gets the error then.
  else raw._read = failOnRead
}

function failOnRead (this: RawRequest, size: number): void {
  restoreFromPrototype(this, '_read')
  if (this.listenerCount('error') > 0) failConsumer(this, this[kState] as BodyState)
  // Node discarding the unread body after the answer: let it flow away.
  else this._read(size)
}

function failConsumer (raw: RawRequest, state: BodyState): void {
  // The consumer's stream errors so that storage can abort, but the socket
  // stays up: it still has to carry the 413.
  raw._destroy = destroyKeepingConnection
  raw.destroy(new StreamTooLargeError(state.limit))
}

function concludeBeforeAnswer (state: BodyState, res: RawResponse, statusCode: number): void {
  const { ctx, request } = state
  const raw = request.raw as unknown as RawRequest
  // Still waiting for its 100, unless body bytes came anyway.
  const beforeBody = state.awaiting && raw.readableLength === 0
  state.awaiting = false
  // Saturates rather than lose integer precision past 2^53 (8 PiB).
  if (beforeBody && state.declared > 0) ctx.unsentBytes = Math.min(ctx.unsentBytes + state.declared, Number.MAX_SAFE_INTEGER)

  if (statusCode >= 400 && (beforeBody || state.reason !== null)) {
    const reason = state.reason ?? String(statusCode)
    ctx.refused[reason] = (ctx.refused[reason] ?? 0) + 1
    request.log.info({
      upfront: { reason, statusCode, declaredBytes: state.declared, receivedBytes: state.received }
    }, state.tripped ? 'request body passed the limit and was refused' : 'request refused before its body was read')
  }

  if (state.socket !== null) {
    // What is left of an unread body: bytes are only counted where the
    // request is watched (see admitRequest); elsewhere the whole declared
    // length is taken as the remainder, which keeps the drain bounded.
    if (state.closeAfter || beforeBody || (!raw.complete &&
      (state.declared < 0 || state.declared - state.received > ctx.drainMaxBytes))) {
      res.setHeader('connection', 'close')
      armLingeringClose(state.socket, ctx.lingerMs)
    }
  } else if (raw.stream !== undefined && !raw.complete) {
    // HTTP/2: once the answer is complete, tell the client to stop sending
    // (RFC 9113 §8.1, RST_STREAM with NO_ERROR).
    const stream = raw.stream
    res.once('finish', () => { stream.close(http2.NGHTTP2_NO_ERROR) })
  }
}

function armLingeringClose (socket: LingeringSocket, lingerMs: number): void {
  socket[kLingerMs] = lingerMs
  socket.destroySoon = lingeringClose
}

/**
 * Node ends a `Connection: close` exchange with `destroySoon()`: FIN, then
 * destroy as soon as the answer is written. If the client is still sending,
 * its kernel answers the destroyed socket's unread data with a reset and may
 * throw away the answer it had not read yet. So: FIN, keep reading and
 * discarding for a bounded time, then close (RFC 9112 §9.6).
 */
function lingeringClose (this: LingeringSocket): void {
  restoreFromPrototype(this, 'destroySoon')
  const timer = setTimeout(destroySocket, this[kLingerMs], this)
  timer.unref()
  this.once('close', () => { clearTimeout(timer) })
  this.end()
  this.resume()
}

function destroySocket (socket: Socket): void {
  socket.destroy()
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
    lingerMs: checkByteCount('lingerMs', opts.lingerMs, false) ?? DEFAULT_LINGER_MS,
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
  const routeHeldBack = (req: IncomingMessage, res: ServerResponse): void => {
    (req as unknown as RawRequest)[kHeldBack] = true
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

  fastify.decorate('upfront', {
    get stats (): UpfrontStats {
      return { refused: { ...ctx.refused }, unsentBytes: ctx.unsentBytes, continued: ctx.continued }
    },
    closeAfterAnswer (reply: FastifyReply): void {
      const socket = reply.raw.socket
      // Too late once the head is out; and HTTP/2 closes streams, not connections.
      if (reply.raw.headersSent || reply.request.raw.httpVersionMajor !== 1 || !(socket instanceof Socket)) return
      reply.header('connection', 'close')
      armLingeringClose(socket as LingeringSocket, ctx.lingerMs)
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

  fastify.addHook('onRequest', function admitRequest (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    const raw = request.raw as unknown as RawRequest
    const headers = raw.headers
    const expect = headers.expect
    const declared = declaredLength(headers['content-length'])
    const hasBody = declared > 0 || (declared === -1 && bodyWithoutLength(raw))
    if (!hasBody && expect === undefined) {
      done()
      return
    }

    const unsupported = expect === undefined ? null : unsupportedExpectation(expect)
    if (!hasBody && unsupported === null) {
      done()
      return
    }
    const awaiting = expect !== undefined && unsupported === null && raw[kHeldBack] === true &&
      (raw.httpVersionMajor > 1 || raw.httpVersionMinor >= 1)
    const is404 = request.is404
    if (is404 && hasBody) {
      // Fastify parses a body before it calls the 404 handler: shown as
      // bodiless, the request goes straight to the handler, whose answer
      // then comes before the body.
      request.headers = NO_BODY
    }

    let refusal: Error | null = null
    let reason: string | null = null
    let streamingLimit = Infinity
    if (unsupported !== null) {
      refusal = new ExpectationFailedError(JSON.stringify(unsupported))
      reason = REFUSAL_REASONS.expectation
    } else if (hasBody && !is404) {
      const route = routeSettingsOf(request)
      if (route !== null) {
        const contentType = headers['content-type']
        if (declared > route.maxBytes) {
          refusal = new BodyTooLargeError(declared, route.maxBytes)
          reason = REFUSAL_REASONS.tooLarge
        } else if (route.mediaTypes !== null && !acceptsMediaType(route.mediaTypes, contentType)) {
          refusal = new UnsupportedMediaTypeError(contentType === undefined ? '(none)' : JSON.stringify(contentType), route.mediaTypes.description)
          reason = REFUSAL_REASONS.mediaType
        }
        // A declared length was checked just above; only a body of unknown
        // length is counted against the limit as it arrives.
        if (declared === -1) streamingLimit = route.maxBytes
      }
    }

    // A plain upload, small enough to drain if it goes unread: Node's own
    // handling is already right, and its objects are left as they are.
    if (refusal === null && !awaiting && declared >= 0 && declared <= ctx.drainMaxBytes) {
      done()
      return
    }

    const socket = raw.httpVersionMajor === 1 && raw.socket instanceof Socket ? raw.socket : null
    const state = new BodyState(ctx, request, reply, declared, awaiting, streamingLimit, socket)
    state.reason = reason
    state.closeAfter = unsupported !== null
    // As few properties as possible are added to Node's objects: every
    // added one gives them another shape, which Node's hot paths then meet.
    // Closures carry the state to the two overrides instead.
    reply.raw.writeHead = function writeHeadOnce (this: RawResponse, ...args: unknown[]): ServerResponse {
      restoreFromPrototype(this, 'writeHead')
      concludeBeforeAnswer(state, this, args[0] as number)
      return (this.writeHead as (...a: unknown[]) => ServerResponse)(...args)
    } as RawResponse['writeHead']
    if (awaiting) {
      raw._read = function readWithContinue (this: RawRequest, size: number): void {
        restoreFromPrototype(this, '_read')
        sendContinue(state, this)
        this._read(size)
      }
    }
    // Only a body of unknown length is counted as it arrives.
    if (declared === -1) raw.push = countingPush
    if (declared === -1 || authRefusal) raw[kState] = state
    if (refusal === null) done()
    else done(refusal)
  })

  if (authRefusal) {
    fastify.addHook('onSend', function refuseAuthBeforeBody (request, reply, payload, done) {
      const state = (request.raw as unknown as RawRequest)[kState]
      const status = reply.statusCode
      if (state?.awaiting !== true || (status !== 401 && status !== 403)) {
        done(null, payload)
        return
      }
      state.reason = String(status)
      const error = new RefusedBeforeBodyError(status, status === 401 ? 'Unauthorized' : 'Forbidden')
      reply.code(417).header('content-type', 'application/json; charset=utf-8')
      done(null, JSON.stringify({ statusCode: 417, code: error.code, error: 'Expectation Failed', message: error.message }))
    })
  }
}

/** The expectation validator: lazy `100 Continue` and pre-body checks for every route. */
export const upfront = fp(upfrontPlugin, { name: 'upfront', fastify: '5.x' })
export default upfront
