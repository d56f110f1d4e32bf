// One upload to disk (plugins/storage/disk/upload.ts): the body written in
// batches as it arrives, hashed on the way, written once and committed once,
// and nothing left behind when the source fails or the upload is aborted.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { requestHead } from '../../../helpers/http.js'
import { listenServer } from '../../../helpers/net.js'
import { assertClean, bytes, collect, failingStream, KiB, openStorage, sha256, streamOf } from '../../../helpers/storage.js'

t.test('MD5 only when asked for', async (t) => {
  const { storage } = await openStorage(t)
  const upload = await storage.begin('alice', 'a', { contentType: 'text/plain' })
  const written = await upload.write(streamOf(Buffer.from('hello')))
  t.equal(written.md5, null)
  await upload.abort()
})

t.test('a large upload in many batches, with background syncs', async (t) => {
  const { storage, dir } = await openStorage(t, undefined, { writeBatchBytes: 32 * KiB, syncEveryBytes: 64 * KiB })
  // A source that hands over everything at once, so that batches fill up
  // while the disk is busy and the source must be paused.
  const body = bytes(2048 * KiB, 3)
  const source = new PassThrough({ highWaterMark: body.length })
  for (let i = 0; i < body.length; i += 16 * KiB) source.write(body.subarray(i, i + 16 * KiB))
  source.end()
  const upload = await storage.begin('alice', 'big', { contentType: 'application/octet-stream' })
  const written = await upload.write(source)
  t.equal(written.sha256.toString('hex'), sha256(body))
  await upload.commit()
  const file = await storage.get('alice', 'big')
  t.ok(file !== null && (await collect(file.stream)).equals(body))
  await assertClean(t, dir, 1)
})

t.test('a source that fails leaves nothing behind', async (t) => {
  const { storage, dir } = await openStorage(t)
  const total = 512 * KiB
  for (const failAt of [0, 1, total / 2, total - 1]) {
    const upload = await storage.begin('alice', 'broken', { contentType: 'application/octet-stream' })
    await t.rejects(upload.write(failingStream(failAt, new Error('client went away'))), { message: 'client went away' }, `error after ${failAt} bytes`)
    const closed = await storage.begin('alice', 'broken', { contentType: 'application/octet-stream' })
    await t.rejects(closed.write(failingStream(failAt)), { code: 'ERR_STREAM_PREMATURE_CLOSE' }, `closed after ${failAt} bytes`)
    await assertClean(t, dir, 0)
  }
  t.equal(await storage.head('alice', 'broken'), null)
})

t.test('an HTTP request aborted by the client leaves nothing behind', async (t) => {
  const { storage, dir } = await openStorage(t)
  const declared = 256 * KiB
  const outcomes: Array<Promise<unknown>> = []
  const server = createServer((req: IncomingMessage) => {
    outcomes.push(storage.begin('alice', 'upload', { contentType: 'application/octet-stream' })
      .then(async (upload) => await upload.write(req)))
  })
  const port = await listenServer(t, server)

  for (const sent of [0, declared / 2, declared - 1]) {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(`${requestHead('PUT', '/upload', [`Content-Length: ${declared}`])}\r\n\r\n`)
    socket.write(bytes(sent))
    while (outcomes.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    await new Promise((resolve) => setTimeout(resolve, 20))
    socket.destroy()
    const outcome = outcomes.shift()
    await t.rejects(outcome ?? Promise.resolve(), { code: 'ECONNRESET' }, `aborted after ${sent} of ${declared} bytes`)
    await assertClean(t, dir, 0)
  }
})

t.test('abort', async (t) => {
  t.test('is idempotent and frees the upload', async (t) => {
    const { storage, dir } = await openStorage(t)
    const upload = await storage.begin('alice', 'a', { contentType: 'text/plain' })
    await upload.write(streamOf(Buffer.from('never committed')))
    await Promise.all([upload.abort(), upload.abort()])
    await upload.abort()
    await t.rejects(upload.commit(), /this upload is aborted/)
    t.equal(await storage.head('alice', 'a'), null)
    await assertClean(t, dir, 0)
  })

  t.test('does nothing after commit', async (t) => {
    const { storage, dir } = await openStorage(t)
    const upload = await storage.begin('alice', 'a', { contentType: 'text/plain' })
    await upload.write(streamOf(Buffer.from('kept')))
    await upload.commit()
    await upload.abort()
    t.match(await storage.head('alice', 'a'), { size: 4 })
    await assertClean(t, dir, 1)
  })

  t.test('before write: write is refused', async (t) => {
    const { storage, dir } = await openStorage(t)
    const upload = await storage.begin('alice', 'a', { contentType: 'text/plain' })
    await upload.abort()
    await t.rejects(upload.write(streamOf(Buffer.from('late'))), /this one is aborted/)
    await assertClean(t, dir, 0)
  })

  t.test('before anything is written', async (t) => {
    const { storage, dir } = await openStorage(t)
    const upload = await storage.begin('alice', 'a', { contentType: 'text/plain' })
    const source = streamOf(Buffer.from('racing'))
    const writing = upload.write(source)
    await upload.abort()
    await t.rejects(writing, { name: 'AbortError' })
    t.equal(source.isPaused(), false, 'the source was not touched')
    await assertClean(t, dir, 0)
  })

  t.test('while the body arrives', async (t) => {
    const { storage, dir } = await openStorage(t)
    const upload = await storage.begin('alice', 'a', { contentType: 'text/plain' })
    const source = new PassThrough()
    const writing = upload.write(source)
    source.write(bytes(100 * KiB))
    while (source.readableLength > 0 || source.writableLength > 0) await new Promise((resolve) => setImmediate(resolve))
    await upload.abort()
    await t.rejects(writing, { name: 'AbortError' })
    t.equal(source.destroyed, false)
    await assertClean(t, dir, 0)
    source.destroy()
  })
})

t.test('write and commit are called once, in order', async (t) => {
  const { storage, dir } = await openStorage(t)
  const upload = await storage.begin('alice', 'a', { contentType: 'text/plain' })
  await t.rejects(upload.commit(), /commit\(\) is called once, after write\(\); this upload is ready/)
  await upload.write(streamOf(Buffer.from('one')))
  await t.rejects(upload.write(streamOf(Buffer.from('two'))), /write\(\) is called once, on a new upload; this one is written/)
  await upload.commit()
  await t.rejects(upload.commit(), /this upload is committed/)
  await assertClean(t, dir, 1)
})
