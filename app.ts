import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import type { FastifyCorsOptions } from '@fastify/cors'
import cors from '@fastify/cors'
import multipart from '@fastify/multipart'
import type { Config } from './config.js'
import auth from './plugins/auth.js'
import storagePlugin from './plugins/storage/index.js'
import type { Storage } from './plugins/storage/types.js'
import { DiskStorage } from './plugins/storage/disk.js'
import upfront from './plugins/upfront/index.js'
import filesRoutes from './routes/files/index.js'
import healthRoutes from './routes/health.js'
import presignRoutes from './routes/presign.js'

export interface AppOptions {
  config: Config
  /** A storage backend; by default, files on disk under `config.dataDir`. */
  storage?: Storage
  /** Fastify's logger option; by default, JSON logs at `config.logLevel`. */
  logger?: FastifyServerOptions['logger']
}

/** Builds the upload service: plugins first, then routes. */
export async function buildApp ({ config, storage, logger }: AppOptions): Promise<FastifyInstance> {
  const origins = config.corsOrigins
  const app = Fastify({
    logger: logger ?? { level: config.logLevel },
    // A connection that sends nothing for this long is closed: it frees the
    // sockets of stalled uploads without capping how long a large one takes.
    connectionTimeout: 120_000,
    requestTimeout: 0,
    // A request Node's parser refuses (malformed, headers too large).
    clientErrorHandler: answerClientError,
    // A URL that cannot be decoded (FST_ERR_BAD_URL, the only framework
    // error without async constraints) is answered before any hook runs.
    frameworkErrors (_error, request, frameworkReply) {
      const reply = frameworkReply as FastifyReply
      if (origins !== null) addCorsHeaders(origins, request, reply)
      // Its body, if any, is not read: the connection goes with the answer,
      // after a lingering close, as with the validator's refusals.
      if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined) reply.server.upfront.closeAfterAnswer(reply)
      void reply.code(400).send({
        statusCode: 400,
        code: 'UPFRONT_BAD_URL',
        error: 'Bad Request',
        message: `The URL ${JSON.stringify(request.url.replace(/\?.*$/s, ''))} holds a malformed percent-encoding; encode each path segment with encodeURIComponent`
      })
    }
  })

  // Set before any plugin adds a route: a route keeps the handlers it was
  // added under (the CORS preflight route among them).
  app.setNotFoundHandler(async (request, reply) => {
    return await reply.code(404).send({
      statusCode: 404,
      code: 'UPFRONT_ROUTE_NOT_FOUND',
      error: 'Not Found',
      message: `No route ${request.method} ${request.url.replace(/\?.*$/s, '')}; see the HTTP API in the README`
    })
  })
  app.setErrorHandler(async (error: Error & { statusCode?: number, code?: string }, request, reply) => {
    if (origins !== null) addCorsHeaders(origins, request, reply)
    const statusCode = error.statusCode ?? 500
    const explain = FRAMEWORK_MESSAGES[String(error.code)]
    if (explain !== undefined) {
      return await reply.code(statusCode).send({ statusCode, code: error.code, error: STATUS_CODES[statusCode], message: explain(request) })
    }
    if (statusCode < 500 || error.code?.startsWith('UPFRONT_') === true) return await reply.send(error)
    if (request.raw.socket.destroyed) {
      // The client went away mid-request (an upload cut off): no answer can reach it.
      request.log.info({ err: error }, 'the connection closed before the request was answered')
      return await reply.code(500).send()
    }
    // An unexpected failure: logged in full, answered without internals.
    request.log.error({ err: error }, 'request failed')
    return await reply.code(500).send({
      statusCode: 500,
      code: 'UPFRONT_INTERNAL_ERROR',
      error: 'Internal Server Error',
      message: 'The server failed to handle the request; try again later'
    })
  })

  // Order matters. The expectation validator's checks (417, 413, 415) come
  // first, then CORS, which answers preflights (they carry no token), then
  // authentication (401, 403): all before the body is sent. The CORS hook
  // puts its headers on every answer but the validator's refusals, which
  // get them from the error handler below: a browser shows an answer
  // without them as a network error.
  await app.register(upfront, { maxBytes: config.maxUploadBytes })
  if (origins !== null) await app.register(cors, corsOptions(origins))
  await app.register(auth, config.auth)
  await app.register(storagePlugin, { storage: storage ?? await DiskStorage.open(config.dataDir) })
  await app.register(multipart, {
    limits: { fileSize: config.maxUploadBytes, files: 100, fields: 100, fieldSize: 64 * 1024, parts: 200 }
  })

  await app.register(healthRoutes)
  await app.register(filesRoutes, { maxUploadBytes: config.maxUploadBytes })
  await app.register(presignRoutes, { maxUploadBytes: config.maxUploadBytes })
  return app
}

/** Messages that say what to do, for Fastify's own errors whose message does not. */
const FRAMEWORK_MESSAGES: Record<string, (request: FastifyRequest) => string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (request) => {
    const type = request.headers['content-type']
    return `${type === undefined ? 'A body without a Content-Type' : `The Content-Type ${JSON.stringify(type)}`} cannot be read here; ` +
      'send a valid media type (type/subtype), and application/json to POST /presign'
  },
  FST_ERR_CTP_INVALID_JSON_BODY: () => 'The body cannot be read as JSON (it is not JSON, or holds a forbidden key such as "__proto__"); ' +
    'send a JSON object, such as {"name":"a.txt"} (POST /presign is the route that reads JSON)',
  FST_ERR_CTP_EMPTY_JSON_BODY: () => 'The body is empty; send a JSON object, such as {"name":"a.txt"} (POST /presign is the route that reads JSON)'
}

/** Response headers a page may read. */
const EXPOSED_HEADERS = ['ETag', 'Last-Modified', 'Location', 'Accept-Ranges', 'Content-Range', 'Content-Disposition', 'Repr-Digest', 'WWW-Authenticate']

/** @fastify/cors settings for the service's API. */
function corsOptions (origins: '*' | string[]): FastifyCorsOptions {
  return {
    origin: origins,
    methods: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'],
    // Listed, not reflected: what a page may send, and nothing else.
    allowedHeaders: ['Authorization', 'Content-Type', 'Content-Digest', 'Content-MD5', 'If-Match', 'If-None-Match', 'If-Modified-Since', 'If-Range', 'Range'],
    exposedHeaders: EXPOSED_HEADERS,
    // Bearer tokens, not cookies: no credentialed requests.
    credentials: false,
    maxAge: 600,
    // Any OPTIONS is answered as a preflight (204), rather than with a
    // plain-text 400 when it lacks the preflight headers.
    strictPreflight: false
  }
}

/**
 * The headers that @fastify/cors puts on an answer, for the answers given
 * before its hook ran: the expectation validator's refusals, and a URL
 * that cannot be decoded. (Its hook always sets the expose list.)
 */
function addCorsHeaders (origins: '*' | string[], request: FastifyRequest, reply: FastifyReply): void {
  if (reply.hasHeader('access-control-expose-headers')) return
  const origin = request.headers.origin
  if (origins === '*') {
    reply.header('access-control-allow-origin', '*')
  } else {
    reply.header('vary', 'Origin')
    if (origin !== undefined && origins.includes(origin)) reply.header('access-control-allow-origin', origin)
  }
  reply.header('access-control-expose-headers', EXPOSED_HEADERS.join(', '))
}

/** What a client gets for a request that Node's HTTP parser refused, before Fastify saw it. */
export function clientErrorAnswer (error: NodeJS.ErrnoException): { statusCode: number, code: string, message: string } {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { statusCode: 408, code: 'UPFRONT_REQUEST_TIMEOUT', message: 'The request\'s header section did not arrive in time; send it at once' }
    case 'HPE_HEADER_OVERFLOW':
      return { statusCode: 431, code: 'UPFRONT_HEADERS_TOO_LARGE', message: 'The request\'s header section is over the server\'s limit (16 KiB); send fewer or shorter headers' }
    default:
      return { statusCode: 400, code: 'UPFRONT_BAD_REQUEST', message: `The request is not valid HTTP/1.1 (${error.code ?? error.message}); check what the client sends` }
  }
}

/**
 * Fastify's `clientErrorHandler`: the answer in the service's error shape
 * (Fastify's own has no code), then the connection closes, as Node's does.
 */
export function answerClientError (error: NodeJS.ErrnoException, socket: Socket): void {
  // A reset: nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const { statusCode, code, message } = clientErrorAnswer(error)
  const status = STATUS_CODES[statusCode] as string
  const body = JSON.stringify({ statusCode, code, error: status, message })
  // Not into an answer already under way on this connection (Node's own rule).
  const answering = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage
  if (socket.writable && answering?.headersSent !== true) {
    socket.write(`HTTP/1.1 ${statusCode} ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy(error)
}
