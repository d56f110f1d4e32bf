// Parsing of Expect, HTTP/1.0, and the lazy 100: exactly one 100, at the
// first read of the body by any path, and none when something answers first.
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import multipart from '@fastify/multipart'
import t from 'tap'
import { countBody, countFormFiles, startApp } from '../../helpers/app.js'
import { multipartForm, requestHead } from '../../helpers/http.js'
import { listen } from '../../helpers/net.js'
import { exchange, json } from '../../helpers/wire.js'

const body = Buffer.alloc(300 * 1024, 'b')

t.test('Expect is a case-insensitive list over all Expect lines', async (t) => {
  const { port } = await startApp(t)
  const accepted = [
    ['Expect: 100-CONTINUE'],
    ['Expect: 100-continue', 'Expect: 100-Continue'],
    ['Expect: 100-continue, '],
    ['Expect:  100-continue ,100-continue']
  ]
  for (const lines of accepted) {
    const result = await exchange(port, {
      head: requestHead('POST', '/?readbody=true', [`Content-Length: ${body.length}`, ...lines]),
      body
    })
    t.same(result.informational, ['HTTP/1.1 100 Continue'], lines.join(' | '))
    t.equal(result.status, 200)
    t.same(json(result), { received: body.length })
  }

  const refused: Array<[string[], string]> = [
    [['Expect: a-pony'], '"a-pony"'],
    [['Expect: 100-continue, foo'], '"foo"'],
    [['Expect: foo, 100-continue'], '"foo"'],
    [['Expect: 100-continue', 'Expect: bar=1'], '"bar=1"'],
    [['Expect: 100-continue=yes'], '"100-continue=yes"'],
    [['Expect:'], '""'],
    [['Expect: , ,'], '""']
  ]
  for (const [lines, named] of refused) {
    const result = await exchange(port, {
      head: requestHead('POST', '/?readbody=true', [`Content-Length: ${body.length}`, ...lines]),
      body
    })
    t.equal(result.statusLine, 'HTTP/1.1 417 Expectation Failed', lines.join(' | '))
    t.same(result.informational, [], 'no 100')
    t.equal(result.bodyBytesBeforeAnswer, 0, 'no body byte sent')
    t.equal(result.headers.connection, 'close')
    t.equal(result.headers['content-type'], 'application/json; charset=utf-8')
    t.same(json(result), {
      statusCode: 417,
      code: 'UPFRONT_EXPECTATION_FAILED',
      error: 'Expectation Failed',
      message: `Unsupported expectation ${named}: this server only supports "100-continue"; retry the request without the Expect header`
    })
    t.ok(result.closedByServer)
  }

  // A request without a body is held to the same rule, and closed like Go does.
  const bodyless = await exchange(port, { head: requestHead('GET', '/nothing', ['Expect: a-pony']) })
  t.equal(bodyless.status, 417)
  t.ok(bodyless.closedByServer)
})

t.test('HTTP/1.0: 100-continue is ignored, no 1xx is ever sent, the body is read', async (t) => {
  const { port } = await startApp(t)
  const result = await exchange(port, {
    head: requestHead('POST', '/?readbody=true', [`Content-Length: ${body.length}`, 'Expect: 100-continue'], { version: 'HTTP/1.0' }),
    body,
    send: 'now'
  })
  t.same(result.informational, [])
  t.equal(result.statusLine, 'HTTP/1.1 200 OK')
  t.same(json(result), { received: body.length })

  // An HTTP/1.0 client that waits anyway for a while still gets its answer after sending.
  const waiting = await exchange(port, {
    head: requestHead('POST', '/?readbody=true', [`Content-Length: ${body.length}`, 'Expect: 100-continue'], { version: 'HTTP/1.0' }),
    body,
    send: 'after:100'
  })
  t.same(waiting.informational, [])
  t.same(json(waiting), { received: body.length })

  const unknown = await exchange(port, {
    head: requestHead('POST', '/?readbody=true', ['Content-Length: 0', 'Expect: a-pony'], { version: 'HTTP/1.0' })
  })
  t.equal(unknown.status, 417, 'an unknown expectation is refused whatever the version')
})

t.test('the 100 is sent exactly once, at the first read, by any reading path', async (t) => {
  const { port } = await startApp(t, {}, async (app) => {
    await app.register(multipart)
    app.register(async (json) => {
      json.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, raw, done) => {
        done(null, JSON.parse(raw.toString()))
      })
      json.post('/json', async (request) => ({ keys: Object.keys(request.body as object).length }))
    })
    app.post('/pipe', async (request) => {
      let received = 0
      await pipeline(request.raw, new Writable({
        write (chunk: Buffer, _encoding, callback) { received += chunk.length; callback() }
      }))
      return { received }
    })
    app.post('/iterate', async (request) => ({ received: await countBody(request.raw) }))
    app.post('/read-twice', async (request) => {
      // Reading, pausing and reading again must not send a second 100.
      const first = await new Promise<number>((resolve) => {
        request.raw.once('data', (chunk: Buffer) => { request.raw.pause(); resolve(chunk.length) })
      })
      return { received: first + await countBody(request.raw) }
    })
    app.post('/multipart', async (request) => ({ received: await countFormFiles(request) }))
  })

  const jsonBody = Buffer.from(JSON.stringify({ a: 1, b: 2, pad: 'x'.repeat(200_000) }))
  const viaParser = await exchange(port, {
    head: requestHead('POST', '/json', ['Content-Type: application/json', `Content-Length: ${jsonBody.length}`, 'Expect: 100-continue']),
    body: jsonBody
  })
  t.same(viaParser.informational, ['HTTP/1.1 100 Continue'], 'content-type parser')
  t.same(json(viaParser), { keys: 3 })

  for (const path of ['/pipe', '/iterate', '/read-twice']) {
    const result = await exchange(port, {
      head: requestHead('POST', path, ['Content-Type: application/octet-stream', `Content-Length: ${body.length}`, 'Expect: 100-continue']),
      body
    })
    t.same(result.informational, ['HTTP/1.1 100 Continue'], path)
    t.same(json(result), { received: body.length }, path)
  }

  const chunked = await exchange(port, {
    head: requestHead('POST', '/iterate', ['Transfer-Encoding: chunked', 'Expect: 100-continue']),
    body,
    chunked: true
  })
  t.same(chunked.informational, ['HTTP/1.1 100 Continue'], 'chunked')
  t.same(json(chunked), { received: body.length })

  const boundary = '----upfront'
  const form = multipartForm([{ name: 'file', filename: 'a.bin', type: 'application/octet-stream', data: body }], boundary)
  const viaMultipart = await exchange(port, {
    head: requestHead('POST', '/multipart', [`Content-Type: multipart/form-data; boundary=${boundary}`, `Content-Length: ${form.length}`, 'Expect: 100-continue']),
    body: form
  })
  t.same(viaMultipart.informational, ['HTTP/1.1 100 Continue'], '@fastify/multipart')
  t.same(json(viaMultipart), { received: body.length })
})

t.test('anything that answers before the first read ends the exchange with no 100 and no body byte', async (t) => {
  const token = 'secret-token'
  const { port } = await startApp(t, {}, async (app) => {
    app.register(async (scope) => {
      // An app's own auth hook at onRequest...
      scope.addHook('onRequest', async (request, reply) => {
        if (request.headers.authorization !== `Bearer ${token}`) {
          return reply.code(401).header('www-authenticate', 'Bearer').send({ statusCode: 401, code: 'NO_TOKEN', error: 'Unauthorized', message: 'send a bearer token' })
        }
      })
      scope.post('/on-request', async (request) => ({ received: await countBody(request.raw) }))
    })
    app.register(async (scope) => {
      // ...and one at preHandler, after the (pass-through) body parser.
      scope.addHook('preHandler', async (request, reply) => {
        if (request.headers.authorization !== `Bearer ${token}`) {
          return reply.code(403).send({ statusCode: 403, code: 'FORBIDDEN', error: 'Forbidden', message: 'not yours' })
        }
      })
      scope.post('/pre-handler', async (request) => ({ received: await countBody(request.raw) }))
    })
    app.register(async (scope) => {
      scope.addHook('preValidation', async () => {
        const error = new Error('quota exceeded') as Error & { statusCode: number }
        error.statusCode = 429
        throw error
      })
      scope.post('/pre-validation', async (request) => ({ received: await countBody(request.raw) }))
    })
    app.post('/answers-without-reading', async () => ({ deduplicated: true }))
  })

  const cases: Array<[string, string[], number]> = [
    ['/on-request', [], 401],
    ['/pre-handler', [], 403],
    ['/pre-validation', [], 429],
    ['/does-not-exist', [], 404],
    ['/answers-without-reading', [], 200]
  ]
  for (const [path, extra, status] of cases) {
    const result = await exchange(port, {
      head: requestHead('POST', path, [`Content-Length: ${body.length}`, 'Expect: 100-continue', ...extra]),
      body
    })
    t.equal(result.status, status, path)
    t.same(result.informational, [], `${path}: no 100`)
    t.equal(result.bodyBytesBeforeAnswer, 0, `${path}: no body byte before the answer`)
    t.equal(result.bodyBytesWritten, 0, `${path}: no body byte at all`)
    t.equal(result.headers.connection, 'close', `${path}: the held-back body is not drained`)
    t.ok(result.closedByServer, `${path}: closed`)
  }

  for (const path of ['/on-request', '/pre-handler']) {
    const result = await exchange(port, {
      head: requestHead('POST', path, [`Content-Length: ${body.length}`, 'Expect: 100-continue', `Authorization: Bearer ${token}`]),
      body
    })
    t.same(result.informational, ['HTTP/1.1 100 Continue'], `${path} with a token`)
    t.same(json(result), { received: body.length })
  }

  // Content-Length: 0 needs no 100 at all.
  const empty = await exchange(port, {
    head: requestHead('POST', '/on-request', ['Content-Length: 0', 'Expect: 100-continue', `Authorization: Bearer ${token}`])
  })
  t.same(empty.informational, [])
  t.same(json(empty), { received: 0 })
})

t.test('no 100 once the answer has started, even if the handler then reads', async (t) => {
  const { port } = await startApp(t, {}, (app) => {
    app.post('/early', async (request, reply) => {
      reply.hijack()
      reply.raw.writeHead(202, { 'content-type': 'text/plain', connection: 'close' })
      reply.raw.write('started;')
      // The client never sends the body: this read just ends with the connection.
      request.raw.resume()
      reply.raw.end('done')
    })
  })
  const result = await exchange(port, {
    head: requestHead('POST', '/early', [`Content-Length: ${body.length}`, 'Expect: 100-continue']),
    body
  })
  t.equal(result.status, 202)
  t.same(result.informational, [])
  t.equal(result.bodyBytesWritten, 0)
})

t.test('a client that sent its body without waiting gets no 100 at the first read: it needs none', async (t) => {
  const { port } = await startApp(t, {}, (app) => {
    app.post('/slow-reader', async (request) => {
      await new Promise((resolve) => setTimeout(resolve, 50))
      return { received: await countBody(request.raw) }
    })
  })
  const small = Buffer.alloc(1000, 'q')
  const result = await exchange(port, {
    head: requestHead('POST', '/slow-reader', [`Content-Length: ${small.length}`, 'Expect: 100-continue']),
    body: small,
    send: 'now'
  })
  t.same(result.informational, [])
  t.same(json(result), { received: small.length })
})

t.test('an unknown route answers before the body even where Fastify would parse it', async (t) => {
  const app = (await import('fastify')).default()
  await app.register((await import('upfront')).default)
  const seen: Array<string | undefined> = []
  app.setNotFoundHandler(async (request, reply) => {
    seen.push(request.headers['content-type'])
    return await reply.code(404).send({ statusCode: 404, code: 'NOPE', error: 'Not Found', message: 'no such route' })
  })
  const port = await listen(t, app)
  const json = Buffer.from(JSON.stringify({ pad: 'x'.repeat(100_000) }))
  const result = await exchange(port, {
    head: requestHead('POST', '/nowhere', ['Content-Type: application/json', `Content-Length: ${json.length}`, 'Expect: 100-continue']),
    body: json
  })
  t.equal(result.status, 404)
  t.same(result.informational, [], 'no 100: the JSON parser never ran')
  t.equal(result.bodyBytesWritten, 0)
  t.same(seen, [undefined], 'the 404 handler sees a request without a body')
})

t.test('a client that starts sending before its 100 gets none, and its body is read whole', async (t) => {
  const { port } = await startApp(t, {}, (app) => {
    app.post('/slow-start', async (request) => {
      await new Promise((resolve) => setTimeout(resolve, 100))
      return { received: await countBody(request.raw) }
    })
  })
  const { connect } = await import('node:net')
  const socket = connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  let answer = ''
  socket.on('data', (data: Buffer) => { answer += data.toString('latin1') })
  const total = 100_000
  socket.write(Buffer.concat([
    Buffer.from(requestHead('POST', '/slow-start', [`Content-Length: ${total}`, 'Expect: 100-continue', 'Connection: close']) + '\r\n\r\n'),
    Buffer.alloc(1000)
  ]))
  await new Promise((resolve) => setTimeout(resolve, 300))
  socket.write(Buffer.alloc(total - 1000))
  await new Promise((resolve) => socket.once('end', resolve))
  socket.destroy()
  t.notMatch(answer, /100 Continue/, 'no 100 once the body had started')
  t.match(answer, /^HTTP\/1\.1 200 OK\r\n/)
  t.match(answer, /\{"received":100000\}$/)
})
