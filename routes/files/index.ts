// The routes of files, one file per method group, under the prefix the
// app registers them with (`/files`).
import type { FastifyPluginAsync } from 'fastify'
import type { FilesRoutesOptions } from './common.js'
import deleteRoute from './delete.js'
import formRoute from './form.js'
import listRoute from './list.js'
import putRoute from './put.js'
import readRoutes from './read.js'

export type { FilesRoutesOptions } from './common.js'

const filesRoutes: FastifyPluginAsync<FilesRoutesOptions> = async (fastify, { maxUploadBytes, publicUrl }) => {
  // Not `options` itself: its `prefix` would be applied again.
  const options = { maxUploadBytes, publicUrl }
  await fastify.register(putRoute, options)
  await fastify.register(formRoute, options)
  await fastify.register(readRoutes)
  await fastify.register(deleteRoute)
  await fastify.register(listRoute)
}

export default filesRoutes
