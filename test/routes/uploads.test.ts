// Multipart and presigned uploads, and curl as a real client for all of it.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { createSigner } from 'fast-jwt'
import { signUpload } from '../../plugins/auth/index.js'
import { exchange, json } from '../helpers/wire.js'
import { bearer, JWT_SECRET, PRESIGN_SECRET, scratch, startService, TOKENS } from '../helpers/service.js'

const run = promisify(execFile)

interface CurlResult {
  status: number
  sizeUpload: number
  body: string
  bytes: Buffer
  trace: string
}

async function curl (dir: string, args: string[]): Promise<CurlResult> {
  const output = join(dir, `answer-${Math.random().toString(36).slice(2)}`)
  const { stdout, stderr } = await run('curl', ['-sS', '-v', '-o', output, '-w', '%{http_code} %{size_upload}', ...args])
  const [status, sizeUpload] = stdout.trim().split(' ')
  const bytes = readFileSync(output)
  return { status: Number(status), sizeUpload: Number(sizeUpload), body: bytes.toString(), bytes, trace: stderr }
}

function form (parts: Array<{ name: string, filename?: string, type?: string, data: Buffer }>, boundary = 'upfront-boundary'): Buffer {
  const chunks: Buffer[] = []
  for (const part of parts) {
    const disposition = part.filename === undefined
      ? `form-data; name="${part.name}"`
      : `form-data; name="${part.name}"; filename="${part.filename}"`
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${part.type === undefined ? '' : `Content-Type: ${part.type}\r\n`}\r\n`), part.data, Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(chunks)
}

t.test('multipart POST: several files, streamed, all or nothing', async (t) => {
  const { port, files } = await startService(t, { MAX_UPLOAD_BYTES: String(1024 * 1024) })
  const one = Buffer.alloc(300_000, 1)
  const two = Buffer.from('second file')
  const body = form([
    { name: 'note', data: Buffer.from('a plain field is ignored') },
    { name: 'file', filename: 'one.bin', type: 'application/octet-stream', data: one },
    { name: 'file', filename: 'two.txt', type: 'text/plain', data: two }
  ])
  const created = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${body.length}`, 'Expect: 100-continue'].join('\r\n'),
    body
  })
  t.same(created.informational, ['HTTP/1.1 100 Continue'])
  t.equal(created.status, 201)
  t.match(json(created), {
    files: [
      { name: 'one.bin', size: one.length, contentType: 'application/octet-stream', sha256: createHash('sha256').update(one).digest('hex') },
      { name: 'two.txt', size: two.length, contentType: 'text/plain' }
    ]
  })
  const stored = files().length

  // The second file breaks the per-file limit: neither is kept.
  const tooLarge = form([
    { name: 'file', filename: 'fine.bin', data: Buffer.alloc(1000) },
    { name: 'file', filename: 'huge.bin', data: Buffer.alloc(1024 * 1024 + 1) }
  ])
  const refused = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', 'Transfer-Encoding: chunked'].join('\r\n'),
    body: tooLarge,
    chunked: true,
    send: 'now',
    stopOnAnswer: false
  })
  t.equal(refused.status, 413)
  t.match(json(refused), { code: 'UPFRONT_BODY_TOO_LARGE', message: 'A file of the form exceeds the 1048576-byte limit of this route; send a smaller body' })
  t.equal(files().length, stored, 'nothing from the refused request is kept, no temporary file either')
  const fine = await exchange(port, { head: ['GET /files/fine.bin HTTP/1.1', 'Host: x', bearer('alice')].join('\r\n') })
  t.equal(fine.status, 404)

  // A file of exactly the limit fits, form framing included.
  const exact = form([{ name: 'file', filename: 'exact.bin', data: Buffer.alloc(1024 * 1024, 5) }])
  const fits = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${exact.length}`, 'Expect: 100-continue'].join('\r\n'),
    body: exact
  })
  t.equal(fits.status, 201)
  await exchange(port, { head: ['DELETE /files/exact.bin HTTP/1.1', 'Host: x', bearer('alice')].join('\r\n'), closeWaitMs: 50 })

  // Declared too large for the whole request: refused before the body.
  const declared = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=b', `Content-Length: ${2 * 1024 * 1024 + 1}`, 'Expect: 100-continue'].join('\r\n')
  })
  t.equal(declared.status, 413)
  t.equal(declared.bodyBytesWritten, 0)

  const notMultipart = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: application/json', 'Content-Length: 2', 'Expect: 100-continue'].join('\r\n')
  })
  t.equal(notMultipart.status, 415)
  t.equal(notMultipart.bodyBytesWritten, 0)

  const noFiles = form([{ name: 'note', data: Buffer.from('no file') }])
  const empty = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${noFiles.length}`].join('\r\n'),
    body: noFiles,
    send: 'now'
  })
  t.equal(empty.status, 400)
  t.match(json(empty), { code: 'UPFRONT_NO_FILES' })

  for (const [what, code, parts] of [
    ['a ".." file name', 'UPFRONT_INVALID_NAME', [{ name: 'file', filename: '..', data: Buffer.from('x') }]],
    ['the same name twice', 'UPFRONT_DUPLICATE_FILE', [{ name: 'f', filename: 'same', data: Buffer.from('1') }, { name: 'f', filename: 'same', data: Buffer.from('2') }]]
  ] as const) {
    const bad = form([...parts])
    const result = await exchange(port, {
      head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${bad.length}`].join('\r\n'),
      body: bad,
      send: 'now'
    })
    t.equal(result.status, 400, what)
    t.match(json(result), { code })
  }
  t.equal(files().length, stored)

  // A form that cannot be parsed is the client's mistake: 400, nothing kept.
  const noBoundary = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data', 'Content-Length: 5000', 'Expect: 100-continue'].join('\r\n'),
    body: Buffer.alloc(5000)
  })
  t.equal(noBoundary.status, 400, 'no boundary parameter')
  t.same(noBoundary.informational, [])
  t.equal(noBoundary.bodyBytesWritten, 0, 'refused before the body')
  t.match(json(noBoundary), {
    code: 'UPFRONT_INVALID_FORM',
    message: 'The multipart form cannot be read (its Content-Type has no valid boundary parameter, such as multipart/form-data; boundary=----a1b2c3); ' +
      'send multipart/form-data with a boundary parameter, each part delimited by it and the closing delimiter at the end'
  })
  const whole = form([{ name: 'file', filename: 'cut.bin', data: Buffer.alloc(200_000, 3) }])
  // A short second part is parsed, and found cut, while the first is still being written.
  const pair = form([{ name: 'file', filename: 'first.bin', data: Buffer.alloc(1_000_000, 1) }, { name: 'file', filename: 'second.bin', data: Buffer.alloc(10_000, 2) }])
  for (const [what, body] of [
    ['cut inside the second file', pair.subarray(0, pair.length - 5_000)],
    ['cut inside a file part', whole.subarray(0, 100_000)],
    ['cut before the closing delimiter', whole.subarray(0, whole.length - 20)],
    ['no delimiter at all', Buffer.from('this is not a form')]
  ] as const) {
    const broken = await exchange(port, {
      head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${body.length}`].join('\r\n'),
      body,
      send: 'now'
    })
    t.equal(broken.status, 400, what)
    t.match(json(broken), { code: 'UPFRONT_INVALID_FORM', message: /unexpected end of multipart data/i }, what)
  }
  t.equal(files().length, stored, 'nothing kept from the broken forms, no temporary file either')

  // Too many files or fields: 413 with the limit, nothing kept.
  for (const [what, parts, message] of [
    ['101 files', Array.from({ length: 101 }, (_, i) => ({ name: 'f', filename: `many-${i}`, data: Buffer.from('x') })), 'The form holds more than 100 files, and nothing from it was stored; send fewer per request'],
    ['101 fields', [{ name: 'f', filename: 'with-fields', data: Buffer.from('x') }, ...Array.from({ length: 101 }, (_, i) => ({ name: `field${i}`, data: Buffer.from('v') }))],
      'The form holds more than 100 fields besides its files, and nothing from it was stored; send fewer per request']
  ] as const) {
    const body = form([...parts])
    const result = await exchange(port, {
      head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${body.length}`].join('\r\n'),
      body,
      send: 'now'
    })
    t.equal(result.status, 413, what)
    t.same(json(result), { statusCode: 413, code: 'UPFRONT_FORM_TOO_LARGE', error: 'Payload Too Large', message }, what)
  }
  const proto = form([{ name: 'f', filename: 'p', data: Buffer.from('x') }, { name: '__proto__', data: Buffer.from('{}') }])
  const protoAnswer = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${proto.length}`].join('\r\n'),
    body: proto,
    send: 'now'
  })
  t.equal(protoAnswer.status, 400, 'a field named __proto__')
  t.match(json(protoAnswer), { code: 'UPFRONT_INVALID_FORM', message: /^The multipart form cannot be read \(a field is named __proto__, which is not allowed; rename it\)/ })
  const jsonField = form([{ name: 'f', filename: 'j', data: Buffer.from('x') }, { name: 'meta', type: 'application/json', data: Buffer.from('{bad') }])
  const jsonAnswer = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${jsonField.length}`].join('\r\n'),
    body: jsonField,
    send: 'now'
  })
  t.equal(jsonAnswer.status, 400, 'a JSON field that is not JSON')
  t.match(json(jsonAnswer), { code: 'UPFRONT_INVALID_FORM', message: /^The multipart form cannot be read \(a field sent as application\/json is not valid JSON\)/ })
  t.equal(files().length, stored)

  // A client's path in a file name is cut to its last segment (busboy's default): never a traversal.
  const pathy = form([{ name: 'file', filename: '../../etc/passwd', data: Buffer.from('x') }])
  const cut = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${pathy.length}`].join('\r\n'),
    body: pathy,
    send: 'now'
  })
  t.match(json(cut), { files: [{ name: 'passwd' }] })
})

t.test('presigned uploads', async (t) => {
  const { port, base } = await startService(t)
  const issued = await exchange(port, {
    head: ['POST /presign HTTP/1.1', 'Host: uploads.example', bearer('alice'), 'Content-Type: application/json', 'Content-Length: 64'].join('\r\n'),
    body: Buffer.from(JSON.stringify({ name: 'in/box.png', maxBytes: 5000, contentType: 'image/png' }).padEnd(64)),
    send: 'now'
  })
  t.equal(issued.status, 201)
  const grant = json(issued) as { url: string, path: string, method: string, maxBytes: number, contentType: string, expiresAt: string }
  t.match(grant, { method: 'PUT', maxBytes: 5000, contentType: 'image/png', name: 'in/box.png' })
  t.ok(grant.url.startsWith('http://uploads.example/files/in/box.png?'))

  const png = Buffer.alloc(4000, 7)
  const uploaded = await exchange(port, {
    head: [`PUT ${grant.path} HTTP/1.1`, 'Host: x', 'Content-Type: image/png', `Content-Length: ${png.length}`, 'Expect: 100-continue'].join('\r\n'),
    body: png
  })
  t.equal(uploaded.status, 201, 'no token needed')
  const read = await exchange(port, { head: ['GET /files/in/box.png HTTP/1.1', 'Host: x', bearer('alice')].join('\r\n') })
  t.equal(read.status, 200, 'the file belongs to the grant\'s issuer')

  const tooBig = await exchange(port, {
    head: [`PUT ${grant.path} HTTP/1.1`, 'Host: x', 'Content-Type: image/png', 'Content-Length: 5001', 'Expect: 100-continue'].join('\r\n')
  })
  t.equal(tooBig.status, 413)
  t.equal(tooBig.bodyBytesWritten, 0)
  const chunked = await exchange(port, {
    head: [`PUT ${grant.path} HTTP/1.1`, 'Host: x', 'Content-Type: image/png', 'Transfer-Encoding: chunked', 'Expect: 100-continue'].join('\r\n'),
    body: Buffer.alloc(10_000),
    chunked: true,
    stopOnAnswer: false
  })
  t.equal(chunked.status, 413, 'a chunked body is held to the grant too')
  const otherName = grant.path.replace('box.png', 'other.png')
  const moved = await exchange(port, {
    head: [`PUT ${otherName} HTTP/1.1`, 'Host: x', 'Content-Type: image/png', 'Content-Length: 10', 'Expect: 100-continue'].join('\r\n')
  })
  t.equal(moved.status, 403)
  const expired = signUpload({ owner: 'alice', name: 'late.png', maxBytes: 10, expiresAt: Math.floor(Date.now() / 1000) - 1 }, PRESIGN_SECRET)
  const late = await exchange(port, {
    head: [`PUT ${expired} HTTP/1.1`, 'Host: x', 'Content-Length: 10', 'Expect: 100-continue'].join('\r\n')
  })
  t.equal(late.status, 403)
  t.match(json(late), { message: /expired/ })

  const badName = await exchange(port, {
    head: ['POST /presign HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: application/json', 'Content-Length: 15'].join('\r\n'),
    body: Buffer.from('{"name":"a/../b"}'.slice(0, 15)),
    send: 'now'
  })
  t.equal(badName.status, 400)

  // curl as the browser or service holding the URL.
  const dir = scratch(t, { 'pic.png': Buffer.alloc(2000, 9) })
  const viaCurl = await curl(dir, ['-T', join(dir, 'pic.png'), '-H', 'Content-Type: image/png', `${base}${grant.path}`])
  t.equal(viaCurl.status, 201, viaCurl.body)
  t.equal(viaCurl.sizeUpload, 2000)
})

t.test('presign limits follow the caller', async (t) => {
  const { port } = await startService(t, { MAX_UPLOAD_BYTES: '1000' })
  const body = Buffer.from(JSON.stringify({ name: 'x', maxBytes: 999999 }))
  const issued = await exchange(port, {
    head: ['POST /presign HTTP/1.1', 'Host: x', bearer('bob'), 'Content-Type: application/json', `Content-Length: ${body.length}`].join('\r\n'),
    body,
    send: 'now'
  })
  t.match(json(issued), { maxBytes: 1000, contentType: null })
  const fallback = Buffer.from(JSON.stringify({ name: 'y' }))
  const defaults = await exchange(port, {
    head: ['POST /presign HTTP/1.1', 'Host: x', bearer('bob'), 'Content-Type: application/json', `Content-Length: ${fallback.length}`].join('\r\n'),
    body: fallback,
    send: 'now'
  })
  t.match(json(defaults), { maxBytes: 1000 })

  // A caller whose JWT lowers its own limit cannot hand out more.
  const token = createSigner({ key: JWT_SECRET, expiresIn: 60_000 })({ sub: 'carol', max_bytes: 500 })
  const lowered = await exchange(port, {
    head: ['POST /presign HTTP/1.1', 'Host: x', `Authorization: Bearer ${token}`, 'Content-Type: application/json', `Content-Length: ${fallback.length}`].join('\r\n'),
    body: fallback,
    send: 'now'
  })
  t.match(json(lowered), { maxBytes: 500 })

  const surrogate = Buffer.from('{"name":"a\\ud800b"}')
  const unpaired = await exchange(port, {
    head: ['POST /presign HTTP/1.1', 'Host: x', bearer('bob'), 'Content-Type: application/json', `Content-Length: ${surrogate.length}`].join('\r\n'),
    body: surrogate,
    send: 'now'
  })
  t.match(json(unpaired), { statusCode: 400, code: 'UPFRONT_INVALID_NAME', message: /not valid UTF-8/ })
})

t.test('curl: PUT, multipart POST, ranged GET; refusals with nothing uploaded', async (t) => {
  const { base } = await startService(t, { MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) })
  const data = Buffer.alloc(3 * 1024 * 1024)
  for (let i = 0; i < data.length; i++) data[i] = i % 251
  const dir = scratch(t, { 'three.bin': data, 'five.bin': Buffer.alloc(5 * 1024 * 1024) })
  const auth = ['-H', `Authorization: Bearer ${TOKENS.alice}`]

  const put = await curl(dir, [...auth, '-T', join(dir, 'three.bin'), `${base}/files/three.bin`])
  t.equal(put.status, 201)
  t.match(put.trace, /> Expect: 100-continue/)
  t.match(JSON.parse(put.body), { size: data.length, sha256: createHash('sha256').update(data).digest('hex') })

  const ranged = await curl(dir, [...auth, '-r', '1000-1999', `${base}/files/three.bin`])
  t.equal(ranged.status, 206)
  t.ok(ranged.bytes.equals(data.subarray(1000, 2000)), 'exactly the bytes asked for')

  const multipart = await curl(dir, [...auth, '-F', `file=@${join(dir, 'three.bin')};filename=form.bin`, `${base}/files`])
  t.equal(multipart.status, 201)
  t.match(JSON.parse(multipart.body), { files: [{ name: 'form.bin', size: data.length }] })

  const refusals: Array<[string, string[], number]> = [
    ['no token', ['-T', join(dir, 'three.bin'), `${base}/files/x.bin`], 401],
    ['too large', [...auth, '-T', join(dir, 'five.bin'), `${base}/files/x.bin`], 413],
    ['multipart too large', [...auth, '-F', `file=@${join(dir, 'five.bin')}`, `${base}/files`], 413],
    ['create-only on an existing name', [...auth, '-H', 'If-None-Match: *', '-T', join(dir, 'three.bin'), `${base}/files/three.bin`], 412]
  ]
  for (const [what, args, status] of refusals) {
    const result = await curl(dir, args)
    t.equal(result.status, status, what)
    t.equal(result.sizeUpload, 0, `${what}: curl sent no body byte`)
  }
})

t.test('a downloaded file matches what was uploaded, byte for byte', async (t) => {
  const { base } = await startService(t)
  const data = Buffer.alloc(1024 * 1024)
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 256
  const dir = scratch(t, { 'in.bin': data })
  const auth = ['-H', `Authorization: Bearer ${TOKENS.alice}`]
  await curl(dir, [...auth, '-T', join(dir, 'in.bin'), `${base}/files/roundtrip.bin`])
  await run('curl', ['-sS', ...auth, '-o', join(dir, 'out.bin'), `${base}/files/roundtrip.bin`])
  t.ok(readFileSync(join(dir, 'out.bin')).equals(data))
})
