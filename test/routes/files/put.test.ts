// PUT /files/<name> (routes/files/put.ts): the raw body streamed to
// storage under a checked name, its digests verified, its preconditions
// checked before the body and again at the commit; nothing kept from an
// upload that fails or is cut off.
import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { requestHead } from '../../helpers/http.js'
import { keysUnder } from '../../helpers/s3.js'
import { bearer, getFile, putFile, startService } from '../../helpers/service.js'
import { json } from '../../helpers/wire.js'

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

t.test('PUT stores the bytes and answers with their metadata; another PUT replaces them', async (t) => {
  const { port, files } = await startService(t)
  const body = Buffer.from('hello, durable world\n'.repeat(1000))
  const created = await putFile(port, '/files/docs/hello.txt', body, [bearer('alice'), 'Content-Type: text/plain'])
  t.same(created.informational, ['HTTP/1.1 100 Continue'])
  t.equal(created.status, 201)
  const info = json(created) as Record<string, unknown>
  t.match(info, { name: 'docs/hello.txt', size: body.length, sha256: sha256(body), contentType: 'text/plain', etag: `"${sha256(body)}"` })
  t.ok(!Number.isNaN(Date.parse(info.createdAt as string)))
  t.same(Object.keys(info).sort(), ['contentType', 'createdAt', 'etag', 'name', 'sha256', 'size'])
  t.equal(created.headers.location, '/files/docs/hello.txt')
  t.equal(created.headers.etag, `"${sha256(body)}"`)
  t.equal(created.headers['repr-digest'], `sha-256=:${createHash('sha256').update(body).digest('base64')}:`)
  t.notOk(files().some((file) => file.includes('hello')), 'the name is never a path')

  // Overwrite by default.
  const replaced = await putFile(port, '/files/docs/hello.txt', Buffer.from('v2'))
  t.equal(replaced.status, 201)
  t.equal((await getFile(port, '/files/docs/hello.txt')).body, 'v2')
})

t.test('names: traversal impossible, limits enforced, unicode kept', async (t) => {
  const { port } = await startService(t)
  const refused = [
    '/files/a/../b', '/files/%2e%2e/b', '/files/./a', '/files/a//b', '/files/a/', '/files/a%5Cb', '/files/a%00b',
    '/files/a%0Ab', '/files/a%7Fb', `/files/${'x'.repeat(256)}`, `/files/${Array(300).fill('abcd').join('/')}`
  ]
  for (const path of refused) {
    const result = await putFile(port, path, Buffer.from('x'))
    t.equal(result.status, 400, path.slice(0, 40))
    t.equal((json(result) as { code: string }).code, 'UPFRONT_INVALID_NAME')
  }
  const unicode = 'été/日本語 ファイル.txt'
  const path = '/files/' + unicode.split('/').map(encodeURIComponent).join('/')
  const created = await putFile(port, path, Buffer.from('unicode'))
  t.equal(created.status, 201)
  t.equal((json(created) as { name: string }).name, unicode)
  const read = await getFile(port, path)
  t.equal(read.body, 'unicode')
  t.equal(read.headers['content-disposition'], `attachment; filename="___ ____.txt"; filename*=UTF-8''${encodeURIComponent('日本語 ファイル.txt')}`)
})

t.test('conditional PUT: create-only, safe replace, strong comparison', async (t) => {
  const { port } = await startService(t)
  const first = await putFile(port, '/files/c.txt', Buffer.from('one'), [bearer('alice'), 'If-None-Match: *'])
  t.equal(first.status, 201, 'create-only succeeds on a new name')
  const etag = first.headers.etag as string
  const safe = await putFile(port, '/files/c.txt', Buffer.from('two'), [bearer('alice'), `If-Match: ${etag}`])
  t.equal(safe.status, 201, 'safe replace with the current ETag')
  const stale = await putFile(port, '/files/c.txt', Buffer.from('three'), [bearer('alice'), `If-Match: ${etag}`])
  t.equal(stale.status, 412, 'the old ETag no longer matches')
  t.equal(stale.bodyBytesWritten, 0)
  const weak = await putFile(port, '/files/c.txt', Buffer.from('three'), [bearer('alice'), `If-Match: W/${safe.headers.etag as string}`])
  t.equal(weak.status, 412, 'If-Match uses the strong comparison')
  const malformed = await putFile(port, '/files/c.txt', Buffer.from('x'), [bearer('alice'), 'If-Match: nope'])
  t.equal(malformed.status, 400)
  t.match(json(malformed), { code: 'UPFRONT_INVALID_HEADER', message: /If-Match must be/ })
})

t.test('integrity: Content-Digest and Content-MD5 are verified, a mismatch stores nothing', async (t) => {
  const { port, files } = await startService(t)
  const body = Buffer.from('integrity matters')
  const goodDigest = `sha-256=:${createHash('sha256').update(body).digest('base64')}:`
  const goodMd5 = createHash('md5').update(body).digest('base64')
  const ok = await putFile(port, '/files/ok.txt', body, [bearer('alice'), `Content-Digest: sha-512=:AAAA:, ${goodDigest}`, `Content-MD5: ${goodMd5}`])
  t.equal(ok.status, 201)
  // Only sha-256 is checked (RFC 9530 §2 lets a recipient ignore the others): a digest of another algorithm alone is no check.
  const otherOnly = await putFile(port, '/files/other.txt', body, [bearer('alice'), 'Content-Digest: sha-512=:AAAA:'])
  t.equal(otherOnly.status, 201, 'a sha-512 member alone is ignored, however wrong')
  t.equal((await getFile(port, '/files/other.txt')).body, 'integrity matters')
  const before = files().length

  const badDigest = await putFile(port, '/files/bad.txt', body, [bearer('alice'), `Content-Digest: sha-256=:${createHash('sha256').update('other').digest('base64')}:`])
  t.equal(badDigest.status, 400)
  t.same(json(badDigest), { statusCode: 400, code: 'UPFRONT_DIGEST_MISMATCH', error: 'Bad Request', message: 'The body does not match its Content-Digest; nothing was stored: send the file again' })
  const badMd5 = await putFile(port, '/files/bad.txt', body, [bearer('alice'), `Content-MD5: ${createHash('md5').update('other').digest('base64')}`])
  t.equal(badMd5.status, 400)
  t.match(json(badMd5), { message: /Content-MD5/ })
  t.equal((await getFile(port, '/files/bad.txt')).status, 404)
  t.equal(files().length, before, 'no file and no temporary file left')

  for (const header of ['Content-MD5: short', 'Content-Digest: sha-256=:AAAA:']) {
    const malformed = await putFile(port, '/files/bad.txt', body, [bearer('alice'), header])
    t.equal(malformed.status, 400, header)
    t.equal(malformed.bodyBytesWritten, 0)
  }
})

t.test('integrity on S3: a mismatch stores nothing, whether the body fits one PutObject or takes a multipart upload', async (t) => {
  const { port, prefix } = await startService(t, { MAX_UPLOAD_BYTES: String(16 * 1024 * 1024) }, 's3')
  for (const size of [1000, 12 * 1024 * 1024]) {
    const body = Buffer.alloc(size, size % 251)
    const badMd5 = await putFile(port, `/files/bad-${size}.bin`, body, [bearer('alice'), `Content-MD5: ${createHash('md5').update('other').digest('base64')}`])
    t.equal(badMd5.status, 400, `${size} bytes, a wrong Content-MD5: 400`)
    const badDigest = await putFile(port, `/files/bad-${size}.bin`, body, [bearer('alice'), `Content-Digest: sha-256=:${createHash('sha256').update('other').digest('base64')}:`])
    t.equal(badDigest.status, 400, `${size} bytes, a wrong Content-Digest: 400`)
    t.equal((await getFile(port, `/files/bad-${size}.bin`)).status, 404)
  }
  t.same(await keysUnder(prefix as string), [], 'no object, no record, no unfinished multipart upload')
})

t.test('an upload cut off at any point leaves no file and no temporary file', async (t) => {
  const { port, files } = await startService(t)
  const size = 4 * 1024 * 1024
  for (const offset of [0, 1, 64 * 1024, size / 2, size - 1]) {
    const socket = connect(port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(requestHead('PUT', '/files/cut.bin', [`Content-Length: ${size}`, bearer('alice')]) + '\r\n\r\n')
    if (offset > 0) await new Promise((resolve) => socket.write(Buffer.alloc(offset), resolve))
    await sleep(50)
    socket.destroy()
    await sleep(100)
    t.same(files(), [], `cut at ${offset}: no file, no temporary file`)
  }
  t.equal((await getFile(port, '/files/cut.bin')).status, 404)

  // Still up: the whole upload, under the same name, is stored and read back.
  const whole = Buffer.alloc(size, 'w')
  const stored = await putFile(port, '/files/cut.bin', whole)
  t.equal(stored.status, 201, 'the server is still up: a whole upload after the cut ones is stored')
  const read = await getFile(port, '/files/cut.bin')
  t.equal(read.status, 200)
  t.equal(read.body, whole.toString(), 'and read back whole')
})
