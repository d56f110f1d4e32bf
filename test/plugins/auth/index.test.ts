// The plugin (plugins/auth/index.ts): credentials read from the
// Authorization header or a presigned URL in onRequest, each route's
// config.auth, the presignUpload decorator, options checked at register.
import Fastify from 'fastify'
import t from 'tap'
import upfront from 'upfront'
import auth, { signUpload } from '../../../plugins/auth/index.js'
import type { UploadGrant } from '../../../plugins/auth/index.js'
import { countBody } from '../../helpers/app.js'
import { build, inSeconds, invalidToken, MISMATCH, MISSING, presignInvalid, refusesOptions, withToken } from '../../helpers/auth.js'
import { aliceToken, bobToken, presignSecret } from '../../helpers/credentials.js'
import { requestHead } from '../../helpers/http.js'
import { listen } from '../../helpers/net.js'
import { exchange } from '../../helpers/wire.js'

t.test('the Authorization header: its scheme, and what is no credential', async (t) => {
  const app = await build(t, { tokens: { alice: aliceToken, bob: bobToken } })

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

  const malformed = await app.inject({ url: '/whoami', headers: withToken('two words') })
  const reason = 'it is malformed; send the token exactly as it was issued'
  t.equal(malformed.headers['www-authenticate'], `Bearer error="invalid_token", error_description="${reason}"`)
  t.same(malformed.json(), invalidToken(reason))
})

t.test('routes and their config.auth', async (t) => {
  const app = await build(t, { tokens: { alice: aliceToken } })
  const open = await app.inject({ url: '/health' })
  t.equal(open.statusCode, 200, 'config.auth: false needs no credentials')
  t.same(open.json(), { principal: null, callerMaxBytes: null, presigned: null })
  const unchecked = await app.inject({ url: '/health', headers: withToken('not-even-checked') })
  t.same(unchecked.json(), { principal: null, callerMaxBytes: null, presigned: null }, 'nor looks at them')

  t.equal((await app.inject({ url: '/explicit' })).statusCode, 401, 'config.auth: true is the default')
  const notFound = await app.inject({ url: '/nowhere' })
  t.equal(notFound.statusCode, 401, 'an unknown route does not reveal itself to the unauthenticated')
  t.equal((await app.inject({ url: '/nowhere', headers: withToken(aliceToken) })).statusCode, 404)

  const fresh = Fastify()
  t.teardown(() => fresh.close())
  await fresh.register(upfront)
  await fresh.register(auth, { tokens: { alice: aliceToken } })
  t.throws(() => fresh.get('/bad', { config: { auth: 'no' as unknown as boolean } }, async () => 'x'), {
    code: 'UPFRONT_AUTH_INVALID_OPTION',
    message: 'Invalid upfront-auth option "config.auth of route GET /bad": expected true or false'
  })
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

t.test('options are checked at register', async (t) => {
  await refusesOptions(t, [
    [{}, 'tokens', 'no credentials would be accepted; set tokens, jwt or presign'],
    [{ tokens: {} }, 'tokens', 'no credentials would be accepted; set tokens, jwt or presign'],
    [{ presign: 'secret' }, 'presign', 'expected an object'],
    [{ presign: null }, 'presign', 'expected an object']
  ])
})

t.test('a refusal reaches a 100-continue client before its body', async (t) => {
  const app = Fastify()
  await app.register(upfront)
  await app.register(auth, { tokens: { alice: aliceToken } })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  app.put('/files/*', async (request) => ({ received: await countBody(request.raw) }))
  const port = await listen(t, app)

  const head = (authorization: string): string =>
    requestHead('PUT', '/files/a.txt', ['Content-Length: 100', 'Expect: 100-continue', 'Connection: close', authorization])
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
