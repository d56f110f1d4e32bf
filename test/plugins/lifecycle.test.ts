// plugins/lifecycle.ts: a graceful shutdown (uploads in flight finish
// within the grace, those still running get a 503 and leave nothing, no new
// connection, readiness and every new request refused; with a delay,
// readiness refused first while requests are still served), and the floor
// under an upload's rate.
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import upfront from 'upfront'
import { answerFrameworkError } from '../../plugins/answers.js'
import answers from '../../plugins/answers.js'
import lifecycle from '../../plugins/lifecycle.js'
import { noCors } from '../../plugins/cors.js'
import { requestHead } from '../helpers/http.js'
import { listen } from '../helpers/net.js'
import { bearer, BACKENDS, putFile, startService } from '../helpers/service.js'
import { exchange } from '../helpers/wire.js'

/** A raw connection that sends `head`, then `total` body bytes at `bytesPerSecond`, and collects the answer. */
function slowClient (port: number, head: string, total: number, bytesPerSecond: number): { answer: Promise<string>, socket: Socket } {
  const socket = connect({ port, host: '127.0.0.1' })
  let received = ''
  socket.on('data', (data: Buffer) => { received += data.toString('latin1') })
  socket.on('error', () => {})
  const answer = new Promise<string>((resolve) => {
    socket.once('close', () => { resolve(received) })
    socket.once('connect', async () => {
      socket.write(`${head}\r\n\r\n`)
      const piece = Buffer.alloc(Math.max(1, Math.round(bytesPerSecond / 20)), 1)
      // eslint-disable-next-line no-unmodified-loop-condition -- `received` grows in the data handler
      for (let sent = 0; sent < total && !socket.destroyed && received === ''; sent += piece.length) {
        socket.write(piece.subarray(0, Math.min(piece.length, total - sent)))
        await sleep(50)
      }
      // A whole answer arrived (or the socket closed): done.
      const wait = setInterval(() => { if (/\r\n\r\n[\s\S]*\}$/.test(received)) { clearInterval(wait); socket.destroy() } }, 20)
    })
  })
  return { answer, socket }
}

for (const backend of BACKENDS) {
  t.test(`a graceful shutdown, on ${backend}`, async (t) => {
    const service = await startService(t, { SHUTDOWN_GRACE_MS: '2000' }, backend)
    const { port, app } = service
    const head = (name: string, length: number): string => requestHead('PUT', `/files/${name}`, [bearer('alice'), `Content-Length: ${length}`])
    // Finishes in about 1 s: within the grace.
    const quick = slowClient(port, head('quick.bin', 300_000), 300_000, 300_000)
    // Would take 50 s: cut when the grace ends.
    const slow = slowClient(port, head('slow.bin', 5_000_000), 5_000_000, 100_000)
    // A keep-alive connection that sends its next request during the shutdown.
    const idle = connect({ port, host: '127.0.0.1' })
    let idleAnswer = ''
    idle.on('data', (data: Buffer) => { idleAnswer += data.toString('latin1') })
    await new Promise((resolve) => idle.once('connect', resolve))
    await sleep(300)
    t.equal(app.lifecycle.inFlight, 2, 'two uploads in flight')

    const shutdown = app.lifecycle.shutdown()
    await sleep(100)
    t.equal(app.lifecycle.shuttingDown, true)
    const refused = await new Promise<string>((resolve) => {
      const client = connect({ port, host: '127.0.0.1' })
      client.on('error', (error: NodeJS.ErrnoException) => { resolve(error.code ?? 'error') })
      client.on('connect', () => { client.destroy(); resolve('connected') })
    })
    t.equal(refused, 'ECONNREFUSED', 'no new connection is taken')
    idle.write(`${requestHead('GET', '/readyz')}\r\n\r\n`)

    const quickAnswer = await quick.answer
    t.match(quickAnswer, /^HTTP\/1\.1 201 Created\r\n/, 'the upload that finished within the grace got its 201')
    t.match(quickAnswer, /\r\nconnection: close\r\n/i, 'and its connection closed')
    const slowAnswer = await slow.answer
    t.match(slowAnswer, /^HTTP\/1\.1 503 Service Unavailable\r\n/, 'the one still running after the grace got a 503')
    t.match(slowAnswer, /\r\nretry-after: 5\r\n/i)
    t.match(slowAnswer, /\r\nconnection: close\r\n/i)
    t.match(slowAnswer, /"code":"UPFRONT_SHUTTING_DOWN"/)
    await sleep(50)
    t.match(idleAnswer, /^HTTP\/1\.1 503 Service Unavailable\r\n/, 'a request arriving on an open connection during the shutdown: 503')
    t.match(idleAnswer, /"code":"UPFRONT_SHUTTING_DOWN"/)
    idle.destroy()

    const report = await shutdown
    t.match(report, { inFlight: 2, finished: 1, cut: 1 })
    t.ok(report.tookMs >= 1900 && report.tookMs < 9000, `took the grace and a little more (${report.tookMs} ms)`)
    if (backend === 'disk') t.same(service.files().length, 1, 'the quick file is stored; nothing of the cut one is left')
  })
}

t.test('a shutdown delay: readiness fails at once, connections and requests are taken until it ends, then refused as without one', async (t) => {
  const { port, app } = await startService(t, { SHUTDOWN_DELAY_MS: '1000', SHUTDOWN_GRACE_MS: '1000' })
  // A balancer's kept-alive connection, idle when the shutdown begins.
  const idle = connect({ port, host: '127.0.0.1' })
  let idleAnswer = ''
  idle.on('data', (data: Buffer) => { idleAnswer += data.toString('latin1') })
  await new Promise((resolve) => idle.once('connect', resolve))
  const shutdown = app.lifecycle.shutdown()
  await sleep(100)
  const ready = await exchange(port, { head: requestHead('GET', '/readyz') })
  t.equal(ready.status, 503, 'readiness fails at once')
  t.match(JSON.parse(ready.body), { status: 'unavailable', reason: 'shutting down' })
  t.equal(ready.headers['retry-after'], '5')
  const body = Buffer.from('taken during the delay')
  const during = await putFile(port, '/files/during-delay.txt', body)
  t.equal(during.status, 201, 'a new connection and upload during the delay: served')
  idle.write(`${requestHead('GET', '/healthz')}\r\n\r\n`)
  await sleep(200)
  t.match(idleAnswer, /^HTTP\/1\.1 200 OK\r\n/, 'and a request on a kept-alive connection')
  await sleep(900)
  const refused = await new Promise<string>((resolve) => {
    const client = connect({ port, host: '127.0.0.1' })
    client.on('error', (error: NodeJS.ErrnoException) => { resolve(error.code ?? 'error') })
    client.on('connect', () => { client.destroy(); resolve('connected') })
  })
  t.equal(refused, 'ECONNREFUSED', 'after the delay: no new connection')
  const report = await shutdown
  t.ok(report.tookMs >= 1000, `the delay, then the shutdown (${report.tookMs} ms)`)
  idle.destroy()
})

/** An app with the rate floor checked every 400 ms: `PUT /` reads its body (after `?wait` ms), `GET /` answers after `?wait` ms. */
async function floorApp (t: Test, minUploadBytesPerSecond: number): Promise<number> {
  const app = Fastify({ frameworkErrors: answerFrameworkError })
  await app.register(answers)
  await app.register(upfront, { maxBytes: Infinity })
  await app.register(noCors)
  await app.register(lifecycle, { shutdownGraceMs: 1000, minUploadBytesPerSecond, rateWindowMs: 400 })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  const wait = async (request: FastifyRequest): Promise<void> => { await sleep(Number((request.query as { wait?: string }).wait ?? 0)) }
  app.put('/', async (request) => {
    await wait(request)
    let size = 0
    for await (const chunk of request.raw) size += (chunk as Buffer).length
    return { size }
  })
  app.get('/', async (request) => {
    await wait(request)
    return { waited: true }
  })
  return await listen(t, app)
}

t.test('an upload slower than the floor is cut with a 408; one above it is not', async (t) => {
  const port = await floorApp(t, 20_000)
  const head = (length: number): string => requestHead('PUT', '/', [`Content-Length: ${length}`])
  const [trickle, steady] = [slowClient(port, head(1_000_000), 1_000_000, 2_000), slowClient(port, head(60_000), 60_000, 60_000)]
  const trickled = await trickle.answer
  t.match(trickled, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(trickled, /"code":"UPFRONT_UPLOAD_TOO_SLOW"/)
  t.match(trickled, /\r\nconnection: close\r\n/i)
  t.match(await steady.answer, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\{"size":60000\}$/)
})

t.test('the floor measures only bodies being read: not one waiting for its reader, nor a request without a body', async (t) => {
  const port = await floorApp(t, 20_000)
  // Sent at once, left unread for 3 windows: the buffer is full, the socket paused, by the reader's doing.
  const unread = slowClient(port, requestHead('PUT', '/?wait=1200', ['Content-Length: 1000000']), 1_000_000, 20_000_000)
  const idle = slowClient(port, requestHead('GET', '/?wait=1200'), 0, 1)
  t.match(await unread.answer, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\{"size":1000000\}$/)
  t.match(await idle.answer, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\{"waited":true\}$/)
})

t.test('a floor of 0 is none: a trickle that a floor of 1 KiB/s cuts is taken whole', async (t) => {
  const trickle = async (port: number): Promise<string> => await slowClient(port, requestHead('PUT', '/', ['Content-Length: 600']), 600, 400).answer
  t.match(await trickle(await floorApp(t, 1024)), /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(await trickle(await floorApp(t, 0)), /^HTTP\/1\.1 200 OK\r\n[\s\S]*\{"size":600\}$/)
})
