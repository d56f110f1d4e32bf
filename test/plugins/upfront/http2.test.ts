// HTTP/2: an answer given while the request's body is still coming ends
// the request stream (RST_STREAM with NO_ERROR, RFC 9113 §8.1), so that a
// client still writing is released and the stream stops counting against
// the connection's limit of concurrent streams.
import { createServer, connect, constants } from 'node:http2'
import type { ClientHttp2Session, Http2Server } from 'node:http2'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import Fastify from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import upfront from 'upfront'
import { countBody } from '../../helpers/app.js'

const LIMIT = 64 * 1024

/** What the client saw of one upload. */
interface Outcome {
  status: number
  body: string
  /** The client's writing ended (resolved or failed) instead of hanging. */
  writing: 'finished' | 'failed' | 'hanging'
  rstCode: number | undefined
}

/** An h2c server allowing one stream at a time, with the plugin and two upload routes. */
async function serve (t: Test): Promise<number> {
  const app = Fastify({
    http2: true,
    serverFactory: (handler) => createServer({ settings: { maxConcurrentStreams: 1 } }, handler) as unknown as Http2Server
  })
  await app.register(upfront, { maxBytes: LIMIT })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  // Reads the body; a body without a length is refused at the limit while it arrives.
  app.put('/read', async (request) => ({ received: await countBody(request.raw) }))
  // Answers after the first chunk, leaving the rest unread.
  app.put('/early', async (request, reply) => {
    await new Promise((resolve) => { request.raw.once('data', resolve) })
    return await reply.code(409).send({ statusCode: 409, code: 'EARLY', error: 'Conflict', message: 'answered mid-body' })
  })
  // Answers after the first chunk with the body paused: Node's compatibility
  // layer then leaves the stream half-open by itself.
  app.put('/paused', async (request, reply) => {
    await new Promise((resolve) => { request.raw.once('data', resolve) })
    request.raw.pause()
    return await reply.code(409).send({ statusCode: 409, code: 'PAUSED', error: 'Conflict', message: 'answered mid-body, body paused' })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return (app.server.address() as { port: number }).port
}

/** Streams `bytes` of body without a content-length with `pipeline`, as a streaming client does. */
async function upload (session: ClientHttp2Session, path: string, bytes: number): Promise<Outcome> {
  const stream = session.request({ ':method': 'PUT', ':path': path, 'content-type': 'application/octet-stream' }, { endStream: false })
  const outcome: Outcome = { status: 0, body: '', writing: 'hanging', rstCode: undefined }
  stream.on('response', (headers) => { outcome.status = Number(headers[':status']) })
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => { outcome.body += chunk })
  const closed = new Promise<void>((resolve) => { stream.on('close', () => { outcome.rstCode = stream.rstCode; resolve() }) })
  const chunk = Buffer.alloc(16 * 1024, 7)
  const source = Readable.from((function * () { for (let sent = 0; sent < bytes; sent += chunk.length) yield chunk })())
  const writing = pipeline(source, stream).then(() => { outcome.writing = 'finished' }, () => { outcome.writing = 'failed' })
  // A client stuck on a closed flow-control window never settles: give it 5 s.
  await Promise.race([Promise.all([writing, closed]), new Promise((resolve) => setTimeout(resolve, 5000))])
  if (outcome.writing === 'hanging') stream.destroy()
  return outcome
}

t.test('a streaming 413 ends the request stream: the writer is released, the next stream runs', async (t) => {
  const port = await serve(t)
  const session = connect(`http://127.0.0.1:${port}`)
  t.teardown(() => session.destroy())
  for (const round of [1, 2]) {
    const refused = await upload(session, '/read', 4 * 1024 * 1024)
    t.equal(refused.status, 413, `round ${round}: 413`)
    t.match(JSON.parse(refused.body), { code: 'UPFRONT_BODY_TOO_LARGE' }, `round ${round}: the whole answer arrived`)
    t.not(refused.writing, 'hanging', `round ${round}: the client's writing ended`)
    t.equal(refused.rstCode, constants.NGHTTP2_NO_ERROR, `round ${round}: RST_STREAM(NO_ERROR)`)
  }
  // One stream at a time: this one only runs because the others were closed.
  const accepted = await upload(session, '/read', 16 * 1024)
  t.equal(accepted.status, 200)
  t.same(JSON.parse(accepted.body), { received: 16 * 1024 })
  t.equal(accepted.writing, 'finished')
})

t.test('any answer given mid-body ends the request stream the same way, the body read or paused', async (t) => {
  const port = await serve(t)
  const session = connect(`http://127.0.0.1:${port}`)
  t.teardown(() => session.destroy())
  for (const [path, code] of [['/early', 'EARLY'], ['/paused', 'PAUSED']] as const) {
    const early = await upload(session, path, 8 * 1024 * 1024)
    t.equal(early.status, 409, path)
    t.match(JSON.parse(early.body), { code }, `${path}: the whole answer arrived`)
    t.not(early.writing, 'hanging', `${path}: the client's writing ended`)
    t.equal(early.rstCode, constants.NGHTTP2_NO_ERROR, `${path}: RST_STREAM(NO_ERROR)`)
    const next = await upload(session, '/read', 16 * 1024)
    t.equal(next.status, 200, `${path}: the next stream runs on the same connection`)
  }
})
