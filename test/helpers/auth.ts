// The auth plugin on an app of its own, and the answers it gives.
import Fastify from 'fastify'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Test } from 'tap'
import upfront from 'upfront'
import auth from '../../plugins/auth/index.js'
import type { AuthOptions } from '../../plugins/auth/index.js'

/** The 401 of a request without credentials. */
export const MISSING = {
  statusCode: 401,
  code: 'UPFRONT_UNAUTHORIZED',
  error: 'Unauthorized',
  message: 'Authentication required: send "Authorization: Bearer <token>" with an API token or a JWT, or use a presigned URL'
}

/** The 401 of a bearer token refused for `reason`. */
export function invalidToken (reason: string): object {
  return { statusCode: 401, code: 'UPFRONT_UNAUTHORIZED', error: 'Unauthorized', message: `Invalid bearer token: ${reason}` }
}

/** A 403 with `message`. */
export function forbidden (message: string): object {
  return { statusCode: 403, code: 'UPFRONT_FORBIDDEN', error: 'Forbidden', message }
}

/** The 403 of a presigned URL refused for `reason`. */
export function presignInvalid (reason: string): object {
  return forbidden(`This presigned URL is not valid for this request: ${reason}; use the URL exactly as it was issued, or ask for a new one`)
}

/** Why a presigned URL that was changed in any way is refused. */
export const MISMATCH = 'its signature does not match (it was issued for another path or other parameters, or it was altered)'

/** Headers with `Authorization: Bearer <token>`, as `inject` takes them. */
export function withToken (token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` }
}

/** Unix time `seconds` from now. */
export const inSeconds = (seconds: number): number => Math.floor(Date.now() / 1000) + seconds

/** An app with the plugin, a route that shows what it decided, and a public route. */
export async function build (t: Test, options: AuthOptions): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(upfront, { maxBytes: Infinity })
  await app.register(auth, options)
  // Leave bodies unread: only the headers matter here.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  const whoami = async (request: FastifyRequest): Promise<object> => ({
    principal: request.principal,
    callerMaxBytes: request.callerMaxBytes,
    presigned: request.presigned
  })
  app.get('/whoami', whoami)
  app.route({ method: ['PUT', 'POST'], url: '/files/*', handler: whoami })
  app.get('/health', { config: { auth: false } }, whoami)
  app.get('/explicit', { config: { auth: true } }, whoami)
  return app
}

/** Registers the plugin with each `[options, option name, reason]` and expects the coded error that names the option and the reason. */
export async function refusesOptions (t: Test, cases: ReadonlyArray<readonly [unknown, string, string]>): Promise<void> {
  for (const [options, name, reason] of cases) {
    const app = Fastify()
    await app.register(upfront)
    await t.rejects(async () => { await app.register(auth, options as AuthOptions).ready() }, {
      code: 'UPFRONT_AUTH_INVALID_OPTION',
      message: `Invalid upfront-auth option "${name}": ${reason}`
    }, `${name}: ${reason}`)
    await app.close()
  }
}
