// The deployment files checked against the service itself, without a
// Docker engine: docker-compose.yml (parsed and interpolated as compose
// does), deploy/haproxy.cfg (parsed, and checked by haproxy -c) and the
// Dockerfile. Every variable a replica sets must be one the service reads,
// and its environment must pass loadConfig in production; ports, health
// paths, grace periods and dependencies must agree across the three files.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { CONFIG_VARIABLES, loadConfig } from '../../config.js'
import type { Config } from '../../config.js'

const root = new URL('../../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')

// ------------------------------------------------------------ compose file

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Node = Record<string, Json>

interface Service {
  build?: Json
  image?: string
  environment?: Record<string, Json> | string[]
  healthcheck?: { test?: string[] | string }
  depends_on?: Record<string, { condition?: string }> | string[]
  stop_grace_period?: string
  stop_signal?: string
  ports?: string[]
  expose?: Array<string | number>
  volumes?: string[]
  networks?: string[] | Record<string, { ipv4_address?: string } | null>
  entrypoint?: string[] | string
  command?: string[] | string
  restart?: string
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>, networks?: Record<string, Node> }
const services = compose.services

/** A variable compose interpolates: whether it must be set (`:?`). */
interface Reference { required: boolean }

/**
 * Compose's interpolation: `$$` is a `$`; `${NAME}`, `${NAME:-default}`,
 * `${NAME-default}`, `${NAME:?error}`, `${NAME?error}`, `${NAME:+alt}`,
 * `${NAME+alt}` and `$NAME`, with interpolations nested in defaults.
 * Throws on an unset required variable, as compose does; unless `seen` is
 * given, which collects the variables instead.
 */
function interpolate (text: string, env: Record<string, string>, seen?: Map<string, Reference>): string {
  let out = ''
  let i = 0
  while (i < text.length) {
    const c = text[i] as string
    if (c !== '$') {
      out += c
      i++
    } else if (text[i + 1] === '$') {
      out += '$'
      i += 2
    } else if (text[i + 1] === '{') {
      let depth = 1
      let j = i + 2
      while (j < text.length && depth > 0) {
        if (text[j] === '$' && text[j + 1] === '$') j++
        else if (text[j] === '{') depth++
        else if (text[j] === '}') depth--
        j++
      }
      if (depth > 0) throw new Error(`unterminated interpolation in ${JSON.stringify(text)}`)
      const inner = text.slice(i + 2, j - 1)
      const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(inner)
      if (match === null) throw new Error(`invalid interpolation \${${inner}} in ${JSON.stringify(text)}`)
      const [, name = '', operator = '', argument = ''] = match
      const value = env[name]
      const empty = value === undefined || (operator.startsWith(':') && value === '')
      seen?.set(name, { required: operator.endsWith('?') || (seen.get(name)?.required ?? false) })
      if (operator.endsWith('-')) out += empty ? interpolate(argument, env, seen) : value
      else if (operator.endsWith('?')) {
        if (empty && seen === undefined) throw new Error(`required variable ${name} is missing: ${argument}`)
        out += value ?? ''
      } else if (operator.endsWith('+')) out += empty ? '' : interpolate(argument, env, seen)
      else out += value ?? ''
      i = j
    } else {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1))
      if (match === null) throw new Error(`a lone $ in ${JSON.stringify(text)}: write $$`)
      seen?.set(match[0], { required: seen.get(match[0])?.required ?? false })
      out += env[match[0]] ?? ''
      i += 1 + match[0].length
    }
  }
  return out
}

/** Every string in a parsed document. */
function strings (value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.flatMap(strings)
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(strings)
  return []
}

/** The variables the compose file reads from the operator's environment. */
const references = new Map<string, Reference>()
for (const text of strings(compose)) interpolate(text, {}, references)

/** A service's environment, as written (values not interpolated). */
function rawEnvironment (service: Service): Record<string, string> {
  const { environment } = service
  if (environment === undefined) return {}
  if (Array.isArray(environment)) {
    return Object.fromEntries(environment.map((entry) => {
      const equals = entry.indexOf('=')
      return equals === -1 ? [entry, ''] : [entry.slice(0, equals), entry.slice(equals + 1)]
    }))
  }
  return Object.fromEntries(Object.entries(environment).map(([key, value]) => [key, value === null ? '' : String(value)]))
}

function environment (service: Service, operator: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(rawEnvironment(service)).map(([key, value]) => [key, interpolate(value, operator)]))
}

function dependencies (service: Service): Record<string, string> {
  const { depends_on: dependsOn } = service
  if (dependsOn === undefined) return {}
  if (Array.isArray(dependsOn)) return Object.fromEntries(dependsOn.map((name) => [name, 'service_started']))
  return Object.fromEntries(Object.entries(dependsOn).map(([name, { condition = 'service_started' }]) => [name, condition]))
}

function networkNames (service: Service): string[] {
  const { networks } = service
  if (networks === undefined) return ['default']
  return Array.isArray(networks) ? networks : Object.keys(networks)
}

function joined (command: string[] | string | undefined): string {
  return command === undefined ? '' : Array.isArray(command) ? command.join(' ') : command
}

/** A Go duration (compose's format): 1m30s, 40s, 500ms. */
function durationMs (text: string): number {
  const units: Record<string, number> = { us: 0.001, µs: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(us|µs|ms|s|m|h)/g)]
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== text) throw new Error(`not a duration: ${text}`)
  return parts.reduce((sum, [, amount, unit]) => sum + Number(amount) * (units[unit as string] as number), 0)
}

// The operator's environment: a dummy for each required variable, the
// defaults for the others, and one authentication setting (compose cannot
// require one of four; without any, the replicas refuse to start).
const DUMMY = 'dummy-0123456789-abcdefghijklmnopqrstuv'
const AUTH_TOKENS = 'alice:alice-token-0123456789abcdef'
const requiredVariables = Object.fromEntries([...references].filter(([, reference]) => reference.required).map(([name]) => [name, DUMMY]))
const operator: Record<string, string> = { ...requiredVariables, AUTH_TOKENS }

// The roles, found from what the services do rather than from their names.
const replicaNames = Object.keys(services).filter((name) => services[name]?.build !== undefined)
const replicas = replicaNames.map((name) => services[name] as Service)
const proxyName = Object.keys(services).find((name) => (services[name]?.volumes ?? []).some((volume) => volume.startsWith('./deploy/haproxy.cfg:')))

// ------------------------------------------------------------- Dockerfile

interface Instruction { keyword: string, args: string }
const dockerfile: Instruction[] = read('Dockerfile')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'))
  .map((line) => {
    const [keyword = '', ...rest] = line.split(/\s+/)
    return { keyword: keyword.toUpperCase(), args: rest.join(' ') }
  })
const stages: Instruction[][] = []
for (const instruction of dockerfile) {
  if (instruction.keyword === 'FROM') stages.push([])
  stages.at(-1)?.push(instruction)
}
const runtime = stages.at(-1) ?? []
const args = Object.fromEntries(dockerfile.filter(({ keyword }) => keyword === 'ARG').map(({ args }) => {
  const [name = '', value = ''] = args.split('=')
  return [name, value]
}))
/** A FROM's image, its ${ARG}s replaced by their defaults. */
const fromImage = (instruction: Instruction): string => (instruction.args.split(/\s+/)[0] ?? '').replace(/\$\{?(\w+)\}?/g, (_, name: string) => args[name] ?? '')
/** ENV of the runtime stage: the image's environment, under compose's. */
const imageEnv: Record<string, string> = Object.fromEntries(runtime.filter(({ keyword }) => keyword === 'ENV')
  .flatMap(({ args }) => [...args.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map(([, name, value]) => [name, (value as string).replace(/^"|"$/g, '')])))

// ----------------------------------------------------------- HAProxy file

const haproxyText = read('deploy/haproxy.cfg')
/** Sections of the configuration: "backend upfront" -> its lines, comments and blank lines left out. */
const sections = new Map<string, string[]>()
{
  let current = ''
  for (const raw of haproxyText.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim()
    if (line === '') continue
    if (/^\S/.test(raw)) {
      current = line
      sections.set(current, [])
    } else {
      sections.get(current)?.push(line)
    }
  }
}
const sectionsOf = (kind: string): Array<[string, string[]]> => [...sections].filter(([name]) => name.split(/\s+/)[0] === kind)
const defaults = sectionsOf('defaults').flatMap(([, lines]) => lines)
const allLines = [...sections.values()].flat()

/** An HAProxy time: a number with an optional unit, milliseconds by default. */
function haproxyMs (text: string): number {
  const match = /^(\d+)(us|ms|s|m|h|d)?$/.exec(text)
  if (match === null) throw new Error(`not an HAProxy time: ${text}`)
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
  return Number(match[1]) * (units[match[2] ?? 'ms'] as number)
}

function timeout (name: string): number | undefined {
  const line = defaults.find((line) => line.startsWith(`timeout ${name} `))
  return line === undefined ? undefined : haproxyMs(line.split(/\s+/)[2] as string)
}

// The backend the frontend sends requests to, and its servers.
const frontends = sectionsOf('frontend')
const backendName = frontends.flatMap(([, lines]) => lines).find((line) => line.startsWith('default_backend '))?.split(/\s+/)[1] ?? ''
const backend = sections.get(`backend ${backendName}`) ?? []
const servers = backend.filter((line) => line.startsWith('server ')).map((line) => {
  const [, name = '', address = ''] = line.split(/\s+/)
  const colon = address.lastIndexOf(':')
  return { name, host: address.slice(0, colon), port: Number(address.slice(colon + 1)) }
})

// ------------------------------------------------------------------ tests

t.test('docker-compose.yml: two or more replicas of the image built here', async (t) => {
  t.ok(replicas.length >= 2, `replicas (services built from the Dockerfile): ${replicaNames.join(', ')}`)
  for (const [i, replica] of replicas.entries()) {
    const context = typeof replica.build === 'string' ? replica.build : (replica.build as Node)['context']
    t.equal(context, '.', `${replicaNames[i]} is built from this repository's Dockerfile`)
  }
  t.same(replicas.map(rawEnvironment), replicas.map(() => rawEnvironment(replicas[0] as Service)), 'the replicas have the same settings (the same PRESIGN_SECRET and AUTH_*)')
})

t.test('every variable a replica sets is one the service reads', async (t) => {
  for (const [i, replica] of replicas.entries()) {
    const unknown = Object.keys(rawEnvironment(replica)).filter((name) => !CONFIG_VARIABLES.includes(name))
    t.same(unknown, [], `${replicaNames[i]}: every variable is in config.ts's CONFIG_VARIABLES`)
  }
  const unknown = Object.keys(imageEnv).filter((name) => !CONFIG_VARIABLES.includes(name))
  t.same(unknown, [], 'the Dockerfile\'s ENV sets only variables the service reads')
})

/** A replica's configuration with the operator's environment given, the image's ENV under compose's. */
const replicaConfig = (replica: Service, env: Record<string, string> = operator): Config => loadConfig({ ...imageEnv, ...environment(replica, env) })

t.test('a replica\'s environment passes loadConfig in production', async (t) => {
  t.ok(references.get('PRESIGN_SECRET')?.required, 'compose refuses to start without PRESIGN_SECRET (:? interpolation)')
  for (const [i, replica] of replicas.entries()) {
    const config = replicaConfig(replica)
    t.equal(config.nodeEnv, 'production', `${replicaNames[i]}: NODE_ENV=production`)
    t.equal(config.generated.presignSecret, false, `${replicaNames[i]}: PRESIGN_SECRET comes from the environment, shared by the replicas`)
    t.equal(config.generated.devToken, null, `${replicaNames[i]}: authentication is configured`)
    t.ok(['0.0.0.0', '::'].includes(config.host), `${replicaNames[i]}: listens on every interface (HOST=${config.host}), so that HAProxy reaches it`)
    t.not(config.publicUrl, null, `${replicaNames[i]}: PUBLIC_URL is set (presigned URLs and Location behind the proxy)`)
  }
  const auth = ['AUTH_TOKENS', 'AUTH_JWT_SECRET', 'AUTH_JWT_PUBLIC_KEY', 'AUTH_JWKS_URL']
  t.same(auth.filter((name) => !(name in rawEnvironment(replicas[0] as Service))), [], 'every way to authenticate is passed through to the replicas')
  const { AUTH_TOKENS: _, ...noAuth } = operator
  t.throws(() => replicaConfig(replicas[0] as Service, noAuth), { code: 'UPFRONT_INVALID_CONFIG', message: /No authentication is configured/ },
    'without any AUTH_* setting, a replica refuses to start and says so')
})

t.test('secrets come from the environment, never written in the compose file', async (t) => {
  const secret = /SECRET|TOKEN|PASSWORD|^AUTH_|^AWS_ACCESS_KEY_ID$|^S3_ACCESS_KEY_ID$/
  let checked = 0
  for (const [name, service] of Object.entries(services)) {
    for (const [variable, value] of Object.entries(rawEnvironment(service))) {
      t.notMatch(value, /-----BEGIN|[A-Za-z0-9+/=_-]{40,}/, `${name}: ${variable} holds no key or long token`)
      if (!secret.test(variable)) continue
      checked++
      const match = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?\}$/.exec(value)
      t.ok(match !== null && !(match[2]?.endsWith('-') === true && match[3] !== ''),
        `${name}: ${variable} is interpolated from the environment with no literal default (${value.replace(/\?.*\}$/, '?...}')})`)
    }
  }
  t.ok(checked >= 8, `${checked} secret settings checked`)
})

t.test('replicas store in the S3 engine\'s bucket, which a one-shot service creates', async (t) => {
  for (const [i, replica] of replicas.entries()) {
    const config = replicaConfig(replica)
    t.equal(config.storage.kind, 's3', `${replicaNames[i]}: STORAGE=s3`)
    if (config.storage.kind !== 's3') continue
    const { endpoint, bucket, forcePathStyle, client } = config.storage.options
    const url = new URL(endpoint ?? '')
    const engine = services[url.hostname]
    t.ok(engine !== undefined, `${replicaNames[i]}: S3_ENDPOINT ${endpoint} names a service of the compose file`)
    if (engine === undefined) continue
    t.ok((engine.expose ?? []).map(String).includes(url.port), `${replicaNames[i]}: S3_ENDPOINT's port ${url.port} is the one ${url.hostname} exposes`)
    t.match(joined(engine.healthcheck?.test), `:${url.port}/`, `${url.hostname}'s healthcheck asks the same port`)
    t.equal(forcePathStyle, true, `${replicaNames[i]}: S3_FORCE_PATH_STYLE=true (the endpoint is a service name, not a bucket's DNS name)`)
    t.same(client?.credentials, { accessKeyId: DUMMY, secretAccessKey: DUMMY }, `${replicaNames[i]}: credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`)
    t.equal(dependencies(replica)[url.hostname], 'service_healthy', `${replicaNames[i]} starts once ${url.hostname} is healthy`)

    const jobs = Object.entries(dependencies(replica)).filter(([, condition]) => condition === 'service_completed_successfully').map(([name]) => name)
    t.equal(jobs.length, 1, `${replicaNames[i]} waits for one one-shot job to complete successfully`)
    const jobName = jobs[0]
    const job = services[jobName ?? '']
    if (jobName === undefined || job === undefined) continue
    t.equal(job.restart ?? 'no', 'no', `${jobName} runs once`)
    t.equal(dependencies(job)[url.hostname], 'service_healthy', `${jobName} runs once ${url.hostname} is healthy`)
    const jobEnv = environment(job, operator)
    t.equal(jobEnv['S3_BUCKET'], bucket, `${jobName} creates the bucket the replicas use (${bucket})`)
    t.equal(jobEnv['AWS_ENDPOINT_URL'], endpoint, `${jobName} talks to the same endpoint`)
    t.match(joined(job.command), 'create-bucket', `${jobName} creates the bucket`)
    const engineEnv = environment(engine, operator)
    t.ok(Object.values(engineEnv).includes(DUMMY), `${url.hostname} gets the S3 keys from the environment, as the replicas do`)
  }
})

t.test('the scripts in the compose file are left alone by interpolation and parse', async (t) => {
  const scripts = Object.entries(services).flatMap(([name, service]) => {
    const entrypoint = joined(service.entrypoint)
    return /^(\/usr)?(\/bin\/)?(ba)?sh -c$/.test(entrypoint)
      ? [[name, Array.isArray(service.command) ? service.command.join('\n') : service.command ?? ''] as const]
      : []
  })
  t.ok(scripts.length >= 2, `scripts: ${scripts.map(([name]) => name).join(', ')}`)
  for (const [name, script] of scripts) {
    t.notMatch(script.replace(/\$\$/g, ''), /\$/, `${name}: every $ is written $$, so compose interpolates nothing in the script`)
    const bash = spawnSync('bash', ['-n'], { input: interpolate(script, {}), encoding: 'utf8' })
    t.equal(bash.status, 0, `${name}: bash -n passes ${bash.stderr}`)
  }
})

t.test('stop_grace_period leaves the replicas their shutdown grace', async (t) => {
  for (const [i, replica] of replicas.entries()) {
    const { shutdownDelayMs, shutdownGraceMs } = replicaConfig(replica)
    const grace = durationMs(replica.stop_grace_period ?? '10s')
    t.ok(grace >= shutdownDelayMs + shutdownGraceMs + 15_000, `${replicaNames[i]}: stop_grace_period ${replica.stop_grace_period ?? '10s (the default)'} >= SHUTDOWN_DELAY_MS ${shutdownDelayMs} ms + SHUTDOWN_GRACE_MS ${shutdownGraceMs} ms + the 15 s server.ts gives itself`)
    // HAProxy takes a replica out at its first check (within `inter`),
    // then `fall` - 1 more `fastinter` apart: the delay must cover that, and
    // a second for the checks themselves.
    const server = (backend.find((line) => line.startsWith('default-server ')) ?? '').split(/\s+/)
    const option = (name: string): string => server[server.indexOf(name) + 1] ?? ''
    const detectionMs = haproxyMs(option('inter')) + (Number(option('fall')) - 1) * haproxyMs(option('fastinter')) + 1000
    t.ok(shutdownDelayMs >= detectionMs, `${replicaNames[i]}: SHUTDOWN_DELAY_MS ${shutdownDelayMs} ms >= HAProxy's inter + (fall - 1) x fastinter + 1 s, ${detectionMs} ms: out of rotation before it stops listening`)
    t.equal(replica.stop_signal ?? 'SIGTERM', 'SIGTERM', `${replicaNames[i]}: stopped with SIGTERM, which starts the service's graceful shutdown`)
  }
  const proxy = services[proxyName ?? ''] as Service
  const hardStop = sections.get('global')?.find((line) => line.startsWith('hard-stop-after '))
  t.ok(hardStop !== undefined, 'HAProxy bounds its graceful stop (hard-stop-after)')
  t.equal(proxy.stop_signal, 'SIGUSR1', 'HAProxy is stopped with SIGUSR1, its graceful stop, which lets uploads in flight finish')
  const shutdownGraceMs = replicaConfig(replicas[0] as Service).shutdownGraceMs
  const hardStopMs = haproxyMs(hardStop?.split(/\s+/)[1] ?? '0')
  t.ok(hardStopMs >= shutdownGraceMs, `HAProxy's hard-stop-after (${hardStopMs} ms) >= SHUTDOWN_GRACE_MS`)
  t.ok(durationMs(proxy.stop_grace_period ?? '10s') >= hardStopMs, 'HAProxy\'s stop_grace_period >= its hard-stop-after')
})

t.test('HAProxy sends to every replica, on the port it listens on', async (t) => {
  t.ok(proxyName !== undefined, `the proxy service mounts deploy/haproxy.cfg (${proxyName})`)
  t.same(servers.map(({ host }) => host).sort(), [...replicaNames].sort(), `backend ${backendName} has one server per replica`)
  for (const [i, replica] of replicas.entries()) {
    const { port } = replicaConfig(replica)
    const server = servers.find(({ host }) => host === replicaNames[i])
    t.equal(server?.port, port, `${replicaNames[i]}: PORT ${port} is the port of its server line`)
  }
  const proxy = services[proxyName ?? ''] as Service
  t.ok(networkNames(proxy).some((network) => replicas.every((replica) => networkNames(replica).includes(network))), 'HAProxy shares a network with the replicas')
  for (const [i, replica] of replicas.entries()) {
    t.equal(dependencies(proxy)[replicaNames[i] as string] !== undefined, true, `HAProxy starts after ${replicaNames[i]} (and stops before it)`)
    t.equal(replica.ports, undefined, `${replicaNames[i]} publishes no port: only HAProxy is reachable`)
  }
  const binds = frontends.flatMap(([, lines]) => lines).filter((line) => line.startsWith('bind ')).map((line) => Number(/:(\d+)/.exec(line)?.[1]))
  for (const mapping of proxy.ports ?? []) {
    const published = interpolate(mapping, operator)
    const target = Number(published.split(':').at(-1))
    t.ok(binds.includes(target), `published ${published}: HAProxy binds :${target}`)
    const { publicUrl } = replicaConfig(replicas[0] as Service)
    t.equal(new URL(publicUrl ?? '').port, published.split(':').at(-2), 'PUBLIC_URL\'s default port is the published one')
  }
})

t.test('TRUST_PROXY names HAProxy\'s address, and only that', async (t) => {
  const proxy = services[proxyName ?? ''] as Service
  const networks = proxy.networks
  const addresses = networks !== undefined && !Array.isArray(networks)
    ? Object.entries(networks).map(([name, settings]) => [name, settings?.ipv4_address] as const).filter(([, address]) => address !== undefined)
    : []
  t.equal(addresses.length, 1, 'HAProxy has a fixed address')
  const [network, address] = addresses[0] ?? ['', '']
  t.equal(isIP(address ?? ''), 4, `HAProxy's address ${address}`)
  const subnet = ((compose.networks?.[network]?.['ipam'] as Node | undefined)?.['config'] as Node[] | undefined)?.[0]?.['subnet'] as string | undefined
  t.ok(subnet !== undefined && inSubnet(address ?? '', subnet), `${address} lies in network ${network}'s subnet ${subnet}`)
  for (const [i, replica] of replicas.entries()) {
    t.same(replicaConfig(replica).trustProxy, [address], `${replicaNames[i]}: TRUST_PROXY is HAProxy's address`)
  }
})

function inSubnet (address: string, cidr: string): boolean {
  const [base = '', bits = '32'] = cidr.split('/')
  const block = 2 ** (32 - Number(bits))
  const toNumber = (ip: string): number => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0)
  return Math.floor(toNumber(address) / block) === Math.floor(toNumber(base) / block)
}

t.test('health checks ask /healthz or /readyz, routes of routes/health.ts', async (t) => {
  const healthRoutes = new URL('routes/health.ts', root)
  t.ok(existsSync(healthRoutes), 'routes/health.ts exists')
  const routes = existsSync(healthRoutes) ? readFileSync(healthRoutes, 'utf8') : ''
  const declared = (path: string): boolean => routes.includes(`'${path}'`)
  const paths: Array<[string, string]> = []
  for (const [i, replica] of replicas.entries()) {
    const path = /\/(healthz|readyz)\b/.exec(joined(replica.healthcheck?.test))?.[0]
    t.ok(path !== undefined, `${replicaNames[i]}: the compose healthcheck asks ${path}`)
    t.match(joined(replica.healthcheck?.test), /process\.env\.PORT|\$\{?PORT\}?/, `${replicaNames[i]}: the healthcheck follows PORT`)
    if (path !== undefined) paths.push([`${replicaNames[i]}'s healthcheck`, path])
  }
  const send = backend.find((line) => line.startsWith('http-check send '))
  const httpchk = backend.find((line) => line.startsWith('option httpchk'))
  t.ok(httpchk !== undefined, 'HAProxy checks the replicas over HTTP (option httpchk)')
  const checkPath = (send === undefined ? httpchk?.split(/\s+/)[3] : /\buri\s+(\S+)/.exec(send)?.[1]) ?? ''
  t.equal(checkPath, '/readyz', 'HAProxy checks readiness: /readyz, which turns 503 when a replica drains or storage is down')
  paths.push(['HAProxy\'s httpchk', checkPath])
  t.ok(backend.includes('http-check expect status 200'), 'HAProxy wants a 200')
  const dockerHealth = runtime.find(({ keyword }) => keyword === 'HEALTHCHECK')?.args ?? ''
  const dockerPath = /\/(healthz|readyz)\b/.exec(dockerHealth)?.[0] ?? ''
  t.ok(dockerPath !== '', `the Dockerfile's HEALTHCHECK asks ${dockerPath}`)
  paths.push(['the Dockerfile\'s HEALTHCHECK', dockerPath])
  for (const [who, path] of paths) {
    t.ok(['/healthz', '/readyz'].includes(path), `${who}: ${path}`)
    t.ok(declared(path), `${who}: ${path} is a route of routes/health.ts`,
      { todo: declared(path) ? false : `${path} is not in routes/health.ts yet (being added)` })
  }
})

t.test('deploy/haproxy.cfg fits long uploads and passes haproxy -c', async (t) => {
  const check = spawnSync('haproxy', ['-c', '-f', 'deploy/haproxy.cfg'], { cwd: fileURLToPath(root), encoding: 'utf8', timeout: 30_000 })
  t.equal(check.error, undefined, 'haproxy runs (it must be installed, as for haproxy.test.ts)')
  t.equal(check.status, 0, `haproxy -c -f deploy/haproxy.cfg: ${check.stdout}${check.stderr}`)
  const warnings = `${check.stdout}${check.stderr}`.split('\n').filter((line) => line.includes('[WARNING]') && !/could not resolve address/.test(line))
  t.same(warnings, [], 'no warning but the replicas\' names, which resolve only on compose\'s network')

  t.ok(backend.includes('balance leastconn'), 'leastconn: long uploads do not pile up on one replica')
  t.ok(allLines.some((line) => line === 'option forwardfor'), 'option forwardfor: X-Forwarded-For for TRUST_PROXY')
  t.ok(allLines.some((line) => /^http-request set-header X-Forwarded-Proto /i.test(line)), 'X-Forwarded-Proto is set')
  t.notOk(allLines.some((line) => line.includes('http-buffer-request')), 'no option http-buffer-request: the Expect exchange and the body pass through')
  t.notOk(allLines.some((line) => line.startsWith('retry-on')), 'no retry-on: requests with streamed bodies are not replayed')
  t.ok(allLines.includes('http-reuse safe'), 'http-reuse safe')
  t.notOk(allLines.some((line) => line.includes('shutdown-sessions')), 'a replica taken out keeps its uploads in flight')

  const bodyIdleMs = replicaConfig(replicas[0] as Service).timeouts.bodyIdleMs
  const headersMs = replicaConfig(replicas[0] as Service).timeouts.headersMs
  for (const name of ['client', 'server']) {
    const ms = timeout(name)
    t.ok(ms !== undefined && ms > bodyIdleMs && ms <= 3_600_000,
      `timeout ${name} ${ms} ms: an idle timeout above the service's BODY_IDLE_TIMEOUT_MS (${bodyIdleMs} ms), at most an hour`)
  }
  const request = timeout('http-request')
  t.ok(request !== undefined && request <= headersMs, `timeout http-request ${request} ms: the header section, within the service's HEADERS_TIMEOUT_MS`)
  for (const name of ['http-keep-alive', 'connect', 'queue']) t.ok(timeout(name) !== undefined, `timeout ${name} is set`)
})

t.test('the Dockerfile: Node 24, production dependencies, an unprivileged user', async (t) => {
  const froms = dockerfile.filter(({ keyword }) => keyword === 'FROM').map(fromImage)
  t.ok(froms.length >= 2, `multi-stage: ${froms.join(', ')}`)
  for (const image of froms) t.match(image, /^node:24([.-]|$)/, `${image} is Node 24`)
  t.match(froms.at(-1) ?? '', /bookworm-slim/, 'Debian 12 slim, glibc like CI')
  const runs = dockerfile.filter(({ keyword }) => keyword === 'RUN').map(({ args }) => args).join('\n')
  t.match(runs, /npm ci\b/, 'dependencies from the lock file')
  t.match(runs, /npm run build/, 'built (the plugin package, then the service)')
  t.match(runs, /npm prune --omit=dev|npm ci [^\n]*--omit=dev/, 'devDependencies dropped')
  const copies = runtime.filter(({ keyword }) => keyword === 'COPY').map(({ args }) => args)
  for (const path of ['node_modules', 'dist', 'package.json', 'plugins/upfront/package.json', 'plugins/upfront/dist']) {
    t.ok(copies.some((args) => args.split(/\s+/).includes(`/app/${path}`)), `the runtime stage copies ${path}`)
  }
  const user = runtime.filter(({ keyword }) => keyword === 'USER').at(-1)?.args
  t.ok(user !== undefined && !['root', '0', '0:0'].includes(user), `USER ${user}: not root`)
  const healthcheck = runtime.find(({ keyword }) => keyword === 'HEALTHCHECK')?.args ?? ''
  t.match(healthcheck, /\$\{?PORT\}?|process\.env\.PORT|\bPORT\b.*process\.env|process\.env[^;]*\bPORT\b/, 'the HEALTHCHECK follows PORT')
  t.equal(runtime.find(({ keyword }) => keyword === 'STOPSIGNAL')?.args ?? 'SIGTERM', 'SIGTERM', 'stopped with SIGTERM')
  const cmd = runtime.filter(({ keyword }) => keyword === 'CMD').at(-1)?.args ?? ''
  t.same(JSON.parse(cmd), ['node', '--initial-old-space-size=128', 'dist/server.js'], 'CMD starts dist/server.js as npm start does')
  const ignore = read('.dockerignore').split('\n').map((line) => line.trim())
  for (const entry of ['**/node_modules', '**/dist', '.env']) t.ok(ignore.includes(entry), `.dockerignore leaves out ${entry}`)
})

t.test('images are pinned', async (t) => {
  for (const [name, service] of Object.entries(services)) {
    if (service.build !== undefined || service.image === undefined) continue
    const tag = /:([^/:]+)$/.exec(service.image)?.[1]
    t.ok(tag !== undefined && tag !== 'latest', `${name}: ${service.image}`)
  }
})
