// The request log held full presigned URLs, signature included (valid up
// to 7 days). No log line, at any level, may hold a credential.
import { Writable } from 'node:stream'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { buildApp, loggerOptions, redactUrl } from '../../app.js'
import { loadConfig } from '../../config.js'
import { signUpload } from '../../plugins/auth/index.js'
import { JWT_SECRET, PRESIGN_SECRET, TOKENS } from '../helpers/service.js'
import { exchange } from '../helpers/wire.js'

t.test('redactUrl replaces the values of secret query parameters only', async (t) => {
  const cases: Array<[string, string]> = [
    ['/files/a', '/files/a'],
    ['/files/a?upfront-owner=alice&upfront-signature=abc&x=1', '/files/a?upfront-owner=alice&upfront-signature=[redacted]&x=1'],
    ['/f?X-Amz-Signature=s&X-Amz-Credential=c&token=t&access_token=a&api_key=k', '/f?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]&token=[redacted]&access_token=[redacted]&api_key=[redacted]'],
    ['/f?%74oken=t&sig', '/f?%74oken=[redacted]&sig=[redacted]'],
    ['/f?%E0%A4%A=1', '/f?%E0%A4%A=1']
  ]
  for (const [url, logged] of cases) t.equal(redactUrl(url), logged, url)
})

t.test('no credential in any log line, at trace level, for answered and refused requests alike', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: t.testdir({}),
    AUTH_TOKENS: `alice:${TOKENS.alice}`,
    AUTH_JWT_SECRET: JWT_SECRET,
    PRESIGN_SECRET,
    LOG_LEVEL: 'trace'
  })
  const app = await buildApp({ config, logger: { ...loggerOptions('trace') as object, stream } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port

  const jwt = createSigner({ key: JWT_SECRET, expiresIn: 60_000 })({ sub: 'carol' })
  const presigned = signUpload({ owner: 'alice', name: 'p.txt', maxBytes: 100, expiresAt: Math.floor(Date.now() / 1000) + 600 }, PRESIGN_SECRET)
  const signature = new URLSearchParams(presigned.slice(presigned.indexOf('?'))).get('upfront-signature') as string
  const expired = signUpload({ owner: 'alice', name: 'p.txt', maxBytes: 100, expiresAt: Math.floor(Date.now() / 1000) - 1 }, PRESIGN_SECRET)
  const expiredSignature = new URLSearchParams(expired.slice(expired.indexOf('?'))).get('upfront-signature') as string
  const secrets = [TOKENS.alice, jwt, signature, expiredSignature, 'session-cookie-secret-value', 'proxy-secret-value', 'query-token-value']

  const requests = [
    ['PUT /files/a.txt', [`Authorization: Bearer ${TOKENS.alice}`, 'Cookie: session=session-cookie-secret-value', 'Proxy-Authorization: Basic proxy-secret-value']],
    ['PUT /files/b.txt', [`Authorization: Bearer ${jwt}`]],
    ['PUT /files/c.txt', [`Authorization: Bearer ${TOKENS.alice}x`]],
    [`PUT ${presigned}`, []],
    [`PUT ${expired}`, []],
    ['GET /files/a.txt?token=query-token-value', [`Authorization: Bearer ${TOKENS.alice}`]],
    ['PUT /files/%zz?upfront-signature=' + signature, []]
  ] as const
  for (const [line, headers] of requests) {
    await exchange(port, { head: [`${line} HTTP/1.1`, 'Host: x', 'Content-Length: 2', ...headers].join('\r\n'), body: Buffer.from('hi'), send: 'now' })
  }
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(lines.length > 10, `${lines.length} log lines written`)
  t.ok(lines.some((line) => line.includes('upfront-signature=[redacted]')), 'the presigned URL is logged, its signature redacted')
  for (const secret of secrets) {
    const leaks = lines.filter((line) => line.includes(secret))
    t.same(leaks, [], `${secret.slice(0, 12)}… appears in no line`)
  }
})
