// How the service answers what goes wrong (plugins/answers.ts): Fastify's
// own refusals and unknown routes in the service's error shape, failures
// without internals, and requests that Node's HTTP parser refuses before
// Fastify sees them.
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import type { Socket } from 'node:net'
import t from 'tap'
import { answerClientError, clientErrorAnswer } from '../../plugins/answers.js'
import { requestHead } from '../helpers/http.js'
import { listenServer } from '../helpers/net.js'
import { bearer, getFile, putFile, startService } from '../helpers/service.js'
import { exchange, json } from '../helpers/wire.js'

t.test('Fastify\'s own refusals say what to do', async (t) => {
  const { port } = await startService(t)
  const cases: Array<[string, string[], string, number, string, string]> = [
    ['POST', ['Content-Type: application/x-www-form-urlencoded'], 'name=a', 415, 'UPFRONT_UNSUPPORTED_MEDIA_TYPE',
      'Content-Type "application/x-www-form-urlencoded" is not accepted by this route; send one of: application/json'],
    ['POST', ['Content-Type: text/plain'], '{"name":"a"}', 415, 'UPFRONT_UNSUPPORTED_MEDIA_TYPE',
      'Content-Type "text/plain" is not accepted by this route; send one of: application/json'],
    ['POST', ['Content-Type: application/json'], '{bad', 400, 'FST_ERR_CTP_INVALID_JSON_BODY',
      'The body cannot be read as JSON (it is not JSON, or holds a forbidden key such as "__proto__"); send a JSON object, such as {"name":"a.txt"} (POST /presign is the route that reads JSON)'],
    ['POST', ['Content-Type: application/json'], '{"__proto__":{}}', 400, 'FST_ERR_CTP_INVALID_JSON_BODY',
      'The body cannot be read as JSON (it is not JSON, or holds a forbidden key such as "__proto__"); send a JSON object, such as {"name":"a.txt"} (POST /presign is the route that reads JSON)'],
    ['POST', ['Content-Type: application/json'], '', 400, 'FST_ERR_CTP_EMPTY_JSON_BODY', 'The body is empty; send a JSON object, such as {"name":"a.txt"} (POST /presign is the route that reads JSON)'],
    ['POST', [], '{"name":"a"}', 415, 'UPFRONT_UNSUPPORTED_MEDIA_TYPE',
      'Content-Type (none) is not accepted by this route; send one of: application/json'],
    ['POST', ['Content-Type: application/json'], '{"name":"a","expiresIn":0}', 400, 'FST_ERR_VALIDATION',
      'Body/expiresIn must be >= 1; fix the body (see the HTTP API in the README)'],
    ['POST', ['Content-Type: application/json'], '{"maxBytes":10}', 400, 'FST_ERR_VALIDATION',
      'Body must have required property \'name\'; fix the body (see the HTTP API in the README)']
  ]
  for (const [method, lines, body, status, code, message] of cases) {
    const answer = await exchange(port, {
      head: requestHead(method, '/presign', [bearer('alice'), ...lines, `Content-Length: ${body.length}`]),
      body: Buffer.from(body),
      send: 'now'
    })
    t.equal(answer.status, status, code)
    t.same(json(answer), { statusCode: status, code, error: status === 415 ? 'Unsupported Media Type' : 'Bad Request', message }, code)
  }
  const nonsense = await putFile(port, '/files/a.txt', Buffer.from('x'), [bearer('alice'), 'Content-Type: nonsense'])
  t.equal(nonsense.status, 415)
  t.same(json(nonsense), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', error: 'Unsupported Media Type', message: 'The Content-Type "nonsense" cannot be read here; send a valid media type (type/subtype)' })
  const bodyWithoutType = await exchange(port, { head: requestHead('PUT', '/files/b.txt', [bearer('alice'), 'Content-Length: 1']), body: Buffer.from('x'), send: 'now' })
  t.equal(bodyWithoutType.status, 201, 'a PUT takes any type, none included')
  const deleteWithBody = await exchange(port, { head: requestHead('DELETE', '/files/b.txt', [bearer('alice'), 'Content-Length: 1']), body: Buffer.from('x'), send: 'now' })
  t.same(json(deleteWithBody), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', error: 'Unsupported Media Type', message: 'A body without a Content-Type cannot be read here; send a valid media type (type/subtype)' })
})

t.test('an unknown route is a 404 that says where the routes are', async (t) => {
  const { port } = await startService(t)
  const notFound = await getFile(port, '/nothing-here')
  t.same(json(notFound), { statusCode: 404, code: 'UPFRONT_ROUTE_NOT_FOUND', error: 'Not Found', message: 'No route GET "/nothing-here": files are under /files/<name> (GET, HEAD, PUT, DELETE), listed and uploaded as forms at /files (GET, POST); presigned URLs come from POST /presign' })
})

t.test('an unexpected storage failure is a 500 without internals, logged in full', async (t) => {
  const { port, dataDir } = await startService(t)
  rmSync(dataDir, { recursive: true, force: true })
  const result = await exchange(port, {
    head: requestHead('PUT', '/files/x.bin', ['Content-Length: 10', 'Expect: 100-continue', bearer('alice')]),
    body: Buffer.alloc(10)
  })
  t.equal(result.status, 500)
  t.same(json(result), {
    statusCode: 500,
    code: 'UPFRONT_INTERNAL_ERROR',
    error: 'Internal Server Error',
    message: 'The server failed to handle the request; try again later'
  })
  t.notMatch(result.body, new RegExp(dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no path leaks')
})

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
    head: requestHead('PUT', '/files/big.bin', [bearer('alice'), `Content-Length: ${big.length}`]),
    body: big,
    send: 'now'
  })
  t.equal(stored.status, 201)

  const socket = connect({ port, host: '127.0.0.1' })
  socket.on('error', () => {})
  let received = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => { received = Buffer.concat([received, chunk]) })
  socket.write(`${requestHead('GET', '/files/big.bin', [bearer('alice')])}\r\n\r\n`)
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
  const port = await listenServer(t, server)
  /** The server's end of a new connection, and every write made on it, whether the socket could still send it or not. */
  const open = async (): Promise<{ client: Socket, written: string[] }> => {
    const accepted = once(server, 'connection')
    const client = connect({ port, host: '127.0.0.1' })
    const [socket] = await accepted as [Socket]
    client.on('error', () => {})
    socket.on('error', () => {})
    const written: string[] = []
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean
    socket.write = ((...args: unknown[]) => { written.push(String(args[0])); return write(...args) }) as Socket['write']
    t.teardown(() => { client.destroy(); socket.destroy() })
    return { client: socket, written }
  }

  const reset = await open()
  answerClientError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), reset.client)
  t.equal(reset.client.destroyed, false, 'a reset: left alone')
  t.same(reset.written, [], 'a reset: nothing written')

  const ended = await open()
  ended.client.end()
  answerClientError(Object.assign(new Error('bad'), { code: 'HPE_INVALID_METHOD' }), ended.client)
  t.equal(ended.client.destroyed, true, 'no longer writable: only closed')
  t.same(ended.written, [], 'nothing written')

  const destroyed = await open()
  destroyed.client.destroy()
  answerClientError(Object.assign(new Error('bad'), { code: 'HPE_INVALID_METHOD' }), destroyed.client)
  t.same(destroyed.written, [], 'destroyed: nothing written')
})
