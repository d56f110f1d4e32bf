// The upload service end to end, over real sockets, on real files.
import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { signUpload } from '../../plugins/auth/index.js'
import { exchange, json } from '../helpers/wire.js'
import type { Exchange } from '../helpers/wire.js'
import { bearer, JWT_SECRET, PRESIGN_SECRET, startService } from '../helpers/service.js'

function request (method: string, path: string, lines: string[]): string {
  return [`${method} ${path} HTTP/1.1`, 'Host: x', ...lines].join('\r\n')
}

async function put (port: number, path: string, body: Buffer, lines: string[] = [bearer('alice')]): Promise<Exchange> {
  return await exchange(port, { head: request('PUT', path, [`Content-Length: ${body.length}`, 'Expect: 100-continue', ...lines]), body })
}

async function get (port: number, path: string, lines: string[] = [bearer('alice')]): Promise<Exchange> {
  return await exchange(port, { head: request('GET', path, lines) })
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

t.test('PUT stores the bytes, GET gives them back with their metadata', async (t) => {
  const { port, files } = await startService(t)
  const body = Buffer.from('hello, durable world\n'.repeat(1000))
  const created = await put(port, '/files/docs/hello.txt', body, [bearer('alice'), 'Content-Type: text/plain'])
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

  const read = await get(port, '/files/docs/hello.txt')
  t.equal(read.status, 200)
  t.equal(read.body, body.toString())
  t.equal(read.headers['content-type'], 'text/plain')
  t.equal(read.headers['content-length'], String(body.length))
  t.equal(read.headers.etag, `"${sha256(body)}"`)
  t.equal(read.headers['accept-ranges'], 'bytes')
  t.equal(read.headers['content-disposition'], 'attachment; filename="hello.txt"; filename*=UTF-8\'\'hello.txt')
  t.equal(read.headers['x-content-type-options'], 'nosniff')
  t.equal(read.headers['last-modified'], new Date(info.createdAt as string).toUTCString())
  t.equal(read.headers['repr-digest'], created.headers['repr-digest'])

  const head = await exchange(port, { head: request('HEAD', '/files/docs/hello.txt', [bearer('alice')]), closeWaitMs: 50 })
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], String(body.length))
  t.equal(head.body, '')

  // Overwrite by default.
  const replaced = await put(port, '/files/docs/hello.txt', Buffer.from('v2'))
  t.equal(replaced.status, 201)
  t.equal((await get(port, '/files/docs/hello.txt')).body, 'v2')
})

t.test('every refusal comes before the body: no 100, no body byte', async (t) => {
  const { port, app } = await startService(t, { MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) })
  await put(port, '/files/exists.bin', Buffer.from('x'))
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
      head: request('PUT', path, [`Content-Length: ${length}`, expect, ...lines]),
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
    head: request('PUT', '/files/huge.bin', ['Content-Length: 1000000000000000', 'Expect: 100-continue', bearer('alice')])
  })
  t.equal(huge.status, 413, 'the upload limit comes first')
  const { port: roomy } = await startService(t, { MAX_UPLOAD_BYTES: String(Number.MAX_SAFE_INTEGER) })
  const full = await exchange(roomy, {
    head: request('PUT', '/files/huge.bin', ['Content-Length: 1000000000000000', 'Expect: 100-continue', bearer('alice')])
  })
  t.equal(full.status, 507)
  t.equal(full.bodyBytesWritten, 0)
  t.match(json(full), { code: 'UPFRONT_INSUFFICIENT_STORAGE', message: /declares 1000000000000000 bytes but only \d+ bytes of storage are free/ })

  // Each refusal once, under one reason: every body limit is the plugin's.
  t.same(app.upfront.stats.refused, { 401: 3, 403: 1, 404: 1, 412: 2, 'too-large': 3, 415: 1, expectation: 1, 400: 2 })
})

t.test('names: traversal impossible, limits enforced, unicode kept', async (t) => {
  const { port } = await startService(t)
  const refused = [
    '/files/a/../b', '/files/%2e%2e/b', '/files/./a', '/files/a//b', '/files/a/', '/files/a%5Cb', '/files/a%00b',
    '/files/a%0Ab', '/files/a%7Fb', `/files/${'x'.repeat(256)}`, `/files/${Array(300).fill('abcd').join('/')}`
  ]
  for (const path of refused) {
    const result = await put(port, path, Buffer.from('x'))
    t.equal(result.status, 400, path.slice(0, 40))
    t.equal((json(result) as { code: string }).code, 'UPFRONT_INVALID_NAME')
  }
  const unicode = 'été/日本語 ファイル.txt'
  const path = '/files/' + unicode.split('/').map(encodeURIComponent).join('/')
  const created = await put(port, path, Buffer.from('unicode'))
  t.equal(created.status, 201)
  t.equal((json(created) as { name: string }).name, unicode)
  const read = await get(port, path)
  t.equal(read.body, 'unicode')
  t.equal(read.headers['content-disposition'], `attachment; filename="___ ____.txt"; filename*=UTF-8''${encodeURIComponent('日本語 ファイル.txt')}`)
})

t.test('an HTML file is served as an attachment that cannot run in the origin', async (t) => {
  const { port } = await startService(t)
  await put(port, '/files/page.html', Buffer.from('<script>alert(1)</script>'), [bearer('alice'), 'Content-Type: text/html'])
  const read = await get(port, '/files/page.html')
  t.equal(read.headers['content-type'], 'text/html')
  t.match(read.headers['content-disposition'], /^attachment;/)
  t.equal(read.headers['x-content-type-options'], 'nosniff')
  t.equal(read.headers['content-security-policy'], "default-src 'none'; sandbox")
})

t.test('files belong to their uploader: others get 404', async (t) => {
  const { port } = await startService(t)
  await put(port, '/files/secret.txt', Buffer.from('alice only'))
  for (const [method, path] of [['GET', '/files/secret.txt'], ['HEAD', '/files/secret.txt'], ['DELETE', '/files/secret.txt']]) {
    const result = await exchange(port, { head: request(method as string, path as string, [bearer('bob')]), closeWaitMs: 50 })
    t.equal(result.status, 404, `${method as string} by bob`)
  }
  const ifMatch = await put(port, '/files/secret.txt', Buffer.from('bob was here'), [bearer('bob'), 'If-Match: *'])
  t.equal(ifMatch.status, 412, 'bob cannot replace it either')
  const list = await get(port, '/files', [bearer('bob')])
  t.same(json(list), { files: [], nextCursor: null })
  t.equal((await get(port, '/files/secret.txt')).body, 'alice only')
})

t.test('conditional requests', async (t) => {
  const { port } = await startService(t)
  const first = await put(port, '/files/c.txt', Buffer.from('one'), [bearer('alice'), 'If-None-Match: *'])
  t.equal(first.status, 201, 'create-only succeeds on a new name')
  const etag = first.headers.etag as string
  const safe = await put(port, '/files/c.txt', Buffer.from('two'), [bearer('alice'), `If-Match: ${etag}`])
  t.equal(safe.status, 201, 'safe replace with the current ETag')
  const stale = await put(port, '/files/c.txt', Buffer.from('three'), [bearer('alice'), `If-Match: ${etag}`])
  t.equal(stale.status, 412, 'the old ETag no longer matches')
  t.equal(stale.bodyBytesWritten, 0)
  const weak = await put(port, '/files/c.txt', Buffer.from('three'), [bearer('alice'), `If-Match: W/${safe.headers.etag as string}`])
  t.equal(weak.status, 412, 'If-Match uses the strong comparison')
  const malformed = await put(port, '/files/c.txt', Buffer.from('x'), [bearer('alice'), 'If-Match: nope'])
  t.equal(malformed.status, 400)
  t.match(json(malformed), { code: 'UPFRONT_INVALID_HEADER', message: /If-Match must be/ })
  const malformedNone = await get(port, '/files/c.txt', [bearer('alice'), 'If-None-Match: "a", nope'])
  t.equal(malformedNone.status, 400)
  t.match(json(malformedNone), { code: 'UPFRONT_INVALID_HEADER', message: /If-None-Match must be/ })

  const current = safe.headers.etag as string
  const notModified = await get(port, '/files/c.txt', [bearer('alice'), `If-None-Match: "x", W/${current}`])
  t.equal(notModified.status, 304)
  t.equal(notModified.headers.etag, current)
  const modified = await get(port, '/files/c.txt', [bearer('alice'), 'If-None-Match: "other"'])
  t.equal(modified.status, 200)
  const since = await get(port, '/files/c.txt', [bearer('alice'), `If-Modified-Since: ${new Date(Date.now() + 60_000).toUTCString()}`])
  t.equal(since.status, 304)
  const before = await get(port, '/files/c.txt', [bearer('alice'), `If-Modified-Since: ${new Date(0).toUTCString()}`])
  t.equal(before.status, 200)
})

t.test('ranges', async (t) => {
  const { port } = await startService(t)
  const body = Buffer.from('0123456789abcdefghij')
  const { headers } = await put(port, '/files/r.txt', body)
  const cases: Array<[string, number, string, string | undefined]> = [
    ['bytes=0-4', 206, '01234', 'bytes 0-4/20'],
    ['bytes=15-', 206, 'fghij', 'bytes 15-19/20'],
    ['bytes=-3', 206, 'hij', 'bytes 17-19/20'],
    ['bytes=-100', 206, body.toString(), 'bytes 0-19/20'],
    ['bytes=18-100', 206, 'ij', 'bytes 18-19/20'],
    ['bytes=5-2', 200, body.toString(), undefined],
    ['bytes=0-1,4-5', 200, body.toString(), undefined],
    ['items=0-1', 200, body.toString(), undefined],
    ['bytes=-', 200, body.toString(), undefined]
  ]
  for (const [range, status, text, contentRange] of cases) {
    const result = await get(port, '/files/r.txt', [bearer('alice'), `Range: ${range}`])
    t.equal(result.status, status, range)
    t.equal(result.body, text, range)
    t.equal(result.headers['content-range'], contentRange, range)
  }
  for (const range of ['bytes=20-', 'bytes=-0']) {
    const unsatisfiable = await get(port, '/files/r.txt', [bearer('alice'), `Range: ${range}`])
    t.equal(unsatisfiable.status, 416, range)
    t.equal(unsatisfiable.headers['content-range'], 'bytes */20')
    t.match(json(unsatisfiable), { code: 'UPFRONT_RANGE_NOT_SATISFIABLE' })
  }
  const ifRange = await get(port, '/files/r.txt', [bearer('alice'), 'Range: bytes=0-1', `If-Range: ${headers.etag as string}`])
  t.equal(ifRange.status, 206)
  const staleIfRange = await get(port, '/files/r.txt', [bearer('alice'), 'Range: bytes=0-1', 'If-Range: "old"'])
  t.equal(staleIfRange.status, 200, 'a stale If-Range gets the whole file')

  await put(port, '/files/empty', Buffer.alloc(0))
  const empty = await get(port, '/files/empty', [bearer('alice'), 'Range: bytes=-1'])
  t.equal(empty.status, 416)
})

t.test('integrity: Content-Digest and Content-MD5 are verified, a mismatch stores nothing', async (t) => {
  const { port, files } = await startService(t)
  const body = Buffer.from('integrity matters')
  const goodDigest = `sha-256=:${createHash('sha256').update(body).digest('base64')}:`
  const goodMd5 = createHash('md5').update(body).digest('base64')
  const ok = await put(port, '/files/ok.txt', body, [bearer('alice'), `Content-Digest: sha-512=:AAAA:, ${goodDigest}`, `Content-MD5: ${goodMd5}`])
  t.equal(ok.status, 201)
  const before = files().length

  const badDigest = await put(port, '/files/bad.txt', body, [bearer('alice'), `Content-Digest: sha-256=:${createHash('sha256').update('other').digest('base64')}:`])
  t.equal(badDigest.status, 400)
  t.same(json(badDigest), { statusCode: 400, code: 'UPFRONT_DIGEST_MISMATCH', error: 'Bad Request', message: 'The body does not match its Content-Digest; nothing was stored: send the file again' })
  const badMd5 = await put(port, '/files/bad.txt', body, [bearer('alice'), `Content-MD5: ${createHash('md5').update('other').digest('base64')}`])
  t.equal(badMd5.status, 400)
  t.match(json(badMd5), { message: /Content-MD5/ })
  t.equal((await get(port, '/files/bad.txt')).status, 404)
  t.equal(files().length, before, 'no file and no temporary file left')

  for (const header of ['Content-MD5: short', 'Content-Digest: sha-256=:AAAA:']) {
    const malformed = await put(port, '/files/bad.txt', body, [bearer('alice'), header])
    t.equal(malformed.status, 400, header)
    t.equal(malformed.bodyBytesWritten, 0)
  }
})

t.test('an upload cut off at any point leaves no file and no temporary file', async (t) => {
  const { port, files, app } = await startService(t)
  const size = 4 * 1024 * 1024
  for (const offset of [0, 1, 64 * 1024, size / 2, size - 1]) {
    const socket = connect(port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(request('PUT', '/files/cut.bin', [`Content-Length: ${size}`, bearer('alice')]) + '\r\n\r\n')
    if (offset > 0) await new Promise((resolve) => socket.write(Buffer.alloc(offset), resolve))
    await sleep(50)
    socket.destroy()
    await sleep(100)
    t.same(files(), [], `cut at ${offset}: no file, no temporary file`)
  }
  t.equal((await get(port, '/files/cut.bin')).status, 404)
  t.ok(app.server.listening, 'the server is still up')
})

t.test('listing is paginated and in name order', async (t) => {
  const { port } = await startService(t)
  const names = ['b', 'a/1', 'a/2', 'c', 'd.txt']
  for (const name of names) await put(port, `/files/${name}`, Buffer.from(name))
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const query: string = cursor === null ? '?limit=2' : `?limit=2&cursor=${encodeURIComponent(cursor)}`
    const page = json(await get(port, `/files${query}`)) as { files: Array<{ name: string }>, nextCursor: string | null }
    seen.push(...page.files.map((file) => file.name))
    cursor = page.nextCursor
    pages++
  } while (cursor !== null && pages < 10)
  t.same(seen, [...names].sort())
  t.equal(pages, 3)
  for (const limit of ['0', '1001', 'x', '1.5']) {
    const bad = await get(port, `/files?limit=${limit}`)
    t.equal(bad.status, 400, limit)
    t.match(json(bad), { code: 'UPFRONT_INVALID_QUERY' })
  }
  // Base64url that decodes to no valid name, text that is not base64url at all, a cursor with bytes that are not UTF-8.
  for (const cursor of ['zzzz', 'not*base64', Buffer.from('a/../b').toString('base64url'), Buffer.from([0xff, 0xfe]).toString('base64url')]) {
    const bad = await get(port, `/files?cursor=${encodeURIComponent(cursor)}`)
    t.equal(bad.status, 400, cursor)
    t.match(json(bad), { code: 'UPFRONT_INVALID_QUERY', message: 'Invalid query: cursor must be the nextCursor of a previous page, as it was given' }, cursor)
  }
})

t.test('Fastify\'s own refusals say what to do', async (t) => {
  const { port } = await startService(t)
  const cases: Array<[string, string[], string, number, string, string]> = [
    ['POST', ['Content-Type: application/x-www-form-urlencoded'], 'name=a', 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
      'The Content-Type "application/x-www-form-urlencoded" cannot be read here; send a valid media type (type/subtype), and application/json to POST /presign'],
    ['POST', ['Content-Type: application/json'], '{bad', 400, 'FST_ERR_CTP_INVALID_JSON_BODY',
      'The body cannot be read as JSON (it is not JSON, or holds a forbidden key such as "__proto__"); send a JSON object, such as {"name":"a.txt"} (POST /presign is the route that reads JSON)'],
    ['POST', ['Content-Type: application/json'], '{"__proto__":{}}', 400, 'FST_ERR_CTP_INVALID_JSON_BODY',
      'The body cannot be read as JSON (it is not JSON, or holds a forbidden key such as "__proto__"); send a JSON object, such as {"name":"a.txt"} (POST /presign is the route that reads JSON)'],
    ['POST', ['Content-Type: application/json'], '', 400, 'FST_ERR_CTP_EMPTY_JSON_BODY', 'The body is empty; send a JSON object, such as {"name":"a.txt"} (POST /presign is the route that reads JSON)'],
    ['POST', [], '{"name":"a"}', 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
      'A body without a Content-Type cannot be read here; send a valid media type (type/subtype), and application/json to POST /presign']
  ]
  for (const [method, lines, body, status, code, message] of cases) {
    const answer = await exchange(port, {
      head: request(method, '/presign', [bearer('alice'), ...lines, `Content-Length: ${body.length}`]),
      body: Buffer.from(body),
      send: 'now'
    })
    t.equal(answer.status, status, code)
    t.same(json(answer), { statusCode: status, code, error: status === 415 ? 'Unsupported Media Type' : 'Bad Request', message }, code)
  }
  const nonsense = await put(port, '/files/a.txt', Buffer.from('x'), [bearer('alice'), 'Content-Type: nonsense'])
  t.equal(nonsense.status, 415)
  t.match(json(nonsense), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', message: /^The Content-Type "nonsense" cannot be read here/ })
})

t.test('delete', async (t) => {
  const { port } = await startService(t)
  await put(port, '/files/gone.txt', Buffer.from('bye'))
  const deleted = await exchange(port, { head: request('DELETE', '/files/gone.txt', [bearer('alice')]), closeWaitMs: 50 })
  t.equal(deleted.status, 204)
  t.equal((await get(port, '/files/gone.txt')).status, 404)
  const again = await exchange(port, { head: request('DELETE', '/files/gone.txt', [bearer('alice')]), closeWaitMs: 50 })
  t.equal(again.status, 404)
  t.match(json(again), { code: 'UPFRONT_FILE_NOT_FOUND' })
})

t.test('health', async (t) => {
  const { port } = await startService(t)
  const health = await get(port, '/healthz', [])
  t.equal(health.status, 200)
  t.match(json(health), { status: 'ok', freeBytes: Number })
  const notFound = await get(port, '/nothing-here')
  t.same(json(notFound), { statusCode: 404, code: 'UPFRONT_ROUTE_NOT_FOUND', error: 'Not Found', message: 'No route GET "/nothing-here": files are under /files/<name> (GET, HEAD, PUT, DELETE), listed and uploaded as forms at /files (GET, POST); presigned URLs come from POST /presign' })
})
