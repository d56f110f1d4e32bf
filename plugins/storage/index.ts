import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { Storage } from './types.js'

export type * from './types.js'

export interface StoragePluginOptions {
  /** An opened backend; the plugin closes it with the app. */
  storage: Storage
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Where files live: disk or S3-compatible storage, behind one interface. */
    storage: Storage
  }
}

const storagePlugin: FastifyPluginAsync<StoragePluginOptions> = async (fastify, { storage }) => {
  fastify.decorate('storage', storage)
  fastify.addHook('onClose', async () => { await storage.close() })
}

export default fp(storagePlugin, { name: 'upfront-storage', fastify: '5.x' })
