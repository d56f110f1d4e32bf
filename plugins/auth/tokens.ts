// Static API tokens, compared in constant time.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { AuthInvalidOptionError } from '../../errors.js'

/** RFC 6750 §2.1: the characters a bearer token can have. */
export const B64TOKEN = /^[A-Za-z0-9._~+/-]+=*$/
export const MIN_STATIC_TOKEN_LENGTH = 16

/**
 * A lookup of `{ principal: token }`: the principal a presented token
 * names, or null. One HMAC per configured token, compared with the
 * presented token's in constant time. Throws `AuthInvalidOptionError` for
 * a bad map.
 */
export function compileStaticTokens (tokens: unknown): (token: string) => string | null {
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
