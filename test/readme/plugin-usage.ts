import Fastify from 'fastify'
import upfront from 'upfront'

const app = Fastify()

// Register it first: its hooks then see every request before yours.
await app.register(upfront, {
  maxBytes: 100 * 1024 * 1024, // limit of routes without their own
  authRefusal: 'status' // or 'expectation-failed' to answer 417 instead of 401/403
})

// Your authentication, in onRequest: its 401 reaches a client that sent
// `Expect: 100-continue` before a single body byte. It can also lower the
// body limit for this caller; the plugin enforces it, declared or streamed.
const plans = new Map([['let-me-in', { maxBytes: 1024 * 1024 }]])
app.addHook('onRequest', async (request, reply) => {
  const plan = plans.get(request.headers.authorization?.replace(/^Bearer /, '') ?? '')
  if (plan === undefined) {
    return await reply.code(401).header('www-authenticate', 'Bearer').send({
      statusCode: 401, code: 'NO_TOKEN', error: 'Unauthorized', message: 'Send a bearer token'
    })
  }
  app.upfront.limitBody(request, plan.maxBytes, 'that your plan allows')
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
