// GET /files: the caller's files, a page at a time, in name order.
import type { FastifyPluginAsync } from 'fastify'
import { InvalidQueryError } from '../../errors.js'
import { fileSchema, ownerOf } from './common.js'

const DEFAULT_LIST_LIMIT = 100
const MAX_LIST_LIMIT = 1000

const listRoute: FastifyPluginAsync = async (fastify) => {
  fastify.get('/', {
    prefixTrailingSlash: 'no-slash',
    schema: {
      response: {
        200: {
          type: 'object',
          properties: { files: { type: 'array', items: fileSchema }, nextCursor: { type: ['string', 'null'] } }
        }
      }
    }
  }, async function listFiles (request) {
    const query = request.query as { limit?: string, cursor?: string }
    const limit = query.limit === undefined ? DEFAULT_LIST_LIMIT : Number(query.limit)
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new InvalidQueryError(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`)
    }
    // The cursor is the backend's: it checks it.
    return await fastify.storage.list(ownerOf(request), query.cursor === undefined ? { limit } : { limit, cursor: query.cursor })
  })
}

export default listRoute
