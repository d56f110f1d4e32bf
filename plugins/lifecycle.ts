// The service's life as operators see it: requests in flight, readiness,
// and a graceful shutdown that lets uploads in flight finish, then answers
// those still running with a 503 and removes what they wrote.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ShuttingDownError, UploadTooSlowError } from '../errors.js'

export interface LifecycleOptions {
  /**
   * After a shutdown begins, how long, in ms, the app goes on taking
   * connections and requests as usual while readiness fails, so that a load
   * balancer checking readiness stops sending to it before it stops
   * listening: a request the balancer sends on a kept-alive connection that
   * the app is closing would fail (HAProxy answers 502). Default 0: no delay.
   */
  shutdownDelayMs?: number
  /** After that, how long requests in flight get to finish, in ms. */
  shutdownGraceMs: number
  /**
   * Slowest upload kept, in bytes per second over each `rateWindowMs`: a body
   * trickling in slower (a "slow POST" holding a connection) is cut with a
   * 408. 0 turns the check off.
   */
  minUploadBytesPerSecond: number
  /** The window, in ms, over which that rate is measured. Default 60000. */
  rateWindowMs?: number
}

/** What a shutdown did, for the operator's log. */
export interface ShutdownReport {
  /** Requests in flight when it stopped taking new ones (after the delay). */
  inFlight: number
  /** Of those, the ones that finished within the grace period. */
  finished: number
  /** The ones answered with a 503 at its end (their uploads removed). */
  cut: number
  /** Milliseconds it took. */
  tookMs: number
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: {
      /** A shutdown has begun: readiness fails; after the delay, new requests get 503. */
      readonly shuttingDown: boolean
      /** Requests being handled now. */
      readonly inFlight: number
      /**
       * Fails readiness, waits the delay, stops taking connections, gives
       * the requests in flight the grace period, then ends the bodies of
       * those still running (their handlers answer 503 with Retry-After and
       * clean up), and closes the app.
       */
      shutdown: () => Promise<ShutdownReport>
    }
  }
}

const DEFAULT_RATE_WINDOW_MS = 60_000
/** After the grace period, how long the requests it cut get to answer before their connections are closed. */
const ANSWER_AFTER_CUT_MS = 5_000

const lifecyclePlugin: FastifyPluginAsync<LifecycleOptions> = async (fastify, options) => {
  const inFlight = new Map<FastifyRequest, FastifyReply>()
  const shutdownDelayMs = options.shutdownDelayMs ?? 0
  let shuttingDown = false
  /** The delay is over: requests are refused. */
  let refusing = false
  let drained: (() => void) | null = null

  // Requests that arrive on open connections once a shutdown began are
  // refused before their body (Fastify's own 503 has no code).
  fastify.addHook('onRequest', async (request, reply) => {
    if (refusing) {
      reply.header('connection', 'close')
      throw new ShuttingDownError()
    }
    inFlight.set(request, reply)
  })
  const settle = async (request: FastifyRequest): Promise<void> => {
    inFlight.delete(request)
    if (inFlight.size === 0) drained?.()
  }
  fastify.addHook('onResponse', settle)
  fastify.addHook('onRequestAbort', settle)

  // Bytes each connection had read at the last check, for the rate floor.
  const readAt = new WeakMap<FastifyRequest, number>()
  const rateWindowMs = options.rateWindowMs ?? DEFAULT_RATE_WINDOW_MS
  const rates = options.minUploadBytesPerSecond === 0
    ? null
    : setInterval(() => {
      for (const request of inFlight.keys()) {
        const raw = request.raw
        const socket = raw.socket as { bytesRead?: number } | null
        // Only bodies that are being read: one whose buffer is full waits on
        // its reader (storage), not on the client.
        if (raw.complete || socket?.bytesRead === undefined || raw.readableLength >= raw.readableHighWaterMark) {
          readAt.delete(request)
          continue
        }
        const before = readAt.get(request)
        readAt.set(request, socket.bytesRead)
        if (before !== undefined && socket.bytesRead - before < options.minUploadBytesPerSecond * rateWindowMs / 1000) {
          request.log.info({ bytesInWindow: socket.bytesRead - before, windowMs: rateWindowMs }, 'upload cut: slower than the minimum rate')
          fastify.upfront.abortBody(request, new UploadTooSlowError(options.minUploadBytesPerSecond))
        }
      }
    }, rateWindowMs)
  rates?.unref()
  fastify.addHook('onClose', async () => { if (rates !== null) clearInterval(rates) })

  fastify.decorate('lifecycle', {
    get shuttingDown () { return shuttingDown },
    get inFlight () { return inFlight.size },
    async shutdown (): Promise<ShutdownReport> {
      const started = performance.now()
      shuttingDown = true
      if (shutdownDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, shutdownDelayMs))
      refusing = true
      const report: ShutdownReport = { inFlight: inFlight.size, finished: 0, cut: 0, tookMs: 0 }
      // The answers still to come close their connections.
      for (const reply of inFlight.values()) if (!reply.raw.headersSent) reply.header('connection', 'close')
      // Stops listening; Fastify answers requests arriving on open
      // connections with 503 and Connection: close; the app's onClose hooks
      // (storage) run once the connections are gone.
      const closing = fastify.close()
      const emptied = new Promise<void>((resolve) => {
        drained = resolve
        if (inFlight.size === 0) resolve()
      })
      let timer: NodeJS.Timeout | undefined
      await Promise.race([emptied, new Promise((resolve) => { timer = setTimeout(resolve, options.shutdownGraceMs) })])
      clearTimeout(timer)
      report.cut = inFlight.size
      report.finished = report.inFlight - report.cut
      if (inFlight.size > 0) {
        for (const request of inFlight.keys()) fastify.upfront.abortBody(request, new ShuttingDownError())
        await Promise.race([emptied, new Promise((resolve) => setTimeout(resolve, ANSWER_AFTER_CUT_MS).unref())])
      }
      // Connections still open (lingering after an answer, idle): closed now.
      fastify.server.closeAllConnections()
      await closing
      report.tookMs = Math.round(performance.now() - started)
      return report
    }
  })
}

/** Requests in flight, readiness, the upload rate floor and the graceful shutdown. */
export default fp(lifecyclePlugin, { name: 'upfront-lifecycle', fastify: '5.x', dependencies: ['upfront'] })
