// What the S3 suite's figure functions share (bench/service/s3.ts): the
// plan (sizes, rounds, counts; `--quick` shrinks them), the CPU split, the
// engine and the key prefixes in use (each figure takes its own, emptied
// when the figure ends, or by the cleanup), the source files, the samples
// of background load, and the verification failures.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { background, coreTimes } from '../lib/cpu.js'
import { log } from '../lib/proc.js'
import type { CpuSplit } from '../lib/proc.js'
import { pcts } from '../lib/report.js'
import type { Source } from './context.js'
import { benchPrefix, emptyPrefix, engineCpu } from './s3-engine.js'
import type { Emptied, Engine } from './s3-engine.js'

const MIB = 1024 * 1024
const GIB = 1024 * MIB

export interface S3Plan {
  quick: boolean
  /** The large upload of (1) and (2): 1 GiB. */
  big: number
  /** Uploaded once to each side before (1)'s rounds, not counted. */
  warmup: number
  /** Rounds of (1), each side once per round, and how many more may replace rounds set aside. */
  rounds: number
  extraRounds: number
  /** CPU seconds other processes may take during a run of (1) for its round to count. */
  foreignLimit: number
  /** Concurrent uploads of (2). */
  concurrent: number
  /** Files of the listing figure (3), their size, the page size, repetitions of each timed page. */
  listFiles: number
  listBodyBytes: number
  pageSize: number
  listReps: number
  /** Connections of the load generator that creates them. */
  listConnections: number
  /** How long the start-up sweep of a process over the S3 files is followed, at most. */
  sweepMaxMs: number
  maxUploadBytes: number
  /** The whole run gives up past this. */
  deadlineMs: number
}

export function s3Plan (quick: boolean): S3Plan {
  return {
    quick,
    big: quick ? 64 * MIB : GIB,
    warmup: quick ? 16 * MIB : 64 * MIB,
    rounds: quick ? 2 : 3,
    extraRounds: quick ? 1 : 4,
    foreignLimit: 1.5,
    concurrent: 4,
    listFiles: quick ? 1000 : 10_000,
    listBodyBytes: 100,
    pageSize: 100,
    listReps: quick ? 5 : 20,
    listConnections: 32,
    sweepMaxMs: quick ? 120_000 : 900_000,
    maxUploadBytes: 2 * GIB,
    deadlineMs: 40 * 60_000
  }
}

export type S3Figure = 'put' | 'rss' | 'list-s3' | 'list-disk'
export const s3Figures: readonly S3Figure[] = ['put', 'rss', 'list-s3', 'list-disk']

export interface S3Bench {
  plan: S3Plan
  split: CpuSplit
  tmp: string
  engine: Engine
  /** The engine's processes (radosgw, ceph-osd, ceph-mon), for their CPU time. */
  enginePids: number[]
  logLevel: string
  startedAt: number
  sources: { big: Source, warmup: Source }
  /** Prefixes in use: emptied by the figure that took them, or by the cleanup. */
  prefixes: Set<string>
  /** What emptying each prefix removed. */
  emptied: Record<string, Emptied>
  /** The highest load other processes put on each core before each figure's runs. */
  background: Record<string, number[]>
  problems: string[]
}

export function checkDeadline (bench: S3Bench, step: string): void {
  if (Date.now() - bench.startedAt > bench.plan.deadlineMs) throw new Error(`time budget of ${bench.plan.deadlineMs / 60_000} min exceeded before ${step}`)
}

/** Samples the cores before a run, and warns when other processes keep them busy. */
export async function checkBackground (bench: { background: Record<string, number[]> }, figure: string): Promise<void> {
  const busy = await background(400)
  const seen = bench.background[figure] ?? busy.map(() => 0)
  bench.background[figure] = seen.map((value, i) => Math.max(value, busy[i] ?? 0))
  if (Math.max(...busy) > 0.25) log(`  warning: other processes keep the cores busy (${pcts(busy)}) before this run`)
}

/** A key prefix for one figure, recorded for the cleanup. */
export function takePrefix (bench: S3Bench): string {
  const prefix = benchPrefix()
  bench.prefixes.add(prefix)
  return prefix
}

/** Empties a figure's prefix (objects and unfinished multipart uploads) and forgets it. */
export async function releasePrefix (bench: Pick<S3Bench, 'engine' | 'prefixes' | 'emptied'>, prefix: string): Promise<void> {
  bench.emptied[prefix] = await emptyPrefix(bench.engine, prefix)
  bench.prefixes.delete(prefix)
}

/**
 * Lets the engine finish what the last run left it (RGW's garbage
 * collection of deleted data runs every 10 s on objects older than 10 s, in
 * test/services/rgw.sh's configuration): waits `minMs`, then until the
 * engine's processes use less than 15 % of a core over two 1 s windows in a
 * row, at most `maxMs` in all. Resolves with the time waited.
 */
export async function settleEngine (bench: Pick<S3Bench, 'enginePids'>, minMs: number, maxMs = 60_000): Promise<number> {
  const started = Date.now()
  await sleep(minMs)
  let quiet = 0
  while (quiet < 2 && Date.now() - started < maxMs) {
    const before = engineCpu(bench.enginePids)
    await sleep(1000)
    quiet = engineCpu(bench.enginePids) - before < 0.15 ? quiet + 1 : 0
  }
  return Date.now() - started
}

const TICKS = 100
/** CPU seconds all cores spent busy so far (/proc/stat, in USER_HZ ticks of 1/100 s). */
function busySeconds (): number {
  return coreTimes().reduce((sum, [busy = 0]) => sum + busy, 0) / TICKS
}

/** CPU seconds of this process and of its children it waited for (curl, the direct uploader, the load generator). */
function ownSeconds (): number {
  const text = readFileSync('/proc/self/stat', 'utf8')
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ').map(Number)
  // utime, stime, cutime, cstime: fields 14-17 of the line, 11-14 after "pid (comm) ".
  return ((fields[11] ?? 0) + (fields[12] ?? 0) + (fields[13] ?? 0) + (fields[14] ?? 0)) / TICKS
}

/**
 * The CPU time other processes took while a run went on: all cores' busy
 * time, minus this process and its children, minus the `others` it names
 * (the service, the engine), in seconds. A run with several seconds of it
 * shared the machine with someone else's work.
 */
export function foreignCpu (): (known: number) => number {
  const [busy, own] = [busySeconds(), ownSeconds()]
  return (known) => Math.max(0, busySeconds() - busy - (ownSeconds() - own) - known)
}
