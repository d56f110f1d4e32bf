// The S3 suite's upload figures, each returning plain data (s3-report.ts
// makes the tables; bench/README.md says what they mean):
// - s3Put: (1) PUT of 1 GiB through the service on S3 (curl -T) against a
//   direct @aws-sdk/lib-storage Upload of the same file to the same engine,
//   alternated in rounds.
// - s3PeakRss: (2) the service's peak RSS during concurrent 1 GiB uploads.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuOf, memoryOf } from '../lib/cpu.js'
import { curl } from '../lib/curl.js'
import type { CurlResult } from '../lib/curl.js'
import { log, runNodeJson } from '../lib/proc.js'
import { f0, f1, f2, sizeName } from '../lib/report.js'
import type { Source } from './context.js'
import { checkBackground, checkDeadline, foreignCpu, releasePrefix, settleEngine, takePrefix } from './s3-context.js'
import type { S3Bench } from './s3-context.js'
import type { DirectConfig, DirectResult } from './s3-direct.js'
import { engineCpu, SERVICE_PART_SIZE, SERVICE_QUEUE_SIZE, serviceS3Env } from './s3-engine.js'
import { AUTH, startServiceWith, stop } from './servers.js'
import type { Server } from './servers.js'

const here = dirname(fileURLToPath(import.meta.url))
const mbps = (bytes: number, seconds: number): number => bytes / seconds / 1e6

export type PutSide = 'service' | 'direct'

export interface PutRun {
  side: PutSide
  round: number
  mbps: number
  seconds: number
  /** CPU seconds of the uploading process (the service, or the direct uploader), of the client (curl; 0 for direct) and of the engine's processes. */
  cpu: number
  clientCpu: number
  engineCpu: number
  /** CPU seconds other processes took on the machine meanwhile (s3-context.ts foreignCpu). */
  foreignCpu: number
  /** Its round counts: both runs of the round were verified and had others take at most the plan's foreignLimit. */
  counted: boolean
  ok: boolean
}

export interface PutFigure {
  partSize: number
  queueSize: number
  runs: PutRun[]
  /** service MB/s / direct MB/s, round by round, of the rounds that count. */
  ratios: number[]
  /** The same, of the rounds set aside because other processes took more than foreignLimit CPU seconds in one of their runs. */
  setAside: number[]
  /** Seconds waited after each upload for the engine to settle (its garbage collection). */
  settleSeconds: number[]
}

function answerOf (result: CurlResult): Record<string, unknown> | null {
  try {
    return JSON.parse(result.body) as Record<string, unknown>
  } catch {
    return null
  }
}

/** Checks a service's answer to a PUT of `source`: 201, size and SHA-256. Returns what is wrong. */
function wrongAnswer (result: CurlResult, source: Source): string[] {
  const info = answerOf(result)
  const wrong: string[] = []
  if (result.error !== null) wrong.push(result.error)
  if (result.status !== 201) wrong.push(`status ${result.status}: ${result.body.slice(0, 300)}`)
  if (result.uploaded < source.bytes) wrong.push(`curl uploaded ${result.uploaded} B`)
  if (info?.size !== source.bytes) wrong.push(`answer says size ${String(info?.size)}`)
  if (info?.sha256 !== source.sha256) wrong.push(`answer says sha256 ${String(info?.sha256)}`)
  return wrong
}

async function deleteFile (bench: S3Bench, server: Server, name: string): Promise<void> {
  const answer = await fetch(`http://127.0.0.1:${server.port}/files/${name}`, { method: 'DELETE', headers: { authorization: AUTH }, signal: AbortSignal.timeout(60_000) })
  if (answer.status !== 204) bench.problems.push(`DELETE /files/${name} answered ${answer.status}`)
}

async function servicePut (bench: S3Bench, service: Server, source: Source, name: string): Promise<{ result: CurlResult, cpu: number, engine: number, wrong: string[] }> {
  const before = cpuOf(service.pid).total
  const engineBefore = engineCpu(bench.enginePids)
  const result = await curl(bench.split, ['-H', `Authorization: ${AUTH}`, '-H', 'Content-Type: application/octet-stream', '-T', source.path,
    `http://127.0.0.1:${service.port}/files/${name}`], 900)
  const cpu = cpuOf(service.pid).total - before
  const engine = engineCpu(bench.enginePids) - engineBefore
  const wrong = wrongAnswer(result, source)
  if (result.status === 201) await deleteFile(bench, service, name)
  return { result, cpu, engine, wrong }
}

async function directPut (bench: S3Bench, source: Source, key: string): Promise<{ result: DirectResult | null, engine: number, wrong: string[] }> {
  const config: DirectConfig = { file: source.path, key, partSize: SERVICE_PART_SIZE, queueSize: SERVICE_QUEUE_SIZE }
  const engineBefore = engineCpu(bench.enginePids)
  try {
    // On the server core: it does the service's part of the work (the upload to the engine), without HTTP and hashing.
    const result = await runNodeJson<DirectResult>(bench.split, 'server', join(here, 's3-direct.js'), [JSON.stringify(config)], 900_000)
    const wrong = result.storedBytes === source.bytes ? [] : [`HeadObject says ${result.storedBytes} B`]
    return { result, engine: engineCpu(bench.enginePids) - engineBefore, wrong }
  } catch (error) {
    return { result: null, engine: Number.NaN, wrong: [(error as Error).message.slice(0, 500)] }
  }
}

async function putOne (bench: S3Bench, service: Server, prefix: string, side: PutSide, round: number, source: Source): Promise<PutRun> {
  const foreign = foreignCpu()
  if (side === 'service') {
    const { result, cpu, engine, wrong } = await servicePut(bench, service, source, `put-${round}`)
    if (wrong.length > 0) bench.problems.push(`(1) service PUT, round ${round}: ${wrong.join('; ')}`)
    return { side, round, mbps: mbps(source.bytes, result.seconds), seconds: result.seconds, cpu, clientCpu: result.cpu, engineCpu: engine, foreignCpu: foreign(cpu + engine), counted: false, ok: wrong.length === 0 }
  }
  const { result, engine, wrong } = await directPut(bench, source, `${prefix}direct/put-${round}`)
  if (wrong.length > 0) bench.problems.push(`(1) direct Upload, round ${round}: ${wrong.join('; ')}`)
  const seconds = result?.seconds ?? Number.NaN
  return { side, round, mbps: mbps(source.bytes, seconds), seconds, cpu: result?.cpu ?? Number.NaN, clientCpu: 0, engineCpu: engine, foreignCpu: foreign(engine), counted: false, ok: wrong.length === 0 }
}

/**
 * (1): the service's PUT against the direct Upload, alternated (the side
 * going first alternates too), after one warm-up upload each. A round in
 * which other processes took more than the plan's `foreignLimit` CPU
 * seconds during either run is set aside and another one run, up to
 * `extraRounds` more: on a shared machine, someone's test suite starting
 * halves a rate.
 */
export async function s3Put (bench: S3Bench): Promise<PutFigure> {
  const prefix = takePrefix(bench)
  const service = await startServiceWith({ split: bench.split, tmp: bench.tmp, label: 's3-put', env: serviceS3Env(bench.engine, prefix), maxUploadBytes: bench.plan.maxUploadBytes, logLevel: bench.logLevel })
  const figure: PutFigure = { partSize: SERVICE_PART_SIZE, queueSize: SERVICE_QUEUE_SIZE, runs: [], ratios: [], setAside: [], settleSeconds: [] }
  try {
    for (const side of ['service', 'direct'] as const) {
      const warm = await putOne(bench, service, prefix, side, 0, bench.sources.warmup)
      log(`[s3 put] warm-up ${side} (${sizeName(bench.sources.warmup.bytes)}): ${f0(warm.mbps)} MB/s${warm.ok ? '' : ' FAILED'}`)
    }
    figure.settleSeconds.push(await settleEngine(bench, 12_000) / 1000)
    for (let round = 1; figure.ratios.length < bench.plan.rounds && round <= bench.plan.rounds + bench.plan.extraRounds; round++) {
      const order: PutSide[] = round % 2 === 1 ? ['service', 'direct'] : ['direct', 'service']
      const byside: Partial<Record<PutSide, PutRun>> = {}
      for (const side of order) {
        checkDeadline(bench, `(1) ${side}, round ${round}`)
        await checkBackground(bench, '1')
        const run = await putOne(bench, service, prefix, side, round, bench.sources.big)
        byside[side] = run
        figure.runs.push(run)
        log(`[s3 put] round ${round} ${side}: ${f0(run.mbps)} MB/s in ${f2(run.seconds)} s, ${side} CPU ${f2(run.cpu)} s${side === 'service' ? `, curl ${f2(run.clientCpu)} s` : ''}, ` +
          `engine CPU ${f1(run.engineCpu)} s, other processes ${f1(run.foreignCpu)} s${run.ok ? '' : ' FAILED'}`)
        // Deleted at once: the engine reclaims the space before the next run, not during it.
        figure.settleSeconds.push(await settleEngine(bench, 12_000) / 1000)
      }
      const { service: one, direct: other } = byside
      if (one?.ok !== true || other?.ok !== true) continue
      const counted = one.foreignCpu <= bench.plan.foreignLimit && other.foreignCpu <= bench.plan.foreignLimit
      one.counted = other.counted = counted
      ;(counted ? figure.ratios : figure.setAside).push(one.mbps / other.mbps)
      if (!counted) log(`[s3 put] round ${round} set aside: other processes took more than ${bench.plan.foreignLimit} CPU s during it`)
    }
  } finally {
    await stop(service)
    await releasePrefix(bench, prefix)
  }
  return figure
}

export interface RssFigure {
  concurrent: number
  bytes: number
  /** VmHWM after start-up, and at the end; the highest VmRSS sampled every 100 ms. */
  startRss: number
  peak: number
  sampledPeak: number
  seconds: number
  /** All uploads' bytes over the time they took together. */
  mbps: number
  cpu: number
  /** CPU seconds other processes took on the machine meanwhile. */
  foreignCpu: number
  ok: boolean
}

/** (2): a fresh service on S3, `concurrent` PUTs of the big source at once; VmHWM from /proc/<pid>/status. */
export async function s3PeakRss (bench: S3Bench): Promise<RssFigure> {
  checkDeadline(bench, '(2)')
  const { concurrent } = bench.plan
  const source = bench.sources.big
  const prefix = takePrefix(bench)
  const service = await startServiceWith({ split: bench.split, tmp: bench.tmp, label: 's3-rss', env: serviceS3Env(bench.engine, prefix), maxUploadBytes: bench.plan.maxUploadBytes, logLevel: bench.logLevel })
  try {
    await checkBackground(bench, '2')
    const startRss = memoryOf(service.pid, 'VmHWM')
    const cpuBefore = cpuOf(service.pid).total
    const engineBefore = engineCpu(bench.enginePids)
    const foreign = foreignCpu()
    let sampledPeak = memoryOf(service.pid, 'VmRSS')
    const sampler = setInterval(() => { sampledPeak = Math.max(sampledPeak, memoryOf(service.pid, 'VmRSS')) }, 100)
    const started = process.hrtime.bigint()
    const results = await Promise.all(Array.from({ length: concurrent }, async (_, i) => await curl(bench.split, [
      '-H', `Authorization: ${AUTH}`, '-H', 'Content-Type: application/octet-stream', '-T', source.path, `http://127.0.0.1:${service.port}/files/rss-${i}`
    ], 1800)))
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    clearInterval(sampler)
    const peak = memoryOf(service.pid, 'VmHWM')
    const cpu = cpuOf(service.pid).total - cpuBefore
    const foreignSeconds = foreign(cpu + engineCpu(bench.enginePids) - engineBefore)
    let ok = true
    for (const [i, result] of results.entries()) {
      const wrong = wrongAnswer(result, source)
      if (wrong.length > 0) {
        ok = false
        bench.problems.push(`(2) upload ${i}: ${wrong.join('; ')}`)
      } else {
        await deleteFile(bench, service, `rss-${i}`)
      }
    }
    log(`[s3 rss] ${concurrent} × ${sizeName(source.bytes)}: VmHWM ${f0(peak / 1e6)} MB (${f0(startRss / 1e6)} MB after start-up; sampled VmRSS peak ${f0(sampledPeak / 1e6)} MB), ` +
      `${f2(seconds)} s, ${f0(mbps(concurrent * source.bytes, seconds))} MB/s in all, other processes ${f1(foreignSeconds)} CPU s${ok ? '' : ' FAILED'}`)
    return { concurrent, bytes: source.bytes, startRss, peak, sampledPeak, seconds, mbps: mbps(concurrent * source.bytes, seconds), cpu, foreignCpu: foreignSeconds, ok }
  } finally {
    await stop(service)
    await releasePrefix(bench, prefix)
    await settleEngine(bench, 12_000)
  }
}
