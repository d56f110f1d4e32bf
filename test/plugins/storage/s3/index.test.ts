// The S3 backend (plugins/storage/s3/index.ts) on a real engine (Ceph
// RGW): the storage contract (conformance.ts), and what is S3's own: the
// start-up checks of the bucket and of conditional writes, the sweep of
// unfinished multipart uploads and unnamed data, names that do not fit a
// key, an engine that goes away.
import { GetObjectCommand, CreateMultipartUploadCommand, DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { createServer, connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import type { Readable } from 'node:stream'
import t from 'tap'
import { RecordCache, S3Storage } from '../../../../plugins/storage/s3/index.js'
import { emptyPrefix, engineProxy, keysUnder, openS3, s3Client, s3Options, s3Settings, testPrefix } from '../../../helpers/s3.js'
import type { EngineAnswer, EngineRequest } from '../../../helpers/s3.js'
import { bytes, collect, streamOf } from '../../../helpers/storage.js'
import { conformance } from '../conformance.js'

/** Data objects no live record names, and unfinished multipart uploads. */
async function leftovers (prefix: string): Promise<string[]> {
  const keys = await keysUnder(prefix)
  const client = s3Client()
  const named = new Set<string>()
  for (const key of keys.filter((key) => key.startsWith(`${prefix}r/`) && !key.endsWith(' (empty)'))) {
    const { Body } = await client.send(new GetObjectCommand({ Bucket: s3Settings().bucket, Key: key }))
    named.add((JSON.parse(await (Body as { transformToString: () => Promise<string> }).transformToString()) as { data: string }).data)
  }
  client.destroy()
  return keys.filter((key) => !key.startsWith(`${prefix}r/`) && !named.has(key))
}

// A real engine, a few hundred requests: tens of seconds on a busy machine.
t.setTimeout(180_000)

conformance('s3', async (t) => {
  const { storage, prefix } = await openS3(t)
  return {
    storage,
    leftovers: async () => await leftovers(prefix),
    reopen: async () => await S3Storage.open(s3Options(prefix))
  }
})

t.test('start-up: a bucket that cannot be used is named with what to do', async (t) => {
  const prefix = testPrefix()
  await t.rejects(S3Storage.open({ ...s3Options(prefix), endpoint: 'http://127.0.0.1:9' }), {
    code: 'UPFRONT_STORAGE_START',
    message: /^S3_ENDPOINT: the S3 engine cannot be reached \(ECONNREFUSED.*\); check S3_ENDPOINT and that the engine runs$/
  })
  await t.rejects(S3Storage.open({ ...s3Options(prefix), bucket: 'no-such-bucket-here' }), {
    code: 'UPFRONT_STORAGE_START',
    message: 'S3_BUCKET: bucket "no-such-bucket-here" does not exist; create it, or set S3_BUCKET to an existing bucket'
  })
  await t.rejects(S3Storage.open({ ...s3Options(prefix), client: { credentials: { accessKeyId: 'nobody', secretAccessKey: 'wrong-secret-wrong-secret' } } }), {
    code: 'UPFRONT_STORAGE_START',
    message: /^S3_BUCKET: bucket ".+" cannot be used \(.+\); check the credentials/
  })
  t.same(await keysUnder(prefix), [], 'the checks leave nothing')
  for (const [option, value, message] of [
    ['partSize', 1024, /partSize must be at least 5 MiB/],
    ['queueSize', 0, /queueSize must be a positive integer/],
    ['prefix', 'no-slash', /prefix must end with "\/"/]
  ] as const) {
    await t.rejects(S3Storage.open({ ...s3Options(prefix), [option]: value }), { name: 'RangeError', message }, option)
  }
})

t.test('the sweep removes unfinished multipart uploads and unnamed data once old, nothing else', async (t) => {
  const { storage, prefix } = await openS3(t, { sweepAfterMs: 3_000 })
  const upload = await storage.begin('alice', 'kept', { contentType: 'text/plain' })
  await upload.write(streamOf(Buffer.from('kept')))
  await upload.commit()
  // What a process killed mid-upload or mid-commit leaves.
  const client = s3Client()
  const { bucket } = s3Settings()
  await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${prefix}d/abandoned-multipart` }))
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}d/unnamed`, Body: 'no record names me' }))
  // One in progress now, which must survive.
  const live = await storage.begin('alice', 'live', { contentType: 'text/plain' })
  await live.write(streamOf(bytes(11 * 1024 * 1024)))
  await storage.sweep()
  t.equal((await leftovers(prefix)).length, 3, 'younger than the age bound: kept')
  await new Promise((resolve) => setTimeout(resolve, 3_500))
  const live2 = await storage.begin('alice', 'live2', { contentType: 'text/plain' })
  const writing = live2.write(streamOf(bytes(11 * 1024 * 1024)))
  await storage.sweep()
  await writing
  t.same((await leftovers(prefix)).filter((key) => key.includes('abandoned') || key.includes('unnamed')), [], 'old leftovers swept')
  t.not(await storage.head('alice', 'kept'), null, 'committed files untouched')
  await live2.commit()
  t.not(await storage.head('alice', 'live2'), null, 'an upload started after the age bound commits')
  await live.abort()
  client.destroy()
})

t.test('a name that does not fit in a key is refused before the body, and is absent', async (t) => {
  const { storage } = await openS3(t)
  const name = `${'x'.repeat(200)}/${'y'.repeat(200)}/${'z'.repeat(200)}/${'w'.repeat(200)}/${'v'.repeat(200)}`
  await t.rejects(storage.begin('alice', name, { contentType: 'text/plain' }), { code: 'UPFRONT_INVALID_NAME', statusCode: 400 })
  t.equal(await storage.head('alice', name), null)
  t.equal(await storage.get('alice', name), null)
  t.equal(await storage.delete('alice', name), null)
})

/** A TCP relay to the engine that can be cut and restored, on a port of its own. */
async function relay (t: import('tap').Test): Promise<{ endpoint: string, cut: () => Promise<void>, restore: () => Promise<void> }> {
  const target = new URL(s3Settings().endpoint)
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname)
    sockets.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    const drop = (): void => { client.destroy(); upstream.destroy() }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  t.teardown(() => { server.close(); for (const socket of sockets) socket.destroy() })
  return {
    endpoint: `http://127.0.0.1:${port}`,
    cut: async () => {
      await new Promise((resolve) => { server.close(resolve); for (const socket of sockets) socket.destroy() })
    },
    restore: async () => { await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)) }
  }
}

t.test('an engine that goes away: 503 (nothing acknowledged), then back to work', async (t) => {
  const link = await relay(t)
  const { storage } = await openS3(t, { endpoint: link.endpoint, client: { ...s3Options('').client, maxAttempts: 1 } })
  const first = await storage.begin('alice', 'a', { contentType: 'text/plain' })
  await first.write(streamOf(Buffer.from('before')))
  await first.commit()
  await link.cut()
  const unavailable = { statusCode: 503, code: 'UPFRONT_STORAGE_UNAVAILABLE' }
  await t.rejects(storage.head('alice', 'a'), unavailable, 'a read')
  const upload = await storage.begin('alice', 'b', { contentType: 'text/plain' })
  await t.rejects(upload.write(streamOf(bytes(6 * 1024 * 1024))), unavailable, 'an upload')
  await t.rejects(storage.list('alice', { limit: 10 }), unavailable, 'a listing')
  await link.restore()
  t.equal(await storage.head('alice', 'b'), null, 'nothing was stored')
  t.match(await storage.head('alice', 'a'), { size: 6 }, 'back to work')
})

/** S3 PutObject keys under `prefix` that the proxy saw, in order, with their conditions. */
function puts (requests: EngineRequest[], under: string): EngineRequest[] {
  return requests.filter((request) => request.method === 'PUT' && request.key.startsWith(under) && !request.query.has('partNumber'))
}

t.test('start-up: an engine that does not enforce conditional writes, or refuses writes, is refused', async (t) => {
  const refused = (condition: string): string => `the S3 engine does not enforce conditional writes (${condition} on PutObject), ` +
    'which keep two writers from overwriting each other; use an engine that does (AWS S3, Ceph RGW)'
  const cases: Array<[string, Record<number, EngineAnswer>, RegExp | string]> = [
    ['a first create-only write refused', { 1: { status: 412, code: 'PreconditionFailed' } }, refused('If-None-Match: *')],
    ['a second create-only write of the same key taken', { 2: { status: 200, headers: { etag: '"0"' } } }, refused('If-None-Match: *')],
    ['a write with a stale If-Match taken', { 3: { status: 200, headers: { etag: '"0"' } } }, refused('If-Match')],
    ['If-Match refused, quoted and bare', { 4: { status: 412, code: 'PreconditionFailed' }, 5: { status: 412, code: 'PreconditionFailed' } }, refused('If-Match')],
    ['no write allowed', { 1: { status: 403, code: 'AccessDenied' } },
      /^S3_BUCKET: writing to bucket ".+" failed \(AccessDenied: AccessDenied \(from the test's proxy\)\); check the credentials' write access$/]
  ]
  for (const [what, answers, message] of cases) {
    const prefix = testPrefix()
    let probes = 0
    const proxy = await engineProxy(t, (request) => {
      if (request.method !== 'PUT' || !request.key.startsWith(`${prefix}probe/`)) return undefined
      return answers[++probes]
    })
    await t.rejects(S3Storage.open({ ...s3Options(prefix), endpoint: proxy.endpoint }), { code: 'UPFRONT_STORAGE_START', message }, what)
    t.same(await keysUnder(prefix), [], `${what}: the checks leave nothing`)
  }
})

t.test('If-Match is sent as the engine takes it: quoted (AWS S3), or bare (Ceph RGW)', async (t) => {
  for (const quoted of [true, false]) {
    const prefix = testPrefix()
    t.teardown(async () => { await emptyPrefix(prefix) })
    let probes = 0
    const proxy = await engineProxy(t, (request) => {
      if (!quoted || request.method !== 'PUT') return undefined
      // The fourth probe write carries the entity tag quoted: taken, as AWS S3 takes it.
      if (request.key.startsWith(`${prefix}probe/`)) return ++probes === 4 ? { status: 200, headers: { etag: '"4"' } } : undefined
      // Ceph RGW would refuse a quoted tag: the replacement of the record is taken here.
      if (request.key.startsWith(`${prefix}r/`) && request.headers['if-match'] !== undefined) return { status: 200, headers: { etag: '"5"' } }
      return undefined
    })
    const storage = await S3Storage.open({ ...s3Options(prefix), endpoint: proxy.endpoint })
    t.teardown(async () => { await storage.close() })
    for (const version of ['one', 'two']) {
      const upload = await storage.begin('alice', 'a.txt', { contentType: 'text/plain' })
      await upload.write(streamOf(Buffer.from(version)))
      await upload.commit()
    }
    const [created, replaced] = puts(proxy.requests, `${prefix}r/`)
    t.equal(created?.headers['if-none-match'], '*', 'a new record: If-None-Match: *')
    t.match(replaced?.headers['if-match'], quoted ? /^"[0-9a-f]+"$/ : /^[0-9a-f]+$/, quoted ? 'quoted' : 'bare')
  }
})

t.test('defaults: AWS\'s region and no key prefix; options.client comes last', async (t) => {
  const { bucket, endpoint, accessKeyId, secretAccessKey } = s3Settings()
  // Nothing but the bucket and what the SDK client needs to reach the engine.
  const storage = await S3Storage.open({ bucket, client: { endpoint, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } } })
  t.teardown(async () => { await storage.close() })
  await storage.ping()
  t.equal(await storage.head('nobody-at-all', 'nothing'), null)
  t.same(await storage.list('nobody-at-all', { limit: 10 }), { files: [], nextCursor: null })
  const client = s3Client()
  const left = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'probe/' }))
  client.destroy()
  t.same(left.Contents ?? [], [], 'the start-up checks, at the bucket\'s root, leave nothing')
})

t.test('a closed storage takes no new upload', async (t) => {
  const { storage } = await openS3(t)
  await storage.close()
  await t.rejects(storage.begin('alice', 'late.txt', { contentType: 'text/plain' }), { message: 'This S3Storage is closed' })
})

t.test('reading a file whose data is missing, or cannot be read', async (t) => {
  let dataUnavailable = false
  const proxy = await engineProxy(t, (request) => dataUnavailable && request.method === 'GET' && request.key.includes('/d/') ? { status: 503, code: 'SlowDown' } : undefined)
  const { storage, prefix } = await openS3(t, { endpoint: proxy.endpoint, client: { ...s3Options('').client, maxAttempts: 1 } })
  for (const name of ['gone.txt', 'there.txt']) {
    const upload = await storage.begin('alice', name, { contentType: 'text/plain' })
    await upload.write(streamOf(Buffer.from(name)))
    await upload.commit()
  }
  dataUnavailable = true
  await t.rejects(storage.get('alice', 'there.txt'), { statusCode: 503, code: 'UPFRONT_STORAGE_UNAVAILABLE' }, 'an engine that fails: 503')
  dataUnavailable = false

  // The data of gone.txt goes behind the storage's back.
  const data = (await keysUnder(`${prefix}d/`)).filter((key) => !key.startsWith('multipart:'))
  const client = s3Client()
  const named = await Promise.all(data.map(async (key) => {
    const { Body } = await client.send(new GetObjectCommand({ Bucket: s3Settings().bucket, Key: key }))
    return [key, await (Body as { transformToString: () => Promise<string> }).transformToString()] as const
  }))
  await client.send(new DeleteObjectCommand({ Bucket: s3Settings().bucket, Key: named.find(([, body]) => body === 'gone.txt')?.[0] }))
  client.destroy()
  const before = proxy.requests.length
  await t.rejects(storage.get('alice', 'gone.txt'), { message: 'The data of "gone.txt" is missing though its record names it' })
  t.equal(proxy.requests.slice(before).filter((request) => request.method === 'GET' && request.key.includes('/d/')).length, 3, 'looked for three times, the record read again each time')
  t.equal(await collect((await storage.get('alice', 'there.txt'))?.stream as Readable).then(String), 'there.txt', 'the other file reads')
})

t.test('a record the engine refuses to write: the error as it is, nothing stored', async (t) => {
  let refuse = false
  const proxy = await engineProxy(t, (request) => refuse && request.method === 'PUT' && request.key.includes('/r/') ? { status: 403, code: 'AccessDenied' } : undefined)
  const { storage, prefix } = await openS3(t, { endpoint: proxy.endpoint })
  refuse = true
  const upload = await storage.begin('alice', 'denied.txt', { contentType: 'text/plain' })
  await upload.write(streamOf(Buffer.from('denied')))
  await t.rejects(upload.commit(), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })
  t.equal(await storage.head('alice', 'denied.txt'), null)
  t.same(await keysUnder(prefix), [], 'its data removed')
})

t.test('a delete that loses every race to other writers gives up with a 503 after 20', async (t) => {
  let contended = false
  const proxy = await engineProxy(t, (request) => contended && request.method === 'PUT' && request.headers['if-match'] !== undefined
    ? { status: 412, code: 'PreconditionFailed' }
    : undefined)
  const { storage, prefix } = await openS3(t, { endpoint: proxy.endpoint })
  const upload = await storage.begin('alice', 'busy.txt', { contentType: 'text/plain' })
  await upload.write(streamOf(Buffer.from('busy')))
  await upload.commit()
  contended = true
  await t.rejects(storage.delete('alice', 'busy.txt'), {
    statusCode: 503,
    code: 'UPFRONT_STORAGE_BUSY',
    message: 'The file "busy.txt" is being changed by many writers at once and nothing was stored; retry later'
  })
  t.equal(puts(proxy.requests, `${prefix}r/`).filter((request) => request.headers['if-match'] !== undefined).length, 20)
  contended = false
  t.match(await storage.head('alice', 'busy.txt'), { size: 4 }, 'the file is still there')
})

/** A ListObjectsV2 page, as S3 writes it. */
function objectsPage (contents: Array<{ key: string, size?: number, modified?: string }>, next?: string): string {
  const objects = contents.map(({ key, size, modified }) => `<Contents><Key>${key}</Key>${size === undefined ? '' : `<Size>${size}</Size>`}` +
    `${modified === undefined ? '' : `<LastModified>${modified}</LastModified>`}</Contents>`).join('')
  return `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${s3Settings().bucket}</Name><KeyCount>${contents.length}</KeyCount>` +
    `<IsTruncated>${next !== undefined}</IsTruncated>${next === undefined ? '' : `<NextContinuationToken>${next}</NextContinuationToken>`}${objects}</ListBucketResult>`
}

/** A ListMultipartUploads page, as S3 writes it. */
function uploadsPage (uploads: Array<{ key: string, id: string, initiated?: string }>, next?: { key: string, id: string }): string {
  const listed = uploads.map(({ key, id, initiated }) => `<Upload><Key>${key}</Key><UploadId>${id}</UploadId>` +
    `${initiated === undefined ? '' : `<Initiated>${initiated}</Initiated>`}</Upload>`).join('')
  return `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${s3Settings().bucket}</Bucket>` +
    `<IsTruncated>${next !== undefined}</IsTruncated>` +
    `${next === undefined ? '' : `<NextKeyMarker>${next.key}</NextKeyMarker><NextUploadIdMarker>${next.id}</NextUploadIdMarker>`}${listed}</ListMultipartUploadsResult>`
}

const LONG_AGO = '2000-01-01T00:00:00.000Z'

t.test('the sweep goes through every page, and leaves alone what the engine lists without a date or a size', async (t) => {
  let pages: ((request: EngineRequest) => EngineAnswer | undefined) | null = null
  const proxy = await engineProxy(t, (request) => pages?.(request))
  const { storage, prefix } = await openS3(t, { endpoint: proxy.endpoint, sweepAfterMs: 1000 })
  const upload = await storage.begin('alice', 'kept.txt', { contentType: 'text/plain' })
  await upload.write(streamOf(Buffer.from('kept')))
  await upload.commit()
  const keys = await keysUnder(prefix)
  const record = keys.find((key) => key.startsWith(`${prefix}r/`)) as string
  const data = keys.find((key) => key.startsWith(`${prefix}d/`)) as string

  // Two pages of each listing, as a bucket with thousands of keys gives them.
  const xml = (body: string): EngineAnswer => ({ status: 200, xml: body })
  pages = (request) => {
    const prefixed = request.query.get('prefix')
    if (request.method === 'GET' && request.query.has('uploads')) {
      return request.query.has('key-marker')
        ? xml(uploadsPage([{ key: `${prefix}d/old-2`, id: 'old-2', initiated: LONG_AGO }]))
        : xml(uploadsPage([{ key: `${prefix}d/undated`, id: 'undated', initiated: undefined }, { key: `${prefix}d/old-1`, id: 'old-1', initiated: LONG_AGO }],
          { key: `${prefix}d/old-1`, id: 'old-1' }))
    }
    if (request.method === 'DELETE' && request.query.has('uploadId')) return { status: 204 }
    if (request.method === 'GET' && prefixed === `${prefix}r/`) {
      return request.query.has('continuation-token')
        ? xml(objectsPage([{ key: record, size: 100, modified: LONG_AGO }]))
        : xml(objectsPage([{ key: `${prefix}r/sizeless` }], 'r-2'))
    }
    if (request.method === 'GET' && prefixed === `${prefix}d/`) {
      return request.query.has('continuation-token')
        ? xml(objectsPage([{ key: `${prefix}d/orphan`, size: 5, modified: LONG_AGO }]))
        : xml(objectsPage([{ key: `${prefix}d/undated-data`, size: 5 }, { key: data, size: 4, modified: LONG_AGO }], 'd-2'))
    }
    return undefined
  }
  const before = proxy.requests.length
  await storage.sweep()
  const seen = proxy.requests.slice(before)
  t.same(seen.filter((request) => request.method === 'DELETE' && request.query.has('uploadId')).map((request) => request.query.get('uploadId')),
    ['old-1', 'old-2'], 'old unfinished uploads aborted on both pages; the undated one kept')
  t.same(seen.filter((request) => request.method === 'GET' && request.key.startsWith(`${prefix}r/`)).map((request) => request.key),
    [record], 'records read from the second page; one without a size taken for a tombstone')
  t.same(seen.filter((request) => request.method === 'DELETE' && !request.query.has('uploadId')).map((request) => request.key),
    [`${prefix}d/orphan`], 'unnamed old data removed from the second page; undated data and named data kept')
  pages = null
  t.match(await storage.head('alice', 'kept.txt'), { size: 4 })
})

t.test('a listing leaves out what the engine lists without a size, as a tombstone', async (t) => {
  let ghost = false
  const proxy = await engineProxy(t, (request) => {
    const prefixed = request.query.get('prefix') ?? ''
    if (!ghost || request.method !== 'GET' || !request.query.has('list-type') || !prefixed.includes('/r/')) return undefined
    return { status: 200, xml: objectsPage([{ key: `${prefixed}a.txt` }, { key: `${prefixed}b.txt`, size: 100 }]) }
  })
  const { storage } = await openS3(t, { endpoint: proxy.endpoint })
  for (const name of ['a.txt', 'b.txt']) {
    const upload = await storage.begin('alice', name, { contentType: 'text/plain' })
    await upload.write(streamOf(Buffer.from(name)))
    await upload.commit()
  }
  ghost = true
  t.same((await storage.list('alice', { limit: 10 })).files.map((file) => file.name), ['b.txt'])
})

t.test('a listing reads only the records changed since this process last read or wrote them', async (t) => {
  const proxy = await engineProxy(t, () => undefined)
  const { storage, prefix } = await openS3(t, { endpoint: proxy.endpoint })
  await storage.sweep()
  const other = await S3Storage.open(s3Options(prefix))
  t.teardown(async () => { await other.close() })
  const store = async (on: S3Storage, name: string, body: string): Promise<void> => {
    const upload = await on.begin('alice', name, { contentType: 'text/plain' })
    await upload.write(streamOf(Buffer.from(body)))
    await upload.commit()
  }
  for (const name of ['a.txt', 'b.txt', 'c.txt']) await store(storage, name, name)
  const recordReads = async (): Promise<{ names: string[], sizes: number[], reads: number }> => {
    const before = proxy.requests.length
    const { files } = await storage.list('alice', { limit: 10 })
    const reads = proxy.requests.slice(before).filter((request) => request.method === 'GET' && request.key.includes('/r/') && !request.query.has('list-type')).length
    return { names: files.map((file) => file.name), sizes: files.map((file) => file.size), reads }
  }
  t.same(await recordReads(), { names: ['a.txt', 'b.txt', 'c.txt'], sizes: [5, 5, 5], reads: 0 }, 'what it wrote: one LIST')
  await store(other, 'b.txt', 'b, replaced by another process')
  await other.delete('alice', 'c.txt')
  await store(other, 'd.txt', 'd')
  t.same(await recordReads(), { names: ['a.txt', 'b.txt', 'd.txt'], sizes: [5, 30, 1], reads: 2 }, 'what another process changed is read again')
  t.same(await recordReads(), { names: ['a.txt', 'b.txt', 'd.txt'], sizes: [5, 30, 1], reads: 0 })
  const more = Array.from({ length: 20 }, (_, i) => `e-${String(i).padStart(2, '0')}.txt`)
  for (const name of more) await store(other, name, name)
  const fresh = await S3Storage.open(s3Options(prefix, { endpoint: proxy.endpoint }))
  t.teardown(async () => { await fresh.close() })
  await fresh.sweep()
  // Its own start-up sweep runs beside this one: wait until the engine hears nothing more from it.
  for (let seen = -1; seen !== proxy.requests.length;) {
    seen = proxy.requests.length
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  const before = proxy.requests.length
  t.same((await fresh.list('alice', { limit: 100 })).files.map((file) => file.name), ['a.txt', 'b.txt', 'd.txt', ...more])
  t.equal(proxy.requests.slice(before).filter((request) => request.method === 'GET' && request.key.includes('/r/') && !request.query.has('list-type')).length, 0, 'a sweep leaves the records it read for the listings')
})

t.test('the record cache: an entry only under its entity tag, quoted or bare; the least recently used out first; the sweep only fills room', async (t) => {
  const cache = new RecordCache(2)
  const record = (etag: string): { file: null, data: string, etag: string } => ({ file: null, data: `d/${etag}`, etag })
  cache.set('a', record('"1"'))
  cache.set('b', record('2'))
  t.same(cache.get('a', '1'), record('"1"'), 'a bare tag matches a quoted one')
  t.same(cache.get('b', '"2"'), record('2'))
  t.equal(cache.get('a', '"9"'), null, 'another tag: not used')
  t.equal(cache.get('a', undefined), null, 'no tag listed: not used')
  cache.set('c', record('3'), false)
  t.equal(cache.get('c', '3'), null, 'no room: the sweep does not push an entry out')
  cache.set('a', record('4'), false)
  t.same(cache.get('a', '4'), record('4'), 'but refreshes one it has')
  cache.set('c', record('3'))
  t.equal(cache.get('b', '2'), null, 'a listing\'s read pushes out the least recently used')
  t.same(cache.get('c', '3'), record('3'))
})
