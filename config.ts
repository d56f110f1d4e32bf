import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { isIP } from 'node:net'
import envSchema from 'env-schema'
import { InvalidConfigError } from './errors.js'
import { publicKeyAlgorithms } from './plugins/auth/index.js'
import type { AuthOptions } from './plugins/auth/index.js'
import type { StorageSettings } from './plugins/storage/open.js'
import { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE, MAX_OBJECT_BYTES, MAX_PARTS } from './plugins/storage/s3/index.js'
import type { S3StorageOptions } from './plugins/storage/s3/index.js'

export { InvalidConfigError } from './errors.js'

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
export type NodeEnv = 'production' | 'development' | 'test'

export interface Config {
  port: number
  host: string
  /** Where files are stored: on disk (`dataDir`, an absolute path), or in an S3-compatible bucket. */
  storage: StorageSettings
  /** Largest upload accepted, in bytes; a JWT claim or a presigned grant can only lower it. */
  maxUploadBytes: number
  logLevel: LogLevel
  nodeEnv: NodeEnv
  /** Absolute URL the service is reached at from outside (scheme, host, optional path), without a trailing slash; null when not set. */
  publicUrl: string | null
  /** Fastify's `trustProxy`: the proxies whose X-Forwarded-* headers are believed (addresses or CIDR ranges), a number of hops, or false. */
  trustProxy: string[] | number | false
  /** The bearer token `GET /metrics` requires; null: no metrics served. */
  metricsToken: string | null
  /** After SIGTERM or SIGINT: how long requests are still taken with readiness failing, in ms. */
  shutdownDelayMs: number
  /** Then how long uploads in flight get to finish, in ms. */
  shutdownGraceMs: number
  /** In ms: the header section's deadline, the longest silence of an upload's body, an idle keep-alive connection's life. */
  timeouts: { headersMs: number, bodyIdleMs: number, keepAliveMs: number }
  /** Uploads slower than this, in bytes per second over a minute, are cut (0: no floor). */
  minUploadBytesPerSecond: number
  /** New requests get 503 above these (0: no limit): event-loop delay in ms, resident memory in bytes. */
  pressure: { maxEventLoopDelayMs: number, maxRssBytes: number }
  /**
   * Origins whose web pages may call the service (CORS): `'*'` for any, or
   * a list of exact origins; null turns CORS off (browsers then refuse
   * cross-origin calls).
   */
  corsOrigins: '*' | string[] | null
  /** Options of the upfront-auth plugin, as they are: `app.register(auth, config.auth)`. */
  auth: AuthOptions & { presign: { secret: string } }
  /** What was made up for this process because it was not configured; see `startupWarnings`. */
  generated: {
    /** A token for a `dev` principal, made because no authentication was configured (never in production). */
    devToken: { principal: string, token: string } | null
    /** PRESIGN_SECRET was not set (never in production). */
    presignSecret: boolean
  }
}

const DEV_PRINCIPAL = 'dev'
const TOKEN_ENTRY = '[^\\s:,]+:[A-Za-z0-9._~+/-]{16,}=*'

// Each description completes "expected ...", in the error for a bad value.
const schema = {
  type: 'object',
  properties: {
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 3000, description: 'a TCP port, a whole number from 0 to 65535' },
    HOST: { type: 'string', default: '127.0.0.1', description: 'an address or host name to listen on' },
    DATA_DIR: { type: 'string', default: './data', description: 'a directory path' },
    STORAGE: { type: 'string', enum: ['disk', 's3'], default: 'disk', description: 'disk or s3' },
    S3_BUCKET: { type: 'string', pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$', description: 'a bucket name (3 to 63 characters: a-z 0-9 . -)' },
    S3_ENDPOINT: { type: 'string', pattern: '^https?://', description: 'the http: or https: URL of the S3 engine, such as http://127.0.0.1:7480; leave it out for AWS S3' },
    S3_REGION: { type: 'string', default: 'us-east-1', description: 'a region name such as eu-west-1' },
    S3_FORCE_PATH_STYLE: { type: 'boolean', default: false, description: 'true or false' },
    S3_PREFIX: { type: 'string', pattern: '^[^\\x00-\\x1f]*/$', description: 'a key prefix ending in "/", such as upfront/' },
    S3_PART_SIZE: { type: 'integer', minimum: 5 * 1024 * 1024, maximum: 5 * 1024 * 1024 * 1024, default: DEFAULT_PART_SIZE, description: 'a part size in bytes, from 5242880 (5 MiB) to 5 GiB' },
    S3_QUEUE_SIZE: { type: 'integer', minimum: 1, maximum: 16, default: DEFAULT_QUEUE_SIZE, description: 'a number of parts uploaded at once, from 1 to 16' },
    S3_SWEEP_AFTER_MS: { type: 'integer', minimum: 1000, maximum: 30 * 86_400_000, default: 86_400_000, description: 'milliseconds after which unfinished uploads and unnamed data are swept, such as 86400000 (a day): longer than any upload takes' },
    MAX_UPLOAD_BYTES: {
      type: 'integer',
      minimum: 1,
      maximum: Number.MAX_SAFE_INTEGER,
      default: 1073741824,
      description: 'a positive whole number of bytes, such as 1073741824 for 1 GiB'
    },
    AUTH_TOKENS: {
      type: 'string',
      pattern: `^\\s*${TOKEN_ENTRY}\\s*(,\\s*${TOKEN_ENTRY}\\s*)*$`,
      description: 'comma-separated principal:token pairs such as "alice:<token>,bob:<token>", ' +
        'each token at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (RFC 6750 bearer token syntax)'
    },
    AUTH_JWT_SECRET: { type: 'string', minLength: 32, description: 'an HMAC (HS256, HS384, HS512) shared secret of at least 32 characters' },
    AUTH_JWT_PUBLIC_KEY: { type: 'string', description: 'a PEM public key, or the path of a file that holds one' },
    AUTH_JWKS_URL: { type: 'string', pattern: '^https?://', description: 'the http: or https: URL of a JSON Web Key Set, such as https://idp.example.com/.well-known/jwks.json' },
    AUTH_JWT_AUDIENCE: { type: 'string', description: 'comma-separated audiences (aud) a token must name one of' },
    AUTH_JWT_ISSUER: { type: 'string', description: 'comma-separated issuers (iss) a token must come from one of' },
    AUTH_JWT_MAX_BYTES_CLAIM: { type: 'string', default: 'max_bytes', description: 'the name of a JWT claim' },
    PRESIGN_SECRET: { type: 'string', minLength: 32, description: 'a secret of at least 32 characters' },
    CORS_ORIGINS: { type: 'string', description: '* or comma-separated origins such as "https://app.example.com,http://localhost:5173"' },
    LOG_LEVEL: {
      type: 'string',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      description: 'one of fatal, error, warn, info, debug, trace, silent'
    },
    NODE_ENV: { type: 'string', enum: ['production', 'development', 'test'], default: 'development', description: 'production, development or test' },
    METRICS_TOKEN: { type: 'string', pattern: '^[A-Za-z0-9._~+/-]{16,}=*$', description: 'a bearer token of at least 16 characters of A-Z a-z 0-9 - . _ ~ + /' },
    SHUTDOWN_DELAY_MS: { type: 'integer', minimum: 0, maximum: 600_000, default: 0, description: 'milliseconds the service goes on taking requests after SIGTERM with /readyz failing, so that a load balancer stops sending first, such as 5000' },
    SHUTDOWN_GRACE_MS: { type: 'integer', minimum: 0, maximum: 86_400_000, default: 30_000, description: 'milliseconds uploads in flight get to finish after SIGTERM, such as 30000' },
    HEADERS_TIMEOUT_MS: { type: 'integer', minimum: 1000, maximum: 600_000, default: 10_000, description: 'milliseconds a client gets to send a request\'s header section, such as 10000' },
    BODY_IDLE_TIMEOUT_MS: { type: 'integer', minimum: 1000, maximum: 3_600_000, default: 60_000, description: 'milliseconds an upload may send nothing before it is cut, such as 60000' },
    KEEP_ALIVE_TIMEOUT_MS: { type: 'integer', minimum: 1000, maximum: 600_000, default: 65_000, description: 'milliseconds an idle keep-alive connection is kept, such as 65000' },
    MIN_UPLOAD_BYTES_PER_SECOND: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 1024, description: 'the slowest upload kept, in bytes per second over a minute, or 0 for no floor' },
    MAX_EVENT_LOOP_DELAY_MS: { type: 'integer', minimum: 0, maximum: 60_000, default: 1000, description: 'milliseconds of event-loop delay above which new requests get 503, or 0 for no limit' },
    MAX_RSS_BYTES: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0, description: 'resident memory in bytes above which new requests get 503, or 0 for no limit' },
    PUBLIC_URL: { type: 'string', description: 'the absolute URL clients reach the service at, such as https://files.example.com or https://example.com/uploads' },
    TRUST_PROXY: { type: 'string', description: 'the addresses or CIDR ranges of the proxies in front, comma-separated (such as 10.0.0.0/8,127.0.0.1), or a number of proxy hops' }
  }
} as const

type Variable = keyof typeof schema.properties

/**
 * Every environment variable the service reads (beside the SDK's own AWS_*
 * credentials, which it passes on): what a deployment may set.
 */
export const CONFIG_VARIABLES: readonly string[] = [...Object.keys(schema.properties), 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']

interface Env {
  PORT: number
  HOST: string
  DATA_DIR: string
  STORAGE: 'disk' | 's3'
  S3_BUCKET?: string
  S3_ENDPOINT?: string
  S3_REGION: string
  S3_FORCE_PATH_STYLE: boolean
  S3_PREFIX?: string
  S3_PART_SIZE: number
  S3_QUEUE_SIZE: number
  S3_SWEEP_AFTER_MS: number
  MAX_UPLOAD_BYTES: number
  AUTH_TOKENS?: string
  AUTH_JWT_SECRET?: string
  AUTH_JWT_PUBLIC_KEY?: string
  AUTH_JWT_MAX_BYTES_CLAIM: string
  AUTH_JWKS_URL?: string
  AUTH_JWT_AUDIENCE?: string
  AUTH_JWT_ISSUER?: string
  PRESIGN_SECRET?: string
  CORS_ORIGINS?: string
  LOG_LEVEL: LogLevel
  NODE_ENV: NodeEnv
  PUBLIC_URL?: string
  TRUST_PROXY?: string
  METRICS_TOKEN?: string
  SHUTDOWN_DELAY_MS: number
  SHUTDOWN_GRACE_MS: number
  HEADERS_TIMEOUT_MS: number
  BODY_IDLE_TIMEOUT_MS: number
  KEEP_ALIVE_TIMEOUT_MS: number
  MIN_UPLOAD_BYTES_PER_SECOND: number
  MAX_EVENT_LOOP_DELAY_MS: number
  MAX_RSS_BYTES: number
}

// Their values never appear in an error message.
const SECRET_VARIABLES = new Set<string>(['AUTH_TOKENS', 'AUTH_JWT_SECRET', 'PRESIGN_SECRET', 'AUTH_JWT_PUBLIC_KEY', 'METRICS_TOKEN'])

function schemaProblems (errors: ReadonlyArray<{ instancePath: string }>, raw: Record<string, string>): string[] {
  const problems = new Map<string, string>()
  for (const { instancePath } of errors) {
    const variable = instancePath.slice(1) as Variable
    const got = SECRET_VARIABLES.has(variable) ? '' : `, got ${JSON.stringify(raw[variable])}`
    problems.set(variable, `${variable}: expected ${schema.properties[variable].description}${got}`)
  }
  return [...problems.values()]
}

function parseTokens (list: string, problems: string[]): Record<string, string> {
  const entries = new Map<string, string>()
  const tokens = new Set<string>()
  for (const entry of list.split(',')) {
    const trimmed = entry.trim()
    const colon = trimmed.indexOf(':')
    const principal = trimmed.slice(0, colon)
    const token = trimmed.slice(colon + 1)
    if (entries.has(principal)) {
      problems.push(`AUTH_TOKENS: principal "${principal}" appears more than once; give each principal one token`)
    } else if (tokens.has(token)) {
      problems.push(`AUTH_TOKENS: principal "${principal}" has the same token as another principal; give each principal its own`)
    }
    entries.set(principal, token)
    tokens.add(token)
  }
  // fromEntries, unlike assignment, keeps a principal named "__proto__" as data.
  return Object.fromEntries(entries)
}

function parseOrigins (list: string, problems: string[]): '*' | string[] {
  const entries = list.split(',').map((entry) => entry.trim())
  if (entries.length === 1 && entries[0] === '*') return '*'
  const origins: string[] = []
  for (const entry of entries) {
    let origin: string | null = null
    try {
      const url = new URL(entry)
      if (url.protocol === 'http:' || url.protocol === 'https:') origin = url.origin
    } catch {}
    // A browser sends its origin serialized: scheme://host[:port], lower case, without a default port or a path.
    if (origin !== entry) {
      problems.push(`CORS_ORIGINS: ${JSON.stringify(entry)} is not an origin; write each as the browser sends it, ` +
        `scheme://host[:port] with nothing after it${origin === null ? '' : ` (here ${JSON.stringify(origin)})`}, or give * alone for any origin`)
    } else {
      origins.push(origin)
    }
  }
  return origins
}

function readPublicKey (setting: string, problems: string[]): string | undefined {
  let pem = setting
  if (setting.includes('-----BEGIN')) {
    // One-line environment values often carry the PEM's newlines as "\n".
    pem = setting.replace(/\\n/g, '\n')
  } else {
    try {
      pem = readFileSync(setting, 'utf8')
    } catch (error) {
      problems.push(`AUTH_JWT_PUBLIC_KEY: expected PEM text or a readable file, but ${JSON.stringify(setting)} cannot be read (${(error as NodeJS.ErrnoException).code})`)
      return undefined
    }
  }
  try {
    publicKeyAlgorithms(pem)
  } catch (error) {
    problems.push(`AUTH_JWT_PUBLIC_KEY: ${(error as Error).message}`)
    return undefined
  }
  return pem
}

function parsePublicUrl (setting: string, problems: string[]): string | null {
  let url: URL | null = null
  try {
    url = new URL(setting)
  } catch {}
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    problems.push(`PUBLIC_URL: ${JSON.stringify(setting)} is not an absolute http: or https: URL without query, fragment or credentials; ` +
      'give the origin clients use, with the path prefix your proxy adds if any (https://files.example.com, https://example.com/uploads)')
    return null
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
}

/** An address, or an address and a prefix length (CIDR). */
function isAddressRange (entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/')
  const version = isIP(address)
  if (version === 0 || rest.length > 0) return false
  if (prefix === undefined) return true
  return /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128)
}

function parseTrustProxy (setting: string, problems: string[]): string[] | number | false {
  if (/^[0-9]+$/.test(setting)) {
    const hops = Number(setting)
    if (hops >= 1 && hops <= 16) return hops
  } else {
    const entries = setting.split(',').map((entry) => entry.trim())
    const bad = entries.find((entry) => !isAddressRange(entry))
    if (bad === undefined) return entries
  }
  problems.push(`TRUST_PROXY: ${JSON.stringify(setting)} is neither addresses or CIDR ranges (such as 10.0.0.0/8,127.0.0.1) nor a number of hops from 1 to 16; ` +
    'list the addresses your proxies connect from')
  return false
}

function list (setting: string | undefined): string[] | undefined {
  if (setting === undefined) return undefined
  const entries = setting.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
  return entries.length === 0 ? undefined : entries
}

/**
 * The S3 backend's options. Credentials are the SDK's standard chain
 * (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an instance
 * role); when the two variables are in `env`, they are passed as they are.
 */
function s3Options (values: Env, env: NodeJS.ProcessEnv): S3StorageOptions {
  const options: S3StorageOptions = {
    bucket: values.S3_BUCKET as string,
    endpoint: values.S3_ENDPOINT,
    region: values.S3_REGION,
    forcePathStyle: values.S3_FORCE_PATH_STYLE,
    prefix: values.S3_PREFIX ?? '',
    partSize: values.S3_PART_SIZE,
    queueSize: values.S3_QUEUE_SIZE,
    sweepAfterMs: values.S3_SWEEP_AFTER_MS
  }
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN: sessionToken } = env
  if (accessKeyId !== undefined && accessKeyId !== '' && secretAccessKey !== undefined && secretAccessKey !== '') {
    options.client = { credentials: { accessKeyId, secretAccessKey, ...(sessionToken === undefined || sessionToken === '' ? {} : { sessionToken }) } }
  }
  return options
}

/**
 * Reads the service's settings from the environment. An empty variable
 * counts as unset. Throws `UPFRONT_INVALID_CONFIG` listing every bad or
 * missing setting.
 */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, string> = {}
  for (const variable of Object.keys(schema.properties)) {
    const value = env[variable]
    if (value !== undefined && value !== '') raw[variable] = value
  }

  let values: Env
  try {
    values = envSchema<Env>({ schema, data: { ...raw }, env: false })
  } catch (error) {
    throw new InvalidConfigError(schemaProblems((error as { errors: Array<{ instancePath: string }> }).errors, raw).join('\n'))
  }

  const problems: string[] = []
  const production = values.NODE_ENV === 'production'
  const tokens = values.AUTH_TOKENS === undefined ? {} : parseTokens(values.AUTH_TOKENS, problems)
  const publicKey = values.AUTH_JWT_PUBLIC_KEY === undefined ? undefined : readPublicKey(values.AUTH_JWT_PUBLIC_KEY, problems)
  const corsOrigins = values.CORS_ORIGINS === undefined ? null : parseOrigins(values.CORS_ORIGINS, problems)
  const jwtSecret = values.AUTH_JWT_SECRET
  if (jwtSecret !== undefined && jwtSecret === values.PRESIGN_SECRET) {
    problems.push('PRESIGN_SECRET: must differ from AUTH_JWT_SECRET, so that neither kind of signature can stand for the other')
  }

  if (values.STORAGE === 's3' && values.S3_BUCKET === undefined) problems.push('S3_BUCKET: required with STORAGE=s3; name the bucket files go to')
  if (values.STORAGE === 's3' && values.MAX_UPLOAD_BYTES > MAX_OBJECT_BYTES) {
    problems.push(`MAX_UPLOAD_BYTES: S3 objects hold at most ${MAX_OBJECT_BYTES} bytes (5 TiB); set MAX_UPLOAD_BYTES to that or less`)
  } else if (values.STORAGE === 's3' && values.MAX_UPLOAD_BYTES > values.S3_PART_SIZE * MAX_PARTS) {
    // S3 takes at most 10,000 parts per object: past that an upload would fail after most of its body.
    const needed = Math.ceil(values.MAX_UPLOAD_BYTES / MAX_PARTS)
    problems.push(`S3_PART_SIZE: ${values.S3_PART_SIZE} bytes x ${MAX_PARTS} parts (S3's most) holds less than MAX_UPLOAD_BYTES (${values.MAX_UPLOAD_BYTES}); set S3_PART_SIZE to at least ${needed}, or lower MAX_UPLOAD_BYTES`)
  }
  const publicUrl = values.PUBLIC_URL === undefined ? null : parsePublicUrl(values.PUBLIC_URL, problems)
  const trustProxy = values.TRUST_PROXY === undefined ? false : parseTrustProxy(values.TRUST_PROXY, problems)
  const jwksUrl = values.AUTH_JWKS_URL
  if (jwksUrl !== undefined && values.AUTH_JWT_PUBLIC_KEY !== undefined) {
    problems.push('AUTH_JWKS_URL: set it or AUTH_JWT_PUBLIC_KEY, not both (the key set holds the public keys)')
  }
  const audience = list(values.AUTH_JWT_AUDIENCE)
  const issuer = list(values.AUTH_JWT_ISSUER)

  const jwtConfigured = jwtSecret !== undefined || values.AUTH_JWT_PUBLIC_KEY !== undefined || jwksUrl !== undefined
  if (!jwtConfigured && (audience !== undefined || issuer !== undefined)) {
    problems.push('AUTH_JWT_AUDIENCE, AUTH_JWT_ISSUER: they pin JWTs; set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL too')
  }
  const authConfigured = values.AUTH_TOKENS !== undefined || jwtConfigured
  if (production && !authConfigured) {
    problems.push('No authentication is configured: set AUTH_TOKENS, AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL (NODE_ENV=production)')
  }
  if (production && values.PRESIGN_SECRET === undefined) {
    problems.push('PRESIGN_SECRET is required with NODE_ENV=production, so that presigned URLs survive restarts and work on every replica')
  }
  if (problems.length > 0) throw new InvalidConfigError(problems.join('\n'))

  let devToken: Config['generated']['devToken'] = null
  if (!authConfigured) {
    devToken = { principal: DEV_PRINCIPAL, token: randomBytes(32).toString('base64url') }
    tokens[DEV_PRINCIPAL] = devToken.token
  }
  const auth: Config['auth'] = {
    tokens,
    presign: { secret: values.PRESIGN_SECRET ?? randomBytes(32).toString('base64url') }
  }
  if (jwtConfigured) {
    auth.jwt = { secret: jwtSecret, publicKey, jwksUrl, audience, issuer, maxBytesClaim: values.AUTH_JWT_MAX_BYTES_CLAIM }
  }

  return {
    port: values.PORT,
    host: values.HOST,
    storage: values.STORAGE === 'disk' ? { kind: 'disk', dataDir: resolve(values.DATA_DIR) } : { kind: 's3', options: s3Options(values, env) },
    maxUploadBytes: values.MAX_UPLOAD_BYTES,
    logLevel: values.LOG_LEVEL,
    nodeEnv: values.NODE_ENV,
    publicUrl,
    trustProxy,
    metricsToken: values.METRICS_TOKEN ?? null,
    shutdownDelayMs: values.SHUTDOWN_DELAY_MS,
    shutdownGraceMs: values.SHUTDOWN_GRACE_MS,
    timeouts: { headersMs: values.HEADERS_TIMEOUT_MS, bodyIdleMs: values.BODY_IDLE_TIMEOUT_MS, keepAliveMs: values.KEEP_ALIVE_TIMEOUT_MS },
    minUploadBytesPerSecond: values.MIN_UPLOAD_BYTES_PER_SECOND,
    pressure: { maxEventLoopDelayMs: values.MAX_EVENT_LOOP_DELAY_MS, maxRssBytes: values.MAX_RSS_BYTES },
    corsOrigins,
    auth,
    generated: { devToken, presignSecret: values.PRESIGN_SECRET === undefined }
  }
}

/** What server.ts logs once at start-up, as warnings, about settings that were made up. */
export function startupWarnings (config: Config): string[] {
  const warnings: string[] = []
  const { devToken } = config.generated
  if (devToken !== null) {
    warnings.push('No authentication is configured (AUTH_TOKENS, AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL): ' +
      `for this run only, principal "${devToken.principal}" has the token ${devToken.token} ` +
      `(send "Authorization: Bearer ${devToken.token}"). With NODE_ENV=production the service refuses to start like this.`)
  }
  if (config.generated.presignSecret) {
    warnings.push('PRESIGN_SECRET is not set: presigned URLs are signed with a secret made for this process, ' +
      'so they stop working when it restarts and no other replica accepts them. Set PRESIGN_SECRET to 32 or more random characters.')
  }
  return warnings
}
