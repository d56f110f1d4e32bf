// CORS: web pages on other origins calling the service, refusals included.
import t from 'tap'
import type { Test } from 'tap'
import { signUpload } from '../../plugins/auth/index.js'
import { requestHead } from '../helpers/http.js'
import { exchange, json } from '../helpers/wire.js'
import type { Exchange } from '../helpers/wire.js'
import { bearer, PRESIGN_SECRET, startService } from '../helpers/service.js'

const APP = 'https://app.example'
const ORIGIN = `Origin: ${APP}`

function allowedFor (t: Test, result: Exchange, what: string): void {
  t.equal(result.headers['access-control-allow-origin'], APP, `${what}: the page may read the answer`)
  t.match(result.headers.vary, /\borigin\b/i, `${what}: Vary: Origin`)
  t.notOk('access-control-allow-credentials' in result.headers, `${what}: no credentialed requests`)
}

t.test('a preflight is answered without a token, with what a page may send', async (t) => {
  const { port } = await startService(t, { CORS_ORIGINS: `${APP},http://localhost:5173` })
  const preflight = await exchange(port, {
    head: requestHead('OPTIONS', '/files/photos/a.png', [ORIGIN, 'Access-Control-Request-Method: PUT',
      'Access-Control-Request-Headers: authorization, content-type, content-digest'])
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers['content-length'], '0')
  allowedFor(t, preflight, 'preflight')
  t.same((preflight.headers['access-control-allow-methods'] ?? '').split(', '), ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'])
  t.same((preflight.headers['access-control-allow-headers'] ?? '').split(', '),
    ['Authorization', 'Content-Type', 'Content-Digest', 'Content-MD5', 'If-Match', 'If-None-Match', 'If-Modified-Since', 'If-Unmodified-Since', 'If-Range', 'Range'])
  t.equal(preflight.headers['access-control-max-age'], '600')
  t.equal(preflight.closedByServer, false, 'the connection stays open')

  const other = await exchange(port, {
    head: requestHead('OPTIONS', '/files/a.png', ['Origin: https://evil.example', 'Access-Control-Request-Method: PUT'])
  })
  t.equal(other.status, 204)
  t.notOk('access-control-allow-origin' in other.headers, 'an origin not listed is not allowed')

  const second = await exchange(port, {
    head: requestHead('OPTIONS', '/files', ['Origin: http://localhost:5173', 'Access-Control-Request-Method: POST'])
  })
  t.equal(second.headers['access-control-allow-origin'], 'http://localhost:5173', 'each listed origin')

  const plain = await exchange(port, { head: requestHead('OPTIONS', '/files/a.png') })
  t.equal(plain.status, 204, 'an OPTIONS without the preflight headers is answered alike')
  t.notOk('access-control-allow-origin' in plain.headers)
})

t.test('answers and refusals carry the CORS headers, and refusals still come before the body', async (t) => {
  const { port } = await startService(t, { CORS_ORIGINS: APP, MAX_UPLOAD_BYTES: '10000' })
  const body = Buffer.from('hello from a page')
  const created = await exchange(port, {
    head: requestHead('PUT', '/files/page.txt', [ORIGIN, bearer('alice'), 'Content-Type: text/plain', `Content-Length: ${body.length}`]),
    body,
    send: 'now'
  })
  t.equal(created.status, 201)
  allowedFor(t, created, '201')
  t.same((created.headers['access-control-expose-headers'] ?? '').split(', '),
    ['ETag', 'Last-Modified', 'Location', 'Accept-Ranges', 'Content-Range', 'Content-Disposition', 'Repr-Digest', 'WWW-Authenticate', 'Allow', 'Retry-After'])

  const read = await exchange(port, { head: requestHead('GET', '/files/page.txt', [ORIGIN, bearer('alice'), 'Range: bytes=0-4']) })
  t.equal(read.status, 206)
  t.equal(read.body, 'hello')
  allowedFor(t, read, '206')

  const refusals: Array<[string, string, string, string[], number]> = [
    ['401 no token', 'PUT', '/files/a.bin', ['Content-Length: 5000'], 401],
    ['413 too large', 'PUT', '/files/a.bin', [bearer('alice'), 'Content-Length: 10001'], 413],
    ['415 not a form', 'POST', '/files', [bearer('alice'), 'Content-Type: text/plain', 'Content-Length: 5000'], 415],
    ['412 exists', 'PUT', '/files/page.txt', [bearer('alice'), 'If-None-Match: *', 'Content-Length: 5000'], 412],
    ['404 no route', 'PUT', '/nowhere', [bearer('alice'), 'Content-Length: 5000'], 404]
  ]
  for (const [what, method, path, lines, status] of refusals) {
    const refused = await exchange(port, {
      head: requestHead(method, path, [...lines, ORIGIN, 'Expect: 100-continue']),
      body: Buffer.alloc(5000)
    })
    t.equal(refused.status, status, what)
    t.same(refused.informational, [], `${what}: no 100`)
    t.equal(refused.bodyBytesWritten, 0, `${what}: no body byte sent`)
    allowedFor(t, refused, what)
    t.match(json(refused), { statusCode: status, code: /^UPFRONT_|^FST_/ }, `${what}: the error a page can read`)
  }
  const unknown = await exchange(port, {
    head: requestHead('PUT', '/files/a.bin', [ORIGIN, bearer('alice'), 'Content-Length: 10', 'Expect: 200-ok'])
  })
  t.equal(unknown.status, 417)
  allowedFor(t, unknown, '417')

  // A browser sends head and body at once, never Expect: the 413 still reaches the page.
  const browser = await exchange(port, {
    head: requestHead('PUT', '/files/big.bin', [ORIGIN, bearer('alice'), 'Content-Length: 2000000']),
    body: Buffer.alloc(2_000_000),
    send: 'now'
  })
  t.equal(browser.status, 413)
  allowedFor(t, browser, '413 without Expect')

  const streamed = await exchange(port, {
    head: requestHead('PUT', '/files/chunked.bin', [ORIGIN, bearer('alice'), 'Transfer-Encoding: chunked', 'Expect: 100-continue']),
    body: Buffer.alloc(30_000),
    chunked: true,
    chunkSize: 4096,
    stopOnAnswer: false
  })
  t.equal(streamed.status, 413, 'a chunked body over the limit')
  allowedFor(t, streamed, '413 while streaming')
})

t.test('an OPTIONS with a body is held to the validator\'s rules like any request', async (t) => {
  const { port } = await startService(t, { CORS_ORIGINS: APP })
  const preflightHead = [ORIGIN, 'Access-Control-Request-Method: PUT']
  const declared = await exchange(port, {
    head: requestHead('OPTIONS', '/files/a.bin', [...preflightHead, 'Content-Length: 50000000']),
    body: Buffer.alloc(50_000_000),
    send: 'now'
  })
  t.equal(declared.status, 204)
  allowedFor(t, declared, 'a preflight with a declared body')
  t.equal(declared.headers.connection, 'close', 'a body too large to drain: the connection closes')
  t.equal(declared.closedByServer, true)
  const chunked = await exchange(port, {
    head: requestHead('OPTIONS', '/files/a.bin', [...preflightHead, 'Transfer-Encoding: chunked']),
    body: Buffer.alloc(1_000_000),
    chunked: true,
    send: 'now'
  })
  t.equal(chunked.status, 204)
  t.equal(chunked.closedByServer, true, 'a body of unknown length: the connection closes')
  const expecting = await exchange(port, { head: requestHead('OPTIONS', '/files/a.bin', [...preflightHead, 'Expect: something-else']) })
  t.equal(expecting.status, 417, 'an unsupported expectation, before CORS answers')
  allowedFor(t, expecting, '417 to an OPTIONS')
})

t.test('a URL that cannot be decoded gets a 400 a page can read', async (t) => {
  const { port } = await startService(t, { CORS_ORIGINS: APP })
  const bad = await exchange(port, { head: requestHead('GET', '/files/a%E0b?x=1', [ORIGIN, bearer('alice')]) })
  t.equal(bad.status, 400)
  allowedFor(t, bad, 'bad URL')
  t.same(json(bad), {
    statusCode: 400,
    code: 'UPFRONT_BAD_URL',
    error: 'Bad Request',
    message: 'The URL "/files/a%E0b" holds a malformed percent-encoding; encode each path segment with encodeURIComponent'
  })
  t.equal(bad.closedByServer, false, 'no body: the connection stays')
  const withBody = await exchange(port, {
    head: requestHead('PUT', '/files/a%ZZ', [ORIGIN, bearer('alice'), 'Content-Length: 5000000']),
    body: Buffer.alloc(5_000_000),
    send: 'now'
  })
  t.equal(withBody.status, 400)
  t.equal(withBody.headers.connection, 'close', 'its body is not read')
  t.equal(withBody.closedByServer, true)

  const plain = await startService(t)
  const noCors = await exchange(plain.port, {
    head: requestHead('PUT', '/files/%E0', [bearer('alice'), 'Transfer-Encoding: chunked']),
    body: Buffer.alloc(10),
    chunked: true,
    send: 'now'
  })
  t.equal(noCors.status, 400)
  t.match(json(noCors), { code: 'UPFRONT_BAD_URL' })
  t.notOk('access-control-allow-origin' in noCors.headers)
})

t.test('a presigned URL works from a page', async (t) => {
  const { port } = await startService(t, { CORS_ORIGINS: APP })
  const path = signUpload({ owner: 'alice', name: 'from-page.png', maxBytes: 100, contentType: 'image/png', expiresAt: Math.floor(Date.now() / 1000) + 60 }, PRESIGN_SECRET)
  const preflight = await exchange(port, {
    head: requestHead('OPTIONS', path, [ORIGIN, 'Access-Control-Request-Method: PUT', 'Access-Control-Request-Headers: content-type'])
  })
  t.equal(preflight.status, 204)
  allowedFor(t, preflight, 'preflight of a presigned URL')
  const uploaded = await exchange(port, {
    head: requestHead('PUT', path, [ORIGIN, 'Content-Type: image/png', 'Content-Length: 50']),
    body: Buffer.alloc(50, 1),
    send: 'now'
  })
  t.equal(uploaded.status, 201)
  allowedFor(t, uploaded, 'presigned PUT')
  const tampered = await exchange(port, {
    head: requestHead('PUT', path.replace('from-page', 'from-elsewhere'), [ORIGIN, 'Content-Type: image/png', 'Content-Length: 50', 'Expect: 100-continue']),
    body: Buffer.alloc(50, 1)
  })
  t.equal(tampered.status, 403)
  t.equal(tampered.bodyBytesWritten, 0)
  allowedFor(t, tampered, 'tampered presigned PUT')
})

t.test('CORS_ORIGINS=* allows any page, with a fixed header', async (t) => {
  const { port } = await startService(t, { CORS_ORIGINS: '*', MAX_UPLOAD_BYTES: '100' })
  const answer = await exchange(port, { head: requestHead('GET', '/files', ['Origin: https://anywhere.example', bearer('bob')]) })
  t.equal(answer.status, 200)
  t.equal(answer.headers['access-control-allow-origin'], '*')
  t.notOk('vary' in answer.headers, 'the same answer for every origin')
  const refused = await exchange(port, {
    head: requestHead('PUT', '/files/a', ['Origin: https://anywhere.example', bearer('bob'), 'Content-Length: 101', 'Expect: 100-continue'])
  })
  t.equal(refused.status, 413)
  t.equal(refused.headers['access-control-allow-origin'], '*', 'on the validator\'s refusals too')
  t.notOk('vary' in refused.headers)
  // Refused before CORS's own hook runs: labelled by the error handler alike.
  const early = await exchange(port, {
    head: requestHead('PUT', '/files/a', ['Origin: https://anywhere.example', bearer('bob'), 'Content-Length: 10', 'Expect: a-pony'])
  })
  t.equal(early.status, 417)
  t.equal(early.headers['access-control-allow-origin'], '*', 'on a refusal before CORS runs')
  t.notOk('vary' in early.headers)
  t.same((early.headers['access-control-expose-headers'] ?? '').split(', '),
    ['ETag', 'Last-Modified', 'Location', 'Accept-Ranges', 'Content-Range', 'Content-Disposition', 'Repr-Digest', 'WWW-Authenticate', 'Allow', 'Retry-After'])
})

t.test('a refusal to a page on an origin not listed, or to no page, is not readable cross-origin', async (t) => {
  const { port } = await startService(t, { CORS_ORIGINS: APP, MAX_UPLOAD_BYTES: '100' })
  for (const origin of ['Origin: https://evil.example', null]) {
    const refused = await exchange(port, {
      head: requestHead('PUT', '/files/a', [...(origin === null ? [] : [origin]), bearer('bob'), 'Content-Length: 101', 'Expect: 100-continue'])
    })
    t.equal(refused.status, 413)
    t.notOk('access-control-allow-origin' in refused.headers, String(origin))
    t.equal(refused.headers.vary, 'Origin', 'the answer depends on the origin')
  }
})

t.test('without CORS_ORIGINS no page on another origin may call the service', async (t) => {
  const { port } = await startService(t)
  const answer = await exchange(port, { head: requestHead('GET', '/files', [ORIGIN, bearer('bob')]) })
  t.equal(answer.status, 200)
  t.notOk('access-control-allow-origin' in answer.headers)
  const preflight = await exchange(port, {
    head: requestHead('OPTIONS', '/files/a.png', [ORIGIN, 'Access-Control-Request-Method: PUT'])
  })
  t.notOk('access-control-allow-origin' in preflight.headers)
  t.equal(preflight.status, 401, 'an OPTIONS is a request like any other, and needs a token')
})
