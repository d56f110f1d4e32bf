// What the service suite's figure functions share: the plan of the run
// (sizes and counts; `--quick` shrinks them), the CPU split, the work
// directory, the sources, the bare servers, and the run's bounds and
// verification failures.
import { createHash } from 'node:crypto'
import { closeSync, openSync, statfsSync, writeSync } from 'node:fs'
import { background } from '../lib/cpu.js'
import type { CpuSplit } from '../lib/proc.js'
import { log, run } from '../lib/proc.js'
import { pcts } from '../lib/report.js'
import type { Server } from './servers.js'

const KIB = 1024
const MIB = 1024 * KIB
export const GIB = 1024 * MIB

export interface Plan {
  quick: boolean
  /** The large upload (1 GiB), the medium one of the RSS figure (256 MiB) and the small one (1 MiB). */
  big: number
  medium: number
  small: number
  /** Rounds of the large uploads, of dd, of the SHA-256 ceiling and of the small uploads. */
  rounds: number
  /** Concurrent uploads in the peak-RSS figure. */
  concurrent: number
  smallBytes: number
  smallCount: number
  smallConnections: number
  smallWarmup: number
  /** Free disk the run insists on. */
  minFree: number
  /** The whole run gives up past this; each step has its own, shorter bound. */
  deadlineMs: number
  /**
   * The service's MAX_UPLOAD_BYTES. Above 1 GiB (its default): upfront checks a
   * request's declared Content-Length against it, and a multipart form
   * carrying a 1 GiB file is a little larger than 1 GiB.
   */
  maxUploadBytes: number
}

/** The full run, or with `--quick` a run of each figure once, at 64 MiB instead of 1 GiB. */
export function plan (quick: boolean): Plan {
  return {
    quick,
    big: quick ? 64 * MIB : GIB,
    medium: quick ? 16 * MIB : 256 * MIB,
    small: MIB,
    rounds: quick ? 1 : 3,
    concurrent: 4,
    smallBytes: 64 * KIB,
    smallCount: 1000,
    smallConnections: 32,
    smallWarmup: 200,
    minFree: quick ? GIB : 10 * GIB,
    deadlineMs: 8 * 60_000,
    maxUploadBytes: 2 * GIB
  }
}

export interface Source {
  path: string
  bytes: number
  sha256: string
}

/** Writes `count` copies of `block` to `path`, hashing them on the way. */
export function writeSource (path: string, block: Buffer, count: number): Source {
  const hash = createHash('sha256')
  const fd = openSync(path, 'w')
  for (let i = 0; i < count; i++) {
    writeSync(fd, block)
    hash.update(block)
  }
  closeSync(fd)
  return { path, bytes: block.length * count, sha256: hash.digest('hex') }
}

export type BareMode = 'pipe' | 'sha256' | 'sha256-large' | 'durable' | 'discard'

export interface Bench {
  plan: Plan
  split: CpuSplit
  /** Everything the run writes goes under it; removed at the end. */
  tmp: string
  startedAt: number
  /** Node/V8 flags added to the service's command line (`--service-node-args`). */
  serviceNodeArgs: string[]
  /** The service's LOG_LEVEL (BENCH_LOG_LEVEL, default info). */
  logLevel: string
  sources: { big: Source, medium: Source, small: Source }
  /** Started for the whole run. */
  bare: Record<BareMode, Server>
  /** The highest load other processes put on each core before each figure's runs, by figure. */
  background: Record<string, number[]>
  /** Verification failures: printed under the tables; the run then exits with 1. */
  problems: string[]
}

export function checkDeadline (bench: Bench, step: string): void {
  if (Date.now() - bench.startedAt > bench.plan.deadlineMs) throw new Error(`time budget of ${bench.plan.deadlineMs / 60_000} min exceeded before ${step}`)
}

/** Samples the cores before a run of `figure`, and warns when other processes keep them busy. */
export async function checkBackground (bench: Bench, figure: string): Promise<void> {
  const busy = await background(400)
  const seen = bench.background[figure] ?? busy.map(() => 0)
  bench.background[figure] = seen.map((value, i) => Math.max(value, busy[i] ?? 0))
  if (Math.max(...busy) > 0.25) log(`  warning: other processes keep the cores busy (${pcts(busy)}) before this run`)
}

/** Flushes what the previous run left dirty, so that its writeback does not land on the next one. */
export async function syncDisk (bench: Pick<Bench, 'tmp'>): Promise<void> {
  await run('sync', ['-f', bench.tmp], { timeoutMs: 60_000 })
}

export function freeBytes (path: string): number {
  const { bavail, bsize } = statfsSync(path)
  return bavail * bsize
}
