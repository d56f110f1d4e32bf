// The uploads benchmark: the service (dist/server.js) against a bare
// node:http server (bench/bare-server.ts) and against the machine's own
// ceilings. `npm run bench:uploads` builds and runs it; see bench/README.md
// ("Uploads benchmark") for what each figure means.
//
//   node dist/bench/uploads.js [--unpinned] [--service-node-args='--flag --other-flag']
//
// CPU split on a 2-core machine: core 0 runs the server under test (one
// loaded at a time), dd and the SHA-256 ceiling; core 1 runs the clients
// (curl, dist/bench/uploads-load.js) and this orchestrator, idle while a
// client runs. `--unpinned` lets every process use both cores.
// `--service-node-args` adds Node/V8 flags to the service's command line
// (`node <flags> dist/server.js`), to try a deployment setting.
// Every server runs with bench/gc-probe.ts preloaded, which counts its GCs.
//
// Everything it writes goes under one directory in the OS temp directory,
// removed at the end, on error and on SIGINT/SIGTERM.
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { coreBusy, coreTimes, hasCommand, median } from './common.js'
import type { GcTotals } from './gc-probe.js'
import type { SmallLoadConfig, SmallLoadResult } from './uploads-load.js'

// ---------------------------------------------------------------- the SHA-256 ceiling, in a child process

if (process.argv[2] === '--sha256-ceiling') {
  // Hashes 1 GiB held in memory (a 64 MiB buffer, 16 times), three times.
  const buffer = randomBytes(64 * 1024 * 1024)
  const rates: number[] = []
  for (let run = 0; run < 3; run++) {
    const started = process.hrtime.bigint()
    const hash = createHash('sha256')
    for (let i = 0; i < 16; i++) hash.update(buffer)
    hash.digest()
    rates.push(1024 ** 3 / (Number(process.hrtime.bigint() - started) / 1e9) / 1e6)
  }
  process.stdout.write(`${JSON.stringify(rates)}\n`)
  process.exit(0)
}

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const args = process.argv.slice(2)
const unpinned = args.includes('--unpinned')
/** The flags `npm start` and the Dockerfile run the service with. */
const SHIPPED_NODE_ARGS = ['--initial-old-space-size=128']
const serviceNodeArgs = (args.find((a) => a.startsWith('--service-node-args='))?.slice(20) ?? '').split(' ').filter((a) => a !== '')
const probe = ['--import', pathToFileURL(join(here, 'gc-probe.js')).href]

const KIB = 1024
const MIB = 1024 * KIB
const GIB = 1024 * MIB
const BIG = GIB
const MEDIUM = 256 * MIB
const SMALL_BYTES = 64 * KIB
const SMALL_COUNT = 1000
const SMALL_CONNECTIONS = 32
const SMALL_WARMUP = 200
const ROUNDS = 3
const CONCURRENT = 4
const MIN_FREE_BYTES = 10 * GIB
/** Disk the RSS scenario needs: four stored copies of the 1 GiB source. */
const RSS_FREE_BYTES = CONCURRENT * BIG + GIB
/** The whole run gives up past this; each step has its own, shorter bound. */
const RUN_DEADLINE_MS = 8 * 60_000
const SERVER_CORE = '0'
const CLIENT_CORE = '1'
const TOKEN = 'bench-uploads-token-0123456789'
const AUTH = `Bearer ${TOKEN}`
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'info'
/**
 * Above 1 GiB (the service's default): upfront checks a request's declared
 * Content-Length against it, and a multipart form carrying a 1 GiB file is
 * a little larger than 1 GiB.
 */
const MAX_UPLOAD_BYTES = 2 * GIB

const log = (line: string): void => { process.stderr.write(`${line}\n`) }
const startedAt = Date.now()


const canPin = !unpinned && hasCommand('taskset')
const pinned = (core: string, command: string, commandArgs: string[]): [string, string[]] =>
  canPin ? ['taskset', ['-c', core, command, ...commandArgs]] : [command, commandArgs]

// ---------------------------------------------------------------- processes

/** Every child this run started, so that cleanup can end them (by their own pid). */
const children = new Set<ChildProcess>()

function track (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => { children.delete(child) })
  return child
}

interface Finished {
  code: number | null
  stdout: string
  stderr: string
  ms: number
  timedOut: boolean
}

/** Runs a command to its end (killed after `timeoutMs`), collecting its output. */
async function run (command: string, commandArgs: string[], options: { timeoutMs: number, core?: string, env?: NodeJS.ProcessEnv }): Promise<Finished> {
  const [cmd, cmdArgs] = options.core === undefined ? [command, commandArgs] : pinned(options.core, command, commandArgs)
  const started = process.hrtime.bigint()
  const child = track(spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env }))
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (data: Buffer) => { stdout += data.toString() })
  child.stderr?.on('data', (data: Buffer) => { stderr += data.toString() })
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, options.timeoutMs)
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', (error) => { stderr += String(error); resolve(null) })
    child.once('close', resolve)
  })
  clearTimeout(timer)
  return { code, stdout, stderr, ms: Number(process.hrtime.bigint() - started) / 1e6, timedOut }
}

/** Writes `block` `count` times to `path`; returns the file's SHA-256 (hex). */
function writeRepeated (path: string, block: Buffer, count: number): string {
  const hash = createHash('sha256')
  const fd = openSync(path, 'w')
  for (let i = 0; i < count; i++) {
    writeSync(fd, block)
    hash.update(block)
  }
  closeSync(fd)
  return hash.digest('hex')
}

async function syncDisk (): Promise<void> {
  // Flushes what the previous run left dirty, so that its writeback does not land on the next one.
  await run('sync', ['-f', tmp], { timeoutMs: 60_000 })
}

// ---------------------------------------------------------------- CPU and memory, from /proc


/** How busy each core is while this benchmark does nothing: other processes on the machine. */
async function background (ms: number): Promise<number[]> {
  const before = coreTimes()
  await sleep(ms)
  return coreBusy(before, coreTimes())
}

/** The highest background load seen before each figure's runs, per figure. */
const backgroundByFigure = new Map<string, number[]>()
async function checkBackground (figure: string): Promise<void> {
  const busy = await background(400)
  const seen = backgroundByFigure.get(figure) ?? busy.map(() => 0)
  backgroundByFigure.set(figure, seen.map((value, i) => Math.max(value, busy[i] ?? 0)))
  if (Math.max(...busy) > 0.25) log(`  warning: other processes keep the cores busy (${busy.map(pct).join(' / ')}) before this run`)
}

let clockTicks = 100
try { clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100 } catch { /* Linux's usual value */ }

/** CPU seconds (user + system) of a process or thread so far, from its stat file. */
function cpuSeconds (statPath: string): number {
  try {
    const text = readFileSync(statPath, 'utf8')
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // After "pid (comm) ": state is fields[0]; utime and stime are fields 14 and 15 of the whole line.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks
  } catch {
    return Number.NaN
  }
}

interface CpuSample { total: number, main: number }
const cpuOf = (pid: number): CpuSample => ({ total: cpuSeconds(`/proc/${pid}/stat`), main: cpuSeconds(`/proc/${pid}/task/${pid}/stat`) })

/** VmHWM (peak resident set) or VmRSS of a process, in bytes. */
function memoryOf (pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? Number.NaN : Number(match[1]) * KIB
  } catch {
    return Number.NaN
  }
}

// ---------------------------------------------------------------- servers

interface Server {
  label: string
  port: number
  pid: number
  child: ChildProcess
  /** Where it stores what it receives. */
  dir: string
  log: string | null
  /** Where gc-probe keeps its totals. */
  gcFile: string
}

const NO_GC: GcTotals = { major: { count: 0, ms: 0 }, minor: { count: 0, ms: 0 }, other: { count: 0, ms: 0 } }
function gcOf (server: Server): GcTotals {
  try {
    return JSON.parse(readFileSync(server.gcFile, 'utf8')) as GcTotals
  } catch {
    return NO_GC
  }
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  return port
}

/** A fresh service process with its own empty storage directory. */
async function startService (label: string): Promise<Server> {
  const dir = join(tmp, `service-${label}`)
  mkdirSync(dir)
  const port = await freePort()
  const logPath = join(tmp, `service-${label}.log`)
  const logFd = openSync(logPath, 'w')
  const gcFile = join(tmp, `service-${label}.gc.json`)
  const env: NodeJS.ProcessEnv = {
    BENCH_GC_FILE: gcFile,
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dir,
    MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
    AUTH_TOKENS: `alice:${TOKEN}`,
    PRESIGN_SECRET: 'bench-uploads-presign-secret-0123456789abcdef',
    LOG_LEVEL,
    NODE_ENV: 'production'
  }
  const [command, commandArgs] = pinned(SERVER_CORE, process.execPath, [...probe, ...SHIPPED_NODE_ARGS, ...serviceNodeArgs, join(root, 'dist', 'server.js')])
  const child = track(spawn(command, commandArgs, { stdio: ['ignore', logFd, logFd], env }))
  closeSync(logFd)
  const server: Server = { label: `service (${label})`, port, pid: child.pid ?? 0, child, dir, log: logPath, gcFile }
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode} at start-up:\n${tail(logPath)}`)
    try {
      const answer = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) })
      if (answer.status === 200) return server
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`the service did not answer /healthz within 20 s:\n${tail(logPath)}`)
    await sleep(100)
  }
}

async function startBare (mode: 'pipe' | 'sha256' | 'sha256-large' | 'discard'): Promise<Server> {
  const dir = join(tmp, `bare-${mode}`)
  mkdirSync(dir)
  const gcFile = join(tmp, `bare-${mode}.gc.json`)
  const [command, commandArgs] = pinned(SERVER_CORE, process.execPath, [...probe, join(here, 'bare-server.js'), mode, dir])
  const child = track(spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_GC_FILE: gcFile } }))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`bare server ${mode} did not start`)) }, 15_000)
    let out = ''
    child.stdout?.on('data', (data: Buffer) => {
      out += data.toString()
      const match = /listening (\d+)/.exec(out)
      if (match !== null) { clearTimeout(timer); resolve(Number(match[1])) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`bare server ${mode} exited with ${String(code)}`)) })
  })
  return { label: `bare ${mode}`, port, pid: child.pid ?? 0, child, dir, log: null, gcFile }
}

async function stop (server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { server.child.once('exit', () => { resolve() }) })
  server.child.kill('SIGTERM')
  const timer = setTimeout(() => { server.child.kill('SIGKILL') }, 12_000)
  await exited
  clearTimeout(timer)
}

function tail (path: string | null, lines = 20): string {
  if (path === null) return ''
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

/** Sizes of the data files the service holds (`files/<owner>/<name>.<id>.data`). */
function storedSizes (server: Server): number[] {
  const files = join(server.dir, 'files')
  const sizes: number[] = []
  for (const owner of readdirSync(files)) {
    for (const entry of readdirSync(join(files, owner))) {
      if (entry.endsWith('.data')) sizes.push(statSync(join(files, owner, entry)).size)
    }
  }
  return sizes
}

async function deleteStored (server: Server, name: string): Promise<void> {
  const answer = await fetch(`http://127.0.0.1:${server.port}/files/${name}`, {
    method: 'DELETE',
    headers: { authorization: AUTH },
    signal: AbortSignal.timeout(30_000)
  })
  if (answer.status !== 204) problems.push(`DELETE /files/${name} answered ${answer.status}`)
}

// ---------------------------------------------------------------- curl

interface CurlResult {
  status: number
  uploaded: number
  seconds: number
  /** curl's own CPU time, user + system (from the shell's `times`). */
  cpu: number
  body: string
  error: string | null
}

/** `times` prints the shell's user and system time, then its children's: `0m1.234s 0m0.567s`. */
function childrenCpu (stderr: string): { cpu: number, rest: string } {
  const lines = stderr.trimEnd().split('\n')
  const children = lines.pop() ?? ''
  lines.pop()
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]))
  return { cpu: seconds.length === 2 ? (seconds[0] as number) + (seconds[1] as number) : Number.NaN, rest: lines.join('\n') }
}

async function curl (curlArgs: string[]): Promise<CurlResult> {
  const done = await run('bash', ['-c', 'curl "$@"; code=$?; times >&2; exit $code', 'curl',
    '-sS', '--max-time', '120', '-o', '-', '-w', '\n%{http_code} %{size_upload} %{time_total}', ...curlArgs],
  { timeoutMs: 130_000, core: CLIENT_CORE })
  const lines = done.stdout.split('\n')
  const [status = '0', uploaded = '0', seconds = 'NaN'] = (lines.pop() ?? '').split(' ')
  const { cpu, rest } = childrenCpu(done.stderr)
  return {
    status: Number(status),
    uploaded: Number(uploaded),
    seconds: Number(seconds),
    cpu,
    body: lines.join('\n'),
    error: done.code === 0 ? null : `curl exited with ${String(done.code)}${done.timedOut ? ' (timed out)' : ''}: ${rest.trim()}`
  }
}

function parseJson (text: string): Record<string, unknown> | null {
  try {
    return JSON.parse(text) as Record<string, unknown>
  } catch {
    return null
  }
}

// ---------------------------------------------------------------- formatting

const pct = (share: number): string => `${(share * 100).toFixed(0)}%`
const mbps = (bytes: number, seconds: number): number => bytes / seconds / 1e6
const f0 = (n: number): string => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a'
const f1 = (n: number): string => Number.isFinite(n) ? n.toFixed(1) : 'n/a'
const f2 = (n: number): string => Number.isFinite(n) ? n.toFixed(2) : 'n/a'
const mb = (bytes: number): string => `${f0(bytes / 1e6)} MB (${f0(bytes / MIB)} MiB)`
const verdict = (met: boolean): string => met ? 'met' : '**MISSED**'

/** Verification failures: printed under the table; the run then exits with 1. */
const problems: string[] = []

function checkDeadline (step: string): void {
  if (Date.now() - startedAt > RUN_DEADLINE_MS) throw new Error(`time budget of ${RUN_DEADLINE_MS / 60_000} min exceeded before ${step}`)
}

// ---------------------------------------------------------------- set-up

let tmp = ''
let cleaned = false
function cleanup (): void {
  if (cleaned) return
  cleaned = true
  for (const child of children) child.kill('SIGKILL')
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true })
}
// Also when the process dies of an uncaught error: no server and no 1 GiB file is left behind.
process.once('exit', cleanup)
process.once('uncaughtException', (error) => {
  log(`bench:uploads failed: ${error.stack ?? error.message}`)
  cleanup()
  process.exit(1)
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping the servers and removing ${tmp}`)
    cleanup()
    process.exit(130)
  })
}

for (const command of ['curl', 'dd', 'sync']) {
  if (!hasCommand(command)) {
    log(`bench:uploads needs ${command} (apt-get install -y ${command === 'curl' ? 'curl' : 'coreutils'})`)
    process.exit(1)
  }
}
if (!unpinned && !canPin) log('taskset is missing: processes are not pinned to cores (apt-get install -y util-linux)')

const freeAtStart = (() => {
  const { bavail, bsize } = statfsSync(tmpdir())
  return bavail * bsize
})()
if (freeAtStart < MIN_FREE_BYTES) {
  log(`bench:uploads refuses to run: ${tmpdir()} has ${(freeAtStart / GIB).toFixed(1)} GiB free, and it needs ${MIN_FREE_BYTES / GIB} GiB ` +
    '(it holds up to about 6 GiB at once: a 1 GiB source plus four 1 GiB uploads). Free some space or point TMPDIR at a larger filesystem.')
  process.exit(1)
}

function freeBytes (): number {
  const { bavail, bsize } = statfsSync(tmp)
  return bavail * bsize
}

tmp = mkdtempSync(join(tmpdir(), 'upfront-bench-uploads-'))
const lines: string[] = []
const row = (...cells: string[]): void => { lines.push(`| ${cells.join(' | ')} |`) }

interface BigRun {
  mbps: number
  seconds: number
  /** Server CPU seconds (user + system, all threads) for the upload. */
  cpu: number
  /** Of which the main (JavaScript) thread. */
  mainCpu: number
  /** curl's CPU seconds (user + system). */
  clientCpu: number
  /** Mark-compacts and scavenges during the upload, and the main thread's pauses for them (ms). */
  majorGc: number
  minorGc: number
  gcMs: number
  ok: boolean
}

const curlVersion = execFileSync('curl', ['--version']).toString().split('\n')[0]?.split(' ').slice(0, 2).join(' ') ?? 'curl'
const loadAtStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

try {
  log(`bench:uploads: working in ${tmp} (${(freeAtStart / GIB).toFixed(0)} GiB free); CPU split: ${canPin ? `servers on core ${SERVER_CORE}, clients on core ${CLIENT_CORE}` : 'not pinned'}`)
  if (canPin) {
    try { execFileSync('taskset', ['-pc', CLIENT_CORE, String(process.pid)], { stdio: 'ignore' }) } catch { /* stays unpinned */ }
  }
  const startBackground = await background(1000)
  log(`background load: ${startBackground.map(pct).join(' / ')} (load average ${loadAtStart})`)

  // The sources: one random MiB repeated (1 GiB, 256 MiB, 1 MiB), each SHA-256 computed as it is written.
  const block = randomBytes(MIB)
  const source = join(tmp, 'source-1g')
  const sourceSha = writeRepeated(source, block, BIG / MIB)
  const small = join(tmp, 'source-1m')
  const smallSha = writeRepeated(small, block, 1)
  const medium = join(tmp, 'source-256m')
  const mediumSha = writeRepeated(medium, block, MEDIUM / MIB)
  await syncDisk()
  // Read once: from here on curl reads it from the page cache.
  await run('sh', ['-c', 'cat "$1" "$2" > /dev/null', 'sh', source, medium], { timeoutMs: 60_000 })
  const cached = hasCommand('fincore')
    ? Number((await run('fincore', ['--bytes', '--noheadings', '--output', 'RES', source], { timeoutMs: 10_000 })).stdout.trim())
    : Number.NaN
  log(`source: 1 GiB, sha256 ${sourceSha.slice(0, 16)}..., ${Number.isFinite(cached) ? `${pct(cached / BIG)} in the page cache` : 'page cache not checked (no fincore)'}`)

  // ------------------------------------------------------------ (1) (2 loopback) (3): 1 GiB uploads, alternated
  const service = await startService('big')
  const barePipe = await startBare('pipe')
  const bareSha = await startBare('sha256')
  const bareShaLarge = await startBare('sha256-large')
  const bareDiscard = await startBare('discard')

  type BigKind = 'service PUT' | 'bare pipe PUT' | 'bare sha256 PUT' | 'bare sha256 large-buffers PUT' | 'service multipart POST' | 'loopback (discard)'
  const kinds: BigKind[] = ['service PUT', 'bare pipe PUT', 'bare sha256 PUT', 'bare sha256 large-buffers PUT', 'service multipart POST', 'loopback (discard)']
  const bareOf: Record<Exclude<BigKind, `service ${string}`>, Server> = {
    'bare pipe PUT': barePipe,
    'bare sha256 PUT': bareSha,
    'bare sha256 large-buffers PUT': bareShaLarge,
    'loopback (discard)': bareDiscard
  }
  const bigRuns = new Map<BigKind, BigRun[]>(kinds.map((kind) => [kind, []]))

  const bigOne = async (kind: BigKind, round: number): Promise<BigRun> => {
    const target = kind === 'service PUT' || kind === 'service multipart POST' ? service : bareOf[kind]
    const name = `big-${round}`
    const curlArgs = kind === 'service multipart POST'
      ? ['-H', `Authorization: ${AUTH}`, '-F', `file=@${source};filename=${name};type=application/octet-stream`, `http://127.0.0.1:${target.port}/files`]
      : kind === 'service PUT'
        ? ['-H', `Authorization: ${AUTH}`, '-H', 'Content-Type: application/octet-stream', '-T', source, `http://127.0.0.1:${target.port}/files/${name}`]
        : ['-T', source, `http://127.0.0.1:${target.port}/${name}`]
    const before = cpuOf(target.pid)
    const gcBefore = gcOf(target)
    const result = await curl(curlArgs)
    const after = cpuOf(target.pid)
    // The probe writes its totals once the GC entries are delivered, just after the GC.
    await sleep(50)
    const gcAfter = gcOf(target)
    const figure: BigRun = {
      mbps: mbps(BIG, result.seconds),
      seconds: result.seconds,
      cpu: after.total - before.total,
      mainCpu: after.main - before.main,
      clientCpu: result.cpu,
      majorGc: gcAfter.major.count - gcBefore.major.count,
      minorGc: gcAfter.minor.count - gcBefore.minor.count,
      gcMs: gcAfter.major.ms + gcAfter.minor.ms + gcAfter.other.ms - gcBefore.major.ms - gcBefore.minor.ms - gcBefore.other.ms,
      ok: false
    }
    // Verify, then remove what was stored.
    const json = parseJson(result.body)
    const info = kind === 'service multipart POST' ? (json?.files as Array<Record<string, unknown>> | undefined)?.[0] : json
    const wrong: string[] = []
    if (result.error !== null) wrong.push(result.error)
    if (result.status !== 201) wrong.push(`status ${result.status}: ${result.body.slice(0, 300)}`)
    if (result.uploaded < BIG) wrong.push(`curl uploaded ${result.uploaded} B`)
    if (info?.size !== BIG) wrong.push(`answer says size ${String(info?.size)}`)
    if (kind !== 'bare pipe PUT' && kind !== 'loopback (discard)' && info?.sha256 !== sourceSha) wrong.push(`answer says sha256 ${String(info?.sha256)}`)
    if (kind.startsWith('service')) {
      const sizes = storedSizes(service)
      if (sizes.length !== 1 || sizes[0] !== BIG) wrong.push(`stored data files: ${JSON.stringify(sizes)}`)
      if (result.status === 201) await deleteStored(service, name)
    } else if (kind !== 'loopback (discard)') {
      const path = join(target.dir, name)
      try {
        const size = statSync(path).size
        if (size !== BIG) wrong.push(`file on disk has ${size} B`)
      } catch {
        wrong.push('no file on disk')
      }
      rmSync(path, { force: true })
    }
    if (wrong.length > 0) problems.push(`${kind}, round ${round}: ${wrong.join('; ')}`)
    figure.ok = wrong.length === 0
    await syncDisk()
    return figure
  }

  for (let round = 1; round <= ROUNDS; round++) {
    // A different kind goes first in each round, so that a drift in the machine hits each alike.
    const order = [...kinds.slice(round - 1), ...kinds.slice(0, round - 1)]
    for (const kind of order) {
      checkDeadline(`${kind}, round ${round}`)
      await checkBackground(kind === 'loopback (discard)' ? '2' : kind === 'service multipart POST' ? '3' : '1')
      const figure = await bigOne(kind, round)
      bigRuns.get(kind)!.push(figure)
      log(`[1 GiB] round ${round} ${kind}: ${f0(figure.mbps)} MB/s in ${f2(figure.seconds)} s, server CPU ${f2(figure.cpu)} s (main thread ${f2(figure.mainCpu)} s), ` +
        `GC ${figure.majorGc} mark-compact + ${figure.minorGc} scavenge, ${f0(figure.gcMs)} ms of pauses${figure.ok ? '' : ' FAILED'}`)
    }
  }
  await stop(service)
  rmSync(service.dir, { recursive: true, force: true })

  // ------------------------------------------------------------ (2) ceilings: disk, page cache, SHA-256
  checkDeadline('the ceilings')
  await checkBackground('2')
  const ddRates = { fsync: [] as number[], cache: [] as number[] }
  const ddFile = join(tmp, 'dd.bin')
  for (let i = 0; i < ROUNDS; i++) {
    for (const mode of ['fsync', 'cache'] as const) {
      const done = await run('dd', ['if=/dev/zero', `of=${ddFile}`, 'bs=4M', 'count=256', ...(mode === 'fsync' ? ['conv=fsync'] : [])],
        { timeoutMs: 120_000, core: SERVER_CORE, env: { ...process.env, LC_ALL: 'C' } })
      const match = /copied, ([\d.]+) s/.exec(done.stderr)
      const seconds = match === null ? done.ms / 1000 : Number(match[1])
      if (done.code !== 0) problems.push(`dd (${mode}) failed: ${done.stderr.trim()}`)
      ddRates[mode].push(mbps(BIG, seconds))
      rmSync(ddFile, { force: true })
      await syncDisk()
    }
  }
  log(`[ceiling] disk (dd conv=fsync): ${ddRates.fsync.map(f0).join(', ')} MB/s; page cache (dd, no fsync): ${ddRates.cache.map(f0).join(', ')} MB/s`)
  const shaDone = await run(process.execPath, [join(here, 'uploads.js'), '--sha256-ceiling'], { timeoutMs: 60_000, core: SERVER_CORE })
  const shaRates = parseJson(shaDone.stdout.trim()) as unknown as number[] | null ?? []
  if (shaRates.length === 0) problems.push(`the SHA-256 ceiling failed: ${shaDone.stderr.trim()}`)
  log(`[ceiling] SHA-256 (node:crypto, 1 GiB in memory): ${shaRates.map(f0).join(', ')} MB/s`)

  // ------------------------------------------------------------ (4) peak RSS, 4 concurrent uploads, fresh process each
  interface RssFigure { label: string, startRss: number, peak: number, seconds: number, ok: boolean, mbps: number, majorGc: number }
  const rssFigures: RssFigure[] = []
  for (const [label, file, bytes, sha] of [['1 MiB', small, MIB, smallSha], ['256 MiB', medium, MEDIUM, mediumSha], ['1 GiB', source, BIG, sourceSha]] as const) {
    checkDeadline(`peak RSS (${label})`)
    if (freeBytes() < RSS_FREE_BYTES) {
      problems.push(`peak RSS with ${CONCURRENT} × ${label} skipped: ${(freeBytes() / GIB).toFixed(1)} GiB free, it needs ${RSS_FREE_BYTES / GIB}`)
      continue
    }
    await checkBackground('4')
    const fresh = await startService(`rss-${label.replace(' ', '')}`)
    const gcBefore = gcOf(fresh)
    const startRss = memoryOf(fresh.pid, 'VmHWM')
    const started = process.hrtime.bigint()
    const results = await Promise.all(Array.from({ length: CONCURRENT }, async (_, i) => await curl([
      '-H', `Authorization: ${AUTH}`, '-H', 'Content-Type: application/octet-stream', '-T', file, `http://127.0.0.1:${fresh.port}/files/rss-${i}`
    ])))
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const peak = memoryOf(fresh.pid, 'VmHWM')
    await sleep(50)
    const gc = gcOf(fresh)
    let ok = true
    for (const [i, result] of results.entries()) {
      const info = parseJson(result.body)
      if (result.status !== 201 || info?.size !== bytes || info.sha256 !== sha) {
        ok = false
        problems.push(`peak RSS ${label}, upload ${i}: status ${result.status}, ${result.error ?? result.body.slice(0, 300)}`)
      }
    }
    const sizes = storedSizes(fresh)
    if (sizes.length !== CONCURRENT || sizes.some((size) => size !== bytes)) {
      ok = false
      problems.push(`peak RSS ${label}: stored data files ${JSON.stringify(sizes)}`)
    }
    await stop(fresh)
    rmSync(fresh.dir, { recursive: true, force: true })
    await syncDisk()
    const majorGc = gc.major.count - gcBefore.major.count
    rssFigures.push({ label, startRss, peak, seconds, ok, mbps: mbps(CONCURRENT * bytes, seconds), majorGc })
    log(`[rss] ${CONCURRENT} × ${label}: VmHWM ${mb(peak)} (${mb(startRss)} after start-up), ${f2(seconds)} s, ${majorGc} mark-compacts`)
  }

  // ------------------------------------------------------------ (5) 1,000 small uploads over 32 keep-alive connections
  const smallService = await startService('small')
  const smallLoad = async (server: Server, pathPrefix: string, expect: boolean, count: number): Promise<SmallLoadResult> => {
    const config: SmallLoadConfig = {
      port: server.port,
      pathPrefix,
      headers: server.label.startsWith('service') ? { Authorization: AUTH, 'Content-Type': 'application/octet-stream' } : { 'Content-Type': 'application/octet-stream' },
      count,
      bodyBytes: SMALL_BYTES,
      connections: SMALL_CONNECTIONS,
      expect,
      expectStatus: 201,
      maxMs: 60_000
    }
    const done = await run(process.execPath, [join(here, 'uploads-load.js'), JSON.stringify(config)], { timeoutMs: 90_000, core: CLIENT_CORE })
    const result = parseJson(done.stdout.trim()) as unknown as SmallLoadResult | null
    if (result === null) throw new Error(`the load generator failed (${String(done.code)}): ${done.stderr}`)
    if (result.ok !== count) {
      problems.push(`${server.label}, ${count} × 64 KiB ${expect ? 'with' : 'without'} Expect: ${result.ok} verified 201s; statuses ${JSON.stringify(result.statuses)}, errors ${JSON.stringify(result.errors)}`)
    }
    return result
  }
  checkDeadline('the small uploads')
  await smallLoad(smallService, '/files/warm/', false, SMALL_WARMUP)
  const smallRuns = { plain: [] as SmallLoadResult[], expect: [] as SmallLoadResult[] }
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? (['plain', 'expect'] as const) : (['expect', 'plain'] as const)
    for (const mode of order) {
      checkDeadline('the small uploads')
      await checkBackground('5')
      const result = await smallLoad(smallService, `/files/r${round}-${mode}/`, mode === 'expect', SMALL_COUNT)
      smallRuns[mode].push(result)
      log(`[small] round ${round} ${mode === 'expect' ? 'Expect: 100-continue' : 'no Expect'}: ${f0(result.perSecond)}/s, p50 ${f1(result.p50Ms)} ms, p99 ${f1(result.p99Ms)} ms, ` +
        `${result.ok}/${SMALL_COUNT} verified, 100s ${result.continues}, connections ${result.connects}`)
    }
  }
  const storedSmall = storedSizes(smallService)
  const expectedSmall = SMALL_WARMUP + 2 * ROUNDS * SMALL_COUNT
  if (storedSmall.length !== expectedSmall || storedSmall.some((size) => size !== SMALL_BYTES)) {
    problems.push(`small uploads: ${storedSmall.length} data files stored (expected ${expectedSmall} of ${SMALL_BYTES} B)`)
  }
  const smallServiceRss = memoryOf(smallService.pid, 'VmHWM')
  await stop(smallService)
  rmSync(smallService.dir, { recursive: true, force: true })
  // The bare server, for reference: one run each.
  const bareSmall = {
    plain: await smallLoad(barePipe, '/small-plain-', false, SMALL_COUNT),
    expect: await smallLoad(barePipe, '/small-expect-', true, SMALL_COUNT)
  }
  log(`[small] bare pipe: no Expect ${f0(bareSmall.plain.perSecond)}/s, Expect ${f0(bareSmall.expect.perSecond)}/s`)
  for (const server of [barePipe, bareSha, bareShaLarge, bareDiscard]) await stop(server)
  const freeAtEnd = freeBytes()

  // ------------------------------------------------------------ report
  const okRuns = (kind: BigKind): BigRun[] => bigRuns.get(kind)!.filter((r) => r.ok)
  const med = (kind: BigKind): number => median(okRuns(kind).map((r) => r.mbps))
  const cpuPerGib = (kind: BigKind): number => median(okRuns(kind).map((r) => r.cpu))
  const mainPerGib = (kind: BigKind): number => median(okRuns(kind).map((r) => r.mainCpu))
  const wallPerGib = (kind: BigKind): number => median(okRuns(kind).map((r) => r.seconds))
  const runsOf = (kind: BigKind): string => bigRuns.get(kind)!.map((r) => `${f0(r.mbps)}${r.ok ? '' : ' (failed)'}`).join(', ')
  const gcPerGib = (kind: BigKind): string => {
    const runs = okRuns(kind)
    return `${f0(median(runs.map((r) => r.majorGc)))} mark-compact + ${f0(median(runs.map((r) => r.minorGc)))} scavenge, ${f0(median(runs.map((r) => r.gcMs)))} ms paused`
  }
  const bigCell = (kind: BigKind): string =>
    `**${f0(med(kind))} MB/s** (runs ${runsOf(kind)}); server CPU ${f2(cpuPerGib(kind))} s/GiB (main thread ${f2(mainPerGib(kind))} s), ${pct(cpuPerGib(kind) / wallPerGib(kind))} of the wall time; GC ${gcPerGib(kind)}`
  const putRatio = med('service PUT') / med('bare pipe PUT')
  const formRatio = med('service multipart POST') / med('bare pipe PUT')
  const loopback = med('loopback (discard)')
  const disk = median(ddRates.fsync)
  const sha = median(shaRates)
  const lowest = Math.min(loopback, disk, sha)
  const busiest = Math.max(...startBackground, ...[...backgroundByFigure.values()].flat())

  lines.push('', '## upfront uploads benchmark: the service vs a bare node:http server', '')
  lines.push(`- Command: \`npm run bench:uploads${args.length > 0 ? ` -- ${args.join(' ')}` : ''}\`; Node ${process.version}, ${curlVersion}, Linux ${execFileSync('uname', ['-r']).toString().trim()}; ` +
    `total time ${f0((Date.now() - startedAt) / 1000)} s (build excluded).`)
  lines.push(`- CPU split: ${canPin
    ? `core ${SERVER_CORE} = the server under test (the service, or one of the bare servers; only one is loaded at a time), dd and the SHA-256 ceiling; ` +
      `core ${CLIENT_CORE} = curl, the small-upload load generator and the orchestrator (taskset). Threads of a pinned process (libuv's pool, V8's GC helpers) share its core; kernel writeback and journal threads run where the kernel puts them.`
    : 'not pinned: every process may use both cores.'}`)
  lines.push(`- Service: \`node ${SHIPPED_NODE_ARGS.join(' ')} dist/server.js\` (as \`npm start\` runs it), NODE_ENV=production, LOG_LEVEL=${LOG_LEVEL} (to a file), MAX_UPLOAD_BYTES=${MAX_UPLOAD_BYTES} (2 GiB: ` +
    'a multipart form carrying a 1 GiB file is a little over 1 GiB), one principal (AUTH_TOKENS). A fresh process for the 1 GiB runs, for each RSS scenario and for the small uploads.')
  lines.push('- Bare = `bench/bare-server.ts`: node:http, `stream.pipeline(req, fs.createWriteStream(path))`, default buffers, no fsync (its 201 means "in the page cache"); ' +
    '"bare sha256" adds a SHA-256 Transform to the pipeline, "large buffers" sets every stream buffer of that to 4 MiB; "loopback" = the same server discarding the body. ' +
    'curl\'s CPU comes from the shell\'s `times`.')
  lines.push(`- 1 GiB uploads: curl -T (PUT) or -F (multipart POST) of a 1 GiB file ${Number.isFinite(cached) ? `(${pct(cached / BIG)} in the page cache, per fincore)` : ''}; ` +
    `MB/s = 10^6 bytes per second of curl's total time (connection to the final answer: the service's includes its fsyncs and renames). ${ROUNDS} rounds, each kind once per round, ` +
    'the first kind rotating; the median is shown, then all runs. After each upload the stored file is verified (status, size, SHA-256), deleted, and the disk synced (`sync -f`) so that no writeback spills into the next run. ' +
    '"server CPU" = user + system time of the server process, all threads, for the upload.')
  lines.push(`- Other processes on this machine: cores busy ${startBackground.map(pct).join(' / ')} at the start (load average ${loadAtStart}); highest before each figure: ` +
    `${[...backgroundByFigure.entries()].map(([figure, busy]) => `(${figure}) ${busy.map(pct).join('/')}`).join(', ')}.`)
  if (busiest > 0.25) {
    lines.push(`- **Warning: other processes kept a core up to ${pct(busiest)} busy during this run: absolute rates are lower and noisier than on an idle machine; the ratios (same rounds, alternated) hold better.**`)
  }
  lines.push(`- Disk: ${(freeAtStart / GIB).toFixed(0)} GiB free in ${tmpdir()} at the start, ${(freeAtEnd / GIB).toFixed(0)} GiB at the end (before removing the work directory).`, '')

  row('#', 'measurement', 'result', 'compared with', 'ratio / figure', 'goal', '')
  row('---', '---', '---', '---', '---', '---', '---')
  row('1', 'PUT 1 GiB (curl -T): service (SHA-256, fsync, rename) vs bare pipe', bigCell('service PUT'), `bare pipe: ${bigCell('bare pipe PUT')}`,
    `service/bare **${f2(putRatio)}**`, '≥ 1.2', verdict(putRatio >= 1.2))
  row('1', 'reference: bare pipe with SHA-256 in the pipeline', bigCell('bare sha256 PUT'), '', `bare sha256/bare ${f2(med('bare sha256 PUT') / med('bare pipe PUT'))}; service/bare sha256 ${f2(med('service PUT') / med('bare sha256 PUT'))}`, '', '')
  const large = 'bare sha256 large-buffers PUT'
  row('1', 'reference: the same with every stream buffer at 4 MiB ("a Node server that only enlarged its stream buffers", with SHA-256)', bigCell(large), '',
    `large buffers/bare **${f2(med(large) / med('bare pipe PUT'))}**; /bare sha256 ${f2(med(large) / med('bare sha256 PUT'))}; service/large buffers ${f2(med('service PUT') / med(large))}`, '', '')
  // What any server that hashes what it stores must spend per GiB, from the
  // parts measured alone, and the rate that leaves on this machine's cores.
  const gib = BIG / 1e6
  const parts = {
    client: median(okRuns('service PUT').map((r) => r.clientCpu)),
    receive: cpuPerGib('loopback (discard)'),
    write: gib / median(ddRates.cache),
    hash: gib / sha
  }
  const serverParts = parts.receive + parts.write + parts.hash
  const cores = availableParallelism()
  const budgetRate = canPin
    ? Math.min(gib / serverParts, gib / parts.client)
    : gib * cores / (serverParts + parts.client)
  row('2', `estimate: CPU a hashing server cannot avoid, per GiB (${canPin ? 'server parts on one core, curl on the other' : `all parts shared by ${cores} cores`})`,
    `curl ${f2(parts.client)} s + receiving ${f2(parts.receive)} s (the loopback server) + page-cache write ${f2(parts.write)} s (dd) + SHA-256 ${f2(parts.hash)} s = ${f2(serverParts + parts.client)} s`,
    '', `at most **${f0(budgetRate)} MB/s** if nothing else cost anything: service/bare at most **${f2(budgetRate / med('bare pipe PUT'))}**; the service reaches ${pct(med('service PUT') / budgetRate)} of it`, '', '')
  row('2', 'ceiling: loopback HTTP (curl -T to the bare server discarding the body)', bigCell('loopback (discard)'), '', `service PUT at ${pct(med('service PUT') / loopback)}`, '', '')
  row('2', 'ceiling: disk (`dd if=/dev/zero bs=4M count=256 conv=fsync`, core 0)', `**${f0(disk)} MB/s** (runs ${ddRates.fsync.map(f0).join(', ')})`, '', `service PUT at ${pct(med('service PUT') / disk)}`, '', '')
  row('2', 'reference: page cache (the same dd without conv=fsync)', `**${f0(median(ddRates.cache))} MB/s** (runs ${ddRates.cache.map(f0).join(', ')})`, '', 'what the bare server writes into', '', '')
  row('2', 'ceiling: SHA-256 (node:crypto, 1 GiB in memory, core 0)', `**${f0(sha)} MB/s** (runs ${shaRates.map(f0).join(', ')})`, '', `service PUT at ${pct(med('service PUT') / sha)}`, '', '')
  row('2', 'the lowest ceiling', `${f0(lowest)} MB/s (${lowest === disk ? 'disk' : lowest === sha ? 'SHA-256' : 'loopback'})`, '', `service PUT at **${pct(med('service PUT') / lowest)}**`, '', '')
  row('3', 'multipart POST 1 GiB (curl -F) vs the bare pipe PUT', bigCell('service multipart POST'), `bare pipe PUT: ${f0(med('bare pipe PUT'))} MB/s`,
    `multipart/bare **${f2(formRatio)}**; multipart/service PUT ${f2(med('service multipart POST') / med('service PUT'))}`, '≥ 1.0', verdict(formRatio >= 1.0))
  const rss1m = rssFigures.find((f) => f.label === '1 MiB')
  const rss256m = rssFigures.find((f) => f.label === '256 MiB')
  const rss1g = rssFigures.find((f) => f.label === '1 GiB')
  for (const figure of rssFigures) {
    row('4', `peak RSS (VmHWM) of a fresh service process, ${CONCURRENT} concurrent PUTs of ${figure.label}`,
      `**${mb(figure.peak)}**${figure.ok ? '' : ' (uploads failed)'}`, `after start-up: ${mb(figure.startRss)}`,
      `${f2(figure.seconds)} s for all ${CONCURRENT} (${f0(figure.mbps)} MB/s together); ${figure.majorGc} mark-compacts`, '≤ 150 MB', verdict(figure.peak <= 150e6))
  }
  if (rss1m !== undefined && rss256m !== undefined && rss1g !== undefined) {
    const bounded = rss1g.peak - rss256m.peak
    row('4', 'flat in file size: peak with 4 × 1 GiB minus peak with 4 × 256 MiB (4× the bytes)', `**${mb(bounded)}**`,
      `4 × 1 GiB minus 4 × 1 MiB: ${mb(rss1g.peak - rss1m.peak)} (the per-upload buffers, which a 1 MiB upload never fills, and chunks awaiting GC)`,
      `${f2(bounded / (CONCURRENT * (BIG - MEDIUM)) * 100)} % of the extra bytes`, 'flat: < 1 % of the extra bytes', verdict(bounded < 0.01 * CONCURRENT * (BIG - MEDIUM)))
  }
  const smallCell = (runs: SmallLoadResult[]): string => {
    const sorted = [...runs].sort((a, b) => a.perSecond - b.perSecond)
    const mid = sorted[Math.floor((sorted.length - 1) / 2)]
    if (mid === undefined) return 'n/a'
    return `**${f0(mid.perSecond)} uploads/s**, p50 **${f1(mid.p50Ms)} ms**, p99 **${f1(mid.p99Ms)} ms** (median run; runs ${runs.map((r) => `${f0(r.perSecond)}/s p99 ${f1(r.p99Ms)} ms`).join(', ')}; ` +
      `verified 201s ${runs.map((r) => r.ok).join('+')} of ${runs.length * SMALL_COUNT})`
  }
  const bareCell = (r: SmallLoadResult): string => `bare pipe (no fsync, 1 run): ${f0(r.perSecond)}/s, p50 ${f1(r.p50Ms)} ms, p99 ${f1(r.p99Ms)} ms`
  row('5', `${SMALL_COUNT} PUTs of 64 KiB over ${SMALL_CONNECTIONS} keep-alive connections, no Expect (head and body in one write)`, smallCell(smallRuns.plain), bareCell(bareSmall.plain), '', '', '')
  row('5', `the same with Expect: 100-continue, body sent after the 100`, smallCell(smallRuns.expect), bareCell(bareSmall.expect),
    `Expect/no Expect ${f2(median(smallRuns.expect.map((r) => r.perSecond)) / median(smallRuns.plain.map((r) => r.perSecond)))} (median rates); 100s received ${smallRuns.expect.map((r) => r.continues).join('+')}`, '', '')
  lines.push('')
  lines.push(`GC = collections counted in the server by \`bench/gc-probe.ts\` (preloaded with --import; perf_hooks 'gc' entries), per upload; "paused" = their main-thread time. ` +
    `${serviceNodeArgs.length > 0 ? `**The service ran with extra Node flags: \`${serviceNodeArgs.join(' ')}\`.** ` : ''}`)
  lines.push(`Small uploads: a fresh service process, ${SMALL_WARMUP} uploads of warm-up first, then ${ROUNDS} rounds of ${SMALL_COUNT} with and ${SMALL_COUNT} without Expect, alternated, each to new names; ` +
    `latency = head written to answer read, at the client (\`bench/uploads-load.ts\`, one process on core ${CLIENT_CORE}). Its peak RSS at the end: ${mb(smallServiceRss)}.`)
  lines.push(problems.length === 0
    ? 'Verification: every upload answered 201 with the right size and SHA-256 (checked in the answers and on disk).'
    : `**Verification failures (${problems.length}):**\n${problems.map((p) => `- ${p}`).join('\n')}`)
  process.stdout.write(`${lines.join('\n')}\n`)
  if (problems.length > 0) process.exitCode = 1
} catch (error) {
  log(`bench:uploads failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
  for (const entry of readdirSync(tmp)) {
    if (entry.endsWith('.log')) log(`--- ${entry} (last lines)\n${tail(join(tmp, entry))}`)
  }
  process.exitCode = 1
} finally {
  cleanup()
}
