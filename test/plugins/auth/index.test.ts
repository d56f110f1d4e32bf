import { createHmac, generateKeyPairSync } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import auth, { publicKeyAlgorithms, signUpload, verifyUpload } from '../../../plugins/auth/index.js'
import type { AuthOptions, UploadGrant } from '../../../plugins/auth/index.js'
import upfront from 'upfront'
import { countBody } from '../../helpers/app.js'
import { exchange } from '../../helpers/wire.js'

const aliceToken = 'aliceToken-0123456789'
const bobToken = 'bobToken+/0123456789=='
const jwtSecret = 'a-shared-secret-of-at-least-32-chars!'
const presignSecret = 'another-secret-of-at-least-32-chars!'

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const rsaPublic = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const rsaPrivate = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const otherRsaPrivate = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const ecPublic = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const ecPrivate = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()

const MISSING = {
  statusCode: 401,
  code: 'UPFRONT_UNAUTHORIZED',
  error: 'Unauthorized',
  message: 'Authentication required: send "Authorization: Bearer <token>" with an API token or a JWT, or use a presigned URL'
}

function invalidToken (reason: string): object {
  return { statusCode: 401, code: 'UPFRONT_UNAUTHORIZED', error: 'Unauthorized', message: `Invalid bearer token: ${reason}` }
}

function forbidden (message: string): object {
  return { statusCode: 403, code: 'UPFRONT_FORBIDDEN', error: 'Forbidden', message }
}

function presignInvalid (reason: string): object {
  return forbidden(`This presigned URL is not valid for this request: ${reason}; use the URL exactly as it was issued, or ask for a new one`)
}

/** The error `verifyUpload` throws. */
function presignInvalidError (reason: string): { code: string, statusCode: number, message: string } {
  return { code: 'UPFRONT_FORBIDDEN', statusCode: 403, message: `This presigned URL is not valid for this request: ${reason}; use the URL exactly as it was issued, or ask for a new one` }
}

/** An HS256 token made by hand, for claims fast-jwt's signer refuses to write. */
function handMadeHs256 (payload: object): string {
  const input = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  return `${input}.${createHmac('sha256', jwtSecret).update(input).digest('base64url')}`
}

const MISMATCH = 'its signature does not match (it was issued for another path or other parameters, or it was altered)'

/** An app with the plugin, a route that shows what it decided, and a public route. */
async function build (t: Test, options: AuthOptions): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(upfront, { maxBytes: Infinity })
  await app.register(auth, options)
  // Leave bodies unread: only the headers matter here.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  const whoami = async (request: import('fastify').FastifyRequest): Promise<object> => ({
    principal: request.principal,
    callerMaxBytes: request.callerMaxBytes,
    presigned: request.presigned
  })
  app.get('/whoami', whoami)
  app.route({ method: ['PUT', 'POST'], url: '/files/*', handler: whoami })
  app.get('/health', { config: { auth: false } }, whoami)
  app.get('/explicit', { config: { auth: true } }, whoami)
  return app
}

function bearer (token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` }
}

const inSeconds = (seconds: number): number => Math.floor(Date.now() / 1000) + seconds

t.test('static tokens', async (t) => {
  const app = await build(t, { tokens: { alice: aliceToken, bob: bobToken } })

  for (const [principal, token] of [['alice', aliceToken], ['bob', bobToken]] as const) {
    const res = await app.inject({ url: '/whoami', headers: bearer(token) })
    t.equal(res.statusCode, 200, principal)
    t.same(res.json(), { principal, callerMaxBytes: null, presigned: null })
  }
  const lower = await app.inject({ url: '/whoami', headers: { authorization: `bearer   ${aliceToken}  ` } })
  t.same(lower.json(), { principal: 'alice', callerMaxBytes: null, presigned: null }, 'the scheme is case-insensitive')

  const missing = await app.inject({ url: '/whoami' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.headers['www-authenticate'], 'Bearer')
  t.same(missing.json(), MISSING)

  for (const authorization of ['Bearer', 'Bearer    ']) {
    const empty = await app.inject({ url: '/whoami', headers: { authorization } })
    t.equal(empty.headers['www-authenticate'], 'Bearer', `${JSON.stringify(authorization)} is no credential`)
    t.same(empty.json(), MISSING)
  }

  const basic = await app.inject({ url: '/whoami', headers: { authorization: `Basic ${Buffer.from(`alice:${aliceToken}`).toString('base64')}` } })
  t.equal(basic.statusCode, 401)
  t.equal(basic.headers['www-authenticate'], 'Bearer')
  t.same(basic.json(), {
    statusCode: 401,
    code: 'UPFRONT_UNAUTHORIZED',
    error: 'Unauthorized',
    message: 'Only the Bearer authorization scheme is accepted: send "Authorization: Bearer <token>"'
  })

  const unknown = 'it is not a known API token; send a valid token'
  for (const token of [aliceToken.replace('0', '1'), aliceToken.slice(0, -1), `${aliceToken}0`, bobToken.toUpperCase()]) {
    const wrong = await app.inject({ url: '/whoami', headers: bearer(token) })
    t.equal(wrong.statusCode, 401, token)
    t.equal(wrong.headers['www-authenticate'], `Bearer error="invalid_token", error_description="${unknown}"`)
    t.same(wrong.json(), invalidToken(unknown))
  }

  const malformed = await app.inject({ url: '/whoami', headers: bearer('two words') })
  const reason = 'it is malformed; send the token exactly as it was issued'
  t.equal(malformed.headers['www-authenticate'], `Bearer error="invalid_token", error_description="${reason}"`)
  t.same(malformed.json(), invalidToken(reason))
})

t.test('routes and their config.auth', async (t) => {
  const app = await build(t, { tokens: { alice: aliceToken } })
  const open = await app.inject({ url: '/health' })
  t.equal(open.statusCode, 200, 'config.auth: false needs no credentials')
  t.same(open.json(), { principal: null, callerMaxBytes: null, presigned: null })
  const withToken = await app.inject({ url: '/health', headers: bearer('not-even-checked') })
  t.same(withToken.json(), { principal: null, callerMaxBytes: null, presigned: null }, 'nor looks at them')

  t.equal((await app.inject({ url: '/explicit' })).statusCode, 401, 'config.auth: true is the default')
  const notFound = await app.inject({ url: '/nowhere' })
  t.equal(notFound.statusCode, 401, 'an unknown route does not reveal itself to the unauthenticated')
  t.equal((await app.inject({ url: '/nowhere', headers: bearer(aliceToken) })).statusCode, 404)

  const fresh = Fastify()
  t.teardown(() => fresh.close())
  await fresh.register(upfront)
  await fresh.register(auth, { tokens: { alice: aliceToken } })
  t.throws(() => fresh.get('/bad', { config: { auth: 'no' as unknown as boolean } }, async () => 'x'), {
    code: 'UPFRONT_AUTH_INVALID_OPTION',
    message: 'Invalid upfront-auth option "config.auth of route GET /bad": expected true or false'
  })
})

t.test('JWT with a shared secret', async (t) => {
  const app = await build(t, { jwt: { secret: jwtSecret } })
  const sign = createSigner({ key: jwtSecret, expiresIn: 60_000 })

  const good = await app.inject({ url: '/whoami', headers: bearer(sign({ sub: 'carol' })) })
  t.equal(good.statusCode, 200)
  t.same(good.json(), { principal: 'carol', callerMaxBytes: null, presigned: null })
  for (const algorithm of ['HS384', 'HS512'] as const) {
    const token = createSigner({ key: jwtSecret, algorithm, expiresIn: 60_000 })({ sub: 'carol' })
    t.equal((await app.inject({ url: '/whoami', headers: bearer(token) })).statusCode, 200, algorithm)
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
    const res = await app.inject({ url: '/whoami', headers: bearer(token) })
    t.equal(res.statusCode, 401, name)
    t.equal(res.headers['www-authenticate'], `Bearer error="invalid_token", error_description="${reason}"`, name)
    t.same(res.json(), invalidToken(reason), name)
  }
})

t.test('the max-bytes claim lowers the caller\'s limit', async (t) => {
  const app = await build(t, { jwt: { secret: jwtSecret } })
  const sign = createSigner({ key: jwtSecret, expiresIn: 60_000 })
  const token = sign({ sub: 'carol', max_bytes: 10 })

  const who = await app.inject({ url: '/whoami', headers: bearer(token) })
  t.same(who.json(), { principal: 'carol', callerMaxBytes: 10, presigned: null })
  const fits = await app.inject({ method: 'PUT', url: '/files/a.txt', headers: bearer(token), payload: '0123456789' })
  t.equal(fits.statusCode, 200)
  const tooLarge = await app.inject({ method: 'PUT', url: '/files/a.txt', headers: bearer(token), payload: '0123456789!' })
  t.equal(tooLarge.statusCode, 413)
  t.same(tooLarge.json(), {
    statusCode: 413,
    code: 'UPFRONT_BODY_TOO_LARGE',
    error: 'Payload Too Large',
    message: 'Content-Length of 11 bytes exceeds the 10-byte limit that your token allows; send a smaller body'
  })

  for (const value of [0, -1, 1.5, '10', null]) {
    const res = await app.inject({ url: '/whoami', headers: bearer(sign({ sub: 'carol', max_bytes: value })) })
    const reason = 'its max_bytes claim must be a positive whole number of bytes'
    t.equal(res.headers['www-authenticate'], `Bearer error="invalid_token", error_description="${reason}"`, String(value))
    t.same(res.json(), invalidToken(reason))
  }

  const named = await build(t, { jwt: { secret: jwtSecret, maxBytesClaim: 'https://example.com/"upload"' } })
  const claimed = await named.inject({ url: '/whoami', headers: bearer(sign({ sub: 'carol', 'https://example.com/"upload"': 5 })) })
  t.same(claimed.json(), { principal: 'carol', callerMaxBytes: 5, presigned: null }, 'a claim of another name')
  const refused = await named.inject({ url: '/whoami', headers: bearer(sign({ sub: 'carol', 'https://example.com/"upload"': 'x' })) })
  t.equal(refused.headers['www-authenticate'],
    'Bearer error="invalid_token", error_description="its https://example.com/?upload? claim must be a positive whole number of bytes"',
    'quotes never reach the quoted string')
})

t.test('JWT with public keys', async (t) => {
  const signRsa = (algorithm: 'RS256' | 'PS384'): string => createSigner({ key: rsaPrivate, algorithm, expiresIn: 60_000 })({ sub: 'dave' })
  const rsaApp = await build(t, { jwt: { publicKey: rsaPublic } })
  for (const algorithm of ['RS256', 'PS384'] as const) {
    const res = await rsaApp.inject({ url: '/whoami', headers: bearer(signRsa(algorithm)) })
    t.same(res.json(), { principal: 'dave', callerMaxBytes: null, presigned: null }, algorithm)
  }
  const ecApp = await build(t, { jwt: { publicKey: Buffer.from(ecPublic) } })
  const ecToken = createSigner({ key: ecPrivate, expiresIn: 60_000 })({ sub: 'erin' })
  t.same((await ecApp.inject({ url: '/whoami', headers: bearer(ecToken) })).json(), { principal: 'erin', callerMaxBytes: null, presigned: null }, 'ES256')

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
    const res = await app.inject({ url: '/whoami', headers: bearer(token) })
    t.equal(res.statusCode, 401, name)
    t.same(res.json(), invalidToken(reason), name)
  }
})

t.test('static tokens, a secret and a public key together', async (t) => {
  const app = await build(t, { tokens: { alice: aliceToken }, jwt: { secret: jwtSecret, publicKey: rsaPublic } })
  const hs = createSigner({ key: jwtSecret, expiresIn: 60_000 })({ sub: 'carol' })
  const rs = createSigner({ key: rsaPrivate, expiresIn: 60_000 })({ sub: 'dave' })
  t.equal((await app.inject({ url: '/whoami', headers: bearer(aliceToken) })).json().principal, 'alice')
  t.equal((await app.inject({ url: '/whoami', headers: bearer(hs) })).json().principal, 'carol')
  t.equal((await app.inject({ url: '/whoami', headers: bearer(rs) })).json().principal, 'dave')

  const confused = createSigner({ key: rsaPublic, algorithm: 'HS256', expiresIn: 60_000 })({ sub: 'mallory' })
  const res = await app.inject({ url: '/whoami', headers: bearer(confused) })
  t.same(res.json(), invalidToken('its signature does not verify; send a token issued for this service'),
    'an HS256 token goes to the shared secret, never to the public key')
})

t.test('presigned uploads', async (t) => {
  const app = await build(t, { tokens: { alice: aliceToken }, presign: { secret: presignSecret } })
  const grant: UploadGrant = { owner: 'alice', name: 'photos/2024 summer/beach.png', maxBytes: 10, contentType: 'image/png', expiresAt: inSeconds(60) }
  const url = signUpload(grant, presignSecret)
  t.match(url, /^\/files\/photos\/2024%20summer\/beach\.png\?upfront-owner=alice&upfront-max-bytes=10&upfront-content-type=image%2Fpng&upfront-expires=\d+&upfront-signature=[A-Za-z0-9_-]{43}$/)
  t.equal(app.presignUpload(grant), url, 'the decorator signs with the plugin\'s secret')

  const put = async (target: string, headers: Record<string, string> = { 'content-type': 'image/png' }, payload = 'png bytes') =>
    await app.inject({ method: 'PUT', url: target, headers, payload })

  const good = await put(url)
  t.equal(good.statusCode, 200)
  t.same(good.json(), {
    principal: 'alice',
    callerMaxBytes: 10,
    presigned: { owner: 'alice', name: 'photos/2024 summer/beach.png', maxBytes: 10, contentType: 'image/png', expiresAt: grant.expiresAt, method: 'PUT' }
  })
  t.equal((await put(url, { 'content-type': 'Image/PNG; charset=binary' })).statusCode, 200, 'the media type is compared without case or parameters')

  const anyType = signUpload({ ...grant, contentType: undefined }, presignSecret)
  const untyped = await put(anyType, { 'content-type': 'text/plain' })
  t.equal(untyped.statusCode, 200, 'a grant without a type takes any')
  t.equal(untyped.json().presigned.contentType, null)

  const tooLarge = await put(url, { 'content-type': 'image/png' }, '0123456789!')
  t.equal(tooLarge.statusCode, 413)
  t.same(tooLarge.json(), {
    statusCode: 413,
    code: 'UPFRONT_BODY_TOO_LARGE',
    error: 'Payload Too Large',
    message: 'Content-Length of 11 bytes exceeds the 10-byte limit that this presigned URL allows; send a smaller body'
  })
  const wrongType = await put(url, { 'content-type': 'image/gif' })
  t.equal(wrongType.statusCode, 415)
  t.same(wrongType.json(), {
    statusCode: 415,
    code: 'UPFRONT_UNSUPPORTED_MEDIA_TYPE',
    error: 'Unsupported Media Type',
    message: 'Content-Type "image/gif" is not the one this presigned URL was issued for; send the body with Content-Type: image/png'
  })
  const noType = await put(url, {})
  t.equal(noType.json().message,
    'Content-Type (none) is not the one this presigned URL was issued for; send the body with Content-Type: image/png')

  const expired = signUpload({ ...grant, expiresAt: 1_700_000_000 }, presignSecret)
  const late = await put(expired)
  t.equal(late.statusCode, 403)
  t.same(late.json(), forbidden('This presigned URL expired at 2023-11-14T22:13:20.000Z; ask for a new one'))

  const post = await app.inject({ method: 'POST', url, headers: { 'content-type': 'image/png' }, payload: 'x' })
  t.equal(post.statusCode, 403)
  t.same(post.json(), forbidden('A presigned URL is only valid for PUT, not POST; send the upload with PUT'))

  const [path, query] = url.split('?') as [string, string]
  const withParam = (name: string, value: string | null): string => {
    const params = new URLSearchParams(query)
    if (value === null) params.delete(name)
    else params.set(name, value)
    return `${path}?${params.toString()}`
  }
  const signature = new URLSearchParams(query).get('upfront-signature') as string
  const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1)
  // The last of 43 base64url characters carries 4 bits: the next one up
  // decodes to the same bytes, and must still be refused.
  const lastSpelling = signature.slice(0, -1) + String.fromCharCode(signature.charCodeAt(42) + 1)
  const tampered: Array<[string, string, object]> = [
    ['another owner', withParam('upfront-owner', 'bob'), presignInvalid(MISMATCH)],
    ['a larger size', withParam('upfront-max-bytes', '11'), presignInvalid(MISMATCH)],
    ['another type', withParam('upfront-content-type', 'image/gif'), presignInvalid(MISMATCH)],
    ['no type', withParam('upfront-content-type', null), presignInvalid(MISMATCH)],
    ['a later expiry', withParam('upfront-expires', String(grant.expiresAt + 1)), presignInvalid(MISMATCH)],
    ['another signature', withParam('upfront-signature', flipped), presignInvalid(MISMATCH)],
    ['another spelling of the signature', withParam('upfront-signature', lastSpelling), presignInvalid(MISMATCH)],
    ['another name', url.replace('beach.png', 'beach2.png'), presignInvalid(MISMATCH)],
    ['another spelling of the path', url.replace('%20', '+'), presignInvalid(MISMATCH)],
    ['another prefix', url.replace('/files/', '/files/x/'), presignInvalid(MISMATCH)],
    ['a type added', `${anyType}&upfront-content-type=image%2Fpng`, presignInvalid(MISMATCH)],
    ['a repeated parameter', `${url}&upfront-owner=bob`, presignInvalid('parameter upfront-owner is repeated')],
    ['no owner', withParam('upfront-owner', null), presignInvalid('parameter upfront-owner is missing')],
    ['an empty type', withParam('upfront-content-type', ''), presignInvalid('parameter upfront-content-type is empty')],
    ['a size of 0', withParam('upfront-max-bytes', '0'), presignInvalid('parameter upfront-max-bytes is not a positive whole number')],
    ['a size in words', withParam('upfront-max-bytes', 'ten'), presignInvalid('parameter upfront-max-bytes is not a positive whole number')],
    ['a huge size', withParam('upfront-max-bytes', '9007199254740993'), presignInvalid('parameter upfront-max-bytes is not a positive whole number')],
    ['an expiry with a sign', withParam('upfront-expires', `+${grant.expiresAt}`), presignInvalid('parameter upfront-expires is not a positive whole number')],
    ['a short signature', withParam('upfront-signature', signature.slice(1)), presignInvalid('parameter upfront-signature is not a signature')]
  ]
  for (const [name, target, body] of tampered) {
    const res = await put(target)
    t.equal(res.statusCode, 403, name)
    t.same(res.json(), body, name)
    t.equal(res.headers['www-authenticate'], undefined, name)
  }

  const withBearer = await app.inject({ method: 'PUT', url, headers: { ...bearer(aliceToken), 'content-type': 'image/gif' }, payload: '0123456789!' })
  t.same(withBearer.json(), { principal: 'alice', callerMaxBytes: null, presigned: null }, 'a bearer token wins over presign parameters')
  const unsigned = await app.inject({ method: 'PUT', url: '/files/a.png?upfront-owner=alice', payload: 'x' })
  t.same(unsigned.json(), MISSING, 'without a signature parameter, a request is just unauthenticated')
})

t.test('presigned URLs with another prefix, or none configured', async (t) => {
  const app = await build(t, { tokens: { alice: aliceToken }, presign: { secret: Buffer.from(presignSecret), pathPrefix: '/files/uploads/' } })
  const grant: UploadGrant = { owner: 'alice', name: 'a.txt', maxBytes: 10, expiresAt: inSeconds(60), method: 'PUT' }
  const url = app.presignUpload(grant)
  t.equal(url.split('?')[0], '/files/uploads/a.txt')
  t.equal(url, signUpload(grant, presignSecret, { pathPrefix: '/files/uploads/' }))
  t.equal((await app.inject({ method: 'PUT', url, payload: 'x' })).statusCode, 200)
  t.same((await app.inject({ method: 'PUT', url: signUpload(grant, presignSecret), payload: 'x' })).json(), presignInvalid(MISMATCH),
    'a URL signed for the default prefix')

  const plain = await build(t, { tokens: { alice: aliceToken } })
  t.throws(() => plain.presignUpload(grant), {
    code: 'UPFRONT_PRESIGN_NOT_CONFIGURED',
    message: 'Presigned uploads are not configured: register upfront-auth with presign.secret'
  })
  const res = await plain.inject({ method: 'PUT', url: signUpload(grant, presignSecret), payload: 'x' })
  t.same(res.json(), MISSING, 'presigned URLs are not honoured without presign')
})

t.test('signUpload and verifyUpload', async (t) => {
  const grant: UploadGrant = { owner: 'alice', name: 'a.txt', maxBytes: 10, expiresAt: inSeconds(60) }
  const url = signUpload(grant, presignSecret)
  t.same(verifyUpload({ method: 'PUT', url }, presignSecret), { ...grant, contentType: null, method: 'PUT' })
  t.throws(() => verifyUpload({ method: 'PUT', url: '/files/a.txt' }, presignSecret), presignInvalidError('parameter upfront-owner is missing'))
  const badEncoding = url.replace('a.txt', '%E0%A4%A')
  t.throws(() => verifyUpload({ method: 'PUT', url: badEncoding }, presignSecret), presignInvalidError(MISMATCH))

  const invalid: Array<[Partial<UploadGrant>, string]> = [
    [{ owner: '' }, 'owner must be a non-empty string'],
    [{ name: '' }, 'name must be a non-empty string'],
    [{ maxBytes: 0 }, 'maxBytes must be a positive whole number'],
    [{ maxBytes: 1.5 }, 'maxBytes must be a positive whole number'],
    [{ contentType: 'image/png; charset=x' }, 'contentType must be a lower-case media type without parameters, such as "image/png"'],
    [{ contentType: 'Image/PNG' }, 'contentType must be a lower-case media type without parameters, such as "image/png"'],
    [{ expiresAt: Date.now() }, 'expiresAt must be a Unix time in seconds'],
    [{ expiresAt: 1.5 }, 'expiresAt must be a Unix time in seconds'],
    [{ expiresAt: 0 }, 'expiresAt must be a Unix time in seconds'],
    [{ method: 'POST' as 'PUT' }, 'method must be "PUT"']
  ]
  for (const [change, reason] of invalid) {
    t.throws(() => signUpload({ ...grant, ...change }, presignSecret), { code: 'UPFRONT_INVALID_GRANT', message: `Invalid upload grant: ${reason}` }, reason)
  }
  t.throws(() => signUpload(grant, 'short'), {
    code: 'UPFRONT_AUTH_INVALID_OPTION',
    message: 'Invalid upfront-auth option "secret": expected a string or Buffer of at least 32 bytes'
  })
  t.throws(() => verifyUpload({ method: 'PUT', url }, presignSecret, { pathPrefix: 'files' }), {
    code: 'UPFRONT_AUTH_INVALID_OPTION',
    message: 'Invalid upfront-auth option "pathPrefix": expected a path that begins and ends with "/", such as "/files/"'
  })
})

t.test('options are checked at register', async (t) => {
  const dsaPublic = generateKeyPairSync('dsa', { modulusLength: 1024, divisorLength: 160 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const k1Public = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const cases: Array<[unknown, string, string]> = [
    [{}, 'tokens', 'no credentials would be accepted; set tokens, jwt or presign'],
    [{ tokens: {} }, 'tokens', 'no credentials would be accepted; set tokens, jwt or presign'],
    [{ tokens: [aliceToken] }, 'tokens', 'expected an object of principal: token'],
    [{ tokens: 'alice' }, 'tokens', 'expected an object of principal: token'],
    [{ tokens: null }, 'tokens', 'expected an object of principal: token'],
    [{ tokens: { '': aliceToken } }, 'tokens', 'a principal is empty'],
    [{ tokens: { alice: 'short' } }, 'tokens.alice', 'expected at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (RFC 6750 bearer token syntax)'],
    [{ tokens: { alice: `${aliceToken} x` } }, 'tokens.alice', 'expected at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (RFC 6750 bearer token syntax)'],
    [{ tokens: { alice: 42 } }, 'tokens.alice', 'expected at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (RFC 6750 bearer token syntax)'],
    [{ tokens: { alice: aliceToken, bob: aliceToken } }, 'tokens.bob', 'another principal has the same token; give each principal its own'],
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
    [{ presign: 'secret' }, 'presign', 'expected an object'],
    [{ presign: null }, 'presign', 'expected an object'],
    [{ presign: {} }, 'presign.secret', 'expected a string or Buffer of at least 32 bytes'],
    [{ presign: { secret: presignSecret, pathPrefix: '/files' } }, 'presign.pathPrefix', 'expected a path that begins and ends with "/", such as "/files/"']
  ]
  for (const [options, name, reason] of cases) {
    const app = Fastify()
    await app.register(upfront)
    await t.rejects(async () => { await app.register(auth, options as AuthOptions).ready() }, {
      code: 'UPFRONT_AUTH_INVALID_OPTION',
      message: `Invalid upfront-auth option "${name}": ${reason}`
    }, `${name}: ${reason}`)
    await app.close()
  }
})

t.test('publicKeyAlgorithms', async (t) => {
  const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' })
  t.same(publicKeyAlgorithms(ed), ['EdDSA'])
  t.same(publicKeyAlgorithms(rsaPublic), ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'])
  t.same(publicKeyAlgorithms(ecPublic), ['ES256'])
  t.throws(() => publicKeyAlgorithms('-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n'), { code: 'UPFRONT_UNUSABLE_KEY', message: /^not a readable PEM public key \(.+\)$/ })
})

t.test('a refusal reaches a 100-continue client before its body', async (t) => {
  const app = Fastify()
  await app.register(upfront)
  await app.register(auth, { tokens: { alice: aliceToken } })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  app.put('/files/*', async (request) => ({ received: await countBody(request.raw) }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }

  const head = (authorization: string): string => [
    'PUT /files/a.txt HTTP/1.1', 'Host: upfront', 'Content-Length: 100', 'Expect: 100-continue', 'Connection: close', authorization
  ].join('\r\n')
  const refused = await exchange(port, { head: head('X-Nothing: here'), body: Buffer.alloc(100, 'x') })
  t.equal(refused.statusLine, 'HTTP/1.1 401 Unauthorized')
  t.same(refused.informational, [], 'no 100 Continue')
  t.equal(refused.bodyBytesBeforeAnswer, 0, 'no body byte was sent')
  t.equal(refused.headers['www-authenticate'], 'Bearer')
  t.same(JSON.parse(refused.body), MISSING)

  const admitted = await exchange(port, { head: head(`Authorization: Bearer ${aliceToken}`), body: Buffer.alloc(100, 'x') })
  t.same(admitted.informational, ['HTTP/1.1 100 Continue'])
  t.equal(admitted.status, 200)
  t.same(JSON.parse(admitted.body), { received: 100 })
})
