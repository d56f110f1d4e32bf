// DELETE /files/<name>, with its preconditions checked atomically.
import type { FastifyPluginAsync } from 'fastify'
import { FileNotFoundError } from '../../errors.js'
import { nameOf, ownerOf, preconditionsOf } from './common.js'

const deleteRoute: FastifyPluginAsync = async (fastify) => {
  fastify.delete('/*', async function deleteFile (request, reply) {
    const name = nameOf(request)
    if (!await fastify.storage.delete(ownerOf(request), name, preconditionsOf(request))) throw new FileNotFoundError(JSON.stringify(name))
    return await reply.code(204).send()
  })
}

export default deleteRoute
