// An anonymous upload over the global limit got 413 (the size check ran
// before authentication), and a caller's own limit had its own mechanism
// and code (declared: UPFRONT_BODY_TOO_LARGE, chunked: UPFRONT_UPLOAD_TOO_LARGE).
// Now: who before how big, and one limit with one code, declared or streamed.
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { signUpload } from '../../plugins/auth/index.js'
import { JWT_SECRET, PRESIGN_SECRET, bearer, startService } from '../helpers/service.js'
import { exchange, json } from '../helpers/wire.js'

const MiB = 1024 * 1024

t.test('without valid credentials: 401 whatever the body declares, before the body', async (t) => {
  const { port, app } = await startService(t, { MAX_UPLOAD_BYTES: String(MiB) })
  for (const [what, framing] of [['declared 10 MiB', `Content-Length: ${10 * MiB}`], ['chunked', 'Transfer-Encoding: chunked']] as const) {
    for (const credentials of [[], ['Authorization: Bearer not-a-valid-token-at-all']]) {
      const result = await exchange(port, {
        head: ['PUT /files/big.bin HTTP/1.1', 'Host: x', 'Expect: 100-continue', framing, ...credentials].join('\r\n'),
        body: Buffer.alloc(2 * MiB),
        chunked: framing.startsWith('Transfer')
      })
      t.equal(result.status, 401, `${what}, ${credentials.length === 0 ? 'no token' : 'a bad token'}`)
      t.same(result.informational, [], 'no 100')
      t.equal(result.bodyBytesWritten, 0, 'no body byte')
    }
  }
  t.same(app.upfront.stats.refused, { 401: 4 }, 'counted once each, as 401s')
})

t.test('a caller\'s own limit: 413 naming it, one code, declared or streamed, before or as the body comes', async (t) => {
  const { port, app } = await startService(t, { MAX_UPLOAD_BYTES: String(10 * MiB) })
  const token = createSigner({ key: JWT_SECRET, expiresIn: 60_000 })({ sub: 'carol', max_bytes: 1000 })
  const grant = signUpload({ owner: 'alice', name: 'p.bin', maxBytes: 2000, expiresAt: Math.floor(Date.now() / 1000) + 60 }, PRESIGN_SECRET)
  const cases = [
    ['the JWT claim', '/files/c.bin', [`Authorization: Bearer ${token}`], 1000, 'that your token allows'],
    ['the presigned grant', grant, [], 2000, 'that this presigned URL allows'],
    ['MAX_UPLOAD_BYTES', '/files/m.bin', [bearer('alice')], 10 * MiB, 'of this route']
  ] as const
  for (const [what, path, lines, limit, source] of cases) {
    const declared = await exchange(port, {
      head: [`PUT ${path} HTTP/1.1`, 'Host: x', 'Expect: 100-continue', `Content-Length: ${limit + 1}`, ...lines].join('\r\n'),
      body: Buffer.alloc(limit + 1)
    })
    t.equal(declared.status, 413, `${what}, declared`)
    t.equal(declared.bodyBytesWritten, 0, `${what}, declared: before the body`)
    t.same(json(declared), {
      statusCode: 413,
      code: 'UPFRONT_BODY_TOO_LARGE',
      error: 'Payload Too Large',
      message: `Content-Length of ${limit + 1} bytes exceeds the ${limit}-byte limit ${source}; send a smaller body`
    })
    const streamed = await exchange(port, {
      head: [`PUT ${path} HTTP/1.1`, 'Host: x', 'Transfer-Encoding: chunked', ...lines].join('\r\n'),
      body: Buffer.alloc(limit + 64 * 1024),
      chunked: true,
      send: 'now'
    })
    t.equal(streamed.status, 413, `${what}, streamed`)
    t.same(json(streamed), {
      statusCode: 413,
      code: 'UPFRONT_BODY_TOO_LARGE',
      error: 'Payload Too Large',
      message: `The request body exceeds the ${limit}-byte limit ${source}; send a smaller body`
    })
  }
  t.same(app.upfront.stats.refused, { 'too-large': 3, 'too-large-while-streaming': 3 }, 'each refusal once, under the limit\'s reasons')
})
