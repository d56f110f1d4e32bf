// Pre-body checks of the plugin itself: 413 by declared length, 415 by type,
// and the streaming limit on bodies of unknown length.
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import t from 'tap'
import { countBody, startApp } from '../../helpers/app.js'
import { requestHead } from '../../helpers/http.js'
import { exchange, json } from '../../helpers/wire.js'

t.test('declared Content-Length over the route limit: 413 before the body', async (t) => {
  const { app, port } = await startApp(t, { maxBytes: 4096 }, (app) => {
    const read = async (request: { raw: AsyncIterable<Buffer> }): Promise<unknown> => ({ received: await countBody(request.raw) })
    app.post('/plugin-default', read)
    app.post('/route-config', { config: { upfront: { maxBytes: 1024 } } }, read)
    app.post('/body-limit', { bodyLimit: 2048 }, read)
    app.post('/both', { bodyLimit: 2048, config: { upfront: { maxBytes: 100 } } }, read)
    app.post('/off', { config: { upfront: false } }, read)
  })

  const cases: Array<[string, number, number | null]> = [
    ['/plugin-default', 4097, 4096],
    ['/plugin-default', 4096, null],
    ['/route-config', 1025, 1024],
    ['/route-config', 1024, null],
    ['/body-limit', 2049, 2048],
    ['/body-limit', 2048, null],
    ['/both', 101, 100],
    ['/off', 100_000, null]
  ]
  for (const [path, length, limit] of cases) {
    const body = Buffer.alloc(length, 'z')
    const result = await exchange(port, {
      head: requestHead('POST', path, [`Content-Length: ${length}`, 'Expect: 100-continue']),
      body
    })
    if (limit === null) {
      t.same(result.informational, ['HTTP/1.1 100 Continue'], `${path} ${length}: accepted`)
      t.same(json(result), { received: length })
      continue
    }
    t.equal(result.statusLine, 'HTTP/1.1 413 Payload Too Large', `${path} ${length}`)
    t.same(result.informational, [])
    t.equal(result.bodyBytesWritten, 0)
    t.equal(result.headers.connection, 'close')
    t.same(json(result), {
      statusCode: 413,
      code: 'UPFRONT_BODY_TOO_LARGE',
      error: 'Payload Too Large',
      message: `Content-Length of ${length} bytes exceeds the ${limit}-byte limit of this route; send a smaller body`
    })
  }

  // The size of the declared body costs nothing: a 10 TiB declaration is refused alike.
  const huge = await exchange(port, {
    head: requestHead('POST', '/plugin-default', ['Content-Length: 10995116277760', 'Expect: 100-continue'])
  })
  t.equal(huge.status, 413)
  t.match(huge.body, /10995116277760 bytes exceeds the 4096-byte limit/)

  // Without Expect, the answer is the same and comes before the body is read.
  const eager = await exchange(port, {
    head: requestHead('POST', '/plugin-default', ['Content-Length: 5000000']),
    body: Buffer.alloc(5_000_000),
    send: 'now',
    stopOnAnswer: false
  })
  t.equal(eager.status, 413)
  t.equal(eager.headers.connection, 'close', 'too much left to drain: closed')
  t.notOk(eager.reset, 'the client got the answer, not a reset')

  t.same(app.upfront.stats.refused['too-large'], 6)
})

t.test('route limits default to the server bodyLimit', async (t) => {
  const { port } = await startApp(t, {}, (app) => {
    app.post('/default', async (request) => ({ received: await countBody(request.raw) }))
  }, { bodyLimit: 5000 })
  const result = await exchange(port, { head: requestHead('POST', '/default', ['Content-Length: 5001', 'Expect: 100-continue']) })
  t.equal(result.status, 413)
  t.match(json(result), { message: /5000-byte limit/ })
})

t.test('Content-Type outside the allowed list: 415 before the body', async (t) => {
  const { port } = await startApp(t, { contentTypes: ['application/octet-stream'] }, (app) => {
    const read = async (request: { raw: AsyncIterable<Buffer> }): Promise<unknown> => ({ received: await countBody(request.raw) })
    app.post('/images', { config: { upfront: { contentTypes: ['image/*', 'application/pdf'] } } }, read)
    app.post('/default-types', read)
  })
  const accepted: Array<[string, string]> = [
    ['/images', 'image/png'],
    ['/images', 'IMAGE/Svg+XML; charset=utf-8'],
    ['/images', 'application/pdf'],
    ['/default-types', 'application/octet-stream']
  ]
  for (const [path, type] of accepted) {
    const result = await exchange(port, {
      head: requestHead('POST', path, ['Content-Length: 10', `Content-Type: ${type}`, 'Expect: 100-continue']),
      body: Buffer.alloc(10)
    })
    t.equal(result.status, 200, `${path} ${type}`)
  }
  const refused: Array<[string, string | null, string]> = [
    ['/images', 'text/html', 'Content-Type "text/html" is not accepted by this route; send one of: image/*, application/pdf'],
    ['/images', 'image', 'Content-Type "image" is not accepted by this route; send one of: image/*, application/pdf'],
    ['/images', 'imagex/png', 'Content-Type "imagex/png" is not accepted by this route; send one of: image/*, application/pdf'],
    ['/images', null, 'Content-Type (none) is not accepted by this route; send one of: image/*, application/pdf'],
    ['/default-types', 'text/plain', 'Content-Type "text/plain" is not accepted by this route; send one of: application/octet-stream']
  ]
  for (const [path, type, message] of refused) {
    const result = await exchange(port, {
      head: requestHead('POST', path, ['Content-Length: 10', ...(type === null ? [] : [`Content-Type: ${type}`]), 'Expect: 100-continue']),
      body: Buffer.alloc(10)
    })
    t.equal(result.statusLine, 'HTTP/1.1 415 Unsupported Media Type', `${path} ${String(type)}`)
    t.equal(result.bodyBytesWritten, 0)
    t.same(json(result), { statusCode: 415, code: 'UPFRONT_UNSUPPORTED_MEDIA_TYPE', error: 'Unsupported Media Type', message })
  }
  // A request without a body is not subject to the list.
  const bodyless = await exchange(port, { head: requestHead('POST', '/images', ['Content-Length: 0']) })
  t.equal(bodyless.status, 200)
})

t.test('chunked body over the limit: 413, reading stops, the consumer stream errors, the connection closes', async (t) => {
  const seen: Array<{ code?: string, received: number }> = []
  const { app, port } = await startApp(t, { maxBytes: 200_000 }, (app) => {
    app.post('/store', async (request) => {
      let received = 0
      try {
        await pipeline(request.raw, new Writable({
          write (chunk: Buffer, _encoding, callback) { received += chunk.length; callback() }
        }))
      } catch (error) {
        seen.push({ code: (error as { code?: string }).code, received })
        throw error
      }
      return { received }
    })
    app.register(async (json) => {
      json.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 10_000_000 }, (_request, raw, done) => { done(null, raw.length) })
      json.post('/json', async (request) => ({ length: request.body }))
    })
  })

  const body = Buffer.alloc(1_000_000, 'c')
  const result = await exchange(port, {
    head: requestHead('POST', '/store', ['Transfer-Encoding: chunked', 'Expect: 100-continue']),
    body,
    chunked: true,
    chunkSize: 16 * 1024,
    stopOnAnswer: false
  })
  t.same(result.informational, ['HTTP/1.1 100 Continue'])
  t.equal(result.statusLine, 'HTTP/1.1 413 Payload Too Large')
  t.equal(result.headers.connection, 'close')
  t.same(json(result), {
    statusCode: 413,
    code: 'UPFRONT_BODY_TOO_LARGE',
    error: 'Payload Too Large',
    message: 'The request body exceeds the 200000-byte limit of this route; send a smaller body'
  })
  t.ok(result.closedByServer, 'closed')
  t.notOk(result.reset, 'not reset: the client still sending got its answer')
  t.equal(seen.length, 1)
  t.equal(seen[0]?.code, 'UPFRONT_BODY_TOO_LARGE', 'the consumer saw the limit error')
  t.ok((seen[0]?.received ?? Infinity) <= 200_000, 'the consumer never got a byte past the limit')

  // The content-type parser path ends the same way.
  const viaParser = await exchange(port, {
    head: requestHead('POST', '/json', ['Transfer-Encoding: chunked', 'Content-Type: application/json', 'Expect: 100-continue']),
    body,
    chunked: true,
    stopOnAnswer: false
  })
  t.equal(viaParser.status, 413)
  t.equal(json(viaParser) && (json(viaParser) as { code: string }).code, 'UPFRONT_BODY_TOO_LARGE')

  // Under the limit, chunked bodies pass.
  const small = await exchange(port, {
    head: requestHead('POST', '/store', ['Transfer-Encoding: chunked', 'Expect: 100-continue']),
    body: body.subarray(0, 150_000),
    chunked: true
  })
  t.same(json(small), { received: 150_000 })

  t.equal(app.upfront.stats.refused['too-large-while-streaming'], 2)
  // The server is still healthy.
  const again = await exchange(port, { head: requestHead('POST', '/?readbody=true', ['Content-Length: 3']), body: Buffer.from('abc'), send: 'now' })
  t.same(json(again), { received: 3 })
})

t.test('a body that passes the limit before anyone reads it', async (t) => {
  const seen: string[] = []
  const { port } = await startApp(t, { maxBytes: 1000 }, (app) => {
    app.post('/late-reader', async (request) => {
      // Let the body arrive and pass the limit before the first read.
      await new Promise((resolve) => setTimeout(resolve, 100))
      try {
        return { received: await countBody(request.raw) }
      } catch (error) {
        seen.push((error as { code: string }).code)
        throw error
      }
    })
  })
  const late = await exchange(port, {
    head: requestHead('POST', '/late-reader', ['Transfer-Encoding: chunked']),
    body: Buffer.alloc(50_000),
    chunked: true,
    send: 'now',
    stopOnAnswer: false
  })
  t.equal(late.status, 413, `the reader that comes late gets the error: ${late.body}`)
  t.same(seen, ['UPFRONT_BODY_TOO_LARGE'])
  t.equal(late.headers.connection, 'close')
  t.notOk(late.reset)

  // Nobody ever reads it: the answer stands, the excess is discarded.
  const unread = await exchange(port, {
    head: requestHead('POST', '/?readbody=false', ['Transfer-Encoding: chunked']),
    body: Buffer.alloc(50_000),
    chunked: true,
    chunkSize: 20_000,
    send: 'now',
    stopOnAnswer: false
  })
  t.equal(unread.status, 401)
  t.equal(unread.headers.connection, 'close')
  t.notOk(unread.reset)
  const healthy = await exchange(port, { head: requestHead('POST', '/?readbody=true', ['Content-Length: 2']), body: Buffer.from('ok'), send: 'now' })
  t.same(json(healthy), { received: 2 })
})

t.test('limitBody once the checks have run: a declared length over it is a 413 at once, a body of unknown length is held to it', async (t) => {
  const source = 'that the test allows'
  const { app, port } = await startApp(t, { maxBytes: 4096 }, (app) => {
    // After the plugin's own preParsing hook: its checks have run.
    app.addHook('preParsing', async (request) => {
      const limits = request.headers['x-limits']
      if (typeof limits === 'string') for (const limit of limits.split(',')) app.upfront.limitBody(request, Number(limit), source)
    })
    app.post('/limited', async (request) => ({ received: await countBody(request.raw) }))
  })
  const send = async (path: string, limits: string, body: Buffer, chunked: boolean): Promise<{ status: number, answer: unknown, informational: string[], bodyBytesWritten: number }> => {
    const result = await exchange(port, {
      head: requestHead('POST', path, [`X-Limits: ${limits}`, chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`, 'Expect: 100-continue']),
      body,
      chunked,
      stopOnAnswer: false
    })
    return { status: result.status, answer: json(result), informational: result.informational, bodyBytesWritten: result.bodyBytesWritten }
  }
  const tooLarge = (message: string): object => ({ statusCode: 413, code: 'UPFRONT_BODY_TOO_LARGE', error: 'Payload Too Large', message })

  const declared = await send('/limited', '100', Buffer.alloc(200), false)
  t.same(declared.answer, tooLarge(`Content-Length of 200 bytes exceeds the 100-byte limit ${source}; send a smaller body`))
  t.same(declared.informational, [], 'no 100')
  t.equal(declared.bodyBytesWritten, 0, 'no body byte sent')
  t.same((await send('/limited', '100', Buffer.alloc(50), false)).answer, { received: 50 }, 'a declared length within it')

  const cases: Array<[string, string, number, object]> = [
    ['over it', '100', 300, tooLarge(`The request body exceeds the 100-byte limit ${source}; send a smaller body`)],
    ['over the lower of two', '100,500', 300, tooLarge(`The request body exceeds the 100-byte limit ${source}; send a smaller body`)],
    ['within it', '1000', 200, { received: 200 }],
    ['over the route\'s limit, which stays when the new one is higher', '10000', 5000, tooLarge('The request body exceeds the 4096-byte limit of this route; send a smaller body')]
  ]
  for (const [what, limits, length, answer] of cases) {
    t.same((await send('/limited', limits, Buffer.alloc(length), true)).answer, answer, `chunked, ${what}`)
  }

  t.same((await send('/limited', '1', Buffer.alloc(0), false)).answer, { received: 0 }, 'a request without a body is not affected')
  const unknown = await send('/nowhere', '1', Buffer.alloc(100), false)
  t.equal(unknown.status, 404, 'nor is one to an unknown route')
  t.same(app.upfront.stats.refused, { 'too-large': 1, 'too-large-while-streaming': 3, 404: 1 })
})
