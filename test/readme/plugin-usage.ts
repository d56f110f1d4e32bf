import Fastify from 'fastify'
import upfront from 'upfront'

const app = Fastify()

// Register it first: its checks then run before your own hooks.
await app.register(upfront, {
  maxBytes: 100 * 1024 * 1024, // default limit for routes without their own
  authRefusal: 'status' // or 'expectation-failed' to answer 417 instead of 401/403
})

// An auth hook of your own: with upfront, its 401 reaches a client that
// sent `Expect: 100-continue` before a single body byte.
app.addHook('onRequest', async (request, reply) => {
  if (request.headers.authorization !== 'Bearer let-me-in') {
    return await reply.code(401).header('www-authenticate', 'Bearer').send({
      statusCode: 401, code: 'NO_TOKEN', error: 'Unauthorized', message: 'Send a bearer token'
    })
  }
})

app.addContentTypeParser(['image/png', 'image/jpeg'], (_request, _payload, done) => { done(null) })
app.put('/avatars/:user', {
  config: { upfront: { maxBytes: 2 * 1024 * 1024, contentTypes: ['image/png', 'image/jpeg'] } }
}, async (request) => {
  // The 100 Continue goes out here, on the first read of the body.
  let size = 0
  for await (const chunk of request.raw) size += (chunk as Buffer).length
  return { size }
})

app.get('/metrics/upfront', async () => app.upfront.stats)

export default app
