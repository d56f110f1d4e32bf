import Fastify from 'fastify'
import type { FastifyHttpOptions, FastifyInstance, FastifyServerOptions } from 'fastify'
import type { Server } from 'node:http'
import multipart from '@fastify/multipart'
import underPressure from '@fastify/under-pressure'
import upfront from 'upfront'
import type { Config } from './config.js'
import { OverloadedError } from './errors.js'
import answers, { answerClientError, answerFrameworkError } from './plugins/answers.js'
import auth, { PRESIGN_PARAMS } from './plugins/auth/index.js'
import cors, { noCors } from './plugins/cors.js'
import lifecycle from './plugins/lifecycle.js'
import metrics from './plugins/metrics.js'
import storagePlugin from './plugins/storage/index.js'
import type { Storage } from './plugins/storage/index.js'
import { openStorage } from './plugins/storage/open.js'
import filesRoutes from './routes/files/index.js'
import healthRoutes from './routes/health.js'
import presignRoutes from './routes/presign.js'

export interface AppOptions {
  config: Config
  /** A storage backend, opened; by default, the one `config` names. */
  storage?: Storage
  /** Fastify's logger option; by default, JSON logs at `config.logLevel` with secrets redacted (`loggerOptions`). */
  logger?: FastifyServerOptions['logger']
}

/** Where files are served: written once, handed to the routes and to presigned URLs. */
export const FILES_PREFIX = '/files'

const REDACTED = '[redacted]'
/** Query parameters whose values are credentials: presigned URLs' signatures, and the usual names of others. */
const SECRET_PARAMETER = new RegExp(`^(?:${PRESIGN_PARAMS.signature}|x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|token|access_token|api_key|key|secret|password)$`, 'i')

/** A request URL as logs show it: the values of secret query parameters replaced. */
export function redactUrl (url: string): string {
  const queryStart = url.indexOf('?')
  if (queryStart === -1) return url
  const parameters = url.slice(queryStart + 1).split('&').map((parameter) => {
    const equals = parameter.indexOf('=')
    const name = equals === -1 ? parameter : parameter.slice(0, equals)
    let decoded = name
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '))
    } catch {}
    return SECRET_PARAMETER.test(decoded) ? `${name}=${REDACTED}` : parameter
  })
  return `${url.slice(0, queryStart)}?${parameters.join('&')}`
}

/**
 * The service's logger: JSON at `level`, with no secret in any line at any
 * level — credentials in headers (should a serializer ever include them)
 * and presigned URLs' signatures in the request URL.
 */
export function loggerOptions (level: string): FastifyServerOptions['logger'] {
  return {
    level,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]', 'res.headers["set-cookie"]'],
      censor: REDACTED
    },
    serializers: {
      req: (request: { method: string, url: string, host?: string, ip?: string, socket?: { remotePort?: number } }) => ({
        method: request.method,
        url: redactUrl(request.url),
        host: request.host,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort
      })
    }
  }
}

/** Builds the upload service: plugins first, then routes. */
export async function buildApp ({ config, storage, logger }: AppOptions): Promise<FastifyInstance> {
  const options: FastifyHttpOptions<Server> = {
    logger: logger ?? loggerOptions(config.logLevel),
    // X-Forwarded-For, -Proto and -Host are believed only from these proxies
    // (Fastify also takes a number of hops, which its types leave out).
    trustProxy: config.trustProxy as FastifyHttpOptions<Server>['trustProxy'],
    // A connection that sends nothing for this long is closed: it frees the
    // sockets of stalled uploads (and cleans up what they wrote) without
    // capping how long a large one takes while it moves.
    connectionTimeout: config.timeouts.bodyIdleMs,
    requestTimeout: 0,
    // Longer than a proxy's idle timeout, so that the proxy, not the
    // service, closes an idle connection (no request lost in the race).
    keepAliveTimeout: config.timeouts.keepAliveMs,
    http: {
      // A header section must arrive within this (slowloris), checked every second.
      headersTimeout: config.timeouts.headersMs,
      connectionsCheckingInterval: 1000
    },
    // The lifecycle plugin answers requests during a shutdown, in the service's error shape.
    return503OnClosing: false,
    // A body with a field its schema does not name is refused, not trimmed.
    ajv: { customOptions: { removeAdditional: false } },
    // A request Node's parser refuses (malformed, headers too large).
    clientErrorHandler: answerClientError,
    // A URL that cannot be decoded (FST_ERR_BAD_URL, the only framework
    // error without async constraints) is answered before any hook runs.
    frameworkErrors: answerFrameworkError
  }
  const app = Fastify(options)

  // Order matters. The error and 404 handlers come first: a route keeps
  // the handlers it was added under (the CORS preflight route among them).
  // Then the expectation validator (417, and the watch on every body), CORS
  // (preflights carry no token), authentication (401, 403, and a caller's
  // own limit), and the validator's limits and types (413, 415) at
  // preParsing: all before the body is sent.
  await app.register(answers)
  await app.register(upfront, { maxBytes: config.maxUploadBytes })
  await app.register(lifecycle, { shutdownDelayMs: config.shutdownDelayMs, shutdownGraceMs: config.shutdownGraceMs, minUploadBytesPerSecond: config.minUploadBytesPerSecond })
  await app.register(metrics, { token: config.metricsToken })
  // Load shedding: new requests get 503 with Retry-After, before their body.
  const { maxEventLoopDelayMs, maxRssBytes } = config.pressure
  if (maxEventLoopDelayMs > 0 || maxRssBytes > 0) {
    await app.register(underPressure, { maxEventLoopDelay: maxEventLoopDelayMs, maxRssBytes, retryAfter: 5, customError: OverloadedError })
  }
  await app.register(config.corsOrigins === null ? noCors : cors, { origins: config.corsOrigins ?? '*' })
  await app.register(auth, { ...config.auth, presign: { ...config.auth.presign, pathPrefix: `${FILES_PREFIX}/` } })
  await app.register(storagePlugin, { storage: storage ?? await openStorage(config.storage), observer: app.storageObserver })
  // Limits are set per request by the form route.
  await app.register(multipart)

  await app.register(healthRoutes)
  await app.register(filesRoutes, { prefix: FILES_PREFIX, maxUploadBytes: config.maxUploadBytes, publicUrl: config.publicUrl })
  await app.register(presignRoutes, { maxUploadBytes: config.maxUploadBytes, publicUrl: config.publicUrl })
  return app
}
