// JWT bearer tokens: verified with a shared secret, a public key, or the
// keys of a JWKS URL; audience and issuer pinned when configured.
import { createPublicKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { createDecoder, createVerifier, TOKEN_ERROR_CODES, TokenError } from 'fast-jwt'
import type { Algorithm } from 'fast-jwt'
import buildGetJwks from 'get-jwks'
import { AuthInvalidOptionError, InvalidTokenError, KeysUnavailableError, UnusableKeyError } from '../../errors.js'
import { checkSecret } from './presign.js'

export interface JwtOptions {
  /** Shared secret of HS256 (and HS384, HS512) tokens: at least 32 bytes (RFC 7518 §3.2). */
  secret?: string | Buffer
  /**
   * PEM public key (or certificate) of RS*, PS* (RSA keys), ES256/384/512
   * (P-256/384/521 keys) or EdDSA (Ed25519/Ed448 keys) tokens.
   */
  publicKey?: string | Buffer
  /**
   * URL of a JSON Web Key Set (RFC 7517): tokens name their key with `kid`.
   * Keys are cached for `jwksCacheMs`; a `kid` not in the cache makes the
   * set be fetched again (key rotation), at most once per
   * `jwksRefetchIntervalMs`, so that tokens with made-up key ids cannot make
   * the service hammer the identity provider.
   */
  jwksUrl?: string
  /** How long a fetched key is used before it is fetched again, in ms. Default 600000 (10 min). */
  jwksCacheMs?: number
  /** Least time between two fetches for unknown key ids, in ms. Default 1000. */
  jwksRefetchIntervalMs?: number
  /** Accepted `aud` values: a token must name one of them. Default: any (not checked). */
  audience?: string | readonly string[]
  /** Accepted `iss` values: a token must come from one of them. Default: any (not checked). */
  issuer?: string | readonly string[]
  /** Name of the optional claim that lowers the caller's body limit, in bytes. Default `max_bytes`. */
  maxBytesClaim?: string
}

/** Who a verified token names, and its own body limit (null: none). */
export interface TokenIdentity {
  principal: string
  maxBytes: number | null
}

/** Verifies a JWT: the identity, or a thrown `InvalidTokenError` (401) / `KeysUnavailableError` (503). */
export type VerifyJwt = (token: string) => TokenIdentity | Promise<TokenIdentity>

const DEFAULT_MAX_BYTES_CLAIM = 'max_bytes'
const DEFAULT_JWKS_CACHE_MS = 600_000
const DEFAULT_JWKS_REFETCH_INTERVAL_MS = 1000
const PEM_HEADER = /-----BEGIN [A-Z0-9 ]+-----/
const PRIVATE_PEM_HEADER = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/
const HS_ALGORITHMS: Algorithm[] = ['HS256', 'HS384', 'HS512']
const RSA_ALGORITHMS: Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
const EC_ALGORITHMS: Readonly<Record<string, Algorithm>> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }
const PUBLIC_KEY_ALGORITHMS: Algorithm[] = [...RSA_ALGORITHMS, 'ES256', 'ES384', 'ES512', 'EdDSA']

/**
 * The JWT algorithms a PEM public key or certificate verifies. Throws
 * `UnusableKeyError` saying why a key cannot be used.
 */
export function publicKeyAlgorithms (pem: string | Buffer): Algorithm[] {
  const text = pem.toString()
  // Without a PEM header fast-jwt would take the text for an HMAC secret:
  // a public key, known to all, must never become a shared secret.
  if (!PEM_HEADER.test(text)) throw new UnusableKeyError('expected a PEM public key or certificate ("-----BEGIN PUBLIC KEY-----")')
  if (PRIVATE_PEM_HEADER.test(text)) throw new UnusableKeyError('this is a private key; give the service only the public key')
  let key: KeyObject
  try {
    key = createPublicKey(text)
  } catch (error) {
    throw new UnusableKeyError(`not a readable PEM public key (${(error as Error).message})`)
  }
  const type = key.asymmetricKeyType
  if (type === 'rsa') return RSA_ALGORITHMS
  if (type === 'ed25519' || type === 'ed448') return ['EdDSA']
  const curveAlgorithm = EC_ALGORITHMS[String(key.asymmetricKeyDetails?.namedCurve)]
  if (type === 'ec' && curveAlgorithm !== undefined) return [curveAlgorithm]
  throw new UnusableKeyError(`${String(type)} keys${type === 'ec' ? ' on this curve' : ''} are not supported; use an RSA, EC (P-256, P-384, P-521), Ed25519 or Ed448 key`)
}

function checkValues (name: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined
  const values = typeof value === 'string' ? [value] : value
  if (!Array.isArray(values) || values.length === 0 || values.some((entry) => typeof entry !== 'string' || entry === '')) {
    throw new AuthInvalidOptionError(name, 'expected a non-empty string or a non-empty array of them')
  }
  return values as string[]
}

function checkMs (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new AuthInvalidOptionError(name, 'expected a positive whole number of milliseconds')
  return value as number
}

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

/** A JWKS: keys fetched by `kid` with get-jwks, refetched for unknown ids at most once per interval. */
function jwksKeys (url: string, cacheMs: number, refetchIntervalMs: number): (header: { kid?: unknown, alg?: unknown }) => Promise<string> {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new AuthInvalidOptionError('jwt.jwksUrl', 'expected an absolute http: or https: URL')
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new AuthInvalidOptionError('jwt.jwksUrl', 'expected an absolute http: or https: URL')
  const domain = `${parsed.origin}/`
  const jwks = buildGetJwks({ ttl: cacheMs, jwksPath: parsed.pathname + parsed.search })
  let lastRefetch = -Infinity
  return async ({ kid, alg }) => {
    if (typeof kid !== 'string' || kid === '') throw new InvalidTokenError('it names no key (kid) of the key set; send a token issued for this service')
    const cacheKey = jwks.generateCacheKey(String(alg), kid, domain)
    if (jwks.cache.get(cacheKey) === undefined && jwks.staleCache.get(cacheKey) === undefined) {
      const now = performance.now()
      if (now - lastRefetch < refetchIntervalMs) {
        throw new InvalidTokenError('its key (kid) is not in the key set; if the key is new, retry in a second')
      }
      lastRefetch = now
    }
    try {
      return await jwks.getPublicKey({ domain, kid, alg: String(alg) })
    } catch (error) {
      if ((error as { code?: string }).code === 'JWK_NOT_FOUND') throw new InvalidTokenError('its key (kid) is not in the key set; send a token issued for this service')
      throw new KeysUnavailableError({ cause: error })
    }
  }
}

/** What the configured keys verify, or null when no JWT is configured. Throws `AuthInvalidOptionError` for bad options. */
export function compileJwt (jwt: unknown): VerifyJwt | null {
  if (jwt === undefined) return null
  if (typeof jwt !== 'object' || jwt === null) throw new AuthInvalidOptionError('jwt', 'expected an object')
  const options = jwt as JwtOptions
  const { secret, publicKey, jwksUrl, maxBytesClaim = DEFAULT_MAX_BYTES_CLAIM } = options
  if (secret === undefined && publicKey === undefined && jwksUrl === undefined) {
    throw new AuthInvalidOptionError('jwt', 'set jwt.secret (HS256), jwt.publicKey (RS*, PS*, ES*, EdDSA) or jwt.jwksUrl, or leave jwt out')
  }
  if (typeof maxBytesClaim !== 'string' || maxBytesClaim === '') {
    throw new AuthInvalidOptionError('jwt.maxBytesClaim', 'expected the name of a claim')
  }
  const audience = checkValues('jwt.audience', options.audience)
  const issuer = checkValues('jwt.issuer', options.issuer)
  // sub names the principal; a token without exp would be valid forever.
  const requiredClaims = ['sub', 'exp']
  if (audience !== undefined) requiredClaims.push('aud')
  if (issuer !== undefined) requiredClaims.push('iss')
  const claims = { requiredClaims, allowedAud: audience, allowedIss: issuer }

  // Each verifier admits only its own algorithms, so an HS token never
  // meets a public key (and the reverse): the other verifier refuses it.
  let verifySecret: ((token: string) => Record<string, unknown>) | null = null
  if (secret !== undefined) {
    const key = checkSecret('jwt.secret', secret)
    if (PEM_HEADER.test(key.toString())) {
      throw new AuthInvalidOptionError('jwt.secret', 'this is a PEM key, not a shared secret; give public keys as jwt.publicKey')
    }
    verifySecret = createVerifier({ key, algorithms: HS_ALGORITHMS, ...claims })
  }
  let verifyPublic: ((token: string) => Record<string, unknown> | Promise<Record<string, unknown>>) | null = null
  if (publicKey !== undefined && jwksUrl !== undefined) {
    throw new AuthInvalidOptionError('jwt.jwksUrl', 'set jwt.publicKey or jwt.jwksUrl, not both')
  }
  if (publicKey !== undefined) {
    if (typeof publicKey !== 'string' && !Buffer.isBuffer(publicKey)) throw new AuthInvalidOptionError('jwt.publicKey', 'expected PEM text, as a string or Buffer')
    let algorithms: Algorithm[]
    try {
      algorithms = publicKeyAlgorithms(publicKey)
    } catch (error) {
      throw new AuthInvalidOptionError('jwt.publicKey', (error as Error).message)
    }
    verifyPublic = createVerifier({ key: publicKey, algorithms, ...claims })
  } else if (jwksUrl !== undefined) {
    if (typeof jwksUrl !== 'string') throw new AuthInvalidOptionError('jwt.jwksUrl', 'expected an absolute http: or https: URL')
    const keyOf = jwksKeys(jwksUrl,
      checkMs('jwt.jwksCacheMs', options.jwksCacheMs, DEFAULT_JWKS_CACHE_MS),
      checkMs('jwt.jwksRefetchIntervalMs', options.jwksRefetchIntervalMs, DEFAULT_JWKS_REFETCH_INTERVAL_MS))
    verifyPublic = createVerifier({ key: async ({ header }: { header: { kid?: unknown, alg?: unknown } }) => await keyOf(header), algorithms: PUBLIC_KEY_ALGORITHMS, ...claims })
  }

  const decode = createDecoder({ complete: true })
  const identityOf = (payload: Record<string, unknown>): TokenIdentity => {
    const { sub } = payload
    if (typeof sub !== 'string' || sub === '') throw new InvalidTokenError('its sub claim must name the principal as a non-empty string')
    const claimed = payload[maxBytesClaim]
    if (claimed === undefined) return { principal: sub, maxBytes: null }
    if (!Number.isSafeInteger(claimed) || (claimed as number) < 1) {
      throw new InvalidTokenError(`its ${maxBytesClaim} claim must be a positive whole number of bytes`)
    }
    return { principal: sub, maxBytes: claimed as number }
  }
  const refusal = (error: unknown): Error => {
    /* c8 ignore next -- fast-jwt throws TokenErrors only (the key function's own errors come wrapped in one); anything else would pass as it is */
    if (!(error instanceof TokenError)) return error as Error
    // A failure of the key function: its own error says what happened.
    if (error.code === TOKEN_ERROR_CODES.keyFetchingError && error.originalError !== undefined) return error.originalError
    return new InvalidTokenError(describeJwtError(error))
  }

  return (token: string): TokenIdentity | Promise<TokenIdentity> => {
    let algorithm: unknown
    try {
      algorithm = (decode(token) as { header: { alg?: unknown } }).header.alg
    } catch {
      throw new InvalidTokenError('it is neither a known API token nor a well-formed JWT; send the token exactly as it was issued')
    }
    const verify = typeof algorithm === 'string' && algorithm.startsWith('HS')
      ? verifySecret ?? verifyPublic
      : verifyPublic ?? verifySecret
    let verified: Record<string, unknown> | Promise<Record<string, unknown>>
    try {
      verified = (verify as NonNullable<typeof verify>)(token)
    } catch (error) {
      throw refusal(error)
    }
    if (verified instanceof Promise) return verified.then(identityOf, (error: unknown) => { throw refusal(error) })
    return identityOf(verified)
  }
}
