import type { FastifyPluginAsync } from 'fastify'
import { InvalidNameError } from './files/errors.js'
import { nameProblem } from './files/names.js'

export interface PresignRoutesOptions {
  /** Largest upload, in bytes: a grant can allow less, never more. */
  maxUploadBytes: number
}

const DEFAULT_EXPIRES_IN = 15 * 60
const MAX_EXPIRES_IN = 7 * 24 * 3600

interface PresignBody {
  name: string
  maxBytes?: number
  contentType?: string
  expiresIn?: number
}

const presignRoutes: FastifyPluginAsync<PresignRoutesOptions> = async (fastify, options) => {
  fastify.post<{ Body: PresignBody }>('/presign', {
    bodyLimit: 16 * 1024,
    schema: {
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          maxBytes: { type: 'integer', minimum: 1 },
          contentType: { type: 'string', pattern: '^[!#$%&\'*+.^_`|~0-9a-z-]+/[!#$%&\'*+.^_`|~0-9a-z-]+$' },
          expiresIn: { type: 'integer', minimum: 1, maximum: MAX_EXPIRES_IN }
        }
      }
    }
  }, async function presign (request, reply) {
    const { name, contentType = null, expiresIn = DEFAULT_EXPIRES_IN } = request.body
    const problem = nameProblem(name)
    if (problem !== null) throw new InvalidNameError(problem)
    // A grant never allows more than its issuer may upload.
    const callerLimit = Math.min(options.maxUploadBytes, request.maxUploadBytes ?? Infinity)
    const maxBytes = Math.min(request.body.maxBytes ?? callerLimit, callerLimit)
    const expiresAt = Math.floor(Date.now() / 1000) + expiresIn
    const path = fastify.presignUpload({ owner: request.principal as string, name, maxBytes, contentType, expiresAt })
    return await reply.code(201).send({
      method: 'PUT',
      url: `${request.protocol}://${request.host}${path}`,
      path,
      name,
      maxBytes,
      contentType,
      expiresAt: new Date(expiresAt * 1000).toISOString()
    })
  })
}

export default presignRoutes
