// GET /metrics in Prometheus text format (prom-client): requests by route
// and status, latencies, the expectation plugin's refusals and the body
// bytes they kept from being sent, 100 Continue answers, bytes stored,
// uploads in flight, storage errors. Read with the metrics token.
import { timingSafeEqual, createHash } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { MetricsUnauthorizedError } from '../errors.js'
import type { StorageObserver } from './storage/index.js'

export interface MetricsOptions {
  /** The bearer token `GET /metrics` requires; null: the route is not served. */
  token: string | null
}

declare module 'fastify' {
  interface FastifyInstance {
    /** What storage reports to the metrics. */
    storageObserver: StorageObserver
  }
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

const metricsPlugin: FastifyPluginAsync<MetricsOptions> = async (fastify, { token }) => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests answered, by method, route and status', labelNames: ['method', 'route', 'status'], registers: [registry] })
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from the request\'s arrival to its answer, by method and route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [registry]
  })
  fastify.addHook('onResponse', async (request, reply) => {
    // The route's pattern, not the URL: names stay out of label values.
    const route = request.routeOptions.url ?? 'unknown'
    requests.inc({ method: request.method, route, status: reply.statusCode })
    duration.observe({ method: request.method, route }, reply.elapsedTime / 1000)
  })

  // The expectation plugin's counters, read when scraped.
  const { upfront } = fastify
  new Counter({ // eslint-disable-line no-new
    name: 'upfront_refused_before_body_total',
    help: 'Requests refused before their body was read (or when it passed its limit), by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [reason, count] of Object.entries(upfront.stats.refused)) this.inc({ reason }, count)
    }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'upfront_unsent_body_bytes_total',
    help: 'Declared body bytes that clients never sent, because they were answered before a 100 Continue',
    registers: [registry],
    collect () {
      this.reset()
      this.inc(upfront.stats.unsentBytes)
    }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'upfront_continue_sent_total',
    help: '100 Continue answers sent',
    registers: [registry],
    collect () {
      this.reset()
      this.inc(upfront.stats.continued)
    }
  })

  const stored = new Counter({ name: 'upfront_stored_bytes_total', help: 'Bytes of files committed', registers: [registry] })
  const files = new Counter({ name: 'upfront_stored_files_total', help: 'Files committed', registers: [registry] })
  const uploading = new Gauge({ name: 'upfront_uploads_in_flight', help: 'Uploads begun and neither committed nor dropped', registers: [registry] })
  const failures = new Counter({ name: 'upfront_storage_errors_total', help: 'Storage operations that failed for a reason of the storage (not the request)', labelNames: ['operation'], registers: [registry] })
  fastify.decorate('storageObserver', {
    uploadBegun: () => { uploading.inc() },
    uploadSettled: () => { uploading.dec() },
    committed: (bytes: number) => {
      stored.inc(bytes)
      files.inc()
    },
    failed: (operation: string) => { failures.inc({ operation }) }
  })

  if (token === null) return
  const expected = digest(`Bearer ${token}`)
  fastify.get('/metrics', {
    config: { auth: false, pressureHandler: () => undefined },
    exposeHeadRoute: false
  }, async function metrics (request, reply) {
    // Compared as digests, in constant time.
    if (!timingSafeEqual(digest(request.headers.authorization ?? ''), expected)) {
      reply.header('www-authenticate', 'Bearer')
      throw new MetricsUnauthorizedError()
    }
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}

/** Prometheus metrics, `GET /metrics` with `Authorization: Bearer <token>`. */
export default fp(metricsPlugin, { name: 'upfront-metrics', fastify: '5.x', dependencies: ['upfront'] })
