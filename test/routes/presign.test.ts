// POST /presign (routes/presign.ts): a URL that anyone holding it can PUT
// one upload to, within the issuer's own limits.
import { join } from 'node:path'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { signUpload } from '../../plugins/auth/index.js'
import { curl } from '../helpers/curl.js'
import { requestHead } from '../helpers/http.js'
import { bearer, JWT_SECRET, PRESIGN_SECRET, scratch, startService } from '../helpers/service.js'
import { exchange, json } from '../helpers/wire.js'
import type { Exchange } from '../helpers/wire.js'

/** POST /presign with `authorization` and a JSON body, head and body sent at once. */
async function askGrant (port: number, authorization: string, body: Buffer, host?: string): Promise<Exchange> {
  return await exchange(port, {
    head: requestHead('POST', '/presign', [authorization, 'Content-Type: application/json', `Content-Length: ${body.length}`], { host }),
    body,
    send: 'now'
  })
}

t.test('presigned uploads', async (t) => {
  const { port, base } = await startService(t)
  const issued = await askGrant(port, bearer('alice'), Buffer.from(JSON.stringify({ name: 'in/box.png', maxBytes: 5000, contentType: 'image/png' }).padEnd(64)), 'uploads.example')
  t.equal(issued.status, 201)
  const grant = json(issued) as { url: string, path: string, method: string, maxBytes: number, contentType: string, expiresAt: string }
  t.match(grant, { method: 'PUT', maxBytes: 5000, contentType: 'image/png', name: 'in/box.png' })
  t.ok(grant.url.startsWith('http://uploads.example/files/in/box.png?'))

  const png = Buffer.alloc(4000, 7)
  const uploaded = await exchange(port, {
    head: requestHead('PUT', grant.path, ['Content-Type: image/png', `Content-Length: ${png.length}`, 'Expect: 100-continue']),
    body: png
  })
  t.equal(uploaded.status, 201, 'no token needed')
  const read = await exchange(port, { head: requestHead('GET', '/files/in/box.png', [bearer('alice')]) })
  t.equal(read.status, 200, 'the file belongs to the grant\'s issuer')

  const tooBig = await exchange(port, {
    head: requestHead('PUT', grant.path, ['Content-Type: image/png', 'Content-Length: 5001', 'Expect: 100-continue'])
  })
  t.equal(tooBig.status, 413)
  t.equal(tooBig.bodyBytesWritten, 0)
  const chunked = await exchange(port, {
    head: requestHead('PUT', grant.path, ['Content-Type: image/png', 'Transfer-Encoding: chunked', 'Expect: 100-continue']),
    body: Buffer.alloc(10_000),
    chunked: true,
    stopOnAnswer: false
  })
  t.equal(chunked.status, 413, 'a chunked body is held to the grant too')
  const otherName = grant.path.replace('box.png', 'other.png')
  const moved = await exchange(port, {
    head: requestHead('PUT', otherName, ['Content-Type: image/png', 'Content-Length: 10', 'Expect: 100-continue'])
  })
  t.equal(moved.status, 403)
  const expired = signUpload({ owner: 'alice', name: 'late.png', maxBytes: 10, expiresAt: Math.floor(Date.now() / 1000) - 1 }, PRESIGN_SECRET)
  const late = await exchange(port, {
    head: requestHead('PUT', expired, ['Content-Length: 10', 'Expect: 100-continue'])
  })
  t.equal(late.status, 403)
  t.match(json(late), { message: /expired/ })

  const badName = await askGrant(port, bearer('alice'), Buffer.from('{"name":"a/../b"}'.slice(0, 15)))
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
  const issued = await askGrant(port, bearer('bob'), body)
  t.match(json(issued), { maxBytes: 1000, contentType: null })
  const fallback = Buffer.from(JSON.stringify({ name: 'y' }))
  const defaults = await askGrant(port, bearer('bob'), fallback)
  t.match(json(defaults), { maxBytes: 1000 })

  // A caller whose JWT lowers its own limit cannot hand out more.
  const token = createSigner({ key: JWT_SECRET, expiresIn: 60_000 })({ sub: 'carol', max_bytes: 500 })
  const lowered = await askGrant(port, `Authorization: Bearer ${token}`, fallback)
  t.match(json(lowered), { maxBytes: 500 })

  const surrogate = Buffer.from('{"name":"a\\ud800b"}')
  const unpaired = await askGrant(port, bearer('bob'), surrogate)
  t.match(json(unpaired), { statusCode: 400, code: 'UPFRONT_INVALID_NAME', message: /not valid UTF-8/ })
})

t.test('a body that is not JSON is refused before it is sent: 415, no 100', async (t) => {
  const { port } = await startService(t)
  const body = Buffer.from('{"name":"a.txt"}')
  for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
    const answer = await exchange(port, {
      head: requestHead('POST', '/presign', [bearer('alice'), `Content-Type: ${type}`, `Content-Length: ${body.length}`, 'Expect: 100-continue']),
      body
    })
    t.equal(answer.status, 415, type)
    t.equal(answer.informational.length, 0, `${type}: no 100 Continue`)
    t.equal(answer.bodyBytesWritten, 0, `${type}: no body byte sent`)
    t.match(json(answer), { code: 'UPFRONT_UNSUPPORTED_MEDIA_TYPE', message: /send one of: application\/json/ })
  }
})
