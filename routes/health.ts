import type { FastifyPluginAsync } from 'fastify'

const healthRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.get('/healthz', { config: { auth: false } }, async function health () {
    // Asking storage proves it answers (the disk is mounted, the bucket reachable).
    const freeBytes = await fastify.storage.freeBytes()
    return { status: 'ok', freeBytes }
  })
}

export default healthRoutes
