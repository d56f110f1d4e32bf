// Every request with an Expect header goes through the normal Fastify
// lifecycle, on every kind of server Fastify can run.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { request as httpRequest } from 'node:http'
import { connect as http2Connect } from 'node:http2'
import type { ClientHttp2Session } from 'node:http2'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyReply } from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import upfront from 'upfront'
import { startApp } from '../../helpers/app.js'
import { requestHead } from '../../helpers/http.js'
import { listen } from '../../helpers/net.js'
import { exchange, json } from '../../helpers/wire.js'

const key = readFileSync(new URL('../../fixtures/key.pem', import.meta.url))
const cert = readFileSync(new URL('../../fixtures/cert.pem', import.meta.url))

interface ClientResult {
  continued: boolean
  status: number
  body: string
  bodyBytesWritten: number
}

/** Node's own HTTP/1.1 client, which waits for the 100 before it writes the body. */
async function nodeClient (secure: boolean, port: number, path: string, body: Buffer, method = 'PUT'): Promise<ClientResult> {
  const request = secure ? httpsRequest : httpRequest
  return await new Promise((resolve, reject) => {
    const result: ClientResult = { continued: false, status: 0, body: '', bodyBytesWritten: 0 }
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      method,
      ca: cert,
      servername: 'localhost',
      headers: { expect: '100-continue', 'content-length': String(body.length) }
    })
    req.on('continue', () => {
      result.continued = true
      result.bodyBytesWritten = body.length
      req.end(body)
    })
    req.on('response', (res) => {
      result.status = res.statusCode ?? 0
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { result.body += chunk })
      res.on('end', () => { req.destroy(); resolve(result) })
    })
    req.on('error', reject)
    req.flushHeaders()
  })
}

/** node:http2's client: waits for the 100 ('continue') before sending. */
async function h2Client (session: ClientHttp2Session, path: string, body: Buffer, expect: string): Promise<ClientResult> {
  return await new Promise((resolve, reject) => {
    const result: ClientResult = { continued: false, status: 0, body: '', bodyBytesWritten: 0 }
    const stream = session.request({
      ':method': 'PUT',
      ':path': path,
      expect,
      'content-length': String(body.length)
    }, { endStream: false })
    stream.on('continue', () => {
      result.continued = true
      result.bodyBytesWritten = body.length
      stream.end(body)
    })
    stream.on('response', (headers) => { result.status = Number(headers[':status']) })
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => { result.body += chunk })
    stream.on('end', () => { resolve(result) })
    stream.on('error', reject)
  })
}

/** A PUT /upload route that counts the body it streams, on a started app; returns the port. */
async function serveUploads (t: Test, app: FastifyInstance, maxBytes: number): Promise<number> {
  await app.register(upfront, { maxBytes })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  app.put('/upload', async (request) => {
    let received = 0
    for await (const chunk of request.raw) received += (chunk as Buffer).length
    return { received }
  })
  return await listen(t, app)
}

async function h2App (t: Test, secure: boolean): Promise<number> {
  // One code path for both servers: their types differ only in the raw request and reply.
  const app = (secure
    ? Fastify({ http2: true, https: { key, cert, allowHTTP1: true } })
    : Fastify({ http2: true })) as unknown as FastifyInstance
  return await serveUploads(t, app, 1024 * 1024)
}

t.test('HTTP/2, cleartext and TLS: 100-Continue accepted in any case, oversize refused without the body', async (t) => {
  for (const secure of [false, true]) {
    const port = await h2App(t, secure)
    const session = http2Connect(`${secure ? 'https' : 'http'}://localhost:${port}`, { ca: cert })
    t.teardown(() => session.close())
    const body = Buffer.alloc(300_000, 'h')

    // node:http2 itself would answer "100-Continue" (Java's spelling) with a 417.
    const accepted = await h2Client(session, '/upload', body, '100-Continue')
    t.ok(accepted.continued, `${secure ? 'h2' : 'h2c'}: 100 received`)
    t.equal(accepted.status, 200)
    t.same(JSON.parse(accepted.body), { received: body.length })

    const oversize = Buffer.alloc(2 * 1024 * 1024)
    const refused = await h2Client(session, '/upload', oversize, '100-continue')
    t.notOk(refused.continued, 'no 100')
    t.equal(refused.status, 413)
    t.equal(refused.bodyBytesWritten, 0, 'no body byte sent')
    t.match(JSON.parse(refused.body), { code: 'UPFRONT_BODY_TOO_LARGE' })

    const pony = await h2Client(session, '/upload', body, 'a-pony')
    t.equal(pony.status, 417)
    t.match(JSON.parse(pony.body), { code: 'UPFRONT_EXPECTATION_FAILED' })

    // A request without a body needs no 100 and gets none.
    const bodyless = await new Promise<{ status: number, continued: boolean }>((resolve) => {
      const stream = session.request({ ':method': 'GET', ':path': '/upload', expect: '100-continue' })
      let continued = false
      stream.on('continue', () => { continued = true })
      stream.on('response', (headers) => { stream.resume(); stream.on('end', () => { resolve({ status: Number(headers[':status']), continued }) }) })
    })
    t.same(bodyless, { status: 404, continued: false })

    // The session is still usable after the refusals.
    const again = await h2Client(session, '/upload', body.subarray(0, 10), '100-continue')
    t.same(JSON.parse(again.body), { received: 10 })
  }
})

t.test('HTTPS (HTTP/1.1 over TLS) with Node\'s own client', async (t) => {
  const port = await serveUploads(t, Fastify({ https: { key, cert } }) as unknown as FastifyInstance, 1000)
  const accepted = await nodeClient(true, port, '/upload', Buffer.alloc(1000))
  t.ok(accepted.continued)
  t.same(JSON.parse(accepted.body), { received: 1000 })
  const refused = await nodeClient(true, port, '/upload', Buffer.alloc(1001))
  t.notOk(refused.continued)
  t.equal(refused.status, 413)
  t.equal(refused.bodyBytesWritten, 0)
})

t.test('a serverFactory that returns a Node server', async (t) => {
  const { port } = await startApp(t, {}, undefined, {
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => createServer(handler)
  })
  const refused = await nodeClient(false, port, '/?readbody=false', Buffer.alloc(5000), 'POST')
  t.notOk(refused.continued)
  t.equal(refused.status, 401)
  t.equal(refused.bodyBytesWritten, 0)
  const accepted = await nodeClient(false, port, '/?readbody=true', Buffer.alloc(5000), 'POST')
  t.ok(accepted.continued)
  t.same(JSON.parse(accepted.body), { received: 5000 })
})

t.test('hooks, logs, the error handler and the 404 handler all see Expect requests', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const logStream = new Writable({
    write (chunk: Buffer, _encoding, callback) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); callback() }
  })
  const hooks: string[] = []
  const { port } = await startApp(t, { maxBytes: 100 }, (app) => {
    app.addHook('onRequest', async (request) => { hooks.push(`onRequest ${request.url}`) })
    app.addHook('onResponse', async (request, reply) => { hooks.push(`onResponse ${request.url} ${reply.statusCode}`) })
    app.setErrorHandler(async (error: { statusCode?: number, code?: string, message: string }, _request, reply) => {
      hooks.push(`errorHandler ${error.code ?? ''}`)
      return await reply.code(error.statusCode ?? 500).send({ statusCode: error.statusCode, code: error.code, error: 'handled', message: error.message })
    })
    app.setNotFoundHandler(async (request, reply) => {
      hooks.push(`notFound ${request.url}`)
      return await reply.code(404).send({ statusCode: 404, code: 'NO_ROUTE', error: 'Not Found', message: 'no such route' })
    })
  }, { logger: { level: 'info', stream: logStream } })

  const pony = await exchange(port, { head: requestHead('POST', '/?readbody=true', ['Content-Length: 5', 'Expect: a-pony']) })
  t.match(json(pony), { error: 'handled', code: 'UPFRONT_EXPECTATION_FAILED' })
  const missing = await exchange(port, { head: requestHead('POST', '/nowhere', ['Content-Length: 5000', 'Expect: 100-continue']) })
  t.equal(missing.status, 404)
  t.same(missing.informational, [])
  t.equal(missing.headers.connection, 'close')
  t.same(json(missing), { statusCode: 404, code: 'NO_ROUTE', error: 'Not Found', message: 'no such route' })

  // The plugin's hook was added first, so its refusal ends onRequest before the app's hook.
  t.same(hooks, [
    'errorHandler UPFRONT_EXPECTATION_FAILED',
    'onResponse /?readbody=true 417',
    'onRequest /nowhere',
    'notFound /nowhere',
    'onResponse /nowhere 404'
  ])
  const refusals = lines.filter((line) => line.upfront !== undefined)
  t.match(refusals, [
    { msg: 'request refused before its body was read', upfront: { reason: 'expectation', statusCode: 417, declaredBytes: 5, receivedBytes: 0 } },
    { msg: 'request refused before its body was read', upfront: { reason: '404', statusCode: 404, declaredBytes: 5000 } }
  ])
  t.ok(lines.some((line) => line.msg === 'incoming request' && (line.req as { url?: string }).url === '/nowhere'), 'the request was logged by Fastify')
})

t.test('fastify.inject works unchanged', async (t) => {
  const app = Fastify()
  await app.register(upfront, { maxBytes: 10, contentTypes: ['text/plain'] })
  app.post('/', async (request) => ({ body: request.body }))
  t.teardown(() => app.close())
  const accepted = await app.inject({ method: 'POST', url: '/', headers: { expect: '100-continue', 'content-type': 'text/plain' }, payload: 'hello' })
  t.equal(accepted.statusCode, 200)
  t.same(accepted.json(), { body: 'hello' })
  const tooLarge = await app.inject({ method: 'POST', url: '/', headers: { 'content-type': 'text/plain' }, payload: 'hello world!' })
  t.equal(tooLarge.statusCode, 413)
  t.equal(tooLarge.json().code, 'UPFRONT_BODY_TOO_LARGE')
  const pony = await app.inject({ method: 'POST', url: '/', headers: { expect: 'a-pony', 'content-type': 'text/plain' }, payload: 'x' })
  t.equal(pony.statusCode, 417)
  const get = await app.inject({ method: 'GET', url: '/' })
  t.equal(get.statusCode, 404)
})

t.test('closeAfterAnswer: an answer given outside the plugin\'s hooks closes like its refusals', async (t) => {
  const app = Fastify({
    // Fastify answers an undecodable URL here, before any hook.
    frameworkErrors (_error, _request, frameworkReply) {
      const reply = frameworkReply as FastifyReply
      reply.server.upfront.closeAfterAnswer(reply)
      reply.code(400).send({ statusCode: 400, code: 'BAD_URL', error: 'Bad Request', message: 'Fix the URL' })
    }
  })
  await app.register(upfront, { lingerMs: 500 })
  app.put('/files/:name', async () => ({ ok: true }))
  app.get('/late', (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'content-length': '2' })
    reply.server.upfront.closeAfterAnswer(reply)
    reply.raw.end('ok')
  })
  const port = await listen(t, app)
  const answer = await exchange(port, {
    head: requestHead('PUT', '/files/%E0', ['Content-Length: 20000000']),
    body: Buffer.alloc(20_000_000),
    send: 'now',
    stopOnAnswer: false,
    closeWaitMs: 2000
  })
  t.equal(answer.status, 400)
  t.equal(answer.headers.connection, 'close')
  t.equal(answer.closedByServer, true, 'FIN after the answer')
  t.equal(answer.reset, false, 'the rest of the body is read and discarded, not reset')

  const late = await exchange(port, { head: requestHead('GET', '/late') })
  t.equal(late.status, 200)
  t.notOk('connection' in late.headers && late.headers.connection === 'close', 'once the head is out it changes nothing')
  t.equal(late.closedByServer, false)

  const h2 = Fastify({ http2: true }) as unknown as FastifyInstance
  await h2.register(upfront)
  h2.get('/closing', async (_request, reply) => {
    reply.server.upfront.closeAfterAnswer(reply)
    return { ok: true }
  })
  const session = http2Connect(`http://localhost:${await listen(t, h2)}`)
  t.teardown(() => session.close())
  const status = await new Promise<number>((resolve) => {
    const stream = session.request({ ':method': 'GET', ':path': '/closing' })
    stream.on('response', (headers) => { stream.resume(); stream.on('end', () => { resolve(Number(headers[':status'])) }) })
  })
  t.equal(status, 200, 'over HTTP/2 nothing changes (a Connection header is not allowed there)')
})

t.test('abortBody: the reader of a body still coming gets the error, whose answer still reaches the client; other requests are left alone', async (t) => {
  const cut = Object.assign(new Error('Cut by the app'), { statusCode: 503, code: 'CUT' })
  const { port } = await startApp(t, { maxBytes: Infinity }, (app) => {
    app.post('/cut', async (request) => {
      await new Promise((resolve) => { request.raw.once('data', resolve) })
      app.upfront.abortBody(request, cut)
      let received = 0
      for await (const chunk of request.raw) received += (chunk as Buffer).length
      return { received }
    })
    app.post('/after-end', async (request) => {
      let received = 0
      for await (const chunk of request.raw) received += (chunk as Buffer).length
      app.upfront.abortBody(request, cut)
      return { received }
    })
    app.get('/no-body', async (request) => {
      app.upfront.abortBody(request, cut)
      return { ok: true }
    })
  })
  const midBody = await exchange(port, {
    head: requestHead('POST', '/cut', ['Content-Length: 5000000']),
    body: Buffer.alloc(5_000_000),
    send: 'now',
    stopOnAnswer: false,
    closeWaitMs: 2000
  })
  t.equal(midBody.status, 503)
  t.same(json(midBody), { statusCode: 503, code: 'CUT', error: 'Service Unavailable', message: 'Cut by the app' })
  t.equal(midBody.headers.connection, 'close')
  // What it still sends is read and discarded: once pushed into the failed
  // body, it paused the socket until the linger's idle timeout reset it.
  t.equal(midBody.closedByServer, true, 'FIN after the answer')
  t.equal(midBody.reset, false, 'the client still sending read the answer, then the close')
  t.equal(midBody.bodyBytesWritten, 5_000_000, 'its whole body was taken')

  for (const [what, head, body, answer] of [
    ['a body read to its end', requestHead('POST', '/after-end', ['Content-Length: 1000000']), Buffer.alloc(1_000_000), { received: 1_000_000 }],
    ['a request without a body', requestHead('GET', '/no-body'), undefined, { ok: true }]
  ] as const) {
    const result = await exchange(port, { head, body, send: 'now' })
    t.equal(result.status, 200, what)
    t.same(json(result), answer, what)
    t.equal(result.closedByServer, false, `${what}: the connection is kept`)
  }
})
