// JWTs verified with the keys of a JWKS URL (a local key server the test
// runs), with rotation, bounded refetching, and pinned audience and issuer;
// the plugin's jwksCacheMs and jwksRefetchIntervalMs.
import { generateKeyPairSync } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import type { Test } from 'tap'
import { build, invalidToken, withToken } from '../../helpers/auth.js'
import { startService } from '../../helpers/service.js'
import { exchange, json } from '../../helpers/wire.js'
import type { Exchange } from '../../helpers/wire.js'

interface KeyServer {
  url: string
  /** Keys served, by kid. */
  keys: Map<string, KeyObject>
  fetches: () => number
  /** Answers 503 while true. */
  down: boolean
}

async function keyServer (t: Test): Promise<KeyServer> {
  let fetches = 0
  const served: KeyServer = { url: '', keys: new Map(), fetches: () => fetches, down: false }
  const server = createServer((request, response) => {
    fetches++
    if (served.down || request.url !== '/tenant/.well-known/jwks.json') {
      response.writeHead(503, { 'content-type': 'application/json' }).end('{}')
      return
    }
    const keys = [...served.keys].map(([kid, key]) => ({ ...key.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }))
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  served.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tenant/.well-known/jwks.json`
  return served
}

function keyPair (): { privateKey: string, publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey }
}

async function whoami (port: number, token: string): Promise<Exchange> {
  return await exchange(port, { head: ['GET /files HTTP/1.1', 'Host: x', `Authorization: Bearer ${token}`].join('\r\n') })
}

const ISSUER = 'https://idp.example.com/'
const AUDIENCE = 'upfront'

t.test('keys from a JWKS URL: rotation, bounded refetching, audience and issuer', async (t) => {
  const keys = await keyServer(t)
  const first = keyPair()
  keys.keys.set('k1', first.publicKey)
  const { port } = await startService(t, { AUTH_JWKS_URL: keys.url, AUTH_JWT_AUDIENCE: `${AUDIENCE},other-service`, AUTH_JWT_ISSUER: ISSUER })
  const sign = (privateKey: string, kid: string, claims: Record<string, unknown> = {}): string =>
    createSigner({ key: privateKey, algorithm: 'RS256', kid, expiresIn: 60_000 })({ sub: 'dana', aud: AUDIENCE, iss: ISSUER, ...claims })

  t.equal((await whoami(port, sign(first.privateKey, 'k1'))).status, 200, 'a token signed with a key of the set')
  t.equal((await whoami(port, sign(first.privateKey, 'k1'))).status, 200)
  t.equal(keys.fetches(), 1, 'the key is cached')

  // Rotation: the provider adds a key and signs with it.
  const second = keyPair()
  keys.keys.set('k2', second.publicKey)
  await sleep(1100)
  t.equal((await whoami(port, sign(second.privateKey, 'k2'))).status, 200, 'a new key is fetched when a token names it')
  t.equal(keys.fetches(), 2)

  // Made-up key ids: one fetch, then refused without fetching until the interval passes.
  await sleep(1100)
  const forged = keyPair()
  for (const kid of ['nope-1', 'nope-2', 'nope-3']) {
    const refused = await whoami(port, sign(forged.privateKey, kid))
    t.equal(refused.status, 401, `unknown kid ${kid}`)
    t.match(json(refused), { code: 'UPFRONT_UNAUTHORIZED', message: /its key \(kid\) is not in the key set/ })
  }
  t.equal(keys.fetches(), 3, 'one fetch for three unknown key ids in a second')
  t.equal((await whoami(port, sign(forged.privateKey, 'k1'))).status, 401, 'a known kid with another key: the signature fails')

  const pinned = [
    ['another audience', { aud: 'another-service' }, /the aud claim value is not allowed/i],
    ['another issuer', { iss: 'https://evil.example/' }, /the iss claim value is not allowed/i],
    ['no audience', { aud: undefined }, /the aud claim is required/i]
  ] as const
  for (const [what, claims, message] of pinned) {
    const refused = await whoami(port, sign(first.privateKey, 'k1', claims))
    t.equal(refused.status, 401, what)
    t.match(json(refused), { code: 'UPFRONT_UNAUTHORIZED', message })
  }
  t.equal((await whoami(port, sign(first.privateKey, 'k1', { aud: 'other-service' }))).status, 200, 'any of the audiences')
})

t.test('a key server that cannot be reached: 503 with Retry-After, then recovery', async (t) => {
  const keys = await keyServer(t)
  const pair = keyPair()
  keys.keys.set('k1', pair.publicKey)
  keys.down = true
  const { port } = await startService(t, { AUTH_JWKS_URL: keys.url })
  const token = createSigner({ key: pair.privateKey, algorithm: 'RS256', kid: 'k1', expiresIn: 60_000 })({ sub: 'dana' })
  const unavailable = await whoami(port, token)
  t.equal(unavailable.status, 503)
  t.equal(unavailable.headers['retry-after'], '5')
  t.match(json(unavailable), { code: 'UPFRONT_AUTH_UNAVAILABLE' })
  keys.down = false
  await sleep(1100)
  t.equal((await whoami(port, token)).status, 200, 'served once the key server answers')
})

t.test('a token that names no key of the set is refused without a fetch', async (t) => {
  const keys = await keyServer(t)
  const pair = keyPair()
  keys.keys.set('k1', pair.publicKey)
  const { port } = await startService(t, { AUTH_JWKS_URL: keys.url })
  const unnamed = createSigner({ key: pair.privateKey, algorithm: 'RS256', expiresIn: 60_000 })({ sub: 'dana' })
  const refused = await whoami(port, unnamed)
  t.equal(refused.status, 401)
  t.same(json(refused), invalidToken('it names no key (kid) of the key set; send a token issued for this service'))
  t.equal(keys.fetches(), 0)
})

t.test('jwksCacheMs and jwksRefetchIntervalMs: how long keys are kept, how often unknown ones are looked for', async (t) => {
  const keys = await keyServer(t)
  const pair = keyPair()
  keys.keys.set('k1', pair.publicKey)
  const app = await build(t, { jwt: { jwksUrl: keys.url, jwksCacheMs: 300, jwksRefetchIntervalMs: 50 } })
  const sign = (kid: string): string => createSigner({ key: pair.privateKey, algorithm: 'RS256', kid, expiresIn: 60_000 })({ sub: 'dana' })
  const status = async (kid: string): Promise<number> => (await app.inject({ url: '/whoami', headers: withToken(sign(kid)) })).statusCode

  t.equal(await status('k1'), 200)
  t.equal(await status('k1'), 200)
  t.equal(keys.fetches(), 1, 'kept while fresh')
  await sleep(400)
  t.equal(await status('k1'), 200)
  t.equal(keys.fetches(), 2, 'fetched again once older than jwksCacheMs')

  t.equal(await status('nope-1'), 401)
  t.equal(keys.fetches(), 3)
  t.equal(await status('nope-2'), 401)
  t.equal(keys.fetches(), 3, 'within jwksRefetchIntervalMs: refused without a fetch')
  await sleep(100)
  t.equal(await status('nope-3'), 401)
  t.equal(keys.fetches(), 4, 'after it, looked for again')
})
