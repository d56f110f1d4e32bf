import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
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
  const app = Fastify({
    logger: logger ?? { level: config.logLevel },
    // A connection that sends nothing for this long is closed: it frees the
    // sockets of stalled uploads without capping how long a large one takes.
    connectionTimeout: 120_000,
    requestTimeout: 0
  })

  // Order matters. CORS first: its hook puts the CORS headers on every
  // answer, the early refusals included (a browser shows a refusal without
  // them as a network error), and answers preflights, which carry no token.
  // Then the expectation validator's checks (417, 413, 415), then
  // authentication (401, 403), all before the body is sent.
  if (config.corsOrigins !== null) await app.register(cors, corsOptions(config.corsOrigins))
  await app.register(upfront, { maxBytes: config.maxUploadBytes })
  await app.register(auth, config.auth)
  await app.register(storagePlugin, { storage: storage ?? await DiskStorage.open(config.dataDir) })
  await app.register(multipart, {
    limits: { fileSize: config.maxUploadBytes, files: 100, fields: 100, fieldSize: 64 * 1024, parts: 200 }
  })

  app.setNotFoundHandler(async (request, reply) => {
    return await reply.code(404).send({
      statusCode: 404,
      code: 'UPFRONT_ROUTE_NOT_FOUND',
      error: 'Not Found',
      message: `No route ${request.method} ${request.url.replace(/\?.*$/s, '')}; see the HTTP API in the README`
    })
  })
  app.setErrorHandler(async (error: Error & { statusCode?: number, code?: string }, request, reply) => {
    const statusCode = error.statusCode ?? 500
    if (statusCode < 500 || error.code?.startsWith('UPFRONT_') === true) return await reply.send(error)
    // An unexpected failure: logged in full, answered without internals.
    request.log.error({ err: error }, 'request failed')
    return await reply.code(500).send({
      statusCode: 500,
      code: 'UPFRONT_INTERNAL_ERROR',
      error: 'Internal Server Error',
      message: 'The server failed to handle the request; try again later'
    })
  })

  await app.register(healthRoutes)
  await app.register(filesRoutes, { maxUploadBytes: config.maxUploadBytes })
  await app.register(presignRoutes, { maxUploadBytes: config.maxUploadBytes })
  return app
}

/** @fastify/cors settings for the service's API. */
function corsOptions (origins: '*' | string[]): FastifyCorsOptions {
  return {
    origin: origins,
    methods: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'],
    // Listed, not reflected: what a page may send, and nothing else.
    allowedHeaders: ['Authorization', 'Content-Type', 'Content-Digest', 'Content-MD5', 'If-Match', 'If-None-Match', 'If-Modified-Since', 'If-Range', 'Range'],
    exposedHeaders: ['ETag', 'Last-Modified', 'Location', 'Accept-Ranges', 'Content-Range', 'Content-Disposition', 'Repr-Digest', 'WWW-Authenticate'],
    // Bearer tokens, not cookies: no credentialed requests.
    credentials: false,
    maxAge: 600,
    // Any OPTIONS is answered as a preflight (204), rather than with a
    // plain-text 400 when it lacks the preflight headers.
    strictPreflight: false
  }
}
