// Requests that Node's HTTP parser refuses, before Fastify sees them.
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import t from 'tap'
import { answerClientError, clientErrorAnswer } from '../../plugins/answers.js'
import { startService, TOKENS } from '../helpers/service.js'
import { exchange } from '../helpers/wire.js'

/** Writes `request` raw and reads everything until the server closes. */
async function raw (port: number, request: string): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1' })
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.on('error', () => {})
  socket.write(request)
  await once(socket, 'close')
  return Buffer.concat(chunks).toString('latin1')
}

function answerOf (text: string): { statusLine: string, headers: string, body: unknown } {
  const end = text.indexOf('\r\n\r\n')
  const head = text.slice(0, end).split('\r\n')
  return { statusLine: head[0] ?? '', headers: head.slice(1).join('\n').toLowerCase(), body: JSON.parse(text.slice(end + 4)) }
}

t.test('a malformed request gets a 400 with a code, and the connection closes', async (t) => {
  const { port } = await startService(t)
  for (const [what, request, reason] of [
    ['an invalid method', 'G=T /files HTTP/1.1\r\nHost: x\r\n\r\n', 'HPE_INVALID_METHOD'],
    ['Content-Length with Transfer-Encoding', 'PUT /files/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'HPE_'],
    ['a header without a colon', 'GET /files HTTP/1.1\r\nHost x\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN']
  ] as const) {
    const answer = answerOf(await raw(port, request))
    t.equal(answer.statusLine, 'HTTP/1.1 400 Bad Request', what)
    t.match(answer.headers, 'connection: close')
    t.match(answer.body, { statusCode: 400, code: 'UPFRONT_BAD_REQUEST', error: 'Bad Request', message: new RegExp(`^The request is not valid HTTP/1.1 \\(${reason}`) }, what)
  }
})

t.test('a header section over the limit gets a 431', async (t) => {
  const { port } = await startService(t)
  const answer = answerOf(await raw(port, `GET /files HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`))
  t.equal(answer.statusLine, 'HTTP/1.1 431 Request Header Fields Too Large')
  t.same(answer.body, {
    statusCode: 431,
    code: 'UPFRONT_HEADERS_TOO_LARGE',
    error: 'Request Header Fields Too Large',
    message: 'The request\'s header section is over the server\'s limit (16 KiB); send fewer or shorter headers'
  })
})

t.test('a malformed request behind an answer under way does not break into it', async (t) => {
  const { port } = await startService(t)
  const big = Buffer.alloc(20_000_000, 7)
  const stored = await exchange(port, {
    head: ['PUT /files/big.bin HTTP/1.1', 'Host: x', `Authorization: Bearer ${TOKENS.alice}`, `Content-Length: ${big.length}`].join('\r\n'),
    body: big,
    send: 'now'
  })
  t.equal(stored.status, 201)

  const socket = connect({ port, host: '127.0.0.1' })
  socket.on('error', () => {})
  let received = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => { received = Buffer.concat([received, chunk]) })
  socket.write(`GET /files/big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.alice}\r\n\r\n`)
  // The answer's head is out; its body is still being sent when the bad request comes.
  while (!received.includes('\r\n\r\n')) await once(socket, 'data')
  socket.pause()
  socket.write('G=T / HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 100))
  socket.resume()
  await once(socket, 'close')
  t.match(received.subarray(0, 20).toString(), /^HTTP\/1\.1 200 OK/)
  t.equal(received.indexOf('HTTP/1.1 400'), -1, 'no 400 written into the body')
  t.ok(received.length < big.length, 'the connection closed instead')
})

t.test('what each parser error becomes', async (t) => {
  t.match(clientErrorAnswer(Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' })), { statusCode: 408, code: 'UPFRONT_REQUEST_TIMEOUT' })
  t.match(clientErrorAnswer(new Error('odd')), { statusCode: 400, message: 'The request is not valid HTTP/1.1 (odd); check what the client sends' })
})

t.test('nothing is written to a connection that is gone or closing', async (t) => {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const { port } = server.address() as AddressInfo
  const open = async (): Promise<{ client: Socket, received: () => string }> => {
    const accepted = once(server, 'connection')
    const client = connect({ port, host: '127.0.0.1' })
    const [socket] = await accepted as [Socket]
    let text = ''
    client.on('data', (chunk: Buffer) => { text += chunk.toString() })
    client.on('error', () => {})
    socket.on('error', () => {})
    t.teardown(() => { client.destroy(); socket.destroy() })
    return { client: socket, received: () => text }
  }

  const reset = await open()
  answerClientError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), reset.client)
  t.equal(reset.client.destroyed, false, 'a reset: left alone')

  const ended = await open()
  ended.client.end()
  answerClientError(Object.assign(new Error('bad'), { code: 'HPE_INVALID_METHOD' }), ended.client)
  t.equal(ended.client.destroyed, true, 'no longer writable: only closed')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(ended.received(), '', 'nothing written')

  const destroyed = await open()
  destroyed.client.destroy()
  answerClientError(Object.assign(new Error('bad'), { code: 'HPE_INVALID_METHOD' }), destroyed.client)
  t.equal(destroyed.received(), '')
})
