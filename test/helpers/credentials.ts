// Every credential the tests use, defined once.

/** API tokens of the service `startService` runs (its AUTH_TOKENS). */
export const TOKENS = {
  alice: 'alice-token-0123456789',
  bob: 'bob-token-0123456789abc'
}
/** The service's PRESIGN_SECRET. */
export const PRESIGN_SECRET = 'presign-secret-0123456789-0123456789'
/** The service's AUTH_JWT_SECRET. */
export const JWT_SECRET = 'jwt-secret-0123456789-0123456789-abcdef'

/** The `Authorization` line of a request head with a principal's token. */
export function bearer (principal: keyof typeof TOKENS): string {
  return `Authorization: Bearer ${TOKENS[principal]}`
}

// Credentials for the unit tests of the configuration and of the auth plugin.

/** A static token. */
export const aliceToken = 'aliceToken-0123456789'
/** A static token with `+`, `/` and trailing `=`: every character class of RFC 6750's b64token. */
export const bobToken = 'bobToken+/0123456789=='
/** An HS256 shared secret of at least 32 bytes. */
export const jwtSecret = 'a-shared-secret-of-at-least-32-chars!'
/** A presign secret of at least 32 bytes, other than the JWT secret. */
export const presignSecret = 'another-secret-of-at-least-32-chars!'
