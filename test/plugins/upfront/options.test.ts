// Options checked at register, the 417-for-auth option, counters.
// (unsupportedExpectation, which the package exports: lib/expectation.test.ts.)
import Fastify from 'fastify'
import t from 'tap'
import upfront from 'upfront'
import type { UpfrontOptions } from 'upfront'
import { countBody, startApp } from '../../helpers/app.js'
import { requestHead } from '../../helpers/http.js'
import { listen } from '../../helpers/net.js'
import { exchange, json } from '../../helpers/wire.js'

t.test('bad options are refused at register with a coded error', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [{ maxBytes: -1 }, /Invalid upfront option "maxBytes": expected a whole number of bytes >= 0 or Infinity, got -1/],
    [{ maxBytes: 1.5 }, /"maxBytes"/],
    [{ maxBytes: '10mb' }, /"maxBytes".*got 10mb/],
    [{ drainMaxBytes: Infinity }, /"drainMaxBytes": expected a whole number of bytes >= 0, got Infinity/],
    [{ lingerMs: -5 }, /"lingerMs"/],
    [{ contentTypes: [] }, /"contentTypes": expected a non-empty array/],
    [{ contentTypes: 'image/png' }, /"contentTypes": expected a non-empty array/],
    [{ contentTypes: ['image/png', 'png'] }, /"contentTypes": "png" is not a media type/],
    [{ contentTypes: ['image/'] }, /"image\/" is not a media type/],
    [{ contentTypes: ['text /plain'] }, /is not a media type/],
    [{ authRefusal: 'teapot' }, /"authRefusal": expected "status" or "expectation-failed", got teapot/]
  ]
  for (const [options, message] of bad) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(upfront, options as UpfrontOptions).ready() }, { code: 'UPFRONT_INVALID_OPTION', message }, JSON.stringify(options))
    await app.close()
  }

  const route = Fastify()
  await route.register(upfront)
  t.throws(() => route.post('/x', { config: { upfront: { maxBytes: -2 } } }, async () => 'x'),
    { code: 'UPFRONT_INVALID_OPTION', message: /config\.upfront\.maxBytes of route POST \/x/ })
  await route.close()

  const notObject = Fastify()
  await notObject.register(upfront)
  t.throws(() => notObject.post('/y', { config: { upfront: 'off' as unknown as false } }, async () => 'y'),
    { code: 'UPFRONT_INVALID_OPTION', message: /config\.upfront of route POST \/y.*expected an object or false/ })
  await notObject.close()

  const twice = Fastify()
  await twice.register(upfront)
  await t.rejects(async () => { await twice.register(upfront).ready() }, { code: 'UPFRONT_ALREADY_REGISTERED' })
  await twice.close()
})

t.test('authRefusal: "expectation-failed" turns a pre-body 401/403 into a 417', async (t) => {
  const { app, port } = await startApp(t, { authRefusal: 'expectation-failed' }, (app) => {
    app.post('/forbidden', async (_request, reply) => await reply.code(403).send({ statusCode: 403, code: 'NOPE', error: 'Forbidden', message: 'no' }))
  })
  const refused = await exchange(port, {
    head: requestHead('POST', '/?readbody=false', ['Content-Length: 5000', 'Expect: 100-continue'])
  })
  t.equal(refused.statusLine, 'HTTP/1.1 417 Expectation Failed')
  t.equal(refused.headers['www-authenticate'], 'Bearer', 'the challenge is kept')
  t.equal(refused.headers.connection, 'close')
  t.same(json(refused), {
    statusCode: 417,
    code: 'UPFRONT_REFUSED_BEFORE_BODY',
    error: 'Expectation Failed',
    message: 'The request was refused with 401 (Unauthorized) before its body was sent; fix the credentials, then send the request again'
  })
  const forbidden = await exchange(port, {
    head: requestHead('POST', '/forbidden', ['Content-Length: 5000', 'Expect: 100-continue'])
  })
  t.equal(forbidden.status, 417)
  t.match(json(forbidden), { message: /refused with 403 \(Forbidden\)/ })

  // Without Expect, and after a 100, the app's status passes unchanged.
  const plain = await exchange(port, {
    head: requestHead('POST', '/?readbody=false', ['Content-Length: 5']),
    body: Buffer.from('12345'),
    send: 'now'
  })
  t.equal(plain.status, 401)
  const accepted = await exchange(port, {
    head: requestHead('POST', '/?readbody=true', ['Content-Length: 5', 'Expect: 100-continue']),
    body: Buffer.from('12345')
  })
  t.equal(accepted.status, 200)
  t.same(app.upfront.stats, { refused: { 401: 1, 403: 1 }, unsentBytes: 10_000, continued: 1 })
})

t.test('counters: refusals by reason, bytes never sent, 100s sent', async (t) => {
  const { app, port } = await startApp(t, { maxBytes: 1000 })
  t.same(app.upfront.stats, { refused: {}, unsentBytes: 0, continued: 0 })
  await exchange(port, { head: requestHead('POST', '/?readbody=false', ['Content-Length: 700', 'Expect: 100-continue']) })
  await exchange(port, { head: requestHead('POST', '/?readbody=true', ['Content-Length: 7000', 'Expect: 100-continue']) })
  await exchange(port, { head: requestHead('POST', '/?readbody=true', ['Content-Length: 10', 'Expect: 100-continue']), body: Buffer.alloc(10) })
  const stats = app.upfront.stats
  t.same(stats, { refused: { 401: 1, 'too-large': 1 }, unsentBytes: 7700, continued: 1 })
  stats.refused.x = 1
  t.same(app.upfront.stats.refused, { 401: 1, 'too-large': 1 }, 'a snapshot, not the live counters')
})

t.test('a route added before the plugin is checked too, compiled on first use', async (t) => {
  const app = Fastify({ bodyLimit: 5000 })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  const read = async (request: { raw: AsyncIterable<Buffer> }): Promise<unknown> => ({ received: await countBody(request.raw) })
  app.post('/early', { config: { upfront: { maxBytes: 10 } } }, read)
  app.post('/early-limit', { bodyLimit: 20 }, read)
  app.post('/early-default', read)
  app.post('/early-off', { config: { upfront: false } }, read)
  await app.register(upfront, { maxBytes: 30 })
  const port = await listen(t, app)
  const cases: Array<[string, number, number]> = [
    ['/early', 11, 413], ['/early', 11, 413], ['/early', 10, 200],
    ['/early-limit', 21, 413], ['/early-limit', 20, 200],
    ['/early-default', 31, 413], ['/early-default', 30, 200],
    ['/early-off', 100, 200]
  ]
  for (const [path, length, status] of cases) {
    const result = await exchange(port, { head: requestHead('POST', path, [`Content-Length: ${length}`, 'Expect: 100-continue']), body: Buffer.alloc(length) })
    t.equal(result.status, status, `${path} ${length}`)
  }
})
