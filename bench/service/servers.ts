// The servers of the service suite, each a process on the server core with
// bench/service/gc-probe.ts preloaded: the service as it ships (the only
// place that knows where it is: dist/server.js), on disk or with the storage
// settings the S3 and replica suites give it, and the bare node:http
// servers (service/bare-server.ts).
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { cpuOf } from '../lib/cpu.js'
import type { CpuSplit } from '../lib/proc.js'
import { repoRoot, track } from '../lib/proc.js'
import type { BareMode, Bench } from './context.js'
import type { GcTotals } from './gc-probe.js'

const here = dirname(fileURLToPath(import.meta.url))
const gcProbe = ['--import', pathToFileURL(join(here, 'gc-probe.js')).href]

/** The service, and the flags `npm start` and the Dockerfile run it with. */
export const SERVICE_SCRIPT = 'dist/server.js'
export const SHIPPED_NODE_ARGS = ['--initial-old-space-size=128']
/** The token of principal alice, and the header that carries it. */
export const TOKEN = 'bench-uploads-token-0123456789'
export const AUTH = `Bearer ${TOKEN}`
export const PRESIGN_SECRET = 'bench-uploads-presign-secret-0123456789abcdef'

export interface Server {
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
export function gcOf (server: Server): GcTotals {
  try {
    return JSON.parse(readFileSync(server.gcFile, 'utf8')) as GcTotals
  } catch {
    return NO_GC
  }
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  return port
}

export function tail (path: string | null, lines = 20): string {
  if (path === null) return ''
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

/** A fresh service process on disk, for the disk suite. */
export async function startService (bench: Bench, label: string): Promise<Server> {
  return await startServiceWith({ split: bench.split, tmp: bench.tmp, label, env: {}, maxUploadBytes: bench.plan.maxUploadBytes, logLevel: bench.logLevel, nodeArgs: bench.serviceNodeArgs })
}

export interface ServiceOptions {
  split: CpuSplit
  /** The run's directory: the log and the GC totals go there, and `dir` (DATA_DIR for disk). */
  tmp: string
  label: string
  /** Storage settings and anything else (SHUTDOWN_GRACE_MS, PUBLIC_URL, ...). */
  env: Record<string, string>
  maxUploadBytes: number
  logLevel: string
  /** Pinned to the server core (default), or left to the scheduler. */
  pinned?: boolean
  port?: number
  /** Node flags after the shipped ones. */
  nodeArgs?: string[]
}

/** A fresh service process (`node --initial-old-space-size=128 dist/server.js`, NODE_ENV=production), once /healthz answers. */
export async function startServiceWith (options: ServiceOptions): Promise<Server> {
  const dir = join(options.tmp, `service-${options.label}`)
  mkdirSync(dir, { recursive: true })
  const port = options.port ?? await freePort()
  const logPath = join(options.tmp, `service-${options.label}.log`)
  const logFd = openSync(logPath, 'w')
  const gcFile = join(options.tmp, `service-${options.label}.gc.json`)
  const env: NodeJS.ProcessEnv = {
    BENCH_GC_FILE: gcFile,
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dir,
    MAX_UPLOAD_BYTES: String(options.maxUploadBytes),
    AUTH_TOKENS: `alice:${TOKEN}`,
    PRESIGN_SECRET,
    LOG_LEVEL: options.logLevel,
    NODE_ENV: 'production',
    ...options.env
  }
  const args = [...gcProbe, ...SHIPPED_NODE_ARGS, ...(options.nodeArgs ?? []), join(repoRoot, SERVICE_SCRIPT)]
  const [command, commandArgs] = options.pinned === false ? [process.execPath, args] : options.split.on('server', process.execPath, args)
  const child = track(spawn(command, commandArgs, { stdio: ['ignore', logFd, logFd], env }))
  closeSync(logFd)
  const server: Server = { label: `service (${options.label})`, port, pid: child.pid ?? 0, child, dir, log: logPath, gcFile }
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service (${options.label}) exited with ${child.exitCode} at start-up:\n${tail(logPath)}`)
    try {
      const answer = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) })
      if (answer.status === 200) return server
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`the service (${options.label}) did not answer /healthz within 30 s:\n${tail(logPath)}`)
    await sleep(100)
  }
}

/**
 * Waits until a process has used less than `share` of a core over each of
 * two `windowMs` windows in a row (a service's start-up sweep is over), or
 * `maxMs` passed. Resolves with the time waited, in ms.
 */
export async function waitIdle (pid: number, share = 0.05, windowMs = 500, maxMs = 300_000): Promise<number> {
  const started = Date.now()
  let quiet = 0
  while (quiet < 2 && Date.now() - started < maxMs) {
    const before = cpuOf(pid).total
    await sleep(windowMs)
    const used = cpuOf(pid).total - before
    quiet = used < share * windowMs / 1000 ? quiet + 1 : 0
  }
  return Date.now() - started
}

export async function startBare (bench: Pick<Bench, 'tmp' | 'split'>, mode: BareMode): Promise<Server> {
  const dir = join(bench.tmp, `bare-${mode}`)
  mkdirSync(dir)
  const gcFile = join(bench.tmp, `bare-${mode}.gc.json`)
  const [command, commandArgs] = bench.split.on('server', process.execPath, [...gcProbe, join(here, 'bare-server.js'), mode, dir])
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

export async function stop (server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { server.child.once('exit', () => { resolve() }) })
  server.child.kill('SIGTERM')
  const timer = setTimeout(() => { server.child.kill('SIGKILL') }, 12_000)
  await exited
  clearTimeout(timer)
}

/**
 * Content sizes of the files the service holds: each a version
 * `files/<owner>/<name>` whose bytes are followed by their record, its
 * length (uint32 BE) and "upfront1" (plugins/storage/disk/version.ts).
 */
export function storedSizes (server: Server): number[] {
  const files = join(server.dir, 'files')
  const sizes: number[] = []
  const footer = Buffer.alloc(12)
  for (const owner of readdirSync(files)) {
    for (const entry of readdirSync(join(files, owner)).filter((entry) => /^[0-9a-f]{64}$/.test(entry))) {
      const fd = openSync(join(files, owner, entry), 'r')
      try {
        const { size } = fstatSync(fd)
        readSync(fd, footer, 0, 12, size - 12)
        sizes.push(size - 12 - footer.readUInt32BE(0))
      } finally {
        closeSync(fd)
      }
    }
  }
  return sizes
}

export async function deleteStored (bench: Bench, server: Server, name: string): Promise<void> {
  const answer = await fetch(`http://127.0.0.1:${server.port}/files/${name}`, {
    method: 'DELETE',
    headers: { authorization: AUTH },
    signal: AbortSignal.timeout(30_000)
  })
  if (answer.status !== 204) bench.problems.push(`DELETE /files/${name} answered ${answer.status}`)
}
