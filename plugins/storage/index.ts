import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { observed } from './observe.js'
import type { StorageObserver } from './observe.js'
import type { Storage } from './types.js'

export type * from './types.js'
export { checkName, isValidName, MAX_NAME_BYTES, MAX_SEGMENT_BYTES } from './names.js'
export { evaluatePreconditions } from './preconditions.js'
export type { Preconditions, RequestKind } from './preconditions.js'
export type { StorageObserver } from './observe.js'

export interface StoragePluginOptions {
  /** An opened backend; the plugin closes it with the app. */
  storage: Storage
  /** Told what the backend does (metrics); none by default. */
  observer?: StorageObserver
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Where files live, behind one interface whatever the backend. */
    storage: Storage
  }
}

const storagePlugin: FastifyPluginAsync<StoragePluginOptions> = async (fastify, { storage, observer }) => {
  fastify.decorate('storage', observer === undefined ? storage : observed(storage, observer))
  fastify.addHook('onClose', async () => { await storage.close() })
}

export default fp(storagePlugin, { name: 'upfront-storage', fastify: '5.x' })
