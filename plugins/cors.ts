// CORS for web pages on other origins: @fastify/cors with the service's
// settings, and the same headers on the answers given before its hook runs.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import cors from '@fastify/cors'
import fp from 'fastify-plugin'

export interface CorsOptions {
  /** `'*'` for any origin, or exact origins as browsers send them. */
  origins: '*' | readonly string[]
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Puts the CORS headers @fastify/cors would have put on an answer given
     * before its hook ran (an expectation refusal, an undecodable URL), so
     * that a page reads it instead of seeing a network error. A no-op
     * without CORS, or when they are there already.
     */
    labelForCors: (request: FastifyRequest, reply: FastifyReply) => void
  }
}

/** Response headers a page may read. */
const EXPOSED_HEADERS = ['ETag', 'Last-Modified', 'Location', 'Accept-Ranges', 'Content-Range', 'Content-Disposition', 'Repr-Digest', 'WWW-Authenticate', 'Allow', 'Retry-After']

const corsPlugin: FastifyPluginAsync<CorsOptions> = async (fastify, { origins }) => {
  await fastify.register(cors, {
    origin: origins === '*' ? '*' : [...origins],
    methods: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'],
    // Listed, not reflected: what a page may send, and nothing else.
    allowedHeaders: ['Authorization', 'Content-Type', 'Content-Digest', 'Content-MD5', 'If-Match', 'If-None-Match',
      'If-Modified-Since', 'If-Unmodified-Since', 'If-Range', 'Range'],
    exposedHeaders: EXPOSED_HEADERS,
    // Bearer tokens, not cookies: no credentialed requests.
    credentials: false,
    maxAge: 600,
    // Any OPTIONS is answered as a preflight (204), rather than with a
    // plain-text 400 when it lacks the preflight headers.
    strictPreflight: false
  })
  fastify.decorate('labelForCors', (request: FastifyRequest, reply: FastifyReply): void => {
    // @fastify/cors's hook always sets the expose list.
    if (reply.hasHeader('access-control-expose-headers')) return
    const origin = request.headers.origin
    if (origins === '*') {
      reply.header('access-control-allow-origin', '*')
    } else {
      reply.header('vary', 'Origin')
      if (origin !== undefined && origins.includes(origin)) reply.header('access-control-allow-origin', origin)
    }
    reply.header('access-control-expose-headers', EXPOSED_HEADERS.join(', '))
  })
}

/**
 * Register it after upfront, so that an OPTIONS with a body is still held
 * to upfront's rules (@fastify/cors answers preflights in its own onRequest
 * hook). Without it, `fastify.labelForCors` is decorated as a no-op.
 */
export default fp(corsPlugin, { name: 'upfront-cors', fastify: '5.x', dependencies: ['upfront'] })

/** For an app without CORS: the decorator, doing nothing. */
export const noCors = fp(async (fastify) => {
  fastify.decorate('labelForCors', (): void => {})
}, { name: 'upfront-cors', fastify: '5.x' })
