import { generateKeyPairSync } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { loadConfig, startupWarnings } from '../config.js'
import type { Config } from '../config.js'
import { aliceToken, bobToken, jwtSecret, presignSecret } from './helpers/credentials.js'

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const privatePem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()

/** The message of the configuration error `fn` throws. */
function problemOf (t: Test, fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    t.equal((error as { code: string }).code, 'UPFRONT_INVALID_CONFIG')
    return (error as Error).message
  }
  t.fail('expected a configuration error')
  return ''
}

t.test('defaults, outside production, with nothing configured', async (t) => {
  const config = loadConfig({})
  const token = config.generated.devToken?.token as string
  t.match(token, /^[A-Za-z0-9_-]{43}$/, 'a random token')
  t.match(config.auth.presign.secret, /^[A-Za-z0-9_-]{43}$/, 'a random presign secret')
  t.same(config, {
    port: 3000,
    host: '127.0.0.1',
    storage: { kind: 'disk', dataDir: resolve('./data') },
    maxUploadBytes: 1073741824,
    logLevel: 'info',
    nodeEnv: 'development',
    publicUrl: null,
    trustProxy: false,
    metricsToken: null,
    shutdownDelayMs: 0,
    shutdownGraceMs: 30_000,
    timeouts: { headersMs: 10_000, bodyIdleMs: 60_000, keepAliveMs: 65_000 },
    minUploadBytesPerSecond: 1024,
    pressure: { maxEventLoopDelayMs: 1000, maxRssBytes: 0 },
    corsOrigins: null,
    auth: { tokens: { dev: token }, presign: { secret: config.auth.presign.secret } },
    generated: { devToken: { principal: 'dev', token }, presignSecret: true }
  } satisfies Config)
  t.not(loadConfig({}).generated.devToken?.token, token, 'a new token for each process')

  const warnings = startupWarnings(config)
  t.equal(warnings.length, 2)
  t.match(warnings[0], `principal "dev" has the token ${token}`)
  t.match(warnings[0], 'With NODE_ENV=production the service refuses to start like this')
  t.match(warnings[1], 'PRESIGN_SECRET is not set')
  t.match(warnings[1], 'no other replica accepts them')
})

t.test('reads process.env by default', async (t) => {
  const saved = { ...process.env }
  t.teardown(() => { process.env = saved })
  process.env = { PORT: '4321', AUTH_TOKENS: `alice:${aliceToken}` }
  const config = loadConfig()
  t.equal(config.port, 4321)
  t.same(config.auth.tokens, { alice: aliceToken })
})

t.test('every setting', async (t) => {
  const config = loadConfig({
    PORT: '8080',
    HOST: '0.0.0.0',
    DATA_DIR: '/srv/upfront',
    MAX_UPLOAD_BYTES: '1048576',
    AUTH_TOKENS: ` alice:${aliceToken} , bob:${bobToken}`,
    AUTH_JWT_SECRET: jwtSecret,
    AUTH_JWT_PUBLIC_KEY: publicPem,
    AUTH_JWT_MAX_BYTES_CLAIM: 'upload_limit',
    PRESIGN_SECRET: presignSecret,
    CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
    LOG_LEVEL: 'debug',
    NODE_ENV: 'production',
    UNRELATED: 'ignored'
  })
  t.same(config, {
    port: 8080,
    host: '0.0.0.0',
    storage: { kind: 'disk', dataDir: '/srv/upfront' },
    maxUploadBytes: 1048576,
    logLevel: 'debug',
    nodeEnv: 'production',
    publicUrl: null,
    trustProxy: false,
    metricsToken: null,
    shutdownDelayMs: 0,
    shutdownGraceMs: 30_000,
    timeouts: { headersMs: 10_000, bodyIdleMs: 60_000, keepAliveMs: 65_000 },
    minUploadBytesPerSecond: 1024,
    pressure: { maxEventLoopDelayMs: 1000, maxRssBytes: 0 },
    corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
    auth: {
      tokens: { alice: aliceToken, bob: bobToken },
      jwt: { secret: jwtSecret, publicKey: publicPem, maxBytesClaim: 'upload_limit' },
      presign: { secret: presignSecret }
    },
    generated: { devToken: null, presignSecret: false }
  } satisfies Config)
  t.same(startupWarnings(config), [])
})

t.test('an empty variable counts as unset', async (t) => {
  const config = loadConfig({ PORT: '', MAX_UPLOAD_BYTES: '', AUTH_TOKENS: '', LOG_LEVEL: '' })
  t.equal(config.port, 3000)
  t.equal(config.maxUploadBytes, 1073741824)
  t.equal(config.logLevel, 'info')
  t.not(config.generated.devToken, null)
})

t.test('a bad value is named with what is expected', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'http' }, 'PORT: expected a TCP port, a whole number from 0 to 65535, got "http"'],
    [{ PORT: '65536' }, 'PORT: expected a TCP port, a whole number from 0 to 65535, got "65536"'],
    [{ MAX_UPLOAD_BYTES: '1GiB' }, 'MAX_UPLOAD_BYTES: expected a positive whole number of bytes, such as 1073741824 for 1 GiB, got "1GiB"'],
    [{ MAX_UPLOAD_BYTES: '0' }, 'MAX_UPLOAD_BYTES: expected a positive whole number of bytes, such as 1073741824 for 1 GiB, got "0"'],
    [{ MAX_UPLOAD_BYTES: '1.5' }, 'MAX_UPLOAD_BYTES: expected a positive whole number of bytes, such as 1073741824 for 1 GiB, got "1.5"'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"']
  ]
  for (const [env, line] of cases) {
    t.equal(problemOf(t, () => loadConfig(env)), `Invalid configuration:\n${line}`, line)
  }
})

t.test('every bad value is listed at once', async (t) => {
  t.equal(problemOf(t, () => loadConfig({ PORT: '-1', LOG_LEVEL: 'loud', AUTH_JWT_SECRET: 'short' })), [
    'Invalid configuration:',
    'PORT: expected a TCP port, a whole number from 0 to 65535, got "-1"',
    'AUTH_JWT_SECRET: expected an HMAC (HS256, HS384, HS512) shared secret of at least 32 characters',
    'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"'
  ].join('\n'))
})

t.test('CORS_ORIGINS', async (t) => {
  t.equal(loadConfig({ CORS_ORIGINS: ' * ' }).corsOrigins, '*', '* alone: any origin')
  t.same(loadConfig({ CORS_ORIGINS: 'https://a.example:8443,http://[::1]:3000' }).corsOrigins, ['https://a.example:8443', 'http://[::1]:3000'])
  const expected = (entry: string, origin?: string): string => `Invalid configuration:\nCORS_ORIGINS: ${JSON.stringify(entry)} is not an origin; ` +
    `write each as the browser sends it, scheme://host[:port] with nothing after it${origin === undefined ? '' : ` (here ${JSON.stringify(origin)})`}, or give * alone for any origin`
  for (const [bad, origin] of [
    ['https://app.example.com/', 'https://app.example.com'],
    ['https://App.example.com', 'https://app.example.com'],
    ['https://app.example.com:443', 'https://app.example.com'],
    ['https://app.example.com/upload', 'https://app.example.com'],
    ['app.example.com', undefined],
    ['ftp://files.example.com', undefined],
    ['', undefined]
  ] as const) {
    const list = `https://ok.example,${bad}`
    t.equal(problemOf(t, () => loadConfig({ CORS_ORIGINS: list })), expected(bad, origin), list)
  }
  t.equal(problemOf(t, () => loadConfig({ CORS_ORIGINS: '*,https://ok.example' })), expected('*'), '* only alone')
})

t.test('AUTH_TOKENS', async (t) => {
  const expected = 'AUTH_TOKENS: expected comma-separated principal:token pairs such as "alice:<token>,bob:<token>", ' +
    'each token at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (RFC 6750 bearer token syntax)'
  for (const bad of [
    `:${aliceToken}`,
    'alice:short',
    `alice:${aliceToken},`,
    `alice ${aliceToken}`,
    `alice:${aliceToken}:more`,
    `alice:${aliceToken} bob:${bobToken}`,
    `alice:has space${aliceToken}`
  ]) {
    const message = problemOf(t, () => loadConfig({ AUTH_TOKENS: bad }))
    t.equal(message, `Invalid configuration:\n${expected}`, bad)
    t.notMatch(message, aliceToken, 'the tokens are not in the message')
  }

  t.equal(problemOf(t, () => loadConfig({ AUTH_TOKENS: `alice:${aliceToken},alice:${bobToken}` })),
    'Invalid configuration:\nAUTH_TOKENS: principal "alice" appears more than once; give each principal one token')
  t.equal(problemOf(t, () => loadConfig({ AUTH_TOKENS: `alice:${aliceToken},bob:${aliceToken}` })),
    'Invalid configuration:\nAUTH_TOKENS: principal "bob" has the same token as another principal; give each principal its own')

  const tokens = loadConfig({ AUTH_TOKENS: `__proto__:${aliceToken}` }).auth.tokens as Record<string, string>
  t.equal(Object.getPrototypeOf(tokens), Object.prototype, 'a principal named __proto__ stays a principal')
  t.same(Object.entries(tokens), [['__proto__', aliceToken]])
})

t.test('AUTH_JWT_SECRET and PRESIGN_SECRET', async (t) => {
  const config = loadConfig({ AUTH_JWT_SECRET: jwtSecret })
  t.same(config.auth.jwt, { secret: jwtSecret, publicKey: undefined, maxBytesClaim: 'max_bytes' })
  t.same(config.auth.tokens, {}, 'no development token once JWTs are configured')
  t.equal(config.generated.devToken, null)

  const short = problemOf(t, () => loadConfig({ PRESIGN_SECRET: 'too-short' }))
  t.equal(short, 'Invalid configuration:\nPRESIGN_SECRET: expected a secret of at least 32 characters')
  t.equal(problemOf(t, () => loadConfig({ AUTH_JWT_SECRET: jwtSecret, PRESIGN_SECRET: jwtSecret })),
    'Invalid configuration:\nPRESIGN_SECRET: must differ from AUTH_JWT_SECRET, so that neither kind of signature can stand for the other')
})

t.test('AUTH_JWT_PUBLIC_KEY', async (t) => {
  const dir = t.testdir({})
  const keyFile = join(dir, 'jwt.pem')
  writeFileSync(keyFile, publicPem)
  t.equal(loadConfig({ AUTH_JWT_PUBLIC_KEY: keyFile }).auth.jwt?.publicKey, publicPem, 'from a file')
  t.equal(loadConfig({ AUTH_JWT_PUBLIC_KEY: publicPem }).auth.jwt?.publicKey, publicPem, 'as text')
  t.equal(loadConfig({ AUTH_JWT_PUBLIC_KEY: publicPem.replace(/\n/g, '\\n') }).auth.jwt?.publicKey, publicPem,
    'as one line with \\n for its newlines')

  const missing = join(dir, 'missing.pem')
  t.equal(problemOf(t, () => loadConfig({ AUTH_JWT_PUBLIC_KEY: missing })),
    `Invalid configuration:\nAUTH_JWT_PUBLIC_KEY: expected PEM text or a readable file, but ${JSON.stringify(missing)} cannot be read (ENOENT)`)

  const notPem = join(dir, 'secret.txt')
  writeFileSync(notPem, 'just some text')
  t.equal(problemOf(t, () => loadConfig({ AUTH_JWT_PUBLIC_KEY: notPem })),
    'Invalid configuration:\nAUTH_JWT_PUBLIC_KEY: expected a PEM public key or certificate ("-----BEGIN PUBLIC KEY-----")')
  const privateMessage = problemOf(t, () => loadConfig({ AUTH_JWT_PUBLIC_KEY: privatePem }))
  t.equal(privateMessage, 'Invalid configuration:\nAUTH_JWT_PUBLIC_KEY: this is a private key; give the service only the public key')
  t.notMatch(privateMessage, 'MII', 'the key is not in the message')
})

t.test('production refuses to start without authentication or a presign secret', async (t) => {
  t.equal(problemOf(t, () => loadConfig({ NODE_ENV: 'production' })), [
    'Invalid configuration:',
    'No authentication is configured: set AUTH_TOKENS, AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL (NODE_ENV=production)',
    'PRESIGN_SECRET is required with NODE_ENV=production, so that presigned URLs survive restarts and work on every replica'
  ].join('\n'))
  t.equal(problemOf(t, () => loadConfig({ NODE_ENV: 'production', AUTH_JWT_PUBLIC_KEY: publicPem })),
    'Invalid configuration:\nPRESIGN_SECRET is required with NODE_ENV=production, so that presigned URLs survive restarts and work on every replica')
  t.equal(problemOf(t, () => loadConfig({ NODE_ENV: 'production', PRESIGN_SECRET: presignSecret })),
    'Invalid configuration:\nNo authentication is configured: set AUTH_TOKENS, AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL (NODE_ENV=production)')

  const config = loadConfig({ NODE_ENV: 'production', AUTH_TOKENS: `alice:${aliceToken}`, PRESIGN_SECRET: presignSecret })
  t.same(config.generated, { devToken: null, presignSecret: false })
  t.same(config.auth, { tokens: { alice: aliceToken }, presign: { secret: presignSecret } })
})

t.test('storage: disk by default, or an S3 bucket, validated like every setting', async (t) => {
  t.same(loadConfig({ DATA_DIR: '/srv/files' }).storage, { kind: 'disk', dataDir: '/srv/files' })
  t.same(loadConfig({
    STORAGE: 's3',
    S3_BUCKET: 'uploads',
    S3_ENDPOINT: 'http://127.0.0.1:7480',
    S3_REGION: 'eu-west-1',
    S3_FORCE_PATH_STYLE: 'true',
    S3_PREFIX: 'upfront/',
    S3_PART_SIZE: String(16 * 1024 * 1024),
    S3_QUEUE_SIZE: '3',
    AWS_ACCESS_KEY_ID: 'key-id',
    AWS_SECRET_ACCESS_KEY: 'secret'
  }).storage, {
    kind: 's3',
    options: {
      bucket: 'uploads',
      endpoint: 'http://127.0.0.1:7480',
      region: 'eu-west-1',
      forcePathStyle: true,
      prefix: 'upfront/',
      partSize: 16 * 1024 * 1024,
      queueSize: 3,
      sweepAfterMs: 86_400_000,
      client: { credentials: { accessKeyId: 'key-id', secretAccessKey: 'secret' } }
    }
  })
  t.same(loadConfig({ STORAGE: 's3', S3_BUCKET: 'uploads' }).storage, {
    kind: 's3',
    options: { bucket: 'uploads', endpoint: undefined, region: 'us-east-1', forcePathStyle: false, prefix: '', partSize: 5 * 1024 * 1024, queueSize: 2, sweepAfterMs: 86_400_000 }
  }, 'AWS defaults; credentials from the SDK\'s own chain')
  t.equal(problemOf(t, () => loadConfig({ STORAGE: 's3' })), 'Invalid configuration:\nS3_BUCKET: required with STORAGE=s3; name the bucket files go to')
  t.equal(problemOf(t, () => loadConfig({ STORAGE: 's3', S3_BUCKET: 'uploads', MAX_UPLOAD_BYTES: String(60 * 1024 ** 3) })),
    'Invalid configuration:\nS3_PART_SIZE: 5242880 bytes x 10000 parts (S3\'s most) holds less than MAX_UPLOAD_BYTES (64424509440); set S3_PART_SIZE to at least 6442451, or lower MAX_UPLOAD_BYTES',
    'an upload that could not fit in 10,000 parts is refused at start, not after most of its body')
  t.equal(loadConfig({ STORAGE: 's3', S3_BUCKET: 'uploads', MAX_UPLOAD_BYTES: String(60 * 1024 ** 3), S3_PART_SIZE: '6442451' }).maxUploadBytes, 60 * 1024 ** 3)
  t.equal(problemOf(t, () => loadConfig({ STORAGE: 's3', S3_BUCKET: 'uploads', MAX_UPLOAD_BYTES: String(6 * 1024 ** 4), S3_PART_SIZE: String(1024 ** 3) })),
    'Invalid configuration:\nMAX_UPLOAD_BYTES: S3 objects hold at most 5497558138880 bytes (5 TiB); set MAX_UPLOAD_BYTES to that or less')
  t.equal(problemOf(t, () => loadConfig({ STORAGE: 'nfs', S3_PART_SIZE: '1000', S3_BUCKET: 'Bad_Bucket', S3_PREFIX: 'no-slash' })), [
    'Invalid configuration:',
    'STORAGE: expected disk or s3, got "nfs"',
    'S3_BUCKET: expected a bucket name (3 to 63 characters: a-z 0-9 . -), got "Bad_Bucket"',
    'S3_PREFIX: expected a key prefix ending in "/", such as upfront/, got "no-slash"',
    'S3_PART_SIZE: expected a part size in bytes, from 5242880 (5 MiB) to 5 GiB, got "1000"'
  ].join('\n'))
})

t.test('PUBLIC_URL: an absolute http: or https: URL, kept without a trailing slash', async (t) => {
  const cases: Array<[string, string]> = [
    ['https://files.example.com', 'https://files.example.com'],
    ['https://example.com/uploads/', 'https://example.com/uploads'],
    ['HTTP://Example.com:8080//', 'http://example.com:8080']
  ]
  for (const [setting, publicUrl] of cases) t.equal(loadConfig({ PUBLIC_URL: setting }).publicUrl, publicUrl, setting)
  const expected = (setting: string): string => `Invalid configuration:\nPUBLIC_URL: ${JSON.stringify(setting)} is not an absolute http: or https: URL without query, fragment or credentials; ` +
    'give the origin clients use, with the path prefix your proxy adds if any (https://files.example.com, https://example.com/uploads)'
  for (const bad of ['files.example.com', '/uploads', 'ftp://files.example.com', 'https://example.com/?a=1', 'https://example.com/#top', 'https://user@example.com', 'https://:secret@example.com']) {
    t.equal(problemOf(t, () => loadConfig({ PUBLIC_URL: bad })), expected(bad), bad)
  }
})

t.test('TRUST_PROXY: addresses and CIDR ranges, or a number of hops', async (t) => {
  const cases: Array<[string, string[] | number]> = [
    ['127.0.0.1', ['127.0.0.1']],
    [' 10.0.0.0/8 , 192.168.1.7,::1 ', ['10.0.0.0/8', '192.168.1.7', '::1']],
    ['fd00::/8,2001:db8::/128', ['fd00::/8', '2001:db8::/128']],
    ['0.0.0.0/0', ['0.0.0.0/0']],
    ['1', 1],
    ['16', 16]
  ]
  for (const [setting, trustProxy] of cases) t.same(loadConfig({ TRUST_PROXY: setting }).trustProxy, trustProxy, setting)
  const expected = (setting: string): string => `Invalid configuration:\nTRUST_PROXY: ${JSON.stringify(setting)} is neither addresses or CIDR ranges (such as 10.0.0.0/8,127.0.0.1) nor a number of hops from 1 to 16; ` +
    'list the addresses your proxies connect from'
  for (const bad of ['0', '17', 'proxy.internal', '10.0.0.0/33', '::1/129', '10.0.0.0/8/8', '10.0.0.0/x', '10.0.0.0/', '127.0.0.1,', 'true']) {
    t.equal(problemOf(t, () => loadConfig({ TRUST_PROXY: bad })), expected(bad), bad)
  }
})

t.test('AUTH_JWKS_URL, AUTH_JWT_AUDIENCE and AUTH_JWT_ISSUER', async (t) => {
  const jwksUrl = 'https://idp.example.com/.well-known/jwks.json'
  t.same(loadConfig({ AUTH_JWKS_URL: jwksUrl, AUTH_JWT_AUDIENCE: ' upfront , other ', AUTH_JWT_ISSUER: 'https://idp.example.com/' }).auth.jwt, {
    secret: undefined,
    publicKey: undefined,
    jwksUrl,
    audience: ['upfront', 'other'],
    issuer: ['https://idp.example.com/'],
    maxBytesClaim: 'max_bytes'
  })
  const blank = loadConfig({ AUTH_JWT_SECRET: jwtSecret, AUTH_JWT_AUDIENCE: ' , ', AUTH_JWT_ISSUER: ',' }).auth.jwt
  t.equal(blank?.audience, undefined, 'a list of nothing pins no audience')
  t.equal(blank?.issuer, undefined, 'nor any issuer')

  t.equal(problemOf(t, () => loadConfig({ AUTH_JWKS_URL: jwksUrl, AUTH_JWT_PUBLIC_KEY: publicPem })),
    'Invalid configuration:\nAUTH_JWKS_URL: set it or AUTH_JWT_PUBLIC_KEY, not both (the key set holds the public keys)')
  const unpinned = 'Invalid configuration:\nAUTH_JWT_AUDIENCE, AUTH_JWT_ISSUER: they pin JWTs; set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL too'
  t.equal(problemOf(t, () => loadConfig({ AUTH_TOKENS: `alice:${aliceToken}`, AUTH_JWT_AUDIENCE: 'upfront' })), unpinned, 'an audience without JWTs')
  t.equal(problemOf(t, () => loadConfig({ AUTH_JWT_ISSUER: 'https://idp.example.com/' })), unpinned, 'an issuer without JWTs')
})

t.test('S3 credentials: AWS_SESSION_TOKEN is passed with the key pair, when set', async (t) => {
  const env = { STORAGE: 's3', S3_BUCKET: 'uploads', AWS_ACCESS_KEY_ID: 'key-id', AWS_SECRET_ACCESS_KEY: 'secret' }
  const client = (extra: Record<string, string>): unknown => {
    const { storage } = loadConfig({ ...env, ...extra })
    return storage.kind === 's3' ? storage.options.client : undefined
  }
  t.same(client({ AWS_SESSION_TOKEN: 'session' }), { credentials: { accessKeyId: 'key-id', secretAccessKey: 'secret', sessionToken: 'session' } })
  t.same(client({ AWS_SESSION_TOKEN: '' }), { credentials: { accessKeyId: 'key-id', secretAccessKey: 'secret' } }, 'an empty token counts as unset')
  t.equal(client({ AWS_SECRET_ACCESS_KEY: '' }), undefined, 'without both keys: the SDK\'s own chain')
})
