// The service as app.ts assembles it: the order of its plugins puts every
// refusal, whichever plugin makes it, before the body, and counts it once.
import t from 'tap'
import { createSigner } from 'fast-jwt'
import { signUpload } from '../plugins/auth/index.js'
import { requestHead } from './helpers/http.js'
import { BACKENDS, bearer, JWT_SECRET, PRESIGN_SECRET, putFile, startService } from './helpers/service.js'
import { exchange, json } from './helpers/wire.js'

for (const backend of BACKENDS) {
  t.test(`every refusal comes before the body: no 100, no body byte, on ${backend}`, async (t) => {
    const { port, app } = await startService(t, { MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) }, backend)
    await putFile(port, '/files/exists.bin', Buffer.from('x'))
    const jwt = createSigner({ key: JWT_SECRET, expiresIn: 60_000 })
    const smallCaller = jwt({ sub: 'carol', max_bytes: 1000 })
    const expired = createSigner({ key: JWT_SECRET, expiresIn: 1, clockTimestamp: Date.now() - 10_000 })({ sub: 'carol' })
    const tampered = signUpload({ owner: 'alice', name: 'p.bin', maxBytes: 100, expiresAt: Math.floor(Date.now() / 1000) + 60 }, PRESIGN_SECRET)
      .replace('upfront-max-bytes=100', 'upfront-max-bytes=999999')
    const typed = signUpload({ owner: 'alice', name: 'p.png', maxBytes: 10_000_000, contentType: 'image/png', expiresAt: Math.floor(Date.now() / 1000) + 60 }, PRESIGN_SECRET)

    const cases: Array<[string, number, string, string[]]> = [
      ['no token', 401, '/files/a.bin', []],
      ['a bad token', 401, '/files/a.bin', ['Authorization: Bearer not-a-valid-token-at-all']],
      ['an expired JWT', 401, '/files/a.bin', [`Authorization: Bearer ${expired}`]],
      ['a tampered presigned URL', 403, tampered, []],
      ['an unknown route', 404, '/nowhere', [bearer('alice')]],
      ['If-None-Match: * on an existing name', 412, '/files/exists.bin', [bearer('alice'), 'If-None-Match: *']],
      ['If-Match with a stale ETag', 412, '/files/exists.bin', [bearer('alice'), 'If-Match: "0000"']],
      ['over MAX_UPLOAD_BYTES', 413, '/files/a.bin', [bearer('alice')]],
      ['over the JWT max_bytes claim', 413, '/files/a.bin', [`Authorization: Bearer ${smallCaller}`]],
      ['the wrong type for a presigned URL', 415, typed, ['Content-Type: image/gif']],
      ['an unknown expectation', 417, '/files/a.bin', [bearer('alice')]],
      ['an invalid name', 400, '/files/a/../b', [bearer('alice')]],
      ['a malformed Content-Digest', 400, '/files/a.bin', [bearer('alice'), 'Content-Digest: sha-256=nope']]
    ]
    for (const [what, status, path, lines] of cases) {
      const length = status === 413 && what.includes('MAX') ? 5 * 1024 * 1024 : 2000
      const expect = status === 417 ? 'Expect: a-pony' : 'Expect: 100-continue'
      const result = await exchange(port, {
        head: requestHead('PUT', path, [`Content-Length: ${length}`, expect, ...lines]),
        body: Buffer.alloc(length)
      })
      t.equal(result.status, status, what)
      t.same(result.informational, [], `${what}: no 100`)
      t.equal(result.bodyBytesWritten, 0, `${what}: no body byte sent`)
      const error = json(result) as Record<string, unknown>
      t.same(Object.keys(error).sort(), ['code', 'error', 'message', 'statusCode'], `${what}: Fastify's error shape`)
      t.equal(error.statusCode, status)
      t.match(error.code, /^UPFRONT_/, `${what}: ${String(error.code)}`)
    }

    // 507: the declared size is more than the disk has free.
    const huge = await exchange(port, {
      head: requestHead('PUT', '/files/huge.bin', ['Content-Length: 1000000000000000', 'Expect: 100-continue', bearer('alice')])
    })
    t.equal(huge.status, 413, 'the upload limit comes first')
    // Disks have a free space to compare with; buckets do not.
    if (backend === 'disk') {
      const { port: roomy } = await startService(t, { MAX_UPLOAD_BYTES: String(Number.MAX_SAFE_INTEGER) })
      const full = await exchange(roomy, {
        head: requestHead('PUT', '/files/huge.bin', ['Content-Length: 1000000000000000', 'Expect: 100-continue', bearer('alice')])
      })
      t.equal(full.status, 507)
      t.equal(full.bodyBytesWritten, 0)
      t.match(json(full), { code: 'UPFRONT_INSUFFICIENT_STORAGE', message: /declares 1000000000000000 bytes but only \d+ bytes of storage are free/ })
    }

    // Each refusal once, under one reason: every body limit is the plugin's.
    t.same(app.upfront.stats.refused, { 401: 3, 403: 1, 404: 1, 412: 2, 'too-large': 3, 415: 1, expectation: 1, 400: 2 })
  })
}

t.test('under pressure, new uploads get 503 with Retry-After before their body; /healthz still answers', async (t) => {
  const { port } = await startService(t, { MAX_EVENT_LOOP_DELAY_MS: '50' })
  // Blocks the event loop long enough for the sampler to see it.
  const until = Date.now() + 1500
  while (Date.now() < until) { /* busy */ }
  await new Promise((resolve) => setTimeout(resolve, 20))
  const refused = await exchange(port, {
    head: requestHead('PUT', '/files/a.bin', [bearer('alice'), 'Content-Length: 100000', 'Expect: 100-continue']),
    body: Buffer.alloc(100000)
  })
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '5')
  t.equal(refused.bodyBytesWritten, 0, 'before the body')
  t.same(json(refused), {
    statusCode: 503,
    code: 'UPFRONT_OVERLOADED',
    error: 'Service Unavailable',
    message: 'This server is overloaded and refused the request before its body; retry after the delay in Retry-After'
  })
  t.equal((await exchange(port, { head: requestHead('GET', '/healthz') })).status, 200, 'alive')
})

t.test('MAX_RSS_BYTES alone sheds load too; with both limits at 0 nothing is shed', async (t) => {
  // Any process is over one byte of resident memory, from the first sample (after a second).
  const { port } = await startService(t, { MAX_EVENT_LOOP_DELAY_MS: '0', MAX_RSS_BYTES: '1' })
  await new Promise((resolve) => setTimeout(resolve, 1200))
  const refused = await exchange(port, {
    head: requestHead('PUT', '/files/a.bin', [bearer('alice'), 'Content-Length: 100000', 'Expect: 100-continue']),
    body: Buffer.alloc(100000)
  })
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '5')
  t.equal(refused.bodyBytesWritten, 0, 'before the body')
  t.match(json(refused), { code: 'UPFRONT_OVERLOADED' })
  t.equal((await exchange(port, { head: requestHead('GET', '/healthz') })).status, 200, 'alive')

  const unbounded = await startService(t, { MAX_EVENT_LOOP_DELAY_MS: '0', MAX_RSS_BYTES: '0' })
  t.equal(unbounded.app.hasDecorator('isUnderPressure'), false, 'no load shedding installed')
  const until = Date.now() + 1500
  while (Date.now() < until) { /* busy: a delay that would shed load under any limit */ }
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal((await putFile(unbounded.port, '/files/a.bin', Buffer.from('stored'))).status, 201, 'an upload is taken whatever the delay')
})
