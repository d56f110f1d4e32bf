// How the service answers what goes wrong: its error handler, its 404 and
// 405, and the requests Fastify or Node refuse before a route is found.
// Every answer is in Fastify's shape `{ statusCode, code, error, message }`.
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import {
  BadRequestError,
  BadUrlError,
  EXPOSED_SERVER_ERRORS,
  HeadersTooLargeError,
  InternalError,
  MethodNotAllowedError,
  RequestTimeoutError,
  RouteNotFoundError
} from '../errors.js'

/** Methods a path may support; OPTIONS is left out (CORS answers it on any path). */
const METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH']
/** Seconds a client is asked to wait after a 503. */
const RETRY_AFTER_SECONDS = 5

/** The path of a request, without its query (which may hold a signature). */
function pathOf (request: FastifyRequest): string {
  return request.url.replace(/\?.*$/s, '')
}

/** Messages that say what to do, for Fastify's own errors whose message does not. */
const FRAMEWORK_MESSAGES: Readonly<Record<string, (request: FastifyRequest, error: FastifyError) => string>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (request) => {
    const type = request.headers['content-type']
    return `${type === undefined ? 'A body without a Content-Type' : `The Content-Type ${JSON.stringify(type)}`} cannot be read here; ` +
      'send a valid media type (type/subtype)'
  },
  FST_ERR_CTP_INVALID_JSON_BODY: () => 'The body cannot be read as JSON (it is not JSON, or holds a forbidden key such as "__proto__"); ' +
    'send a JSON object, such as {"name":"a.txt"} (POST /presign is the route that reads JSON)',
  FST_ERR_CTP_EMPTY_JSON_BODY: () => 'The body is empty; send a JSON object, such as {"name":"a.txt"} (POST /presign is the route that reads JSON)',
  FST_ERR_VALIDATION: (_request, error) => {
    /* c8 ignore next -- Fastify sets validation on every FST_ERR_VALIDATION it makes; the fallback is for the type only */
    const [first] = error.validation ?? []
    const extra = (first?.params as { additionalProperty?: unknown } | undefined)?.additionalProperty
    if (typeof extra === 'string') return `The body has a field ${JSON.stringify(extra)} that this route does not take; remove it (see the HTTP API in the README)`
    return `${error.message.charAt(0).toUpperCase()}${error.message.slice(1)}; fix the body (see the HTTP API in the README)`
  }
}

const answersPlugin: FastifyPluginAsync = async (fastify) => {
  // A path that exists answers 405 with the methods it takes (RFC 9110
  // §15.5.6), before the body: the plugin shows unknown routes as bodiless.
  fastify.setNotFoundHandler(async function notFound (request, reply) {
    const path = pathOf(request)
    const allowed = METHODS.filter((method) => method !== request.method && fastify.findRoute({ method, url: path }) !== null)
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '))
      throw new MethodNotAllowedError(request.method, JSON.stringify(path), allowed.join(', '))
    }
    throw new RouteNotFoundError(request.method, JSON.stringify(path))
  })

  fastify.setErrorHandler(async function answerError (error: FastifyError, request, reply) {
    request.server.labelForCors(request, reply)
    const statusCode = error.statusCode ?? 500
    const explain = FRAMEWORK_MESSAGES[error.code]
    if (explain !== undefined) {
      return await reply.code(statusCode).send({ statusCode, code: error.code, error: STATUS_CODES[statusCode], message: explain(request, error) })
    }
    if (statusCode < 500 || EXPOSED_SERVER_ERRORS.has(error.code)) {
      if (statusCode === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS))
      return await reply.code(statusCode).send(error)
    }
    if (request.raw.socket?.destroyed === true) {
      // The client went away mid-request (an upload cut off): no answer can reach it.
      request.log.info({ err: error }, 'the connection closed before the request was answered')
      return await reply.code(500).send()
    }
    // An unexpected failure: logged in full, answered without internals.
    request.log.error({ err: error }, 'request failed')
    const { code, message } = new InternalError()
    return await reply.code(500).send({ statusCode: 500, code, error: STATUS_CODES[500], message })
  })
}

/** The error handler and the 404/405 handler; register it before any plugin that adds routes (a route keeps the handlers it was added under). */
export default fp(answersPlugin, { name: 'upfront-answers', fastify: '5.x' })

/**
 * Fastify's `frameworkErrors`: a URL that cannot be decoded (FST_ERR_BAD_URL,
 * answered before any hook runs). Its body, if any, is not read: the
 * connection goes with the answer, after a lingering close.
 */
export function answerFrameworkError (_error: Error, request: FastifyRequest, frameworkReply: unknown): void {
  const reply = frameworkReply as FastifyReply
  request.server.labelForCors(request, reply)
  if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined) request.server.upfront.closeAfterAnswer(reply)
  reply.code(400).send(new BadUrlError(JSON.stringify(pathOf(request))))
}

/** What a client gets for a request that Node's HTTP parser refused, before Fastify saw it. */
export function clientErrorAnswer (error: NodeJS.ErrnoException): Error & { statusCode: number, code: string } {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new RequestTimeoutError()
    case 'HPE_HEADER_OVERFLOW':
      return new HeadersTooLargeError()
    default:
      return new BadRequestError(error.code ?? error.message)
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
