// GET and HEAD /files/<name> (routes/files/read.ts): the file with the
// headers that describe it, a range of it, or 304; served so that it cannot
// run in the service's origin; one version's headers and bytes even while
// it is being replaced.
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import t from 'tap'
import { buildApp } from '../../../app.js'
import { loadConfig } from '../../../config.js'
import { DiskStorage } from '../../../plugins/storage/disk/index.js'
import type { ByteRange, FileContent, Storage } from '../../../plugins/storage/types.js'
import { requestHead } from '../../helpers/http.js'
import { listen } from '../../helpers/net.js'
import { bearer, getFile, PRESIGN_SECRET, putFile, scratch, startService, TOKENS } from '../../helpers/service.js'
import { exchange, json } from '../../helpers/wire.js'

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

t.test('GET gives the bytes back with their metadata, HEAD the same headers', async (t) => {
  const { port } = await startService(t)
  const body = Buffer.from('hello, durable world\n'.repeat(1000))
  const created = await putFile(port, '/files/docs/hello.txt', body, [bearer('alice'), 'Content-Type: text/plain'])
  const info = json(created) as Record<string, unknown>

  const read = await getFile(port, '/files/docs/hello.txt')
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

  const head = await exchange(port, { head: requestHead('HEAD', '/files/docs/hello.txt', [bearer('alice')]), closeWaitMs: 50 })
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], String(body.length))
  t.equal(head.body, '')
})

t.test('an HTML file is served as an attachment that cannot run in the origin', async (t) => {
  const { port } = await startService(t)
  await putFile(port, '/files/page.html', Buffer.from('<script>alert(1)</script>'), [bearer('alice'), 'Content-Type: text/html'])
  const read = await getFile(port, '/files/page.html')
  t.equal(read.headers['content-type'], 'text/html')
  t.match(read.headers['content-disposition'], /^attachment;/)
  t.equal(read.headers['x-content-type-options'], 'nosniff')
  t.equal(read.headers['content-security-policy'], "default-src 'none'; sandbox")
})

t.test('conditional GET: If-None-Match, If-Modified-Since', async (t) => {
  const { port } = await startService(t)
  const safe = await putFile(port, '/files/c.txt', Buffer.from('two'))
  const malformedNone = await getFile(port, '/files/c.txt', [bearer('alice'), 'If-None-Match: "a", nope'])
  t.equal(malformedNone.status, 400)
  t.match(json(malformedNone), { code: 'UPFRONT_INVALID_HEADER', message: /If-None-Match must be/ })

  const current = safe.headers.etag as string
  const notModified = await getFile(port, '/files/c.txt', [bearer('alice'), `If-None-Match: "x", W/${current}`])
  t.equal(notModified.status, 304)
  t.equal(notModified.headers.etag, current)
  const modified = await getFile(port, '/files/c.txt', [bearer('alice'), 'If-None-Match: "other"'])
  t.equal(modified.status, 200)
  const since = await getFile(port, '/files/c.txt', [bearer('alice'), `If-Modified-Since: ${new Date(Date.now() + 60_000).toUTCString()}`])
  t.equal(since.status, 304)
  const before = await getFile(port, '/files/c.txt', [bearer('alice'), `If-Modified-Since: ${new Date(0).toUTCString()}`])
  t.equal(before.status, 200)
})

t.test('ranges', async (t) => {
  const { port } = await startService(t)
  const body = Buffer.from('0123456789abcdefghij')
  const { headers } = await putFile(port, '/files/r.txt', body)
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
    const result = await getFile(port, '/files/r.txt', [bearer('alice'), `Range: ${range}`])
    t.equal(result.status, status, range)
    t.equal(result.body, text, range)
    t.equal(result.headers['content-range'], contentRange, range)
  }
  for (const range of ['bytes=20-', 'bytes=-0']) {
    const unsatisfiable = await getFile(port, '/files/r.txt', [bearer('alice'), `Range: ${range}`])
    t.equal(unsatisfiable.status, 416, range)
    t.equal(unsatisfiable.headers['content-range'], 'bytes */20')
    t.match(json(unsatisfiable), { code: 'UPFRONT_RANGE_NOT_SATISFIABLE' })
  }
  const ifRange = await getFile(port, '/files/r.txt', [bearer('alice'), 'Range: bytes=0-1', `If-Range: ${headers.etag as string}`])
  t.equal(ifRange.status, 206)
  const staleIfRange = await getFile(port, '/files/r.txt', [bearer('alice'), 'Range: bytes=0-1', 'If-Range: "old"'])
  t.equal(staleIfRange.status, 200, 'a stale If-Range gets the whole file')
  // RFC 9110 §13.1.5: an entity tag compares strongly (a weak one never matches); a date only when it is the exact Last-Modified.
  const lastModified = (await getFile(port, '/files/r.txt')).headers['last-modified'] as string
  const ifRanges: Array<[string, number, string]> = [
    [`W/${headers.etag as string}`, 200, 'a weak entity tag never matches'],
    [lastModified, 206, 'the exact Last-Modified date'],
    [new Date(Date.parse(lastModified) - 1000).toUTCString(), 200, 'an earlier date'],
    [new Date(Date.parse(lastModified) + 1000).toUTCString(), 200, 'a later date'],
    ['not a date', 200, 'something that is neither']
  ]
  for (const [value, status, what] of ifRanges) {
    const result = await getFile(port, '/files/r.txt', [bearer('alice'), 'Range: bytes=0-1', `If-Range: ${value}`])
    t.equal(result.status, status, what)
    t.equal(result.body, status === 206 ? '01' : body.toString(), what)
  }

  await putFile(port, '/files/empty', Buffer.alloc(0))
  const empty = await getFile(port, '/files/empty', [bearer('alice'), 'Range: bytes=-1'])
  t.equal(empty.status, 416)
})

/** A disk backend whose file is replaced (for real) between the metadata read and the open, `times` times. */
function changing (disk: DiskStorage): Storage & { times: number, deletes: boolean } {
  let changes = 0
  const storage: Storage & { times: number, deletes: boolean } = {
    times: 0,
    deletes: false,
    begin: disk.begin.bind(disk),
    head: disk.head.bind(disk),
    get: disk.get.bind(disk),
    delete: disk.delete.bind(disk),
    list: disk.list.bind(disk),
    freeBytes: disk.freeBytes.bind(disk),
    ping: disk.ping.bind(disk),
    close: disk.close.bind(disk)
  }
  storage.get = async (owner: string, name: string, range?: ByteRange): Promise<FileContent | null> => {
    if (storage.deletes) {
      await disk.delete(owner, name)
    } else if (changes < storage.times) {
      changes++
      const upload = await disk.begin(owner, name, { contentType: 'text/plain' })
      await upload.write(Readable.from([Buffer.from(`version ${changes + 1}`)]))
      await upload.commit()
    }
    return await disk.get(owner, name, range)
  }
  return storage
}

t.test('a file replaced while it is being read is read again, headers and bytes from one version', async (t) => {
  const dataDir = scratch(t, {})
  const storage = changing(await DiskStorage.open(dataDir))
  storage.times = 1
  const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, AUTH_TOKENS: `alice:${TOKENS.alice}`, PRESIGN_SECRET, LOG_LEVEL: 'silent' })
  const app = await buildApp({ config, storage, logger: false })
  const port = await listen(t, app)
  await exchange(port, { head: requestHead('PUT', '/files/v.txt', ['Content-Length: 9', bearer('alice')]), body: Buffer.from('version 1'), send: 'now' })

  const once = await exchange(port, { head: requestHead('GET', '/files/v.txt', [bearer('alice')]) })
  t.equal(once.status, 200)
  t.equal(once.body, 'version 2')
  t.equal(once.headers['content-length'], '9')

  storage.times = 6
  const busy = await exchange(port, { head: requestHead('GET', '/files/v.txt', [bearer('alice')]) })
  t.equal(busy.status, 503)
  t.match(json(busy), { code: 'UPFRONT_FILE_BUSY' })

  storage.deletes = true
  const gone = await exchange(port, { head: requestHead('GET', '/files/v.txt', [bearer('alice')]) })
  t.equal(gone.status, 404, 'deleted while being read: not found')
})
