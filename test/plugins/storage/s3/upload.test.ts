// One upload to S3 (plugins/storage/s3/upload.ts), seen through a proxy in
// front of the engine: parts of partSize, at most queueSize of them in
// flight, the writer held while the queue is full.
import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import t from 'tap'
import { engineProxy, openS3 } from '../../../helpers/s3.js'
import type { EngineRequest } from '../../../helpers/s3.js'
import { bytes, collect, streamOf } from '../../../helpers/storage.js'

const MiB = 1024 * 1024

/** The most requests that were in flight at once. */
function mostAtOnce (requests: EngineRequest[]): number {
  let most = 0
  for (const request of requests) {
    const at = request.started
    most = Math.max(most, requests.filter((other) => other.started <= at && (other.ended ?? Infinity) > at).length)
  }
  return most
}

for (const queueSize of [1, 2]) {
  t.test(`queueSize ${queueSize}: parts go ${queueSize} at a time, the writer waits for room, the file is whole`, async (t) => {
    const proxy = await engineProxy(t, () => undefined)
    const { storage } = await openS3(t, { endpoint: proxy.endpoint, partSize: 5 * MiB, queueSize })
    const body = bytes(21 * MiB + 1234, queueSize)
    const upload = await storage.begin('alice', 'parts.bin', { contentType: 'application/octet-stream' })
    // Chunks are at hand at once: only the queue holds the writer back.
    const written = await upload.write(streamOf(body, 256 * 1024))
    await upload.commit()
    const parts = proxy.requests.filter((request) => request.method === 'PUT' && request.query.has('partNumber'))
    t.same(parts.map((part) => Number(part.query.get('partNumber'))).sort((a, b) => a - b), [1, 2, 3, 4, 5], 'five parts of 5 MiB at most')
    t.equal(mostAtOnce(parts), queueSize, `${queueSize} in flight at most, and the queue was filled`)
    t.equal(written.sha256.toString('hex'), createHash('sha256').update(body).digest('hex'))
    const content = await storage.get('alice', 'parts.bin')
    t.ok((await collect(content?.stream as Readable)).equals(body), 'read back whole')
  })
}

t.test('chunks larger than a part, and across parts: every byte in order, the writer still held by the queue', async (t) => {
  const proxy = await engineProxy(t, () => undefined)
  const { storage } = await openS3(t, { endpoint: proxy.endpoint, partSize: 5 * MiB, queueSize: 1 })
  const body = bytes(21 * MiB + 1234, 7)
  const upload = await storage.begin('alice', 'chunks.bin', { contentType: 'application/octet-stream' })
  const written = await upload.write(streamOf(body, 11 * MiB + 3))
  await upload.commit()
  const parts = proxy.requests.filter((request) => request.method === 'PUT' && request.query.has('partNumber'))
  t.same(parts.map((part) => [Number(part.query.get('partNumber')), Number(part.headers['content-length'])]).sort((a, b) => (a[0] as number) - (b[0] as number)),
    [[1, 11 * MiB + 3], [2, 5 * MiB], [3, 5 * MiB], [4, 1231]], 'the first part as its chunk came, then parts of 5 MiB, then the rest')
  t.equal(mostAtOnce(parts), 1)
  t.equal(written.sha256.toString('hex'), createHash('sha256').update(body).digest('hex'))
  t.ok((await collect((await storage.get('alice', 'chunks.bin'))?.stream as Readable)).equals(body), 'read back whole')
})

t.test('a body ending with a full part while the writer waits for room: that part, then nothing more', async (t) => {
  const proxy = await engineProxy(t, () => undefined)
  const { storage } = await openS3(t, { endpoint: proxy.endpoint, partSize: 5 * MiB, queueSize: 1 })
  const body = bytes(15 * MiB, 3)
  const upload = await storage.begin('alice', 'exact.bin', { contentType: 'application/octet-stream' })
  const written = await upload.write(streamOf(body, 5 * MiB))
  await upload.commit()
  const parts = proxy.requests.filter((request) => request.method === 'PUT' && request.query.has('partNumber'))
  t.same(parts.map((part) => [Number(part.query.get('partNumber')), Number(part.headers['content-length'])]).sort((a, b) => (a[0] as number) - (b[0] as number)),
    [[1, 5 * MiB], [2, 5 * MiB], [3, 5 * MiB]], 'three parts of 5 MiB, no empty fourth')
  t.equal(written.sha256.toString('hex'), createHash('sha256').update(body).digest('hex'))
  t.ok((await collect((await storage.get('alice', 'exact.bin'))?.stream as Readable)).equals(body), 'read back whole')
})
