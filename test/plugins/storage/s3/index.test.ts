// The S3 backend (plugins/storage/s3/index.ts) on a real engine (Ceph
// RGW): the storage contract (conformance.ts), and what is S3's own: the
// start-up checks of the bucket and of conditional writes, the sweep of
// unfinished multipart uploads and unnamed data, names that do not fit a
// key, an engine that goes away.
import { GetObjectCommand, CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { createServer, connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import t from 'tap'
import { S3Storage } from '../../../../plugins/storage/s3/index.js'
import { keysUnder, openS3, s3Client, s3Options, s3Settings, testPrefix } from '../../../helpers/s3.js'
import { bytes, streamOf } from '../../../helpers/storage.js'
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
