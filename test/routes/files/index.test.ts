// The routes under /files together (routes/files/index.ts): each file
// belongs to its uploader whatever the method, and curl, as a real client,
// uploads, lists, reads ranges and is refused before it sends a byte.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { curl } from '../../helpers/curl.js'
import { requestHead } from '../../helpers/http.js'
import { BACKENDS, bearer, getFile, putFile, scratch, startService } from '../../helpers/service.js'
import { exchange, json } from '../../helpers/wire.js'

t.test('files belong to their uploader: others get 404', async (t) => {
  const { port } = await startService(t)
  await putFile(port, '/files/secret.txt', Buffer.from('alice only'))
  for (const [method, path] of [['GET', '/files/secret.txt'], ['HEAD', '/files/secret.txt'], ['DELETE', '/files/secret.txt']]) {
    const result = await exchange(port, { head: requestHead(method as string, path as string, [bearer('bob')]), closeWaitMs: 50 })
    t.equal(result.status, 404, `${method as string} by bob`)
  }
  const ifMatch = await putFile(port, '/files/secret.txt', Buffer.from('bob was here'), [bearer('bob'), 'If-Match: *'])
  t.equal(ifMatch.status, 412, 'bob cannot replace it either')
  const list = await getFile(port, '/files', [bearer('bob')])
  t.same(json(list), { files: [], nextCursor: null })
  t.equal((await getFile(port, '/files/secret.txt')).body, 'alice only')
})

for (const backend of BACKENDS) {
  t.test(`curl: PUT, multipart POST, ranged GET; refusals with nothing uploaded, on ${backend}`, async (t) => {
    const { base } = await startService(t, { MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) }, backend)
    const data = Buffer.alloc(3 * 1024 * 1024)
    for (let i = 0; i < data.length; i++) data[i] = i % 251
    const dir = scratch(t, { 'three.bin': data, 'five.bin': Buffer.alloc(5 * 1024 * 1024) })
    const auth = ['-H', bearer('alice')]

    const uploaded = await curl(dir, [...auth, '-T', join(dir, 'three.bin'), `${base}/files/three.bin`])
    t.equal(uploaded.status, 201)
    t.match(uploaded.trace, /> Expect: 100-continue/)
    t.match(JSON.parse(uploaded.body), { size: data.length, sha256: createHash('sha256').update(data).digest('hex') })

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
}

t.test('a downloaded file matches what was uploaded, byte for byte', async (t) => {
  const { base } = await startService(t)
  const data = Buffer.alloc(1024 * 1024)
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 256
  const dir = scratch(t, { 'in.bin': data })
  const auth = ['-H', bearer('alice')]
  await curl(dir, [...auth, '-T', join(dir, 'in.bin'), `${base}/files/roundtrip.bin`])
  const downloaded = await curl(dir, [...auth, `${base}/files/roundtrip.bin`])
  t.ok(downloaded.bytes.equals(data))
})
