// A refused client that writes its whole body before it reads (Python's
// http.client, many SDKs, browsers and fetch, which never send Expect)
// still finds the answer: the server keeps reading and discarding while
// data keeps coming (lingerIdleMs between reads, lingerMs in all), as nginx
// does, instead of closing under it.
import { connect } from 'node:net'
import { Writable } from 'node:stream'
import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { startApp } from '../../helpers/app.js'

const MiB = 1024 * 1024

interface Outcome {
  /** Everything the server sent, read only once the client finished writing (or was cut off). */
  received: string
  /** Body bytes the client wrote before it stopped. */
  written: number
  /** The write failed (EPIPE, ECONNRESET): the server closed under a client still sending. */
  writeError: string | null
  /** Milliseconds from the first byte to the server's close. */
  closedAfterMs: number
}

/**
 * Sends `head` then `bytes` of body at about `bytesPerSecond`, without
 * reading anything until it has sent everything (or a write failed), then
 * reads what the server sent. `pauseAfter` stops sending for `pauseMs`
 * once that many bytes are out.
 */
async function writeThenRead (port: number, head: string, bytes: number, bytesPerSecond: number, pause?: { after: number, ms: number }): Promise<Outcome> {
  const socket: Socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  socket.pause()
  await new Promise((resolve) => socket.once('connect', resolve))
  const started = performance.now()
  const outcome: Outcome = { received: '', written: 0, writeError: null, closedAfterMs: 0 }
  let closed = false
  socket.once('close', () => { closed = true; outcome.closedAfterMs = performance.now() - started })
  socket.on('error', (error: NodeJS.ErrnoException) => { outcome.writeError ??= error.code ?? error.message })
  socket.write(head)
  const chunk = Buffer.alloc(64 * 1024, 1)
  const tick = 20
  const perTick = Math.max(1, Math.round(bytesPerSecond * tick / 1000))
  // eslint-disable-next-line no-unmodified-loop-condition -- `closed` is set by the socket's close handler
  while (outcome.written < bytes && outcome.writeError === null && !closed) {
    if (pause !== undefined && outcome.written >= pause.after && outcome.written - perTick < pause.after) await sleep(pause.ms)
    let due = Math.min(perTick, bytes - outcome.written)
    while (due > 0) {
      const piece = chunk.subarray(0, Math.min(due, chunk.length))
      socket.write(piece)
      outcome.written += piece.length
      due -= piece.length
    }
    await sleep(tick)
  }
  // Only now does the client read.
  const chunks: Buffer[] = []
  socket.on('data', (data: Buffer) => { chunks.push(data) })
  socket.resume()
  await Promise.race([new Promise((resolve) => socket.once('close', resolve)), sleep(500)])
  outcome.received = Buffer.concat(chunks).toString('latin1')
  socket.destroy()
  return outcome
}

t.test('a client sending 6x the limit at about 3 MiB/s, reading only at the end, reads the 413', async (t) => {
  const { app, port } = await startApp(t, { maxBytes: 2 * MiB })
  for (const framing of ['Content-Length', 'chunked'] as const) {
    const total = 12 * MiB
    const head = framing === 'chunked'
      // One chunk as large as the whole body: the client's bytes are all body.
      ? `POST /?readbody=true HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${total.toString(16)}\r\n`
      : `POST /?readbody=true HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`
    const outcome = await writeThenRead(port, head, total, 3 * MiB)
    t.equal(outcome.writeError, null, `${framing}: the server kept reading while the client sent (no EPIPE, no reset)`)
    t.equal(outcome.written, total, `${framing}: the client sent its whole body, about 4 s`)
    t.match(outcome.received, /^HTTP\/1\.1 413 Payload Too Large\r\n/, `${framing}: and then read the 413`)
    t.match(outcome.received, /"code":"UPFRONT_BODY_TOO_LARGE"/)
    t.match(outcome.received, /\r\nconnection: close\r\n/i)
  }
  t.same(app.upfront.stats.refused, { 'too-large': 1, 'too-large-while-streaming': 1 })
})

t.test('a body a reader started and then left is discarded too, so the client that goes on sending reads the answer', async (t) => {
  const { port } = await startApp(t, { maxBytes: Infinity }, (app) => {
    // A reader that takes the first bytes, then stalls (a form parser stuck
    // at a part nobody reads); the route answers without the rest.
    app.post('/abandon', async (request, reply) => {
      request.raw.pipe(new Writable({ highWaterMark: 1024, write () {} }))
      await new Promise((resolve) => { request.raw.once('data', resolve) })
      return await reply.code(409).send({ statusCode: 409, code: 'ABANDONED', error: 'Conflict', message: 'answered with the body half read' })
    })
  })
  const total = 12 * MiB
  const outcome = await writeThenRead(port, `POST /abandon HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`, total, 4 * MiB)
  t.equal(outcome.writeError, null, 'no EPIPE, no reset')
  t.equal(outcome.written, total)
  t.match(outcome.received, /^HTTP\/1\.1 409 Conflict\r\n/)
})

/**
 * Milliseconds from connecting to the server's closing of its socket, for
 * a client that sends `bytesPerSecond` for `sendMs`, then nothing (it
 * never closes by itself).
 */
async function closedAfter (app: FastifyInstance, port: number, head: string, bytesPerSecond: number, sendMs: number): Promise<number> {
  const serverClosed = new Promise<number>((resolve) => {
    app.server.once('connection', (socket: Socket) => {
      const opened = performance.now()
      socket.once('close', () => { resolve(performance.now() - opened) })
    })
  })
  const socket: Socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  socket.on('error', () => {})
  socket.resume()
  await new Promise((resolve) => socket.once('connect', resolve))
  const started = performance.now()
  socket.write(head)
  const piece = Buffer.alloc(Math.round(bytesPerSecond / 50), 1)
  let closed = false
  serverClosed.then(() => { closed = true }, () => {})
  // eslint-disable-next-line no-unmodified-loop-condition -- `closed` is set when the server closes its side
  while (!closed && !socket.destroyed && performance.now() - started < sendMs) {
    socket.write(piece)
    await sleep(20)
  }
  const after = await Promise.race([serverClosed, sleep(5000).then(() => Infinity)])
  socket.destroy()
  return after
}

t.test('a client that stops sending is closed after lingerIdleMs; one that never stops, after lingerMs', async (t) => {
  const { app, port } = await startApp(t, { maxBytes: 1024, lingerIdleMs: 300, lingerMs: 1500 })
  const head = `POST /?readbody=true HTTP/1.1\r\nHost: x\r\nContent-Length: ${100 * MiB}\r\n\r\n`
  // Sends for 200 ms, then nothing: closed once 300 ms pass without a byte.
  const idle = await closedAfter(app, port, head, 2 * MiB, 200)
  t.ok(idle > 400 && idle < 900, `closed after the idle limit (${Math.round(idle)} ms)`)
  // Sends for 5 s: the total limit cuts it at 1.5 s.
  const endless = await closedAfter(app, port, head, 2 * MiB, 5000)
  t.ok(endless > 1400 && endless < 2200, `closed at the total limit (${Math.round(endless)} ms)`)
})
