// JWT bearer tokens (plugins/auth/jwt.ts): shared secrets, public keys,
// the claims a token must carry, the max-bytes claim; options checked at
// register. (Key sets fetched from a JWKS URL: jwks.test.ts.)
import { createHmac, generateKeyPairSync } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { publicKeyAlgorithms } from '../../../plugins/auth/index.js'
import { build, invalidToken, refusesOptions, withToken } from '../../helpers/auth.js'
import { aliceToken, jwtSecret } from '../../helpers/credentials.js'

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const rsaPublic = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const rsaPrivate = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const otherRsaPrivate = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const ecPublic = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const ecPrivate = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const JWKS_URL = 'https://idp.example.com/.well-known/jwks.json'

/** An HS256 token made by hand, for claims fast-jwt's signer refuses to write. */
function handMadeHs256 (payload: object): string {
  const input = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  return `${input}.${createHmac('sha256', jwtSecret).update(input).digest('base64url')}`
}

t.test('JWT with a shared secret', async (t) => {
  const app = await build(t, { jwt: { secret: jwtSecret } })
  const sign = createSigner({ key: jwtSecret, expiresIn: 60_000 })

  const good = await app.inject({ url: '/whoami', headers: withToken(sign({ sub: 'carol' })) })
  t.equal(good.statusCode, 200)
  t.same(good.json(), { principal: 'carol', callerMaxBytes: null, presigned: null })
  for (const algorithm of ['HS384', 'HS512'] as const) {
    const token = createSigner({ key: jwtSecret, algorithm, expiresIn: 60_000 })({ sub: 'carol' })
    t.equal((await app.inject({ url: '/whoami', headers: withToken(token) })).statusCode, 200, algorithm)
  }

  const refusals: Array<[string, string, string]> = [
    ['expired', createSigner({ key: jwtSecret, expiresIn: 60_000, clockTimestamp: Date.now() - 120_000 })({ sub: 'carol' }),
      'it has expired; get a new token'],
    ['not yet valid', createSigner({ key: jwtSecret, expiresIn: 120_000, notBefore: 60_000 })({ sub: 'carol' }),
      'it is not valid yet (nbf is in the future); retry later'],
    ['signed with another secret', createSigner({ key: `${jwtSecret}?`, expiresIn: 60_000 })({ sub: 'carol' }),
      'its signature does not verify; send a token issued for this service'],
    ['alg none', createSigner({ algorithm: 'none', expiresIn: 60_000 })({ sub: 'carol' }),
      'its signature does not verify; send a token issued for this service'],
    ['signed with a private key', createSigner({ key: rsaPrivate, expiresIn: 60_000 })({ sub: 'carol' }),
      'its algorithm is not accepted here; send a token issued for this service'],
    ['no sub', sign({ name: 'carol' }), 'the sub claim is required; send a token issued for this service'],
    ['no exp', createSigner({ key: jwtSecret })({ sub: 'carol' }), 'the exp claim is required; send a token issued for this service'],
    ['exp not a number', handMadeHs256({ sub: 'carol', exp: 'tomorrow' }),
      'the exp claim must be a number; send a token issued for this service'],
    ['sub not a string', sign({ sub: 42 }), 'its sub claim must name the principal as a non-empty string'],
    ['empty sub', sign({ sub: '' }), 'its sub claim must name the principal as a non-empty string'],
    ['neither static nor a JWT', aliceToken, 'it is neither a known API token nor a well-formed JWT; send the token exactly as it was issued']
  ]
  for (const [name, token, reason] of refusals) {
    const res = await app.inject({ url: '/whoami', headers: withToken(token) })
    t.equal(res.statusCode, 401, name)
    t.equal(res.headers['www-authenticate'], `Bearer error="invalid_token", error_description="${reason}"`, name)
    t.same(res.json(), invalidToken(reason), name)
  }
})

t.test('the max-bytes claim lowers the caller\'s limit', async (t) => {
  const app = await build(t, { jwt: { secret: jwtSecret } })
  const sign = createSigner({ key: jwtSecret, expiresIn: 60_000 })
  const token = sign({ sub: 'carol', max_bytes: 10 })

  const who = await app.inject({ url: '/whoami', headers: withToken(token) })
  t.same(who.json(), { principal: 'carol', callerMaxBytes: 10, presigned: null })
  const fits = await app.inject({ method: 'PUT', url: '/files/a.txt', headers: withToken(token), payload: '0123456789' })
  t.equal(fits.statusCode, 200)
  const tooLarge = await app.inject({ method: 'PUT', url: '/files/a.txt', headers: withToken(token), payload: '0123456789!' })
  t.equal(tooLarge.statusCode, 413)
  t.same(tooLarge.json(), {
    statusCode: 413,
    code: 'UPFRONT_BODY_TOO_LARGE',
    error: 'Payload Too Large',
    message: 'Content-Length of 11 bytes exceeds the 10-byte limit that your token allows; send a smaller body'
  })

  for (const value of [0, -1, 1.5, '10', null]) {
    const res = await app.inject({ url: '/whoami', headers: withToken(sign({ sub: 'carol', max_bytes: value })) })
    const reason = 'its max_bytes claim must be a positive whole number of bytes'
    t.equal(res.headers['www-authenticate'], `Bearer error="invalid_token", error_description="${reason}"`, String(value))
    t.same(res.json(), invalidToken(reason))
  }

  const named = await build(t, { jwt: { secret: jwtSecret, maxBytesClaim: 'https://example.com/"upload"' } })
  const claimed = await named.inject({ url: '/whoami', headers: withToken(sign({ sub: 'carol', 'https://example.com/"upload"': 5 })) })
  t.same(claimed.json(), { principal: 'carol', callerMaxBytes: 5, presigned: null }, 'a claim of another name')
  const refused = await named.inject({ url: '/whoami', headers: withToken(sign({ sub: 'carol', 'https://example.com/"upload"': 'x' })) })
  t.equal(refused.headers['www-authenticate'],
    'Bearer error="invalid_token", error_description="its https://example.com/?upload? claim must be a positive whole number of bytes"',
    'quotes never reach the quoted string')
})

t.test('JWT with public keys', async (t) => {
  const signRsa = (algorithm: 'RS256' | 'PS384'): string => createSigner({ key: rsaPrivate, algorithm, expiresIn: 60_000 })({ sub: 'dave' })
  const rsaApp = await build(t, { jwt: { publicKey: rsaPublic } })
  for (const algorithm of ['RS256', 'PS384'] as const) {
    const res = await rsaApp.inject({ url: '/whoami', headers: withToken(signRsa(algorithm)) })
    t.same(res.json(), { principal: 'dave', callerMaxBytes: null, presigned: null }, algorithm)
  }
  const ecApp = await build(t, { jwt: { publicKey: Buffer.from(ecPublic) } })
  const ecToken = createSigner({ key: ecPrivate, expiresIn: 60_000 })({ sub: 'erin' })
  t.same((await ecApp.inject({ url: '/whoami', headers: withToken(ecToken) })).json(), { principal: 'erin', callerMaxBytes: null, presigned: null }, 'ES256')

  const signature = 'its signature does not verify; send a token issued for this service'
  const algorithm = 'its algorithm is not accepted here; send a token issued for this service'
  const refusals: Array<[FastifyInstance, string, string, string]> = [
    [rsaApp, 'another RSA key', createSigner({ key: otherRsaPrivate, expiresIn: 60_000 })({ sub: 'dave' }), signature],
    [rsaApp, 'HS256 signed with the public key as its secret',
      createSigner({ key: rsaPublic, algorithm: 'HS256', expiresIn: 60_000 })({ sub: 'dave' }), algorithm],
    [rsaApp, 'alg none', createSigner({ algorithm: 'none', expiresIn: 60_000 })({ sub: 'dave' }), signature],
    [rsaApp, 'an EC token', ecToken, algorithm],
    [ecApp, 'HS256 signed with the public key as its secret',
      createSigner({ key: ecPublic, algorithm: 'HS256', expiresIn: 60_000 })({ sub: 'erin' }), algorithm]
  ]
  for (const [app, name, token, reason] of refusals) {
    const res = await app.inject({ url: '/whoami', headers: withToken(token) })
    t.equal(res.statusCode, 401, name)
    t.same(res.json(), invalidToken(reason), name)
  }
})

t.test('static tokens, a secret and a public key together', async (t) => {
  const app = await build(t, { tokens: { alice: aliceToken }, jwt: { secret: jwtSecret, publicKey: rsaPublic } })
  const hs = createSigner({ key: jwtSecret, expiresIn: 60_000 })({ sub: 'carol' })
  const rs = createSigner({ key: rsaPrivate, expiresIn: 60_000 })({ sub: 'dave' })
  t.equal((await app.inject({ url: '/whoami', headers: withToken(aliceToken) })).json().principal, 'alice')
  t.equal((await app.inject({ url: '/whoami', headers: withToken(hs) })).json().principal, 'carol')
  t.equal((await app.inject({ url: '/whoami', headers: withToken(rs) })).json().principal, 'dave')

  const confused = createSigner({ key: rsaPublic, algorithm: 'HS256', expiresIn: 60_000 })({ sub: 'mallory' })
  const res = await app.inject({ url: '/whoami', headers: withToken(confused) })
  t.same(res.json(), invalidToken('its signature does not verify; send a token issued for this service'),
    'an HS256 token goes to the shared secret, never to the public key')
})

t.test('publicKeyAlgorithms', async (t) => {
  const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' })
  t.same(publicKeyAlgorithms(ed), ['EdDSA'])
  t.same(publicKeyAlgorithms(rsaPublic), ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'])
  t.same(publicKeyAlgorithms(ecPublic), ['ES256'])
  t.throws(() => publicKeyAlgorithms('-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n'), { code: 'UPFRONT_UNUSABLE_KEY', message: /^not a readable PEM public key \(.+\)$/ })
})

t.test('audience and issuer, each one value or a list', async (t) => {
  const sign = createSigner({ key: jwtSecret, expiresIn: 60_000 })
  const one = await build(t, { jwt: { secret: jwtSecret, audience: 'upfront', issuer: 'https://idp.example.com/' } })
  const several = await build(t, { jwt: { secret: jwtSecret, audience: ['upfront', 'other'], issuer: ['https://idp.example.com/', 'https://idp2.example.com/'] } })
  const cases: Array<[string, Record<string, string>, number, number]> = [
    ['the audience and issuer', { aud: 'upfront', iss: 'https://idp.example.com/' }, 200, 200],
    ['another listed audience', { aud: 'other', iss: 'https://idp.example.com/' }, 401, 200],
    ['another listed issuer', { aud: 'upfront', iss: 'https://idp2.example.com/' }, 401, 200],
    ['an audience listed nowhere', { aud: 'elsewhere', iss: 'https://idp.example.com/' }, 401, 401],
    ['no issuer', { aud: 'upfront' }, 401, 401]
  ]
  for (const [what, claims, forOne, forSeveral] of cases) {
    const token = sign({ sub: 'carol', ...claims })
    t.equal((await one.inject({ url: '/whoami', headers: withToken(token) })).statusCode, forOne, `one value: ${what}`)
    t.equal((await several.inject({ url: '/whoami', headers: withToken(token) })).statusCode, forSeveral, `a list: ${what}`)
  }
})

t.test('jwt options are checked at register', async (t) => {
  const dsaPublic = generateKeyPairSync('dsa', { modulusLength: 1024, divisorLength: 160 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const k1Public = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  await refusesOptions(t, [
    [{ jwt: 'secret' }, 'jwt', 'expected an object'],
    [{ jwt: null }, 'jwt', 'expected an object'],
    [{ jwt: {} }, 'jwt', 'set jwt.secret (HS256), jwt.publicKey (RS*, PS*, ES*, EdDSA) or jwt.jwksUrl, or leave jwt out'],
    [{ jwt: { secret: 'short' } }, 'jwt.secret', 'expected a string or Buffer of at least 32 bytes'],
    [{ jwt: { secret: 42 } }, 'jwt.secret', 'expected a string or Buffer of at least 32 bytes'],
    [{ jwt: { secret: rsaPublic } }, 'jwt.secret', 'this is a PEM key, not a shared secret; give public keys as jwt.publicKey'],
    [{ jwt: { secret: jwtSecret, maxBytesClaim: '' } }, 'jwt.maxBytesClaim', 'expected the name of a claim'],
    [{ jwt: { publicKey: 42 } }, 'jwt.publicKey', 'expected PEM text, as a string or Buffer'],
    [{ jwt: { publicKey: jwtSecret } }, 'jwt.publicKey', 'expected a PEM public key or certificate ("-----BEGIN PUBLIC KEY-----")'],
    [{ jwt: { publicKey: rsaPrivate } }, 'jwt.publicKey', 'this is a private key; give the service only the public key'],
    [{ jwt: { publicKey: dsaPublic } }, 'jwt.publicKey', 'dsa keys are not supported; use an RSA, EC (P-256, P-384, P-521), Ed25519 or Ed448 key'],
    [{ jwt: { publicKey: k1Public } }, 'jwt.publicKey', 'ec keys on this curve are not supported; use an RSA, EC (P-256, P-384, P-521), Ed25519 or Ed448 key'],
    [{ jwt: { secret: jwtSecret, audience: '' } }, 'jwt.audience', 'expected a non-empty string or a non-empty array of them'],
    [{ jwt: { secret: jwtSecret, audience: [] } }, 'jwt.audience', 'expected a non-empty string or a non-empty array of them'],
    [{ jwt: { secret: jwtSecret, audience: 42 } }, 'jwt.audience', 'expected a non-empty string or a non-empty array of them'],
    [{ jwt: { secret: jwtSecret, issuer: ['https://idp.example.com/', ''] } }, 'jwt.issuer', 'expected a non-empty string or a non-empty array of them'],
    [{ jwt: { secret: jwtSecret, issuer: [7] } }, 'jwt.issuer', 'expected a non-empty string or a non-empty array of them'],
    [{ jwt: { publicKey: rsaPublic, jwksUrl: JWKS_URL } }, 'jwt.jwksUrl', 'set jwt.publicKey or jwt.jwksUrl, not both'],
    [{ jwt: { jwksUrl: 'idp.example.com/jwks.json' } }, 'jwt.jwksUrl', 'expected an absolute http: or https: URL'],
    [{ jwt: { jwksUrl: 'ftp://idp.example.com/jwks.json' } }, 'jwt.jwksUrl', 'expected an absolute http: or https: URL'],
    [{ jwt: { jwksUrl: 42 } }, 'jwt.jwksUrl', 'expected an absolute http: or https: URL'],
    [{ jwt: { jwksUrl: JWKS_URL, jwksCacheMs: 0 } }, 'jwt.jwksCacheMs', 'expected a positive whole number of milliseconds'],
    [{ jwt: { jwksUrl: JWKS_URL, jwksCacheMs: '600000' } }, 'jwt.jwksCacheMs', 'expected a positive whole number of milliseconds'],
    [{ jwt: { jwksUrl: JWKS_URL, jwksRefetchIntervalMs: 1.5 } }, 'jwt.jwksRefetchIntervalMs', 'expected a positive whole number of milliseconds']
  ])
})
