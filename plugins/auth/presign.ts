// Presigned upload URLs: a grant signed into a path and query, checked
// from the request line alone.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { isMediaType } from 'upfront/http'
import { AuthInvalidOptionError, InvalidGrantError, PresignedMethodError, PresignedUrlExpiredError, PresignedUrlInvalidError } from '../../errors.js'

/** What a presigned URL allows: one `PUT` of one file, until it expires. */
export interface UploadGrant {
  /** Principal the upload is made for. */
  owner: string
  /** File name, mounted at `<pathPrefix><name>`; may contain `/`. */
  name: string
  /** Largest body accepted, in bytes. */
  maxBytes: number
  /** The only media type (`type/subtype`, lower case) the body may have; leave it out to allow any. */
  contentType?: string | null
  /** Unix time, in seconds, from which the URL is refused. */
  expiresAt: number
  /** Only `PUT`. */
  method?: 'PUT'
}

/** A grant whose signature a request carried and which was admitted. */
export interface PresignedUpload {
  readonly owner: string
  readonly name: string
  readonly maxBytes: number
  readonly contentType: string | null
  readonly expiresAt: number
  readonly method: 'PUT'
}

export interface SignUploadOptions {
  /** Path under which a grant's name is mounted; begins and ends with `/`. Default `/files/`. */
  pathPrefix?: string
}

export const DEFAULT_PATH_PREFIX = '/files/'
// RFC 7518 §3.2: an HMAC key at least as long as the hash output.
export const MIN_SECRET_BYTES = 32

/** Query parameters of a presigned URL, beside its path. */
export const PRESIGN_PARAMS = {
  owner: 'upfront-owner',
  maxBytes: 'upfront-max-bytes',
  contentType: 'upfront-content-type',
  expires: 'upfront-expires',
  signature: 'upfront-signature'
} as const
const PRESIGN_VERSION = 'upfront-presign-v1'
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/
const POSITIVE_INTEGER = /^[1-9][0-9]*$/

export function checkSecret (name: string, value: unknown): string | Buffer {
  if ((typeof value !== 'string' && !Buffer.isBuffer(value)) || Buffer.byteLength(value) < MIN_SECRET_BYTES) {
    throw new AuthInvalidOptionError(name, `expected a string or Buffer of at least ${MIN_SECRET_BYTES} bytes`)
  }
  return value
}

export function checkPathPrefix (name: string, value: unknown): string {
  if (value === undefined) return DEFAULT_PATH_PREFIX
  if (typeof value !== 'string' || !value.startsWith('/') || !value.endsWith('/')) {
    throw new AuthInvalidOptionError(name, `expected a path that begins and ends with "/", such as "${DEFAULT_PATH_PREFIX}"`)
  }
  return value
}

function canonicalGrant (method: string, path: string, owner: string, name: string, maxBytes: number, contentType: string | null, expiresAt: number): string {
  // A JSON array keeps field boundaries unambiguous whatever the values hold.
  return JSON.stringify([PRESIGN_VERSION, method, path, owner, name, maxBytes, contentType ?? '', expiresAt])
}

function signatureOf (canonical: string, secret: string | Buffer): Buffer {
  return createHmac('sha256', secret).update(canonical).digest()
}

/**
 * Signs a grant into the path and query of its presigned URL
 * (`/files/<name>?upfront-owner=…&upfront-signature=…`), to put after the
 * service's origin. The HMAC-SHA256 covers method, exact path, owner, name,
 * maxBytes, contentType and expiry. Throws `InvalidGrantError` for a grant
 * that cannot be signed.
 */
export function signUpload (grant: UploadGrant, secret: string | Buffer, options: SignUploadOptions = {}): string {
  const key = checkSecret('secret', secret)
  const pathPrefix = checkPathPrefix('pathPrefix', options.pathPrefix)
  const { owner, name, maxBytes, contentType = null, expiresAt, method = 'PUT' } = grant
  if (typeof owner !== 'string' || owner === '') throw new InvalidGrantError('owner must be a non-empty string')
  if (typeof name !== 'string' || name === '') throw new InvalidGrantError('name must be a non-empty string')
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new InvalidGrantError('maxBytes must be a positive whole number')
  if (contentType !== null && (typeof contentType !== 'string' || !isMediaType(contentType) || contentType !== contentType.toLowerCase())) {
    throw new InvalidGrantError('contentType must be a lower-case media type without parameters, such as "image/png"')
  }
  // Beyond 1e11 seconds (the year 5138) it is surely milliseconds, a URL that would never expire.
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 1 || expiresAt >= 1e11) {
    throw new InvalidGrantError('expiresAt must be a Unix time in seconds')
  }
  if (method !== 'PUT') throw new InvalidGrantError('method must be "PUT"')

  const path = pathPrefix + name.split('/').map(encodeURIComponent).join('/')
  const query = new URLSearchParams({ [PRESIGN_PARAMS.owner]: owner, [PRESIGN_PARAMS.maxBytes]: String(maxBytes) })
  if (contentType !== null) query.set(PRESIGN_PARAMS.contentType, contentType)
  query.set(PRESIGN_PARAMS.expires, String(expiresAt))
  const signature = signatureOf(canonicalGrant(method, path, owner, name, maxBytes, contentType, expiresAt), key)
  query.set(PRESIGN_PARAMS.signature, signature.toString('base64url'))
  return `${path}?${query.toString()}`
}

/** The single value of a presigned URL's parameter: a repeated one could mean one thing here and another to a route. */
function paramOf (params: URLSearchParams, name: string, required: boolean): string | null {
  const values = params.getAll(name)
  if (values.length > 1) throw new PresignedUrlInvalidError(`parameter ${name} is repeated`)
  const value = values[0]
  if (value === undefined && required) throw new PresignedUrlInvalidError(`parameter ${name} is missing`)
  if (value === '') throw new PresignedUrlInvalidError(`parameter ${name} is empty`)
  return value ?? null
}

function wholeNumberParam (params: URLSearchParams, name: string): number {
  const text = paramOf(params, name, true) as string
  const value = Number(text)
  if (!POSITIVE_INTEGER.test(text) || !Number.isSafeInteger(value)) throw new PresignedUrlInvalidError(`parameter ${name} is not a positive whole number`)
  return value
}

/** True when a request URL carries a presigned URL's signature parameter. */
export function hasSignature (url: string): boolean {
  const queryStart = url.indexOf('?')
  return queryStart !== -1 && new URLSearchParams(url.slice(queryStart + 1)).has(PRESIGN_PARAMS.signature)
}

/**
 * Checks a presigned request (`method` and raw `url`, path and query as
 * received) against `secret` and returns its grant. Throws a 403 error
 * (`UPFRONT_FORBIDDEN`) when it is malformed, altered, used for another
 * path or method, or expired.
 */
export function verifyUpload (
  request: { method: string, url: string },
  secret: string | Buffer,
  options: SignUploadOptions = {}
): PresignedUpload {
  const key = checkSecret('secret', secret)
  const pathPrefix = checkPathPrefix('pathPrefix', options.pathPrefix)
  const { method, url } = request
  const queryStart = url.indexOf('?')
  const path = queryStart === -1 ? url : url.slice(0, queryStart)
  const params = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1))
  const owner = paramOf(params, PRESIGN_PARAMS.owner, true) as string
  const maxBytes = wholeNumberParam(params, PRESIGN_PARAMS.maxBytes)
  const contentType = paramOf(params, PRESIGN_PARAMS.contentType, false)
  const expiresAt = wholeNumberParam(params, PRESIGN_PARAMS.expires)
  const signature = paramOf(params, PRESIGN_PARAMS.signature, true) as string
  if (!SIGNATURE.test(signature)) throw new PresignedUrlInvalidError(`parameter ${PRESIGN_PARAMS.signature} is not a signature`)
  if (method !== 'PUT') throw new PresignedMethodError(method)

  const mismatch = 'its signature does not match (it was issued for another path or other parameters, or it was altered)'
  if (!path.startsWith(pathPrefix)) throw new PresignedUrlInvalidError(mismatch)
  let name: string
  try {
    name = decodeURIComponent(path.slice(pathPrefix.length))
  } catch {
    throw new PresignedUrlInvalidError(mismatch)
  }
  const expected = signatureOf(canonicalGrant(method, path, owner, name, maxBytes, contentType, expiresAt), key)
  // Compared as text: base64url leaves spare bits in the last character, so
  // decoding would let several spellings of one signature through.
  if (!timingSafeEqual(Buffer.from(expected.toString('base64url')), Buffer.from(signature))) {
    throw new PresignedUrlInvalidError(mismatch)
  }
  // Checked after the signature, so that only a genuine URL is told it expired.
  if (Date.now() / 1000 >= expiresAt) throw new PresignedUrlExpiredError(new Date(expiresAt * 1000).toISOString())
  return { owner, name, maxBytes, contentType, expiresAt, method }
}
