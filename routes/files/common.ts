// What the routes under /files share: reading a request's name, owner and
// conditional headers, and the shape of a file in answers.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { contentLength, contentMd5, digestFields, entityTags, httpDate } from 'upfront/http'
import { InvalidHeaderError, NotEnoughSpaceError } from '../../errors.js'
import { checkName } from '../../plugins/storage/index.js'
import type { Preconditions, StoredFile } from '../../plugins/storage/index.js'

export interface FilesRoutesOptions {
  /** Largest file, in bytes (a caller's own limit can only lower it). */
  maxUploadBytes: number
  /** Absolute URL the service is reached at from outside, without a trailing slash; null to answer with paths. */
  publicUrl: string | null
}

/** A file as answers show it (its owner is the caller, and is left out). */
export const fileSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    size: { type: 'integer' },
    sha256: { type: 'string' },
    contentType: { type: 'string' },
    etag: { type: 'string' },
    createdAt: { type: 'string' }
  }
} as const

/** The file name of a `/files/<name>` request, checked. */
export function nameOf (request: FastifyRequest): string {
  return checkName((request.params as { '*': string })['*'])
}

/** Routes behind the auth plugin always have a principal. */
export function ownerOf (request: FastifyRequest): string {
  return request.principal as string
}

/** A request header; Node joins repeated ones (only Set-Cookie stays a list, and requests carry none). */
export function header (request: FastifyRequest, name: string): string | undefined {
  return request.headers[name] as string | undefined
}

/** The URL path of a file: the routes' prefix and each segment percent-encoded. */
export function filePath (fastify: FastifyInstance, name: string): string {
  return `${fastify.prefix}/${name.split('/').map(encodeURIComponent).join('/')}`
}

function tagsOf (request: FastifyRequest, name: 'if-match' | 'if-none-match', field: string): string[] | undefined {
  const value = header(request, name)
  if (value === undefined) return undefined
  const tags = entityTags(value)
  if (tags === null) throw new InvalidHeaderError(`${field} must be * or a list of quoted entity tags, such as "abc", W/"abc"`)
  return tags
}

/**
 * The request's preconditions (RFC 9110 §13.1). A malformed entity-tag
 * list is refused (`InvalidHeaderError`); a date that is not an HTTP-date
 * is ignored, as §13.1.3 and §13.1.4 ask.
 */
export function preconditionsOf (request: FastifyRequest): Preconditions {
  const preconditions: Preconditions = {}
  const ifMatch = tagsOf(request, 'if-match', 'If-Match')
  if (ifMatch !== undefined) preconditions.ifMatch = ifMatch
  const ifNoneMatch = tagsOf(request, 'if-none-match', 'If-None-Match')
  if (ifNoneMatch !== undefined) preconditions.ifNoneMatch = ifNoneMatch
  const unmodifiedSince = header(request, 'if-unmodified-since')
  const ifUnmodifiedSince = unmodifiedSince === undefined ? null : httpDate(unmodifiedSince)
  if (ifUnmodifiedSince !== null) preconditions.ifUnmodifiedSince = ifUnmodifiedSince
  const modifiedSince = header(request, 'if-modified-since')
  const ifModifiedSince = modifiedSince === undefined ? null : httpDate(modifiedSince)
  if (ifModifiedSince !== null) preconditions.ifModifiedSince = ifModifiedSince
  return preconditions
}

/** True when the request has a precondition a write must check. */
export function hasWritePreconditions (preconditions: Preconditions): boolean {
  return preconditions.ifMatch !== undefined || preconditions.ifNoneMatch !== undefined || preconditions.ifUnmodifiedSince !== undefined
}

/** Digests a client sent with its upload, each null when not sent. */
export interface ExpectedDigests {
  /** From `Content-Digest: sha-256=:…:` (RFC 9530); other algorithms are ignored, as §2 allows. */
  sha256: Buffer | null
  /** From `Content-MD5` (RFC 1864). */
  md5: Buffer | null
}

/** The digests to check the body against; `InvalidHeaderError` when a digest header cannot be read. */
export function expectedDigests (request: FastifyRequest): ExpectedDigests {
  let sha256: Buffer | null = null
  const digest = header(request, 'content-digest')
  if (digest !== undefined) {
    const fields = digestFields(digest)
    if (fields === null) throw new InvalidHeaderError('Content-Digest must be a list of algorithm=:base64: members, such as sha-256=:<base64 of the SHA-256>:')
    sha256 = fields.get('sha-256') ?? null
    if (sha256 !== null && sha256.length !== 32) throw new InvalidHeaderError('the sha-256 member of Content-Digest must be the base64 of a 32-byte SHA-256')
  }
  let md5: Buffer | null = null
  const md5Header = header(request, 'content-md5')
  if (md5Header !== undefined) {
    md5 = contentMd5(md5Header)
    if (md5 === null) throw new InvalidHeaderError('Content-MD5 must be the base64 of a 16-byte MD5')
  }
  return { sha256, md5 }
}

/** Refuses, before the body, an upload that cannot fit in the free space left (`NotEnoughSpaceError`, 507). */
export async function checkFreeSpace (fastify: FastifyInstance, request: FastifyRequest): Promise<void> {
  const declared = contentLength(request.headers)
  if (declared === null) return
  const free = await fastify.storage.freeBytes()
  if (free !== null && declared > free) throw new NotEnoughSpaceError(declared, free)
}

/**
 * The audit line of a stored or deleted file: who, which file, its size
 * and SHA-256, and the status answered. Nothing secret: the principal is a
 * name, never its credential.
 */
export function audit (request: FastifyRequest, action: 'stored' | 'deleted', file: StoredFile, status: number): void {
  request.log.info({ audit: { action, principal: file.owner, name: file.name, bytes: file.size, sha256: file.sha256, status } }, `file ${action}`)
}
