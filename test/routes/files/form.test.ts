// POST /files (routes/files/form.ts): the file parts of a multipart form,
// streamed, all or nothing; a form that cannot be read is the client's 400.
import { createHash } from 'node:crypto'
import t from 'tap'
import { multipartForm as form, requestHead } from '../../helpers/http.js'
import { bearer, startService } from '../../helpers/service.js'
import { exchange, json } from '../../helpers/wire.js'
import type { Exchange } from '../../helpers/wire.js'

/** POST /files of a form with the default boundary, head and body sent at once. */
async function postForm (port: number, body: Buffer): Promise<Exchange> {
  return await exchange(port, {
    head: requestHead('POST', '/files', [bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${body.length}`]),
    body,
    send: 'now'
  })
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
    head: requestHead('POST', '/files', [bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${body.length}`, 'Expect: 100-continue']),
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
  let stored = files().length

  // The second file breaks the per-file limit: neither is kept.
  const tooLarge = form([
    { name: 'file', filename: 'fine.bin', data: Buffer.alloc(1000) },
    { name: 'file', filename: 'huge.bin', data: Buffer.alloc(1024 * 1024 + 1) }
  ])
  const refused = await exchange(port, {
    head: requestHead('POST', '/files', [bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', 'Transfer-Encoding: chunked']),
    body: tooLarge,
    chunked: true,
    send: 'now',
    stopOnAnswer: false
  })
  t.equal(refused.status, 413)
  t.match(json(refused), { code: 'UPFRONT_BODY_TOO_LARGE', message: 'A file of the form exceeds the 1048576-byte limit of this route; send a smaller body' })
  t.equal(files().length, stored, 'nothing from the refused request is kept, no temporary file either')
  const fine = await exchange(port, { head: requestHead('GET', '/files/fine.bin', [bearer('alice')]) })
  t.equal(fine.status, 404)

  // A file of exactly the limit fits, form framing included.
  const exact = form([{ name: 'file', filename: 'exact.bin', data: Buffer.alloc(1024 * 1024, 5) }])
  const fits = await exchange(port, {
    head: requestHead('POST', '/files', [bearer('alice'), 'Content-Type: multipart/form-data; boundary=upfront-boundary', `Content-Length: ${exact.length}`, 'Expect: 100-continue']),
    body: exact
  })
  t.equal(fits.status, 201)
  await exchange(port, { head: requestHead('DELETE', '/files/exact.bin', [bearer('alice')]), closeWaitMs: 50 })
  // The delete leaves a tombstone (the name's current version), swept once old.
  stored = files().length

  // Declared too large for the whole request: refused before the body.
  const declared = await exchange(port, {
    head: requestHead('POST', '/files', [bearer('alice'), 'Content-Type: multipart/form-data; boundary=b', `Content-Length: ${2 * 1024 * 1024 + 1}`, 'Expect: 100-continue'])
  })
  t.equal(declared.status, 413)
  t.equal(declared.bodyBytesWritten, 0)

  const notMultipart = await exchange(port, {
    head: requestHead('POST', '/files', [bearer('alice'), 'Content-Type: application/json', 'Content-Length: 2', 'Expect: 100-continue'])
  })
  t.equal(notMultipart.status, 415)
  t.equal(notMultipart.bodyBytesWritten, 0)

  const noFiles = form([{ name: 'note', data: Buffer.from('no file') }])
  const empty = await postForm(port, noFiles)
  t.equal(empty.status, 400)
  t.match(json(empty), { code: 'UPFRONT_NO_FILES' })

  for (const [what, code, parts] of [
    ['a ".." file name', 'UPFRONT_INVALID_NAME', [{ name: 'file', filename: '..', data: Buffer.from('x') }]],
    ['the same name twice', 'UPFRONT_DUPLICATE_FILE', [{ name: 'f', filename: 'same', data: Buffer.from('1') }, { name: 'f', filename: 'same', data: Buffer.from('2') }]]
  ] as const) {
    const bad = form([...parts])
    const result = await postForm(port, bad)
    t.equal(result.status, 400, what)
    t.match(json(result), { code })
  }
  t.equal(files().length, stored)

  // A form that cannot be parsed is the client's mistake: 400, nothing kept.
  const noBoundary = await exchange(port, {
    head: requestHead('POST', '/files', [bearer('alice'), 'Content-Type: multipart/form-data', 'Content-Length: 5000', 'Expect: 100-continue']),
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
    const broken = await postForm(port, body)
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
    const result = await postForm(port, body)
    t.equal(result.status, 413, what)
    t.same(json(result), { statusCode: 413, code: 'UPFRONT_FORM_TOO_LARGE', error: 'Payload Too Large', message }, what)
  }
  const proto = form([{ name: 'f', filename: 'p', data: Buffer.from('x') }, { name: '__proto__', data: Buffer.from('{}') }])
  const protoAnswer = await postForm(port, proto)
  t.equal(protoAnswer.status, 400, 'a field named __proto__')
  t.match(json(protoAnswer), { code: 'UPFRONT_INVALID_FORM', message: /^The multipart form cannot be read \(a field is named __proto__, which is not allowed; rename it\)/ })
  const jsonField = form([{ name: 'f', filename: 'j', data: Buffer.from('x') }, { name: 'meta', type: 'application/json', data: Buffer.from('{bad') }])
  const jsonAnswer = await postForm(port, jsonField)
  t.equal(jsonAnswer.status, 400, 'a JSON field that is not JSON')
  t.match(json(jsonAnswer), { code: 'UPFRONT_INVALID_FORM', message: /^The multipart form cannot be read \(a field sent as application\/json is not valid JSON\)/ })
  t.equal(files().length, stored)

  // A client's path in a file name is cut to its last segment (busboy's default): never a traversal.
  const pathy = form([{ name: 'file', filename: '../../etc/passwd', data: Buffer.from('x') }])
  const cut = await postForm(port, pathy)
  t.match(json(cut), { files: [{ name: 'passwd' }] })
})
