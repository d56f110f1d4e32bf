// The replica suite's figures (replicas.ts runs them), each returning plain
// data (replicas-report.ts makes the tables; bench/README.md says what they
// mean): small uploads through HAProxy and two replicas against one replica
// direct (alternated rounds); refusals through HAProxy that cost no body
// byte; and what a graceful shutdown of a replica with uploads in flight
// costs.
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { upload } from '../lib/client.js'
import { cpuOf } from '../lib/cpu.js'
import { requestHead } from '../lib/http.js'
import { generate } from '../lib/load.js'
import type { LoadResult } from '../lib/load.js'
import type { CpuSplit } from '../lib/proc.js'
import { log } from '../lib/proc.js'
import { f0, f1, f2, sizeName } from '../lib/report.js'
import { median } from '../lib/stats.js'
import { serverStates } from './haproxy.js'
import type { Proxy } from './haproxy.js'
import { pacedPut, probeUntil } from './paced.js'
import { checkBackground, foreignCpu } from './s3-context.js'
import { enginePids } from './s3-engine.js'
import { AUTH } from './servers.js'
import type { Server } from './servers.js'

export interface ReplicaPlan {
  quick: boolean
  rounds: number
  uploads: number
  warmup: number
  bytes: number
  connections: number
  refusals: number
  /** Uploads in flight at the SIGTERM, their size and rate, and when the SIGTERM comes after they start. */
  inFlight: number
  inFlightBytes: number
  inFlightRate: number
  termAfterMs: number
  /** Clients sending new uploads through HAProxy one after the other during the shutdown. */
  proxyStreams: number
  /** The replicas' SHUTDOWN_DELAY_MS, as docker-compose.yml sets it. */
  shutdownDelayMs: number
  maxUploadBytes: number
}

export function replicaPlan (quick: boolean): ReplicaPlan {
  return {
    quick,
    rounds: quick ? 2 : 3,
    uploads: quick ? 300 : 1000,
    warmup: quick ? 100 : 200,
    bytes: 64 * 1024,
    connections: 32,
    refusals: quick ? 5 : 20,
    inFlight: 10,
    // 10 s at 4 MB/s: past the shutdown delay, so that the grace is what they finish in.
    inFlightBytes: 40_000_000,
    inFlightRate: 4_000_000,
    termAfterMs: 1500,
    proxyStreams: 4,
    shutdownDelayMs: 5000,
    maxUploadBytes: 2 * 1024 ** 3
  }
}

export interface ReplicaBench {
  plan: ReplicaPlan
  split: CpuSplit
  background: Record<string, number[]>
  problems: string[]
}

export type Route = 'haproxy' | 'direct'
export type SmallRun = LoadResult & {
  route: Route
  round: number
  perSecond: number
  /** CPU milliseconds per upload: the replicas (both), HAProxy, the engine's processes. */
  replicaCpuMs: number
  proxyCpuMs: number
  engineCpuMs: number
  /** CPU seconds other processes took on the machine meanwhile (s3-context.ts foreignCpu). */
  foreignCpu: number
}

export interface ThroughputFigure {
  runs: SmallRun[]
  /** haproxy / direct uploads per second, round by round. */
  ratios: number[]
}

async function smallLoad (bench: ReplicaBench, port: number, path: string, count: number): Promise<LoadResult> {
  const { plan } = bench
  const result = await generate(bench.split, {
    mode: 'keepalive',
    port,
    path,
    numbered: true,
    headers: { Authorization: AUTH, 'Content-Type': 'application/octet-stream' },
    bodyBytes: plan.bytes,
    expect: false,
    connections: plan.connections,
    durationMs: 300_000,
    count,
    expectStatus: 201,
    checkSize: true,
    timeoutMs: 30_000
  })
  if (result.ok !== count) {
    bench.problems.push(`${count} × ${sizeName(plan.bytes)} to ${path}: ${result.ok} verified 201s; statuses ${JSON.stringify(result.statuses)}, errors ${JSON.stringify(result.errors)}`)
  }
  return result
}

const cpuMs = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + (cpuOf(pid).total || 0), 0) * 1000

/** (4a): the same uploads through HAProxy (two replicas) and to one replica direct, alternated, each to new names. */
export async function throughput (bench: ReplicaBench, proxy: Proxy, replicas: readonly Server[], direct: Server): Promise<ThroughputFigure> {
  const engine = enginePids()
  const replicaPids = replicas.map((replica) => replica.pid)
  const proxyPid = [proxy.child.pid ?? 0]
  const ports: Record<Route, number> = { haproxy: proxy.port, direct: direct.port }
  for (const route of ['haproxy', 'direct'] as const) await smallLoad(bench, ports[route], `/files/warm-${route}/`, bench.plan.warmup)
  const figure: ThroughputFigure = { runs: [], ratios: [] }
  for (let round = 1; round <= bench.plan.rounds; round++) {
    const order: Route[] = round % 2 === 1 ? ['haproxy', 'direct'] : ['direct', 'haproxy']
    const rates: Partial<Record<Route, number>> = {}
    for (const route of order) {
      await checkBackground(bench, '4a')
      const before = [cpuMs(replicaPids), cpuMs(proxyPid), cpuMs(engine)]
      const foreign = foreignCpu()
      const result = await smallLoad(bench, ports[route], `/files/r${round}-${route}/`, bench.plan.uploads)
      const [replicaCpuMs, proxyCpuMs, engineCpuMs] = [cpuMs(replicaPids), cpuMs(proxyPid), cpuMs(engine)].map((after, i) => (after - (before[i] ?? 0)) / bench.plan.uploads) as [number, number, number]
      const foreignSeconds = foreign((replicaCpuMs + proxyCpuMs + engineCpuMs) * bench.plan.uploads / 1000)
      const run: SmallRun = { ...result, route, round, perSecond: result.ok / result.seconds, replicaCpuMs, proxyCpuMs, engineCpuMs, foreignCpu: foreignSeconds }
      figure.runs.push(run)
      rates[route] = run.perSecond
      log(`[replicas] round ${round} ${route}: ${f0(run.perSecond)} uploads/s, p50 ${f1(run.p50Ms)} ms, p99 ${f1(run.p99Ms)} ms, ${run.ok}/${bench.plan.uploads} verified, ` +
        `CPU per upload: replicas ${f2(replicaCpuMs)} ms, HAProxy ${f2(proxyCpuMs)} ms, engine ${f2(engineCpuMs)} ms; other processes ${f1(foreignSeconds)} CPU s`)
    }
    if (rates.haproxy !== undefined && rates.direct !== undefined) figure.ratios.push(rates.haproxy / rates.direct)
  }
  return figure
}

export interface RefusalCase {
  name: string
  expected: number
  /** By final status ("0": no answer). */
  statuses: Record<string, number>
  /** Samples that saw a 100 Continue. */
  continues: number
  /** The most body bytes any sample sent, and in all. */
  maxBodyBytes: number
  totalBodyBytes: number
  /** Head written to final answer's head, median, ms. */
  medianMs: number
}

/** (4b): uploads with Expect: 100-continue that the replica refuses from their headers, through HAProxy, each on a fresh connection. */
export async function refusals (bench: ReplicaBench, proxy: Proxy): Promise<RefusalCase[]> {
  const declared = 5_000_000
  const cases: Array<{ name: string, expected: number, headers: Record<string, string | number>, bodyBytes: number }> = [
    { name: 'no token', expected: 401, headers: { 'Content-Length': declared, Expect: '100-continue' }, bodyBytes: declared },
    { name: 'declared size over the limit', expected: 413, headers: { Authorization: AUTH, 'Content-Length': bench.plan.maxUploadBytes + 1, Expect: '100-continue' }, bodyBytes: bench.plan.maxUploadBytes + 1 }
  ]
  const out: RefusalCase[] = []
  for (const item of cases) {
    const statuses: Record<string, number> = {}
    const times: number[] = []
    let continues = 0
    let maxBodyBytes = 0
    let totalBodyBytes = 0
    for (let i = 0; i < bench.plan.refusals; i++) {
      const result = await upload({ port: proxy.port, head: requestHead('PUT', `/files/refused-${i}`, item.headers), bodyBytes: item.bodyBytes, timeoutMs: 10_000 })
      statuses[String(result.status)] = (statuses[String(result.status)] ?? 0) + 1
      if (result.informational.includes(100)) continues++
      maxBodyBytes = Math.max(maxBodyBytes, result.bodyBytesBeforeAnswer)
      totalBodyBytes += result.bodyBytesBeforeAnswer
      if (result.status !== 0) times.push(result.timeToAnswerNs / 1e6)
    }
    if ((statuses[String(item.expected)] ?? 0) !== bench.plan.refusals || maxBodyBytes > 0 || continues > 0) {
      bench.problems.push(`refusal "${item.name}" through HAProxy: statuses ${JSON.stringify(statuses)}, ${continues} 100s, up to ${maxBodyBytes} body bytes sent`)
    }
    const done: RefusalCase = { name: item.name, expected: item.expected, statuses, continues, maxBodyBytes, totalBodyBytes, medianMs: median(times) }
    log(`[replicas] refusal "${item.name}": ${JSON.stringify(statuses)}, ${continues} 100s, body bytes sent ${totalBodyBytes}, median ${f2(done.medianMs)} ms`)
    out.push(done)
  }
  return out
}

export interface ShutdownFigure {
  inFlight: number
  bytes: number
  bytesPerSecond: number
  /** How long after the uploads began the SIGTERM came, in seconds. */
  termAfter: number
  /** From the SIGTERM, in seconds. */
  exitAfter: number
  exitCode: number | null
  exitSignal: string | null
  /** The uploads' answers: 201s verified (status, size, SHA-256), and when the last one came. */
  created: number
  lastAnswerAfter: number
  lastBodyByteAfter: number
  statuses: Record<string, number>
  /** The replica's /readyz on fresh connections: the first outcome other than 200, and when. */
  notReadyAfterMs: number
  notReadyOutcome: string
  /** When HAProxy's stats first showed the replica other than UP, and DOWN. */
  haproxyLeftUpAfter: number
  haproxyDownAfter: number
  /** Uploads sent through HAProxy one after the other while the replica stopped: by status. */
  throughProxy: Record<string, number>
  /** HAProxy's log lines for those that did not end in a 201. */
  haproxyLog: string[]
  ok: boolean
}

/** (4c): `inFlight` uploads sent slowly to one replica, a SIGTERM while they are under way, and what follows. */
export async function shutdown (bench: ReplicaBench, proxy: Proxy, replica: Server, replicaName: string): Promise<ShutdownFigure> {
  const { plan } = bench
  const body = randomBytes(plan.inFlightBytes)
  const sha256 = createHash('sha256').update(body).digest('hex')
  await checkBackground(bench, '4c')
  const exited = new Promise<{ at: number, code: number | null, signal: string | null }>((resolve) => {
    replica.child.once('exit', (code, signal) => { resolve({ at: performance.now(), code, signal }) })
  })
  const run = { over: false }
  const probes = probeUntil(replica.port, '/readyz', 20, () => run.over)
  const states: Array<{ at: number, state: string }> = []
  const watching = (async () => {
    while (!run.over) {
      const at = performance.now()
      try {
        states.push({ at, state: (await serverStates(proxy)).get(replicaName) ?? 'missing' })
      } catch { /* HAProxy busy: next time */ }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  // New uploads through HAProxy meanwhile, from `streams` clients each sending one after the other.
  const throughProxy: Record<string, number> = {}
  let next = 0
  const traffic = Promise.all(Array.from({ length: plan.proxyStreams }, async () => {
    while (!run.over) {
      const result = await upload({ port: proxy.port, head: requestHead('PUT', `/files/during-${next++}`, { Authorization: AUTH, 'Content-Length': plan.bytes }), bodyBytes: plan.bytes, expectWaitMs: 0, timeoutMs: 30_000 })
      const key = result.status === 0 ? `no answer (${result.error ?? ''})` : String(result.status)
      throughProxy[key] = (throughProxy[key] ?? 0) + 1
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }))
  const uploads = Array.from({ length: plan.inFlight }, async (_, i) => await pacedPut(replica.port, `/files/in-flight-${i}`,
    { Authorization: AUTH, 'Content-Type': 'application/octet-stream' }, body, plan.inFlightRate))
  await new Promise((resolve) => setTimeout(resolve, plan.termAfterMs))
  const termAt = performance.now()
  replica.child.kill('SIGTERM')
  const results = await Promise.all(uploads)
  const exit = await Promise.race([exited, new Promise<null>((resolve) => setTimeout(() => { resolve(null) }, 60_000))])
  // A little longer, so that HAProxy's checks see the replica gone.
  await new Promise((resolve) => setTimeout(resolve, 3000))
  run.over = true
  const samples = await probes
  await watching
  await traffic
  const statuses: Record<string, number> = {}
  let created = 0
  for (const result of results) {
    const key = result.status === 0 ? `no answer (${result.error ?? ''})` : String(result.status)
    statuses[key] = (statuses[key] ?? 0) + 1
    let info: { size?: number, sha256?: string } = {}
    try { info = JSON.parse(result.body) as typeof info } catch { /* not JSON */ }
    if (result.status === 201 && info.size === body.length && info.sha256 === sha256) created++
  }
  const since = (at: number): number => (at - termAt) / 1000
  const notReady = samples.find((sample) => sample.at >= termAt && sample.outcome !== '200')
  const leftUp = states.find((s) => s.at >= termAt && s.state !== 'UP')
  const down = states.find((s) => s.at >= termAt && s.state.startsWith('DOWN'))
  const figure: ShutdownFigure = {
    inFlight: plan.inFlight,
    bytes: plan.inFlightBytes,
    bytesPerSecond: plan.inFlightRate,
    termAfter: plan.termAfterMs / 1000,
    exitAfter: exit === null ? Number.NaN : since(exit.at),
    exitCode: exit?.code ?? null,
    exitSignal: exit?.signal ?? null,
    created,
    lastAnswerAfter: Math.max(...results.map((r) => since(r.answeredAt))),
    lastBodyByteAfter: Math.max(...results.map((r) => since(r.sentAt))),
    statuses,
    notReadyAfterMs: notReady === undefined ? Number.NaN : notReady.at - termAt,
    notReadyOutcome: notReady?.outcome ?? 'none',
    haproxyLeftUpAfter: leftUp === undefined ? Number.NaN : since(leftUp.at),
    haproxyDownAfter: down === undefined ? Number.NaN : since(down.at),
    throughProxy,
    haproxyLog: [],
    ok: false
  }
  // Not a verification of the figure, but what a rolling restart costs the clients: HAProxy's log of those that failed.
  if (Object.keys(throughProxy).some((status) => status !== '201')) {
    figure.haproxyLog = readFileSync(proxy.log, 'utf8').split('\n').filter((line) => line.includes('/files/during-') && !/ 201 /.test(line)).slice(0, 10)
  }
  figure.ok = exit?.code === 0 && created === plan.inFlight
  if (!figure.ok) {
    bench.problems.push(`shutdown: exit ${String(exit?.code)}${exit?.signal === null || exit === null ? '' : ` (${exit.signal})`}, ${created}/${plan.inFlight} verified 201s ${JSON.stringify(statuses)}`)
  }
  log(`[replicas] shutdown with ${plan.inFlight} uploads in flight: exit ${String(exit?.code)} after ${f2(figure.exitAfter)} s (last 201 after ${f2(figure.lastAnswerAfter)} s, ` +
    `last body byte after ${f2(figure.lastBodyByteAfter)} s); /readyz ${figure.notReadyOutcome} after ${f0(figure.notReadyAfterMs)} ms; ` +
    `HAProxy: not UP after ${f2(figure.haproxyLeftUpAfter)} s, DOWN after ${f2(figure.haproxyDownAfter)} s; through HAProxy meanwhile ${JSON.stringify(throughProxy)}`)
  return figure
}
