import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import upfront from 'upfront'
import type { UpfrontOptions } from 'upfront'

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
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  /* c8 ignore next - listen() on TCP always gives an address object */
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { app, port }
}
