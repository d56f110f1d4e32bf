// DELETE /files/<name>, with its preconditions checked atomically.
import type { FastifyPluginAsync } from 'fastify'
import { FileNotFoundError } from '../../errors.js'
import { audit, nameOf, ownerOf, preconditionsOf } from './common.js'

const deleteRoute: FastifyPluginAsync = async (fastify) => {
  fastify.delete('/*', async function deleteFile (request, reply) {
    const name = nameOf(request)
    const deleted = await fastify.storage.delete(ownerOf(request), name, preconditionsOf(request))
    if (deleted === null) throw new FileNotFoundError(JSON.stringify(name))
    audit(request, 'deleted', deleted, 204)
    return await reply.code(204).send()
  })
}

export default deleteRoute
