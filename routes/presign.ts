// POST /presign: a URL that anyone holding it can PUT one upload to.
import type { FastifyPluginAsync } from 'fastify'
import { isMediaType } from 'upfront/http'
import { InvalidBodyError } from '../errors.js'
import { checkName } from '../plugins/storage/index.js'

export interface PresignRoutesOptions {
  /** Largest upload, in bytes: a grant can allow less, never more. */
  maxUploadBytes: number
  /** Absolute URL the service is reached at from outside, without a trailing slash; null to use the request's own origin. */
  publicUrl: string | null
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
    // JSON only, refused before the body otherwise (Fastify would read text/plain, then fail validation).
    config: { upfront: { contentTypes: ['application/json'] } },
    schema: {
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          maxBytes: { type: 'integer', minimum: 1 },
          contentType: { type: 'string' },
          expiresIn: { type: 'integer', minimum: 1, maximum: MAX_EXPIRES_IN }
        }
      }
    }
  }, async function presign (request, reply) {
    const { name, expiresIn = DEFAULT_EXPIRES_IN } = request.body
    checkName(name)
    // RFC 9110 §8.3.1: media types are case-insensitive; grants hold them in lower case.
    const type = request.body.contentType
    if (type !== undefined && !isMediaType(type)) {
      throw new InvalidBodyError(`contentType ${JSON.stringify(type)} is not a media type; send type/subtype without parameters, such as "application/pdf"`)
    }
    const contentType = type?.toLowerCase() ?? null
    // A grant never allows more than its issuer may upload.
    const callerLimit = Math.min(options.maxUploadBytes, request.callerMaxBytes ?? Infinity)
    const maxBytes = Math.min(request.body.maxBytes ?? callerLimit, callerLimit)
    const expiresAt = Math.floor(Date.now() / 1000) + expiresIn
    const path = fastify.presignUpload({ owner: request.principal as string, name, maxBytes, contentType, expiresAt })
    return await reply.code(201).send({
      method: 'PUT',
      url: `${options.publicUrl ?? `${request.protocol}://${request.host}`}${path}`,
      path,
      name,
      maxBytes,
      contentType,
      expiresAt: new Date(expiresAt * 1000).toISOString()
    })
  })
}

export default presignRoutes
