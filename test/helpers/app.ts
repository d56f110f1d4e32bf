import type {} from '@fastify/multipart'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyRequest, FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import upfront from 'upfront'
import type { UpfrontOptions } from 'upfront'
import { listen } from './net.js'

export interface TestApp {
  app: FastifyInstance
  port: number
}

/** Reads a request body to its end and answers with the number of bytes. */
export async function countBody (body: AsyncIterable<Buffer>): Promise<number> {
  let received = 0
  for await (const chunk of body) received += chunk.length
  return received
}

/** Reads a multipart form (with @fastify/multipart registered) to its end and answers with the bytes of its files. */
export async function countFormFiles (request: FastifyRequest): Promise<number> {
  let received = 0
  for await (const part of request.parts()) {
    if (part.type === 'file') received += await countBody(part.file)
  }
  return received
}

/**
 * An app with the plugin and a raw-body route set like Go's TestServerExpect
 * handler: `POST /?readbody=true` reads the body and answers 200,
 * `readbody=false` answers 401 without reading it.
 */
export async function startApp (
  t: Test,
  options: UpfrontOptions = {},
  setup?: (app: FastifyInstance) => void | Promise<void>,
  serverOptions: FastifyServerOptions = {}
): Promise<TestApp> {
  const app = Fastify({ logger: false, ...serverOptions })
  await app.register(upfront, options)
  // Leave bodies to the handlers, which stream them.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  app.post('/', async (request, reply) => {
    const { readbody } = request.query as { readbody?: string }
    if (readbody !== 'true') {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ statusCode: 401, code: 'NO_TOKEN', error: 'Unauthorized', message: 'send a token' })
    }
    return { received: await countBody(request.raw) }
  })
  if (setup !== undefined) await setup(app)
  return { app, port: await listen(t, app) }
}
