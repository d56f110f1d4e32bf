// The service as a process, configured by environment variables, for the
// S3 and replica benchmarks: what service/servers.ts does for the disk
// suite, with the storage settings (and any other) given by the caller.
import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { cpuOf } from '../lib/cpu.js'
import type { CpuSplit } from '../lib/proc.js'
import { repoRoot, track } from '../lib/proc.js'
import { AUTH, SERVICE_SCRIPT, SHIPPED_NODE_ARGS, tail } from './servers.js'
import type { Server } from './servers.js'

const here = dirname(fileURLToPath(import.meta.url))
/** The token behind servers.ts's AUTH, for principal alice. */
export const TOKEN = AUTH.slice('Bearer '.length)
export const PRESIGN_SECRET = 'bench-uploads-presign-secret-0123456789abcdef'

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  return port
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
  const args = ['--import', pathToFileURL(join(here, 'gc-probe.js')).href, ...SHIPPED_NODE_ARGS, join(repoRoot, SERVICE_SCRIPT)]
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
