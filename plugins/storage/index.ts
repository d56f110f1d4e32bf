import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { Storage } from './types.js'

export type * from './types.js'
export { checkName, isValidName, MAX_NAME_BYTES, MAX_SEGMENT_BYTES } from './names.js'
export { evaluatePreconditions } from './preconditions.js'
export type { Preconditions, RequestKind } from './preconditions.js'

export interface StoragePluginOptions {
  /** An opened backend; the plugin closes it with the app. */
  storage: Storage
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Where files live, behind one interface whatever the backend. */
    storage: Storage
  }
}

const storagePlugin: FastifyPluginAsync<StoragePluginOptions> = async (fastify, { storage }) => {
  fastify.decorate('storage', storage)
  fastify.addHook('onClose', async () => { await storage.close() })
}

export default fp(storagePlugin, { name: 'upfront-storage', fastify: '5.x' })
