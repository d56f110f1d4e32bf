// The app under test, in its own process: `node server.js plugin|stock`.
// Both variants are the same app (same routes, same auth hooks, same body
// parser and limits); `plugin` only adds `app.register(upfront)`. The only
// file of the benchmarks that imports the plugin.
// The parent talks to it over the IPC channel (plugin/protocol.ts).
import type { Socket } from 'node:net'
import Fastify from 'fastify'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import upfront from 'upfront'
import { SMALL_LIMIT, TOKEN, UPLOAD_LIMIT, UPLOAD_TYPE } from './protocol.js'
import type { ParentMessage, ServerMessage, Variant } from './protocol.js'

const variant = process.argv[2] as Variant
if (variant !== 'plugin' && variant !== 'stock') throw new Error('usage: server.js plugin|stock')

const send = (message: ServerMessage): void => { process.send?.(message) }

function refuse (reply: FastifyReply): void {
  reply.code(401).header('www-authenticate', 'Bearer')
    .send({ statusCode: 401, code: 'NO_TOKEN', error: 'Unauthorized', message: 'send a valid bearer token' })
}

/** The auth check: a plain header comparison, so that the refusal itself is what is measured. */
function authorize (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  if (request.headers.authorization === TOKEN) done()
  else refuse(reply)
}

const app = Fastify({ logger: false })
if (variant === 'plugin') await app.register(upfront)

// One parser for both variants: Fastify's own buffered parser, which also
// refuses a declared Content-Length over the route's bodyLimit (413) and an
// unknown type (415) before reading, but only after Node's automatic 100.
app.removeAllContentTypeParsers()
app.addContentTypeParser(UPLOAD_TYPE, { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })

const upfrontConfig = { contentTypes: [UPLOAD_TYPE] }

app.put('/upload', {
  bodyLimit: UPLOAD_LIMIT,
  config: { upfront: upfrontConfig },
  onRequest: authorize
}, async (request) => ({ received: (request.body as Buffer).length }))

app.put('/upload-prehandler', {
  bodyLimit: UPLOAD_LIMIT,
  config: { upfront: upfrontConfig },
  preHandler: authorize
}, async (request) => ({ received: (request.body as Buffer).length }))

app.put('/small', {
  bodyLimit: SMALL_LIMIT,
  config: { upfront: upfrontConfig },
  onRequest: authorize
}, async (request) => ({ received: (request.body as Buffer).length }))

// A route whose handler streams the body itself: its parser reads nothing,
// so a preHandler runs before any body byte is read.
await app.register(async (streaming) => {
  streaming.removeAllContentTypeParsers()
  streaming.addContentTypeParser(UPLOAD_TYPE, (_request, _payload, done) => { done(null) })
  streaming.put('/stream-prehandler', {
    bodyLimit: UPLOAD_LIMIT,
    config: { upfront: upfrontConfig },
    preHandler: authorize
  }, async (request) => {
    let received = 0
    for await (const chunk of request.raw) received += (chunk as Buffer).length
    return { received }
  })
})

// Bytes each connection read, beyond what the parent subtracts for the head:
// tracked only while the parent asks (the wire measurement), by client port.
let tracking = false
const open = new Map<number, Socket>()
const closed = new Map<number, number>()
const waiting = new Map<number, () => void>()
app.server.on('connection', (socket: Socket) => {
  if (!tracking) return
  const port = socket.remotePort as number
  open.set(port, socket)
  socket.once('close', () => {
    open.delete(port)
    closed.set(port, socket.bytesRead)
    waiting.get(port)?.()
  })
})

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'track':
      tracking = message.on
      open.clear()
      closed.clear()
      break
    case 'conn': {
      const answer = (): void => {
        waiting.delete(message.port)
        clearTimeout(timer)
        const bytes = closed.get(message.port)
        send({ type: 'conn', id: message.id, bytesRead: bytes ?? open.get(message.port)?.bytesRead ?? -1, closed: bytes !== undefined })
      }
      const timer = setTimeout(answer, message.timeoutMs)
      if (closed.has(message.port)) answer()
      else waiting.set(message.port, answer)
      break
    }
    case 'probe':
      app.server.getConnections((_error, connections) => {
        const cpu = process.cpuUsage()
        send({
          type: 'probe',
          id: message.id,
          connections,
          cpuMicros: cpu.user + cpu.system,
          rss: process.memoryUsage.rss(),
          upfront: variant === 'plugin' ? app.upfront.stats : null
        })
      })
      break
  }
})
process.on('disconnect', () => { app.close().finally(() => process.exit(0)) })

await app.listen({ port: 0, host: '127.0.0.1', backlog: 2048 })
const address = app.server.address()
send({
  type: 'ready',
  port: typeof address === 'object' && address !== null ? address.port : 0,
  fastify: app.version,
  node: process.version
})
