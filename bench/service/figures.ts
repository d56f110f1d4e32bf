// The service suite's figures, one function per step of the run, each
// returning plain data (service/report.ts turns it into tables; bench/README.md
// says what each figure means):
// - bigUploads: (1) the service's PUT, the bare servers, the references;
//   (3) multipart; and the loopback ceiling and receiving cost of (2). One
//   function, because its kinds take turns within each round.
// - ceilings: the rest of (2): disk, page cache, SHA-256.
// - peakRss: (4).
// - smallUploads: (5).
import { rmSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { cpuOf, memoryOf } from '../lib/cpu.js'
import type { Machine } from '../lib/cpu.js'
import { curl } from '../lib/curl.js'
import type { CurlResult } from '../lib/curl.js'
import { generate } from '../lib/load.js'
import type { LoadResult } from '../lib/load.js'
import { log, run, runNodeJson } from '../lib/proc.js'
import { f0, f1, f2, sizeName } from '../lib/report.js'
import { checkBackground, checkDeadline, freeBytes, syncDisk } from './context.js'
import type { Bench, Plan, Source } from './context.js'
import { AUTH, deleteStored, gcOf, startService, stop, storedSizes } from './servers.js'
import type { Server } from './servers.js'

export const bigKinds = ['service PUT', 'bare pipe PUT', 'bare sha256 PUT', 'bare sha256 large-buffers PUT', 'service multipart POST', 'loopback (discard)'] as const
export type BigKind = typeof bigKinds[number]

export interface BigRun {
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

const mbps = (bytes: number, seconds: number): number => bytes / seconds / 1e6
const answerOf = (result: CurlResult): Record<string, unknown> | null => {
  try {
    return JSON.parse(result.body) as Record<string, unknown>
  } catch {
    return null
  }
}

/** Each figure's number in the tables, for the background samples. */
const figureOf = (kind: BigKind): string => kind === 'loopback (discard)' ? '2' : kind === 'service multipart POST' ? '3' : '1'

async function bigOne (bench: Bench, service: Server, kind: BigKind, round: number): Promise<BigRun> {
  const { big: source } = bench.sources
  const target = kind === 'service PUT' || kind === 'service multipart POST'
    ? service
    : { 'bare pipe PUT': bench.bare.pipe, 'bare sha256 PUT': bench.bare.sha256, 'bare sha256 large-buffers PUT': bench.bare['sha256-large'], 'loopback (discard)': bench.bare.discard }[kind]
  const name = `big-${round}`
  const curlArgs = kind === 'service multipart POST'
    ? ['-H', `Authorization: ${AUTH}`, '-F', `file=@${source.path};filename=${name};type=application/octet-stream`, `http://127.0.0.1:${target.port}/files`]
    : kind === 'service PUT'
      ? ['-H', `Authorization: ${AUTH}`, '-H', 'Content-Type: application/octet-stream', '-T', source.path, `http://127.0.0.1:${target.port}/files/${name}`]
      : ['-T', source.path, `http://127.0.0.1:${target.port}/${name}`]
  const before = cpuOf(target.pid)
  const gcBefore = gcOf(target)
  const result = await curl(bench.split, curlArgs, 120)
  const after = cpuOf(target.pid)
  // The probe writes its totals once the GC entries are delivered, just after the GC.
  await sleep(50)
  const gcAfter = gcOf(target)
  const figure: BigRun = {
    mbps: mbps(source.bytes, result.seconds),
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
  const json = answerOf(result)
  const info = kind === 'service multipart POST' ? (json?.files as Array<Record<string, unknown>> | undefined)?.[0] : json
  const wrong: string[] = []
  if (result.error !== null) wrong.push(result.error)
  if (result.status !== 201) wrong.push(`status ${result.status}: ${result.body.slice(0, 300)}`)
  if (result.uploaded < source.bytes) wrong.push(`curl uploaded ${result.uploaded} B`)
  if (info?.size !== source.bytes) wrong.push(`answer says size ${String(info?.size)}`)
  if (kind !== 'bare pipe PUT' && kind !== 'loopback (discard)' && info?.sha256 !== source.sha256) wrong.push(`answer says sha256 ${String(info?.sha256)}`)
  if (target === service) {
    const sizes = storedSizes(service)
    if (sizes.length !== 1 || sizes[0] !== source.bytes) wrong.push(`stored data files: ${JSON.stringify(sizes)}`)
    if (result.status === 201) await deleteStored(bench, service, name)
  } else if (kind !== 'loopback (discard)') {
    const path = join(target.dir, name)
    try {
      const size = statSync(path).size
      if (size !== source.bytes) wrong.push(`file on disk has ${size} B`)
    } catch {
      wrong.push('no file on disk')
    }
    rmSync(path, { force: true })
  }
  if (wrong.length > 0) bench.problems.push(`${kind}, round ${round}: ${wrong.join('; ')}`)
  figure.ok = wrong.length === 0
  await syncDisk(bench)
  return figure
}

/** (1), (3) and the loopback of (2): each kind once per round, a different kind first in each round. */
export async function bigUploads (bench: Bench): Promise<Record<BigKind, BigRun[]>> {
  const service = await startService(bench, 'big')
  const runs = Object.fromEntries(bigKinds.map((kind) => [kind, [] as BigRun[]])) as Record<BigKind, BigRun[]>
  for (let round = 1; round <= bench.plan.rounds; round++) {
    // A different kind goes first in each round, so that a drift in the machine hits each alike.
    const order = [...bigKinds.slice(round - 1), ...bigKinds.slice(0, round - 1)]
    for (const kind of order) {
      checkDeadline(bench, `${kind}, round ${round}`)
      await checkBackground(bench, figureOf(kind))
      const figure = await bigOne(bench, service, kind, round)
      runs[kind].push(figure)
      log(`[${sizeName(bench.plan.big)}] round ${round} ${kind}: ${f0(figure.mbps)} MB/s in ${f2(figure.seconds)} s, server CPU ${f2(figure.cpu)} s (main thread ${f2(figure.mainCpu)} s), ` +
        `GC ${figure.majorGc} mark-compact + ${figure.minorGc} scavenge, ${f0(figure.gcMs)} ms of pauses${figure.ok ? '' : ' FAILED'}`)
    }
  }
  await stop(service)
  rmSync(service.dir, { recursive: true, force: true })
  return runs
}

export interface Ceilings {
  /** MB/s of `dd if=/dev/zero bs=4M count=<ddBlocks>`, with conv=fsync and without (the page cache). */
  ddBlocks: number
  ddFsync: number[]
  ddCache: number[]
  /** MB/s of node:crypto's SHA-256 over data in memory. */
  sha256: number[]
}

/** (2): the disk, the page cache and SHA-256, each pinned to the server core. */
export async function ceilings (bench: Bench): Promise<Ceilings> {
  checkDeadline(bench, 'the ceilings')
  await checkBackground(bench, '2')
  const { big } = bench.plan
  const result: Ceilings = { ddBlocks: big / (4 * 1024 * 1024), ddFsync: [], ddCache: [], sha256: [] }
  const ddFile = join(bench.tmp, 'dd.bin')
  for (let i = 0; i < bench.plan.rounds; i++) {
    for (const mode of ['fsync', 'cache'] as const) {
      const done = await run(...bench.split.on('server', 'dd', ['if=/dev/zero', `of=${ddFile}`, 'bs=4M', `count=${result.ddBlocks}`, ...(mode === 'fsync' ? ['conv=fsync'] : [])]),
        { timeoutMs: 120_000, env: { ...process.env, LC_ALL: 'C' } })
      const match = /copied, ([\d.]+) s/.exec(done.stderr)
      const seconds = match === null ? done.ms / 1000 : Number(match[1])
      if (done.code !== 0) bench.problems.push(`dd (${mode}) failed: ${done.stderr.trim()}`)
      result[mode === 'fsync' ? 'ddFsync' : 'ddCache'].push(mbps(big, seconds))
      rmSync(ddFile, { force: true })
      await syncDisk(bench)
    }
  }
  log(`[ceiling] disk (dd conv=fsync): ${result.ddFsync.map(f0).join(', ')} MB/s; page cache (dd, no fsync): ${result.ddCache.map(f0).join(', ')} MB/s`)
  try {
    result.sha256 = await runNodeJson<number[]>(bench.split, 'server', join(dirname(fileURLToPath(import.meta.url)), 'sha256-ceiling.js'), [String(big), String(bench.plan.rounds)], 60_000)
  } catch (error) {
    bench.problems.push(`the SHA-256 ceiling failed: ${(error as Error).message}`)
  }
  log(`[ceiling] SHA-256 (node:crypto, ${sizeName(big)} in memory): ${result.sha256.map(f0).join(', ')} MB/s`)
  return result
}

export interface RssFigure {
  /** Size of each of the concurrent uploads. */
  bytes: number
  /** VmHWM after start-up, and at the end. */
  startRss: number
  peak: number
  seconds: number
  mbps: number
  majorGc: number
  ok: boolean
}

/** (4): peak RSS of a fresh service after concurrent PUTs of each source. */
export async function peakRss (bench: Bench): Promise<RssFigure[]> {
  const { concurrent } = bench.plan
  const figures: RssFigure[] = []
  const needed = (concurrent + 1) * bench.plan.big
  for (const source of [bench.sources.small, bench.sources.medium, bench.sources.big]) {
    const label = sizeName(source.bytes)
    checkDeadline(bench, `peak RSS (${label})`)
    if (freeBytes(bench.tmp) < needed) {
      bench.problems.push(`peak RSS with ${concurrent} × ${label} skipped: ${f1(freeBytes(bench.tmp) / 2 ** 30)} GiB free, it needs ${f1(needed / 2 ** 30)}`)
      continue
    }
    await checkBackground(bench, '4')
    figures.push(await rssOne(bench, source, concurrent))
  }
  return figures
}

async function rssOne (bench: Bench, source: Source, concurrent: number): Promise<RssFigure> {
  const label = sizeName(source.bytes)
  const fresh = await startService(bench, `rss-${label.replace(' ', '')}`)
  const gcBefore = gcOf(fresh)
  const startRss = memoryOf(fresh.pid, 'VmHWM')
  const started = process.hrtime.bigint()
  const results = await Promise.all(Array.from({ length: concurrent }, async (_, i) => await curl(bench.split, [
    '-H', `Authorization: ${AUTH}`, '-H', 'Content-Type: application/octet-stream', '-T', source.path, `http://127.0.0.1:${fresh.port}/files/rss-${i}`
  ], 120)))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const peak = memoryOf(fresh.pid, 'VmHWM')
  await sleep(50)
  const gc = gcOf(fresh)
  let ok = true
  for (const [i, result] of results.entries()) {
    const info = answerOf(result)
    if (result.status !== 201 || info?.size !== source.bytes || info.sha256 !== source.sha256) {
      ok = false
      bench.problems.push(`peak RSS ${label}, upload ${i}: status ${result.status}, ${result.error ?? result.body.slice(0, 300)}`)
    }
  }
  const sizes = storedSizes(fresh)
  if (sizes.length !== concurrent || sizes.some((size) => size !== source.bytes)) {
    ok = false
    bench.problems.push(`peak RSS ${label}: stored data files ${JSON.stringify(sizes)}`)
  }
  await stop(fresh)
  rmSync(fresh.dir, { recursive: true, force: true })
  await syncDisk(bench)
  const majorGc = gc.major.count - gcBefore.major.count
  log(`[rss] ${concurrent} × ${label}: VmHWM ${f0(peak / 1e6)} MB (${f0(startRss / 1e6)} MB after start-up), ${f2(seconds)} s, ${majorGc} mark-compacts`)
  return { bytes: source.bytes, startRss, peak, seconds, mbps: mbps(concurrent * source.bytes, seconds), majorGc, ok }
}

/** A run of small uploads, its rate counting verified answers only, and the server's CPU time (all threads) per verified upload, in ms. */
export type SmallRun = LoadResult & { perSecond: number, cpuMsPerUpload: number }

export interface SmallFigure {
  /** The service's rounds, without and with Expect: 100-continue. */
  service: { plain: SmallRun[], expect: SmallRun[] }
  /** The bare servers, without Expect, in the same rounds: pipe (no fsync, no hash) and durable (SHA-256, fdatasync, rename, directory fsync). */
  bare: { pipe: SmallRun[], durable: SmallRun[] }
  /** The service's VmHWM at the end. */
  serviceRss: number
}

async function smallLoad (bench: Bench, server: Server, pathPrefix: string, expect: boolean, count: number): Promise<SmallRun> {
  const { plan } = bench
  const bare = server === bench.bare.pipe || server === bench.bare.durable
  const before = cpuOf(server.pid)
  const result = await generate(bench.split, {
    mode: 'keepalive',
    port: server.port,
    path: pathPrefix,
    numbered: true,
    headers: bare ? { 'Content-Type': 'application/octet-stream' } : { Authorization: AUTH, 'Content-Type': 'application/octet-stream' },
    bodyBytes: plan.smallBytes,
    expect,
    connections: plan.smallConnections,
    durationMs: 60_000,
    count,
    expectStatus: 201,
    checkSize: true,
    timeoutMs: 10_000
  })
  if (result.ok !== count) {
    bench.problems.push(`${server.label}, ${count} × ${sizeName(plan.smallBytes)} ${expect ? 'with' : 'without'} Expect: ${result.ok} verified 201s; ` +
      `statuses ${JSON.stringify(result.statuses)}, errors ${JSON.stringify(result.errors)}`)
  }
  const cpuMsPerUpload = (cpuOf(server.pid).total - before.total) * 1000 / Math.max(1, result.ok)
  return { ...result, perSecond: result.ok / result.seconds, cpuMsPerUpload }
}

/**
 * (5): a fresh service, a warm-up (of the bare servers too), then rounds,
 * each upload to a new name: in each, the service without and with Expect
 * (alternated), the bare pipe server and the bare durable one, side by
 * side, so that the ratios compare runs made moments apart.
 */
export async function smallUploads (bench: Bench): Promise<SmallFigure> {
  const { plan } = bench
  checkDeadline(bench, 'the small uploads')
  const service = await startService(bench, 'small')
  await smallLoad(bench, service, '/files/warm/', false, plan.smallWarmup)
  await smallLoad(bench, bench.bare.pipe, '/small-warm-', false, plan.smallWarmup)
  await smallLoad(bench, bench.bare.durable, '/small-warm-', false, plan.smallWarmup)
  const runs = { plain: [] as SmallRun[], expect: [] as SmallRun[] }
  const bare = { pipe: [] as SmallRun[], durable: [] as SmallRun[] }
  for (let round = 1; round <= plan.rounds; round++) {
    const order = round % 2 === 1 ? (['plain', 'expect'] as const) : (['expect', 'plain'] as const)
    for (const mode of order) {
      checkDeadline(bench, 'the small uploads')
      await checkBackground(bench, '5')
      const result = await smallLoad(bench, service, `/files/r${round}-${mode}/`, mode === 'expect', plan.smallCount)
      runs[mode].push(result)
      log(`[small] round ${round} ${mode === 'expect' ? 'Expect: 100-continue' : 'no Expect'}: ${f0(result.perSecond)}/s, p50 ${f1(result.p50Ms)} ms, p99 ${f1(result.p99Ms)} ms, ` +
        `${result.ok}/${plan.smallCount} verified, 100s ${result.continues}, connections ${result.connects}`)
    }
    bare.pipe.push(await smallLoad(bench, bench.bare.pipe, `/small-r${round}-`, false, plan.smallCount))
    bare.durable.push(await smallLoad(bench, bench.bare.durable, `/small-r${round}-`, false, plan.smallCount))
    log(`[small] round ${round} bare pipe ${f0(bare.pipe.at(-1)?.perSecond ?? 0)}/s, bare durable ${f0(bare.durable.at(-1)?.perSecond ?? 0)}/s`)
  }
  const stored = storedSizes(service)
  const expected = plan.smallWarmup + 2 * plan.rounds * plan.smallCount
  if (stored.length !== expected || stored.some((size) => size !== plan.smallBytes)) {
    bench.problems.push(`small uploads: ${stored.length} files stored (expected ${expected} of ${plan.smallBytes} B)`)
  }
  const serviceRss = memoryOf(service.pid, 'VmHWM')
  await stop(service)
  rmSync(service.dir, { recursive: true, force: true })
  return { service: runs, bare, serviceRss }
}

/** The results file of the suite. */
export interface ServiceResults {
  suite: 'service'
  machine: Machine
  command: string
  plan: Plan
  pinned: boolean
  /** How the service was started: `node <flags> dist/server.js`, and the flags added by --service-node-args. */
  serviceCommand: string
  serviceNodeArgs: string[]
  logLevel: string
  curl: string
  tmpdir: string
  freeAtStart: number
  freeAtEnd: number
  /** Bytes of the large source in the page cache before the first upload (fincore; NaN without it). */
  cached: number
  /** Core load from other processes at the start, and the highest before each figure. */
  background: number[]
  backgroundByFigure: Record<string, number[]>
  big: Record<BigKind, BigRun[]>
  ceilings: Ceilings
  rss: RssFigure[]
  small: SmallFigure
  problems: string[]
  seconds: number
}
