// Preconditions were honoured on PUT only: a DELETE with a failing If-Match
// deleted the file, a GET with one got the file, a form ignored
// If-None-Match: * and replaced an existing file, and a known path with
// another method answered 404. RFC 9110 §13.1, §13.2.2, §15.5.6.
import t from 'tap'
import { bearer, startService } from '../helpers/service.js'
import { exchange, json } from '../helpers/wire.js'
import type { Exchange } from '../helpers/wire.js'

const PAST = 'Sat, 01 Jan 2000 00:00:00 GMT'
const FUTURE = 'Fri, 01 Jan 2100 00:00:00 GMT'

async function request (port: number, method: string, path: string, lines: string[] = [], body?: Buffer): Promise<Exchange> {
  const framing = body === undefined ? [] : [`Content-Length: ${body.length}`]
  return await exchange(port, { head: [`${method} ${path} HTTP/1.1`, 'Host: x', bearer('alice'), ...framing, ...lines].join('\r\n'), body, send: 'now' })
}

t.test('DELETE, GET and HEAD hold to If-Match and If-Unmodified-Since', async (t) => {
  const { port } = await startService(t)
  const stored = await request(port, 'PUT', '/files/kept.txt', [], Buffer.from('v1'))
  const etag = stored.headers.etag as string

  for (const method of ['GET', 'HEAD', 'DELETE']) {
    for (const [what, line] of [['a stale If-Match', 'If-Match: "0000"'], ['an old If-Unmodified-Since', `If-Unmodified-Since: ${PAST}`]] as const) {
      const refused = await request(port, method, '/files/kept.txt', [line])
      t.equal(refused.status, 412, `${method} with ${what}`)
      if (method !== 'HEAD') t.match(json(refused), { code: 'UPFRONT_PRECONDITION_FAILED' })
    }
  }
  t.equal((await request(port, 'GET', '/files/kept.txt')).body, 'v1', 'the file is still there')
  t.equal((await request(port, 'GET', '/files/kept.txt', [`If-Match: ${etag}`, `If-Unmodified-Since: ${FUTURE}`])).status, 200)
  // If-Match wins over If-Unmodified-Since (§13.2.2 step 2 only without If-Match).
  t.equal((await request(port, 'GET', '/files/kept.txt', [`If-Match: ${etag}`, `If-Unmodified-Since: ${PAST}`])).status, 200)
  t.equal((await request(port, 'GET', '/files/missing.txt', ['If-Match: *'])).status, 412, 'If-Match on a missing file')

  const deleted = await request(port, 'DELETE', '/files/kept.txt', [`If-Match: ${etag}`])
  t.equal(deleted.status, 204, 'a matching If-Match deletes')
  t.equal((await request(port, 'GET', '/files/kept.txt')).status, 404)
})

t.test('PUT holds to If-Unmodified-Since before the body', async (t) => {
  const { port } = await startService(t)
  await request(port, 'PUT', '/files/a.txt', [], Buffer.from('v1'))
  const refused = await exchange(port, {
    head: ['PUT /files/a.txt HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Length: 100000', 'Expect: 100-continue', `If-Unmodified-Since: ${PAST}`].join('\r\n'),
    body: Buffer.alloc(100000)
  })
  t.equal(refused.status, 412)
  t.equal(refused.bodyBytesWritten, 0)
})

/** A multipart body with these files, the second one large. */
function formOf (files: Array<{ filename: string, data: Buffer }>): Buffer {
  const chunks: Buffer[] = []
  for (const { filename, data } of files) chunks.push(Buffer.from(`--b\r\nContent-Disposition: form-data; name="f"; filename="${filename}"\r\n\r\n`), data, Buffer.from('\r\n'))
  chunks.push(Buffer.from('--b--\r\n'))
  return Buffer.concat(chunks)
}

t.test('a form holds its preconditions for each file part, refused when the part\'s headers arrive', async (t) => {
  const { port, files } = await startService(t)
  await request(port, 'PUT', '/files/taken.txt', [], Buffer.from('original'))
  const before = files().length
  const big = Buffer.alloc(32 * 1024 * 1024, 7)
  const body = formOf([{ filename: 'new.txt', data: Buffer.from('new') }, { filename: 'taken.txt', data: big }])
  const refused = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=b', `Content-Length: ${body.length}`, 'Expect: 100-continue', 'If-None-Match: *'].join('\r\n'),
    body,
    chunkSize: 64 * 1024
  })
  t.equal(refused.status, 412)
  t.match(json(refused), { code: 'UPFRONT_PRECONDITION_FAILED', message: /If-None-Match: \*/ })
  t.ok(refused.bodyBytesBeforeAnswer < body.length / 2, `refused at the part's headers, not after its body (${refused.bodyBytesBeforeAnswer} of ${body.length} bytes sent)`)
  t.equal((await request(port, 'GET', '/files/taken.txt')).body, 'original', 'the existing file is kept')
  t.equal((await request(port, 'GET', '/files/new.txt')).status, 404, 'all or nothing: the other file is not stored')
  t.equal(files().length, before, 'no temporary file left')

  const created = formOf([{ filename: 'fresh.txt', data: Buffer.from('fresh') }])
  const accepted = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=b', `Content-Length: ${created.length}`, 'If-None-Match: *'].join('\r\n'),
    body: created,
    send: 'now'
  })
  t.equal(accepted.status, 201, 'a new name passes')
})

t.test('a known path with a method it does not take: 405 with Allow, before the body', async (t) => {
  const { port } = await startService(t)
  const cases = [
    ['PATCH', '/files/a.txt', 'GET, HEAD, PUT, DELETE'],
    ['POST', '/files/a.txt', 'GET, HEAD, PUT, DELETE'],
    ['PUT', '/files', 'GET, HEAD, POST'],
    ['DELETE', '/files', 'GET, HEAD, POST'],
    ['GET', '/presign', 'POST']
  ] as const
  for (const [method, path, allow] of cases) {
    const result = await exchange(port, {
      head: [`${method} ${path} HTTP/1.1`, 'Host: x', bearer('alice'), 'Content-Length: 5000000', 'Expect: 100-continue'].join('\r\n'),
      body: Buffer.alloc(5000000)
    })
    t.equal(result.status, 405, `${method} ${path}`)
    t.equal(result.headers.allow, allow)
    t.equal(result.bodyBytesWritten, 0, 'no body byte')
    t.same(json(result), {
      statusCode: 405,
      code: 'UPFRONT_METHOD_NOT_ALLOWED',
      error: 'Method Not Allowed',
      message: `${method} is not allowed on ${JSON.stringify(path)}; use one of: ${allow}`
    })
  }
  const anonymous = await exchange(port, { head: ['PATCH /files/a.txt HTTP/1.1', 'Host: x'].join('\r\n') })
  t.equal(anonymous.status, 401, 'who before what: credentials first')
  t.equal((await request(port, 'GET', '/nowhere')).status, 404, 'an unknown path is still a 404')
})
