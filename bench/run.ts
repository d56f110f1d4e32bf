// The benchmark: stock Fastify 5 against the same app with the upfront plugin.
// `npm run bench` builds and runs it. See bench/README.md for what each figure means.
//
// CPU split on a 2-core machine: core 0 runs the servers (both live for the
// whole run; one is loaded at a time, except in the A/B rounds where both
// are); core 1 runs the load generators (wrk -t1, the Node load generator,
// curl) and this orchestrator, which is idle while a load runs.
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { upload } from './client.js'
import { coreBusy, coreTimes, hasCommand, median, requestHead, SMALL_LIMIT, TOKEN, UPLOAD_LIMIT, UPLOAD_TYPE } from './common.js'
import type { ParentMessage, ServerMessage, Variant } from './common.js'
import type { LatencyConfig, LatencyStats, LoadConfig, LoadResult } from './load.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const SERVER_CORE = '0'
const LOAD_CORE = '1'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const restart = args.includes('--restart')
const onlyArg = args.find((a) => a.startsWith('--only='))
/** Sections to run: a, b1, b2, c, d1, d2, d3 (all by default). */
const only = new Set(onlyArg === undefined ? ['a', 'b1', 'b2', 'c', 'd1', 'd2', 'd3'] : onlyArg.slice(7).split(','))
/** Seconds per measured throughput run, and runs per figure (the median is reported). */
const RUN_SECONDS = quick ? 1 : 2
const RUNS = quick ? 1 : 3
/** Rounds in which stock and plugin are loaded at the same time (see Throughput.together). */
const AB_ROUNDS = quick ? 1 : 5
const WARMUP_SECONDS = 1
const WIRE_SAMPLES = quick ? 2 : 5
const LATENCY_SAMPLES = quick ? 300 : 2000

const variants: Variant[] = ['stock', 'plugin']
const log = (line: string): void => { process.stderr.write(`${line}\n`) }


const canPin = hasCommand('taskset')
const pinned = (core: string, command: string, commandArgs: string[]): [string, string[]] =>
  canPin ? ['taskset', ['-c', core, command, ...commandArgs]] : [command, commandArgs]

// ---------------------------------------------------------------- CPU


const pct = (share: number): string => `${(share * 100).toFixed(0)}%`

/** How busy the cores are while this benchmark does nothing: other processes on the machine. */
async function background (ms: number): Promise<number[]> {
  const before = coreTimes()
  await sleep(ms)
  return coreBusy(before, coreTimes())
}

// ---------------------------------------------------------------- servers

interface Server {
  variant: Variant
  port: number
  child: ChildProcess
  fastify: string
  node: string
  /** Sends a message with an id and resolves with the server's answer to it. */
  ask: <T extends ServerMessage['type']>(message: ParentMessage & { id: number }, type: T) => Promise<Extract<ServerMessage, { type: T }>>
  tell: (message: ParentMessage) => void
}

let nextId = 1

async function startServer (variant: Variant): Promise<Server> {
  const nodeArgs = process.env.BENCH_CPU_PROF === '1'
    ? ['--cpu-prof', `--cpu-prof-dir=${join(root, 'dist', 'bench-profiles')}`, `--cpu-prof-name=${variant}.cpuprofile`]
    : []
  const [command, commandArgs] = pinned(SERVER_CORE, process.execPath, [...nodeArgs, join(here, 'server.js'), variant])
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const pending = new Map<number, (message: ServerMessage) => void>()
  const ready = await new Promise<Extract<ServerMessage, { type: 'ready' }>>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${variant} server did not start`)) }, 15_000)
    child.on('message', (message: ServerMessage) => {
      if (message.type === 'ready') { clearTimeout(timer); resolve(message); return }
      if ('id' in message) {
        pending.get(message.id)?.(message)
        pending.delete(message.id)
      }
    })
    child.once('exit', (code) => { reject(new Error(`${variant} server exited with ${String(code)}`)) })
  })
  return {
    variant,
    port: ready.port,
    child,
    fastify: ready.fastify,
    node: ready.node,
    tell: (message) => { child.send(message) },
    ask: async <T extends ServerMessage['type']>(message: ParentMessage & { id: number }, type: T) =>
      await new Promise<Extract<ServerMessage, { type: T }>>((resolve, reject) => {
        pending.set(message.id, (answer) => {
          if (answer.type === type) resolve(answer as Extract<ServerMessage, { type: T }>)
          else reject(new Error(`expected a ${type} answer, got ${answer.type}`))
        })
        child.send(message)
      })
  }
}

async function probe (server: Server): Promise<Extract<ServerMessage, { type: 'probe' }>> {
  return await server.ask({ type: 'probe', id: nextId++ }, 'probe')
}

/** Waits until the server holds no connection (at most `maxMs`): what is left then has leaked. */
async function drained (server: Server, maxMs: number): Promise<{ left: number, ms: number }> {
  const start = Date.now()
  for (;;) {
    const { connections } = await probe(server)
    const ms = Date.now() - start
    if (connections === 0 || ms >= maxMs) return { left: connections, ms }
    await sleep(50)
  }
}

// ---------------------------------------------------------------- (a) the wire

interface WireCase {
  key: string
  label: string
  path: string
  headers: Record<string, string | number>
  bodyBytes: number
}

const MB5 = 5_000_000
const wireCases: WireCase[] = [
  {
    key: 'no-token',
    label: 'no token, onRequest auth hook (401)',
    path: '/upload',
    headers: { 'Content-Type': UPLOAD_TYPE },
    bodyBytes: MB5
  },
  {
    key: 'too-large',
    label: `declared 10 MB over the ${UPLOAD_LIMIT / 1048576} MiB limit (413)`,
    path: '/upload',
    headers: { Authorization: TOKEN, 'Content-Type': UPLOAD_TYPE },
    bodyBytes: 10_000_000
  },
  {
    key: 'media-type',
    label: 'wrong content type, image/png (415)',
    path: '/upload',
    headers: { Authorization: TOKEN, 'Content-Type': 'image/png' },
    bodyBytes: MB5
  },
  {
    key: 'prehandler-buffered',
    label: 'no token, auth in preHandler, body parsed by Fastify (401)',
    path: '/upload-prehandler',
    headers: { 'Content-Type': UPLOAD_TYPE },
    bodyBytes: MB5
  },
  {
    key: 'prehandler-streamed',
    label: 'no token, auth in preHandler, body streamed by the handler (401)',
    path: '/stream-prehandler',
    headers: { 'Content-Type': UPLOAD_TYPE },
    bodyBytes: MB5
  },
  {
    key: '404-parsed-type',
    label: 'unknown route, octet-stream (a parser exists), 1 MB (404)',
    path: '/no-such-route',
    headers: { Authorization: TOKEN, 'Content-Type': UPLOAD_TYPE },
    // Under Fastify's default 1 MiB bodyLimit, which the 404 route has: above it both answer 413.
    bodyBytes: 1_000_000
  },
  {
    key: '404-unparsed-type',
    label: 'unknown route, image/png (no parser) (404)',
    path: '/no-such-route',
    headers: { Authorization: TOKEN, 'Content-Type': 'image/png' },
    bodyBytes: MB5
  }
]

interface WireSide {
  statuses: number[]
  sent: number[]
  read: number[]
  continues: number
  errors: string[]
  curl: { status: number, sent: number, read: number } | null
}

async function serverRead (server: Server, port: number, headBytes: number): Promise<number> {
  const answer = await server.ask({ type: 'conn', id: nextId++, port, timeoutMs: 3000 }, 'conn')
  return answer.bytesRead < 0 ? -1 : answer.bytesRead - headBytes
}

async function wireOne (server: Server, item: WireCase, files: Map<number, string>): Promise<WireSide> {
  const head = requestHead('PUT', item.path, { ...item.headers, 'Content-Length': item.bodyBytes, Expect: '100-continue' })
  const side: WireSide = { statuses: [], sent: [], read: [], continues: 0, errors: [], curl: null }
  for (let i = 0; i <= WIRE_SAMPLES; i++) {
    const result = await upload({ port: server.port, head, bodyBytes: item.bodyBytes })
    const read = await serverRead(server, result.localPort, head.length)
    if (i === 0) continue // warm-up: first request on a route is slower (lazy compilation)
    side.statuses.push(result.status)
    side.sent.push(result.bodyBytesBeforeAnswer)
    side.read.push(read)
    if (result.informational.includes(100)) side.continues++
    if (result.error !== null) side.errors.push(result.error)
  }
  const file = files.get(item.bodyBytes)
  if (file !== undefined) {
    const headerArgs = Object.entries(item.headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`])
    try {
      const out = execFileSync('curl', [
        '-s', '-o', '/dev/null', '--max-time', '10',
        '-w', '%{http_code} %{size_upload} %{size_request} %{local_port}',
        '-T', file, '-H', 'Expect: 100-continue', '--expect100-timeout', '1', ...headerArgs,
        `http://127.0.0.1:${server.port}${item.path}`
      ]).toString().trim().split(' ').map(Number)
      const [status, sent, requestBytes, localPort] = out as [number, number, number, number]
      side.curl = { status, sent, read: await serverRead(server, localPort, requestBytes) }
    } catch (error) {
      side.errors.push(`curl: ${(error as Error).message.split('\n')[0] ?? ''}`)
    }
  }
  return side
}

// ---------------------------------------------------------------- load runs

interface RunFigure {
  perSecond: number
  /** Completed requests counted by the load generator. */
  completed: number
  /** Share of one core the server used during the run. */
  serverCpu: number
  /** Server CPU time (user + system) per completed request, in microseconds: little affected by other load on the machine. */
  cpuPerRequestUs: number
  /** Busy share of each core during the run (all processes). */
  cores: number[]
  errors: Record<string, number>
  statuses: Record<string, number>
  bodyBytesPerRequest: number | null
  left: number
  drainMs: number
}

type Runner = (server: Server, seconds: number) => Promise<Omit<RunFigure, 'serverCpu' | 'cpuPerRequestUs' | 'cores' | 'left' | 'drainMs'>>

async function spawnCollect (command: string, commandArgs: string[]): Promise<string> {
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (data: Buffer) => { out += data.toString() })
  const code = await new Promise<number | null>((resolve) => { child.once('exit', resolve) })
  if (code !== 0) throw new Error(`${command} ${commandArgs.join(' ')} exited with ${String(code)}`)
  return out
}

const WRK_CONNECTIONS = 64
const KEEPALIVE_CONNECTIONS = 64
const FRESH_CONNECTIONS = 32

function wrkRunner (script: string, path: string, expectStatus: number): Runner {
  return async (server, seconds) => {
    const [command, commandArgs] = pinned(LOAD_CORE, 'wrk', [
      '-t1', `-c${WRK_CONNECTIONS}`, `-d${seconds}s`, '-s', join(root, 'bench', 'wrk', script), `http://127.0.0.1:${server.port}${path}`
    ])
    const out = await spawnCollect(command, commandArgs)
    const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '))
    if (line === undefined) throw new Error(`no summary from wrk:\n${out}`)
    const summary = JSON.parse(line.slice(9)) as Record<string, number>
    const requests = summary.requests ?? 0
    const errors: Record<string, number> = {}
    for (const key of ['connect', 'read', 'write', 'timeout']) {
      if ((summary[key] ?? 0) > 0) errors[key] = summary[key] ?? 0
    }
    // wrk counts every status >= 400 as a "status error"; the expected one is not an error here.
    const statusErrors = summary.status ?? 0
    const statuses: Record<string, number> = expectStatus >= 400
      ? { [String(expectStatus)]: statusErrors, other: requests - statusErrors }
      : { [String(expectStatus)]: requests - statusErrors, '>=400': statusErrors }
    return { perSecond: requests / ((summary.duration_us ?? 1) / 1e6), completed: requests, errors, statuses, bodyBytesPerRequest: null }
  }
}

function nodeRunner (config: Omit<LoadConfig, 'port' | 'durationMs'>): Runner {
  return async (server, seconds) => {
    const full: LoadConfig = { ...config, port: server.port, durationMs: seconds * 1000 }
    const [command, commandArgs] = pinned(LOAD_CORE, process.execPath, [join(here, 'load.js'), JSON.stringify(full)])
    const result = JSON.parse(await spawnCollect(command, commandArgs)) as LoadResult
    return { perSecond: result.perSecond, completed: result.completed, errors: result.errors, statuses: result.statuses, bodyBytesPerRequest: result.bodyBytesPerRequest }
  }
}

/** Runs the load against one or more servers at the same time, and measures each. */
async function measureAll (targets: Server[], runner: Runner, seconds: number): Promise<RunFigure[]> {
  const before = await Promise.all(targets.map(probe))
  const coresBefore = coreTimes()
  const started = process.hrtime.bigint()
  const figures = await Promise.all(targets.map(async (server) => await runner(server, seconds)))
  const wallMicros = Number(process.hrtime.bigint() - started) / 1000
  const cores = coreBusy(coresBefore, coreTimes())
  const after = await Promise.all(targets.map(probe))
  const results: RunFigure[] = []
  for (const [i, server] of targets.entries()) {
    const figure = figures[i]!
    const cpuMicros = after[i]!.cpuMicros - before[i]!.cpuMicros
    // What is still open once the load generator has exited (lingering closes take up to 2 s).
    const { left, ms } = await drained(server, 3000)
    results.push({
      ...figure,
      serverCpu: cpuMicros / wallMicros,
      cpuPerRequestUs: figure.completed > 0 ? cpuMicros / figure.completed : Number.NaN,
      cores,
      left,
      drainMs: ms
    })
  }
  return results
}

interface Throughput {
  key: string
  /** Each side alone, runs alternated. */
  runs: Record<Variant, RunFigure[]>
  /** Both sides loaded at the same time, each by its own load generator: they share whatever else the machine does. */
  together: Record<Variant, RunFigure[]>
  /** Core load from other processes just before the figure. */
  background: number[]
}

function describe (figure: RunFigure): string {
  return `${figure.perSecond.toFixed(0)}/s, server CPU ${pct(figure.serverCpu)}, ${figure.cpuPerRequestUs.toFixed(1)} µs/req, cores ${figure.cores.map(pct).join(' ')}` +
    `${Object.keys(figure.errors).length > 0 ? `, errors ${JSON.stringify(figure.errors)}` : ''}, statuses ${JSON.stringify(figure.statuses)}` +
    `${figure.left > 0 ? `, ${figure.left} connections still open after ${figure.drainMs} ms` : ''}`
}

async function throughput (key: string, servers: Record<Variant, Server>, runner: Runner): Promise<Throughput> {
  const idle = await background(500)
  log(`[${key}] background load: ${idle.map(pct).join(' ')}; warm-up`)
  for (const variant of variants) await measureAll([servers[variant]], runner, WARMUP_SECONDS)
  const runs: Record<Variant, RunFigure[]> = { stock: [], plugin: [] }
  for (let i = 0; i < RUNS; i++) {
    // Alternate which side goes first, so a drift in the machine hits both.
    const order = i % 2 === 0 ? variants : [...variants].reverse()
    for (const variant of order) {
      const [figure] = await measureAll([servers[variant]], runner, RUN_SECONDS)
      runs[variant].push(figure!)
      log(`[${key}] ${variant} alone, run ${i + 1}: ${describe(figure!)}`)
    }
  }
  const together: Record<Variant, RunFigure[]> = { stock: [], plugin: [] }
  for (let i = 0; i < AB_ROUNDS; i++) {
    const [stock, plugin] = await measureAll([servers.stock, servers.plugin], runner, RUN_SECONDS)
    together.stock.push(stock!)
    together.plugin.push(plugin!)
    log(`[${key}] together, round ${i + 1}: stock ${describe(stock!)}; plugin ${describe(plugin!)}`)
  }
  return { key, runs, together, background: idle }
}

/** The run with the median rate (RUNS is odd). */
function medianRun (runs: RunFigure[]): RunFigure {
  const sorted = [...runs].sort((a, b) => a.perSecond - b.perSecond)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

// ---------------------------------------------------------------- (c) latency

async function latency (server: Server): Promise<LatencyStats[]> {
  const headers = { Authorization: TOKEN, 'Content-Type': UPLOAD_TYPE, Expect: '100-continue' }
  const kib = 1024
  const tib10 = 10 * 1024 ** 4
  const config: LatencyConfig = {
    mode: 'latency',
    port: server.port,
    samples: LATENCY_SAMPLES,
    maxMs: 15_000,
    cases: [
      { name: '1 KiB', head: requestHead('PUT', '/small', { ...headers, 'Content-Length': kib }).toString('latin1'), bodyBytes: kib },
      { name: '10 TiB', head: requestHead('PUT', '/small', { ...headers, 'Content-Length': tib10 }).toString('latin1'), bodyBytes: tib10 }
    ]
  }
  const [command, commandArgs] = pinned(LOAD_CORE, process.execPath, [join(here, 'load.js'), JSON.stringify(config)])
  return JSON.parse(await spawnCollect(command, commandArgs)) as LatencyStats[]
}

// ---------------------------------------------------------------- main

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
const fmtBytes = (values: number[]): string => {
  if (values.length === 0) return 'n/a'
  const med = median(values)
  const max = Math.max(...values)
  return med === max ? fmt(med) : `${fmt(med)} (max ${fmt(max)})`
}
const errorsOf = (runs: RunFigure[]): string => {
  const total: Record<string, number> = {}
  for (const run of runs) for (const [k, v] of Object.entries(run.errors)) total[k] = (total[k] ?? 0) + v
  return Object.keys(total).length === 0 ? 'none' : Object.entries(total).map(([k, v]) => `${k} ×${v}`).join(', ')
}

if (canPin) {
  try { execFileSync('taskset', ['-pc', LOAD_CORE, String(process.pid)], { stdio: 'ignore' }) } catch { /* stays unpinned */ }
}
if (!hasCommand('wrk') && (only.has('b1') || only.has('d1'))) throw new Error('wrk is needed: apt-get install -y wrk')
const hasCurl = hasCommand('curl')

const startedAt = Date.now()
const startBackground = await background(1000)
const servers: Record<Variant, Server> = { stock: await startServer('stock'), plugin: await startServer('plugin') }
let sections = 0
/**
 * Called before each section. By default the servers are reused, in the
 * order a, b1, b2, c, d1, d2, d3, so a figure includes the effect of the
 * traffic before it, as on a real server; `--restart` gives each section
 * fresh processes.
 */
async function section (): Promise<void> {
  if (sections++ === 0 || !restart) return
  for (const variant of variants) {
    servers[variant].child.disconnect()
    servers[variant] = await startServer(variant)
  }
}
const tmp = mkdtempSync(join(tmpdir(), 'upfront-bench-'))
const lines: string[] = []
const row = (...cells: string[]): void => { lines.push(`| ${cells.join(' | ')} |`) }

try {
  // (a) what crossed the wire
  const wire = new Map<string, Record<Variant, WireSide>>()
  let wireLeft: Record<Variant, { left: number, ms: number }> | null = null
  if (only.has('a')) {
    await section()
    const files = new Map<number, string>()
    if (hasCurl) {
      for (const size of new Set(wireCases.map((c) => c.bodyBytes))) {
        const file = join(tmp, `body-${size}`)
        writeFileSync(file, Buffer.alloc(size, 'x'))
        files.set(size, file)
      }
    }
    for (const variant of variants) servers[variant].tell({ type: 'track', on: true })
    for (const item of wireCases) {
      const sides = {} as Record<Variant, WireSide>
      for (const variant of variants) sides[variant] = await wireOne(servers[variant], item, files)
      wire.set(item.key, sides)
      log(`[a] ${item.key}: stock sent ${JSON.stringify(sides.stock.sent)} read ${JSON.stringify(sides.stock.read)}; ` +
        `plugin sent ${JSON.stringify(sides.plugin.sent)} read ${JSON.stringify(sides.plugin.read)}`)
    }
    for (const variant of variants) servers[variant].tell({ type: 'track', on: false })
    wireLeft = { stock: await drained(servers.stock, 3000), plugin: await drained(servers.plugin, 3000) }
  }

  // (b) refusals per second
  const figures: Array<{ key: string, label: string, result: Throughput, bytes: boolean }> = []
  if (only.has('b1')) {
    await section()
    figures.push({
      key: 'b1',
      label: 'refusals/s: no token, onRequest 401; keep-alive, no body (wrk)',
      result: await throughput('b1', servers, wrkRunner('refuse.lua', '/upload', 401)),
      bytes: false
    })
  }
  if (only.has('b2')) {
    await section()
    const head = requestHead('PUT', '/upload', { 'Content-Type': UPLOAD_TYPE, 'Content-Length': 1048576, Expect: '100-continue' }).toString('latin1')
    figures.push({
      key: 'b2',
      label: `refusals/s: no token, onRequest 401; Expect: 100-continue, declared 1 MiB, fresh connection each, body only after a 100 (Node, ${FRESH_CONNECTIONS} conns)`,
      result: await throughput('b2', servers, nodeRunner({ mode: 'fresh', head, bodyBytes: 1048576, expect: true, connections: FRESH_CONNECTIONS })),
      bytes: true
    })
  }

  // (c) time to refusal
  const latencies = {} as Record<Variant, LatencyStats[]>
  if (only.has('c')) {
    await section()
    log('[c] latency')
    for (const variant of variants) latencies[variant] = await latency(servers[variant])
  }

  // (d) accepted uploads per second
  const uploadHeaders = { Authorization: TOKEN, 'Content-Type': UPLOAD_TYPE, 'Content-Length': 4096 }
  if (only.has('d1')) {
    await section()
    figures.push({
      key: 'd1',
      label: 'accepted 4 KiB uploads/s: keep-alive, no Expect (wrk)',
      result: await throughput('d1', servers, wrkRunner('upload.lua', '/upload', 200)),
      bytes: false
    })
  }
  if (only.has('d2')) {
    await section()
    const head = requestHead('PUT', '/upload', uploadHeaders).toString('latin1')
    figures.push({
      key: 'd2',
      label: `accepted 4 KiB uploads/s: keep-alive, no Expect (Node, ${KEEPALIVE_CONNECTIONS} conns)`,
      result: await throughput('d2', servers, nodeRunner({ mode: 'keepalive', head, bodyBytes: 4096, expect: false, connections: KEEPALIVE_CONNECTIONS })),
      bytes: false
    })
  }
  if (only.has('d3')) {
    await section()
    const head = requestHead('PUT', '/upload', { ...uploadHeaders, Expect: '100-continue' }).toString('latin1')
    figures.push({
      key: 'd3',
      label: `accepted 4 KiB uploads/s: keep-alive, Expect: 100-continue, body after the 100 (Node, ${KEEPALIVE_CONNECTIONS} conns)`,
      result: await throughput('d3', servers, nodeRunner({ mode: 'keepalive', head, bodyBytes: 4096, expect: true, connections: KEEPALIVE_CONNECTIONS })),
      bytes: false
    })
  }

  const end = { stock: await probe(servers.stock), plugin: await probe(servers.plugin) }

  // ------------------------------------------------------------ report
  lines.push('', '## upfront benchmark: stock Fastify 5 vs the same app with upfront', '')
  lines.push(`- Node ${servers.stock.node}, Fastify ${servers.stock.fastify}; command: \`npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}\`; total time ${((Date.now() - startedAt) / 1000).toFixed(0)} s.`)
  lines.push(`- CPU split: ${canPin
    ? `core ${SERVER_CORE} = the server under test (both servers run throughout, one loaded at a time); core ${LOAD_CORE} = the load generator (wrk -t1 -c${WRK_CONNECTIONS}, the Node load generator, curl) and the orchestrator (taskset).`
    : 'not pinned (no taskset).'}`)
  lines.push(`- Throughput, each side alone: ${RUNS} run(s) of ${RUN_SECONDS} s per side after a ${WARMUP_SECONDS} s warm-up, stock and plugin runs alternated; the median run is shown, then all runs; "CPU" = the server's CPU time (user + system) per request.`)
  lines.push(`- Ratio (plugin/stock): "A/B" = median over ${AB_ROUNDS} round(s) of ${RUN_SECONDS} s in which both servers were loaded at the same time, each by its own load generator, so that both share whatever else the machine is doing (the figure to trust on a busy machine); ` +
    '"alone" = median of the ratios of back-to-back runs above; "CPU" = stock µs/req ÷ plugin µs/req in the A/B rounds. Ranges in brackets.')
  lines.push(`- Other processes on this machine: cores busy ${startBackground.map(pct).join(' / ')} before the run` +
    `${figures.length > 0 ? `; before each figure: ${figures.map((f) => `${f.key} ${f.result.background.map(pct).join('/')}`).join(', ')}` : ''}.`)
  const busiest = Math.max(...startBackground, ...figures.flatMap((f) => f.result.background))
  if (busiest > 0.25) {
    lines.push(`- **Warning: other processes kept a core up to ${pct(busiest)} busy during this run. Rates measured alone and latency tails move with that load; trust the A/B ratios and the byte counts.**`)
  }
  lines.push('- Stock = the same app without the plugin: same routes, same auth hooks, same Fastify body parser and limits. ' +
    (restart
      ? 'Servers restarted before each section (`--restart`).'
      : 'The same two server processes serve every section, in table order: each figure includes the effect of the traffic before it, as on a real server (`--restart` gives each section fresh processes).'), '')
  row('#', 'measurement', 'stock Fastify 5', 'with upfront', 'ratio', 'goal')
  row('---', '---', '---', '---', '---', '---')
  for (const item of wireCases) {
    const sides = wire.get(item.key)
    if (sides === undefined) continue
    const cell = (side: WireSide): string => {
      const statuses = [...new Set(side.statuses)].join('/')
      const sent = `sent ${fmtBytes(side.sent)}, server read ${fmtBytes(side.read)}`
      const curl = side.curl === null ? '' : `; curl: ${side.curl.status}, sent ${fmt(side.curl.sent)}, server read ${fmt(side.curl.read)}`
      const errors = side.errors.length > 0 ? `; errors: ${[...new Set(side.errors)].join(', ')}` : ''
      return `**${statuses}**, 100 sent ${side.continues}/${side.statuses.length}: ${sent}${curl}${errors}`
    }
    row('a', `body bytes before the answer: ${item.label}; ${fmt(item.bodyBytes)} B declared`, cell(sides.stock), cell(sides.plugin), '', 'plugin: 0')
  }
  const rate = (f: RunFigure, runs: RunFigure[], bytes: boolean): string =>
    `**${fmt(f.perSecond)}/s**, CPU ${f.cpuPerRequestUs.toFixed(1)} µs/req (runs: ${runs.map((r) => fmt(r.perSecond)).join(', ')}; server at ${pct(f.serverCpu)} of a core` +
    `${bytes && f.bodyBytesPerRequest !== null ? `; body sent ${fmt(f.bodyBytesPerRequest)} B/req` : ''}; errors: ${errorsOf(runs)}` +
    `; left open: ${Math.max(...runs.map((r) => r.left))})`
  const rowFor = (key: string): void => {
    const figure = figures.find((f) => f.key === key)
    if (figure === undefined) return
    const { runs, together } = figure.result
    const pairedRatio = (set: Record<Variant, RunFigure[]>): number[] =>
      set.plugin.map((p, i) => p.perSecond / set.stock[i]!.perSecond)
    const ab = pairedRatio(together)
    const alone = pairedRatio(runs)
    const cpu = together.plugin.map((p, i) => together.stock[i]!.cpuPerRequestUs / p.cpuPerRequestUs)
    const range = (values: number[]): string => values.length > 1 ? ` (${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)})` : ''
    row(key, figure.label, rate(medianRun(runs.stock), runs.stock, figure.bytes), rate(medianRun(runs.plugin), runs.plugin, figure.bytes),
      `A/B **${median(ab).toFixed(2)}**${range(ab)}; alone ${median(alone).toFixed(2)}${range(alone)}; CPU ${median(cpu).toFixed(2)}`, '≥ 0.95')
  }
  rowFor('b1')
  rowFor('b2')
  if (latencies.stock !== undefined) {
    for (const [index, name] of ['1 KiB', '10 TiB'].entries()) {
      const cell = (l: LatencyStats): string =>
        `median **${l.medianUs.toFixed(0)} µs**, p99 **${l.p99Us.toFixed(0)} µs** (n=${l.samples}; ${Object.entries(l.statuses).map(([k, v]) => `${k === '0' ? 'no answer' : k} ×${v}`).join(', ')})`
      row('c', `time to 413: declared ${name} over the ${SMALL_LIMIT} B limit, Expect: 100-continue, fresh connection, one at a time`,
        cell(latencies.stock[index]!), cell(latencies.plugin[index]!), '', '1 KiB ≈ 10 TiB')
    }
  }
  rowFor('d1')
  rowFor('d2')
  rowFor('d3')
  lines.push('')
  lines.push(`Plugin counters at the end: ${JSON.stringify(end.plugin.upfront)}. Server RSS at the end: stock ${fmt(end.stock.rss / 1048576)} MiB, plugin ${fmt(end.plugin.rss / 1048576)} MiB.` +
    `${wireLeft === null ? '' : ` Connections left open 3 s after (a): stock ${wireLeft.stock.left}, plugin ${wireLeft.plugin.left}.`}`)
  process.stdout.write(`${lines.join('\n')}\n`)
} finally {
  rmSync(tmp, { recursive: true, force: true })
  for (const variant of variants) servers[variant].child.disconnect()
}
