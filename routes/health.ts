// Probes for orchestrators and load balancers: alive, and ready to take uploads.
import type { FastifyPluginAsync } from 'fastify'

const healthRoutes: FastifyPluginAsync = async (fastify) => {
  // Alive: the process answers. Never refused under pressure.
  fastify.get('/healthz', {
    config: { auth: false, pressureHandler: () => undefined }
  }, async function alive () {
    return { status: 'ok' }
  })

  // Ready: the storage answers (the disk is mounted, the bucket
  // reachable); 503 otherwise, under pressure, and once a shutdown began
  // (during its delay requests are still served; after it, the lifecycle
  // plugin answers every request with a 503).
  fastify.get('/readyz', {
    config: { auth: false }
  }, async function ready (_request, reply) {
    if (fastify.lifecycle.shuttingDown) return await reply.code(503).header('retry-after', '5').send({ status: 'unavailable', reason: 'shutting down' })
    try {
      await fastify.storage.ping()
    } catch (error) {
      fastify.log.warn({ err: error }, 'not ready: the storage does not answer')
      return await reply.code(503).header('retry-after', '5').send({ status: 'unavailable', reason: 'the storage does not answer' })
    }
    return { status: 'ok', freeBytes: await fastify.storage.freeBytes() }
  })
}

export default healthRoutes
