import { createHmac, createPublicKey, randomBytes, timingSafeEqual } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  RouteOptions
} from 'fastify'
import { createDecoder, createVerifier, TOKEN_ERROR_CODES } from 'fast-jwt'
import type { Algorithm } from 'fast-jwt'
import fp from 'fastify-plugin'
import { mediaTypeOf } from './upfront/media-type.js'
import {
  AuthInvalidOptionError,
  CallerBodyTooLargeError,
  GrantMediaTypeError,
  InvalidGrantError,
  InvalidTokenError,
  MissingCredentialsError,
  PresignedMethodError,
  PresignedUrlExpiredError,
  PresignedUrlInvalidError,
  PresignNotConfiguredError,
  UnsupportedSchemeError
} from './auth-errors.js'

export * from './auth-errors.js'

export interface JwtOptions {
  /** Shared secret of HS256 (and HS384, HS512) tokens: at least 32 bytes (RFC 7518 §3.2). */
  secret?: string | Buffer
  /**
   * PEM public key (or certificate) of RS*, PS* (RSA keys), ES256/384/512
   * (P-256/384/521 keys) or EdDSA (Ed25519/Ed448 keys) tokens.
   */
  publicKey?: string | Buffer
  /** Name of the optional claim that lowers the caller's largest upload, in bytes. Default `max_bytes`. */
  maxBytesClaim?: string
}

export interface PresignOptions {
  /** HMAC-SHA256 key of presigned URLs: at least 32 bytes. */
  secret: string | Buffer
  /** Path under which a grant's name is mounted; begins and ends with `/`. Default `/files/`. */
  pathPrefix?: string
}

export interface AuthOptions {
  /** Static bearer tokens by principal: `{ alice: '<token>' }`. */
  tokens?: Readonly<Record<string, string>>
  /** JWT bearer tokens; their `sub` is the principal. */
  jwt?: JwtOptions
  /** Presigned upload URLs, made with `signUpload`. */
  presign?: PresignOptions
}

/** What a presigned URL allows: one `PUT` of one file, until it expires. */
export interface UploadGrant {
  /** Principal the upload is made for. */
  owner: string
  /** File name, mounted at `<pathPrefix><name>`; may contain `/`. */
  name: string
  /** Largest body accepted, in bytes. */
  maxBytes: number
  /** The only media type (`type/subtype`) the body may have; leave it out to allow any. */
  contentType?: string | null
  /** Unix time, in seconds, from which the URL is refused. */
  expiresAt: number
  /** Only `PUT`. */
  method?: 'PUT'
}

/** A grant whose signature the request carried and which the hook admitted. */
export interface PresignedUpload {
  readonly owner: string
  readonly name: string
  readonly maxBytes: number
  readonly contentType: string | null
  readonly expiresAt: number
  readonly method: 'PUT'
}

export interface SignUploadOptions {
  /** As the plugin's `presign.pathPrefix`. Default `/files/`. */
  pathPrefix?: string
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false` lets requests to this route through without credentials. */
    auth?: boolean
  }
  interface FastifyRequest {
    /** Who made the request: a token's principal, a JWT's `sub` or a presigned grant's owner; null on routes with `config.auth: false`. */
    principal: string | null
    /** This caller's largest upload, from the JWT's max-bytes claim or the presigned grant; null when only the route's limit applies. */
    maxUploadBytes: number | null
    /** The verified grant of a presigned request, else null. */
    presigned: PresignedUpload | null
  }
  interface FastifyInstance {
    /** `signUpload` with the plugin's presign secret and path prefix. */
    presignUpload: (grant: UploadGrant) => string
  }
}

const DEFAULT_MAX_BYTES_CLAIM = 'max_bytes'
const DEFAULT_PATH_PREFIX = '/files/'
// RFC 7518 §3.2: an HMAC key at least as long as the hash output.
const MIN_SECRET_BYTES = 32
const MIN_STATIC_TOKEN_LENGTH = 16

// RFC 6750 §2.1: the characters a bearer token can have.
const B64TOKEN = /^[A-Za-z0-9._~+/-]+=*$/
const MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+$/
const PEM_HEADER = /-----BEGIN [A-Z0-9 ]+-----/
const PRIVATE_PEM_HEADER = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/

const HS_ALGORITHMS: Algorithm[] = ['HS256', 'HS384', 'HS512']
const RSA_ALGORITHMS: Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
const EC_ALGORITHMS: Readonly<Record<string, Algorithm>> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }

/** Query parameters of a presigned URL, beside its path. */
const PARAM = {
  owner: 'upfront-owner',
  maxBytes: 'upfront-max-bytes',
  contentType: 'upfront-content-type',
  expires: 'upfront-expires',
  signature: 'upfront-signature'
} as const
const PRESIGN_VERSION = 'upfront-presign-v1'
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/
const POSITIVE_INTEGER = /^[1-9][0-9]*$/

type Payload = Record<string, unknown>
type Verify = (token: string) => Payload

interface BearerIdentity {
  principal: string
  maxBytes: number | null
}

function isStringOrBuffer (value: unknown): value is string | Buffer {
  return typeof value === 'string' || Buffer.isBuffer(value)
}

function checkSecret (name: string, value: unknown): string | Buffer {
  if (!isStringOrBuffer(value) || Buffer.byteLength(value) < MIN_SECRET_BYTES) {
    throw new AuthInvalidOptionError(name, `expected a string or Buffer of at least ${MIN_SECRET_BYTES} bytes`)
  }
  return value
}

function checkPathPrefix (name: string, value: unknown): string {
  if (value === undefined) return DEFAULT_PATH_PREFIX
  if (typeof value !== 'string' || !value.startsWith('/') || !value.endsWith('/')) {
    throw new AuthInvalidOptionError(name, `expected a path that begins and ends with "/", such as "${DEFAULT_PATH_PREFIX}"`)
  }
  return value
}

/**
 * The JWT algorithms a PEM public key or certificate verifies, or why it
 * cannot be used.
 */
export function publicKeyAlgorithms (pem: string | Buffer): Algorithm[] | string {
  const text = pem.toString()
  // Without a PEM header fast-jwt would take the text for an HMAC secret:
  // a public key, known to all, must never become a shared secret.
  if (!PEM_HEADER.test(text)) return 'expected a PEM public key or certificate ("-----BEGIN PUBLIC KEY-----")'
  if (PRIVATE_PEM_HEADER.test(text)) return 'this is a private key; give the service only the public key'
  let key: KeyObject
  try {
    key = createPublicKey(text)
  } catch (error) {
    return `not a readable PEM public key (${(error as Error).message})`
  }
  const type = key.asymmetricKeyType
  if (type === 'rsa') return RSA_ALGORITHMS
  if (type === 'ed25519' || type === 'ed448') return ['EdDSA']
  const curveAlgorithm = EC_ALGORITHMS[String(key.asymmetricKeyDetails?.namedCurve)]
  if (type === 'ec' && curveAlgorithm !== undefined) return [curveAlgorithm]
  return `${String(type)} keys${type === 'ec' ? ' on this curve' : ''} are not supported; use an RSA, EC (P-256, P-384, P-521), Ed25519 or Ed448 key`
}

/** One HMAC per configured token, compared to the presented token's in constant time. */
function compileStaticTokens (tokens: unknown): (token: string) => string | null {
  if (tokens === undefined) return () => null
  if (typeof tokens !== 'object' || tokens === null || Array.isArray(tokens)) {
    throw new AuthInvalidOptionError('tokens', 'expected an object of principal: token')
  }
  // Hashing both sides to a fixed length first means no comparison ever
  // depends on a token's length or its first differing byte.
  const key = randomBytes(32)
  const digestOf = (token: string): Buffer => createHmac('sha256', key).update(token).digest()
  const entries: Array<{ principal: string, digest: Buffer }> = []
  const seen = new Set<string>()
  for (const [principal, token] of Object.entries(tokens)) {
    if (principal === '') throw new AuthInvalidOptionError('tokens', 'a principal is empty')
    if (typeof token !== 'string' || token.length < MIN_STATIC_TOKEN_LENGTH || !B64TOKEN.test(token)) {
      throw new AuthInvalidOptionError(`tokens.${principal}`,
        `expected at least ${MIN_STATIC_TOKEN_LENGTH} characters of A-Z a-z 0-9 - . _ ~ + / (RFC 6750 bearer token syntax)`)
    }
    if (seen.has(token)) throw new AuthInvalidOptionError(`tokens.${principal}`, 'another principal has the same token; give each principal its own')
    seen.add(token)
    entries.push({ principal, digest: digestOf(token) })
  }
  if (entries.length === 0) return () => null
  return (token: string): string | null => {
    const presented = digestOf(token)
    let principal: string | null = null
    // Every entry is compared, so the time taken does not tell which one matched.
    for (const entry of entries) {
      if (timingSafeEqual(presented, entry.digest)) principal = entry.principal
    }
    return principal
  }
}

interface JwtSettings {
  verifyFor: (algorithm: unknown) => Verify
  maxBytesClaim: string
}

function compileJwt (jwt: unknown): JwtSettings | null {
  if (jwt === undefined) return null
  if (typeof jwt !== 'object' || jwt === null) throw new AuthInvalidOptionError('jwt', 'expected an object')
  const { secret, publicKey, maxBytesClaim = DEFAULT_MAX_BYTES_CLAIM } = jwt as JwtOptions
  if (secret === undefined && publicKey === undefined) {
    throw new AuthInvalidOptionError('jwt', 'set jwt.secret (HS256) or jwt.publicKey (RS*, PS*, ES*, EdDSA), or leave jwt out')
  }
  if (typeof maxBytesClaim !== 'string' || maxBytesClaim === '') {
    throw new AuthInvalidOptionError('jwt.maxBytesClaim', 'expected the name of a claim')
  }
  // sub names the principal; a token without exp would be valid forever.
  const requiredClaims = ['sub', 'exp']
  let verifySecret: Verify | null = null
  if (secret !== undefined) {
    const key = checkSecret('jwt.secret', secret)
    if (PEM_HEADER.test(key.toString())) {
      throw new AuthInvalidOptionError('jwt.secret', 'this is a PEM key, not a shared secret; give public keys as jwt.publicKey')
    }
    verifySecret = createVerifier({ key, algorithms: HS_ALGORITHMS, requiredClaims })
  }
  let verifyPublic: Verify | null = null
  if (publicKey !== undefined) {
    if (!isStringOrBuffer(publicKey)) throw new AuthInvalidOptionError('jwt.publicKey', 'expected PEM text, as a string or Buffer')
    const algorithms = publicKeyAlgorithms(publicKey)
    if (typeof algorithms === 'string') throw new AuthInvalidOptionError('jwt.publicKey', algorithms)
    verifyPublic = createVerifier({ key: publicKey, algorithms, requiredClaims })
  }
  return {
    maxBytesClaim,
    // Each verifier admits only its own algorithms, so an HS token never
    // meets the public key (and the reverse): the other verifier refuses it.
    verifyFor: (algorithm) => typeof algorithm === 'string' && algorithm.startsWith('HS')
      ? verifySecret ?? verifyPublic as Verify
      : verifyPublic ?? verifySecret as Verify
  }
}

interface PresignSettings {
  secret: string | Buffer
  pathPrefix: string
}

function compilePresign (presign: unknown): PresignSettings | null {
  if (presign === undefined) return null
  if (typeof presign !== 'object' || presign === null) throw new AuthInvalidOptionError('presign', 'expected an object')
  const { secret, pathPrefix } = presign as PresignOptions
  return { secret: checkSecret('presign.secret', secret), pathPrefix: checkPathPrefix('presign.pathPrefix', pathPrefix) }
}

const decodeJwt = createDecoder({ complete: true })

function describeJwtError (error: Error & { code?: string }): string {
  switch (error.code) {
    case TOKEN_ERROR_CODES.expired:
      return 'it has expired; get a new token'
    case TOKEN_ERROR_CODES.inactive:
      return 'it is not valid yet (nbf is in the future); retry later'
    case TOKEN_ERROR_CODES.invalidAlgorithm:
      return 'its algorithm is not accepted here; send a token issued for this service'
    case TOKEN_ERROR_CODES.invalidSignature:
    case TOKEN_ERROR_CODES.missingSignature:
      return 'its signature does not verify; send a token issued for this service'
    default:
      return `${error.message.charAt(0).toLowerCase()}${error.message.slice(1).replace(/\.$/, '')}; send a token issued for this service`
  }
}

// RFC 6750 §3: error_description is a quoted string of printable ASCII without `"` and `\`.
function quotable (text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?')
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
 * maxBytes, contentType and expiry.
 */
export function signUpload (grant: UploadGrant, secret: string | Buffer, options: SignUploadOptions = {}): string {
  const key = checkSecret('secret', secret)
  const pathPrefix = checkPathPrefix('pathPrefix', options.pathPrefix)
  const { owner, name, maxBytes, contentType = null, expiresAt, method = 'PUT' } = grant
  if (typeof owner !== 'string' || owner === '') throw new InvalidGrantError('owner must be a non-empty string')
  if (typeof name !== 'string' || name === '') throw new InvalidGrantError('name must be a non-empty string')
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new InvalidGrantError('maxBytes must be a positive whole number')
  if (contentType !== null && (typeof contentType !== 'string' || !MEDIA_TYPE.test(contentType))) {
    throw new InvalidGrantError('contentType must be a lower-case media type without parameters, such as "image/png"')
  }
  // Beyond 1e11 seconds (the year 5138) it is surely milliseconds, a URL that would never expire.
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 1 || expiresAt >= 1e11) {
    throw new InvalidGrantError('expiresAt must be a Unix time in seconds')
  }
  if (method !== 'PUT') throw new InvalidGrantError('method must be "PUT"')

  const path = pathPrefix + name.split('/').map(encodeURIComponent).join('/')
  const query = new URLSearchParams({ [PARAM.owner]: owner, [PARAM.maxBytes]: String(maxBytes) })
  if (contentType !== null) query.set(PARAM.contentType, contentType)
  query.set(PARAM.expires, String(expiresAt))
  const signature = signatureOf(canonicalGrant(method, path, owner, name, maxBytes, contentType, expiresAt), key)
  query.set(PARAM.signature, signature.toString('base64url'))
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

/**
 * Checks a presigned request (`method` and raw `url`, path and query as
 * received) against `secret` and returns its grant; throws a 403 error when
 * it is malformed, altered, used for another path or method, or expired.
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
  const owner = paramOf(params, PARAM.owner, true) as string
  const maxBytes = wholeNumberParam(params, PARAM.maxBytes)
  const contentType = paramOf(params, PARAM.contentType, false)
  const expiresAt = wholeNumberParam(params, PARAM.expires)
  const signature = paramOf(params, PARAM.signature, true) as string
  if (!SIGNATURE.test(signature)) throw new PresignedUrlInvalidError(`parameter ${PARAM.signature} is not a signature`)
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

function declaredLength (request: FastifyRequest): number {
  const header = request.headers['content-length']
  return header === undefined ? -1 : Number(header)
}

function refuseUnauthenticated (reply: FastifyReply, done: HookHandlerDoneFunction, error: Error, description: string | null): void {
  reply.header('www-authenticate', description === null
    ? 'Bearer'
    : `Bearer error="invalid_token", error_description="${quotable(description)}"`)
  done(error)
}

const authPlugin: FastifyPluginAsync<AuthOptions> = async (fastify: FastifyInstance, opts: AuthOptions) => {
  const principalOfToken = compileStaticTokens(opts.tokens)
  const jwt = compileJwt(opts.jwt)
  const presign = compilePresign(opts.presign)
  const hasTokens = opts.tokens !== undefined && Object.keys(opts.tokens).length > 0
  if (!hasTokens && jwt === null && presign === null) {
    throw new AuthInvalidOptionError('tokens', 'no credentials would be accepted; set tokens, jwt or presign')
  }

  fastify.decorateRequest('principal', null)
  fastify.decorateRequest('maxUploadBytes', null)
  fastify.decorateRequest('presigned', null)
  fastify.decorate('presignUpload', (grant: UploadGrant): string => {
    if (presign === null) throw new PresignNotConfiguredError()
    return signUpload(grant, presign.secret, { pathPrefix: presign.pathPrefix })
  })

  fastify.addHook('onRoute', (route: RouteOptions) => {
    const auth = route.config?.auth
    if (auth !== undefined && typeof auth !== 'boolean') {
      throw new AuthInvalidOptionError(`config.auth of route ${String(route.method)} ${route.url}`, 'expected true or false')
    }
  })

  /** The caller a bearer token names, or why the token is refused. */
  function bearerIdentity (token: string): BearerIdentity | string {
    const principal = principalOfToken(token)
    if (principal !== null) return { principal, maxBytes: null }
    if (jwt === null) return 'it is not a known API token; send a valid token'
    let algorithm: unknown
    try {
      algorithm = (decodeJwt(token) as { header: Payload }).header.alg
    } catch {
      return 'it is neither a known API token nor a well-formed JWT; send the token exactly as it was issued'
    }
    let payload: Payload
    try {
      payload = jwt.verifyFor(algorithm)(token)
    } catch (error) {
      return describeJwtError(error as Error)
    }
    const { sub } = payload
    if (typeof sub !== 'string' || sub === '') return 'its sub claim must name the principal as a non-empty string'
    const claimed = payload[jwt.maxBytesClaim]
    if (claimed === undefined) return { principal: sub, maxBytes: null }
    if (!Number.isSafeInteger(claimed) || (claimed as number) < 1) {
      return `its ${jwt.maxBytesClaim} claim must be a positive whole number of bytes`
    }
    return { principal: sub, maxBytes: claimed as number }
  }

  function admitPresigned (request: FastifyRequest, done: HookHandlerDoneFunction, settings: PresignSettings): void {
    let grant: PresignedUpload
    try {
      grant = verifyUpload(request, settings.secret, { pathPrefix: settings.pathPrefix })
    } catch (error) {
      done(error as Error)
      return
    }
    request.principal = grant.owner
    request.maxUploadBytes = grant.maxBytes
    request.presigned = grant
    const declared = declaredLength(request)
    if (declared > grant.maxBytes) {
      done(new CallerBodyTooLargeError(declared, grant.maxBytes, 'this presigned URL allows'))
      return
    }
    const contentType = request.headers['content-type']
    if (grant.contentType !== null && (contentType === undefined || mediaTypeOf(contentType) !== grant.contentType)) {
      done(new GrantMediaTypeError(contentType === undefined ? '(none)' : JSON.stringify(contentType), grant.contentType))
      return
    }
    done()
  }

  fastify.addHook('onRequest', function authenticate (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (request.routeOptions.config.auth === false) {
      done()
      return
    }
    const authorization = request.headers.authorization
    if (authorization === undefined) {
      const queryStart = request.url.indexOf('?')
      if (presign !== null && queryStart !== -1 && new URLSearchParams(request.url.slice(queryStart + 1)).has(PARAM.signature)) {
        admitPresigned(request, done, presign)
        return
      }
      refuseUnauthenticated(reply, done, new MissingCredentialsError(), null)
      return
    }
    const space = authorization.indexOf(' ')
    const scheme = space === -1 ? authorization : authorization.slice(0, space)
    const token = space === -1 ? '' : authorization.slice(space + 1).trim()
    if (scheme.toLowerCase() !== 'bearer') {
      refuseUnauthenticated(reply, done, new UnsupportedSchemeError(), null)
      return
    }
    if (token === '') {
      refuseUnauthenticated(reply, done, new MissingCredentialsError(), null)
      return
    }
    if (!B64TOKEN.test(token)) {
      const description = 'it is malformed; send the token exactly as it was issued'
      refuseUnauthenticated(reply, done, new InvalidTokenError(description), description)
      return
    }
    const identity = bearerIdentity(token)
    if (typeof identity === 'string') {
      refuseUnauthenticated(reply, done, new InvalidTokenError(identity), identity)
      return
    }
    request.principal = identity.principal
    request.maxUploadBytes = identity.maxBytes
    const declared = declaredLength(request)
    if (identity.maxBytes !== null && declared > identity.maxBytes) {
      done(new CallerBodyTooLargeError(declared, identity.maxBytes, 'your token allows'))
      return
    }
    done()
  })
}

/** Bearer tokens (static or JWT) and presigned URLs, checked in onRequest, before any body byte. */
export const auth = fp(authPlugin, { name: 'upfront-auth', fastify: '5.x' })
export default auth
