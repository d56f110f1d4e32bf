// What happens to the connection after an early answer: close or drain,
// always gracefully, and nothing left open behind.
import { readdirSync } from 'node:fs'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startApp } from '../../helpers/app.js'
import { requestHead } from '../../helpers/http.js'
import { exchange, json } from '../../helpers/wire.js'

/** Sends requests one after the other on one connection; returns the raw text received after each. */
async function sequence (port: number, requests: Buffer[], waitMs = 150): Promise<{ replies: string[], closed: boolean }> {
  const socket = connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  let text = ''
  let closed = false
  socket.on('data', (data: Buffer) => { text += data.toString('latin1') })
  socket.on('end', () => { closed = true })
  socket.on('error', () => { closed = true })
  const replies: string[] = []
  for (const request of requests) {
    text = ''
    if (closed) break
    socket.write(request)
    await sleep(waitMs)
    replies.push(text)
  }
  socket.destroy()
  return { replies, closed }
}

t.test('a small unread remainder is drained and the connection kept', async (t) => {
  const { port } = await startApp(t)
  const small = Buffer.alloc(100 * 1024, 's')
  const refused = Buffer.concat([Buffer.from(requestHead('POST', '/?readbody=false', [`Content-Length: ${small.length}`]) + '\r\n\r\n'), small])
  const accepted = Buffer.concat([Buffer.from(requestHead('POST', '/?readbody=true', ['Content-Length: 3']) + '\r\n\r\n'), Buffer.from('abc')])
  const { replies, closed } = await sequence(port, [refused, accepted])
  t.match(replies[0], /^HTTP\/1\.1 401 Unauthorized\r\n/)
  t.notMatch(replies[0], /connection: close/i, 'keep-alive after draining')
  t.match(replies[1], /^HTTP\/1\.1 200 OK\r\n[\s\S]*\{"received":3\}$/, 'the next request on the same connection works')
  t.notOk(closed)
})

t.test('a large or unknown unread remainder closes the connection, gracefully', async (t) => {
  const { port } = await startApp(t, { maxBytes: 10 * 1024 * 1024 })
  const large = Buffer.alloc(5 * 1024 * 1024, 'L')
  const eager = await exchange(port, {
    head: requestHead('POST', '/?readbody=false', [`Content-Length: ${large.length}`]),
    body: large,
    send: 'now',
    stopOnAnswer: false
  })
  t.equal(eager.status, 401)
  t.equal(eager.headers.connection, 'close')
  t.same(json(eager), { statusCode: 401, code: 'NO_TOKEN', error: 'Unauthorized', message: 'send a token' })
  t.notOk(eager.reset, 'no ECONNRESET: the server read what still came after its answer')
  t.ok(eager.closedByServer)
  t.equal(eager.bodyBytesWritten, large.length, 'the client could send everything it had')

  const chunked = await exchange(port, {
    head: requestHead('POST', '/?readbody=false', ['Transfer-Encoding: chunked']),
    body: Buffer.alloc(10_000),
    chunked: true,
    send: 'now',
    stopOnAnswer: false
  })
  t.equal(chunked.status, 401)
  t.equal(chunked.headers.connection, 'close', 'unknown remainder: closed')
  t.notOk(chunked.reset)

  // A 100-continue client that stops waiting and sends anyway.
  const impatient = await exchange(port, {
    head: requestHead('POST', '/?readbody=false', [`Content-Length: ${large.length}`, 'Expect: 100-continue']),
    body: large,
    send: 'after:0',
    stopOnAnswer: false
  })
  t.equal(impatient.status, 401)
  t.equal(impatient.headers.connection, 'close')
  t.notOk(impatient.reset)

  const healthy = await exchange(port, { head: requestHead('POST', '/?readbody=true', ['Content-Length: 2']), body: Buffer.from('ok'), send: 'now' })
  t.same(json(healthy), { received: 2 })
})

t.test('drainMaxBytes and lingerMs bound the work done for a refused body', async (t) => {
  const { app, port } = await startApp(t, { drainMaxBytes: 0, lingerMs: 100 })
  const small = Buffer.alloc(1024)
  const refused = await exchange(port, {
    head: requestHead('POST', '/?readbody=false', [`Content-Length: ${small.length}`]),
    body: small,
    send: 'now'
  })
  t.equal(refused.headers.connection, 'close', 'nothing is drained with drainMaxBytes: 0')

  // A client that never stops sending, even after the server's FIN, is cut
  // off once lingerMs has passed.
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  await new Promise((resolve) => socket.once('connect', resolve))
  let answer = ''
  socket.on('data', (data: Buffer) => { answer += data.toString('latin1') })
  const ended = new Promise<void>((resolve) => { socket.on('close', () => { resolve() }) })
  socket.on('error', () => {})
  socket.write(requestHead('POST', '/?readbody=false', ['Content-Length: 1000000000']) + '\r\n\r\n')
  let sentAfterAnswer = 0
  const trickle = setInterval(() => {
    if (socket.destroyed) return
    socket.write(Buffer.alloc(1024))
    if (answer !== '') sentAfterAnswer += 1024
  }, 10)
  await ended
  clearInterval(trickle)
  t.match(answer, /^HTTP\/1\.1 413 Payload Too Large\r\n/, 'the answer arrived before the close')
  t.match(answer, /connection: close/i)
  t.ok(sentAfterAnswer > 0, 'the client went on sending after the answer')
  await sleep(50)
  let open = -1
  await new Promise<void>((resolve) => app.server.getConnections((_error, count) => { open = count; resolve() }))
  t.equal(open, 0, 'the server let go of the socket')
})

t.test('1,000 refused requests in a row leave no socket or file handle behind', async (t) => {
  const { app, port } = await startApp(t, { maxBytes: 1000 })
  const fds = (): number => readdirSync('/proc/self/fd').length
  const handles = (): number => process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap').length
  // Warm up so that lazily opened handles are not counted as leaks.
  await exchange(port, { head: requestHead('POST', '/?readbody=true', ['Content-Length: 5000', 'Expect: 100-continue']) })
  await sleep(50)
  const fdsBefore = fds()
  const handlesBefore = handles()
  const reasons = [
    ['Content-Length: 5000', 'Expect: 100-continue'],
    ['Content-Length: 500', 'Expect: 100-continue'],
    ['Content-Length: 500', 'Expect: a-pony']
  ]
  const statuses = new Map<number, number>()
  for (let i = 0; i < 1000; i++) {
    const lines = reasons[i % reasons.length] as string[]
    const path = i % 3 === 1 ? '/?readbody=false' : '/?readbody=true'
    const result = await exchange(port, { head: requestHead('POST', path, lines), closeWaitMs: 1000 })
    statuses.set(result.status, (statuses.get(result.status) ?? 0) + 1)
    if (!result.closedByServer) t.fail(`request ${i} left open`)
  }
  t.same([...statuses.entries()].sort(), [[401, 333], [413, 334], [417, 333]])
  await sleep(100)
  let open = -1
  await new Promise<void>((resolve) => app.server.getConnections((_error, count) => { open = count; resolve() }))
  t.equal(open, 0, 'no connection left on the server')
  t.equal(handles(), handlesBefore, 'no socket handle left')
  t.equal(fds(), fdsBefore, 'no file descriptor left')
  t.same(app.upfront.stats.refused, { 401: 333, 'too-large': 335, expectation: 333 })
  t.equal(app.upfront.stats.unsentBytes, 333 * 500 + 335 * 5000)
})
