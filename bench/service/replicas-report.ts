// The replica suite's tables, from its results (replicas.ts): the README's
// tables, and the full account of the run.
import type { Machine } from '../lib/cpu.js'
import type { Rendered } from '../lib/report.js'
import { f0, f1, f2, machineLine, pcts, range, sizeName, table } from '../lib/report.js'
import { median } from '../lib/stats.js'
import type { RefusalCase, ReplicaPlan, Route, ShutdownFigure, SmallRun, ThroughputFigure } from './replicas-figures.js'

export interface ReplicaResults {
  suite: 'replicas'
  machine: Machine
  command: string
  plan: ReplicaPlan
  pinned: boolean
  engine: { endpoint: string, server: string }
  haproxy: string
  /** The HAProxy configuration used (deploy/haproxy.cfg, adapted). */
  haproxyConfig: string
  serviceCommand: string
  logLevel: string
  background: number[]
  backgroundByFigure: Record<string, number[]>
  throughput: ThroughputFigure | null
  refusals: RefusalCase[]
  shutdown: ShutdownFigure | null
  /** Objects under the run's prefix before it was emptied, against the uploads the run made (a record and a data object each). */
  stored: { objects: number, expected: number } | null
  problems: string[]
  seconds: number
}

const byRoute = (t: ThroughputFigure, route: Route): SmallRun[] => t.runs.filter((run) => run.route === route)
const rateRange = (runs: SmallRun[]): string => {
  const rates = runs.map((run) => run.perSecond)
  return `${f0(median(rates))}/s${rates.length > 1 ? ` (${f0(Math.min(...rates))}–${f0(Math.max(...rates))})` : ''}`
}
const latency = (runs: SmallRun[]): string => `p50 ${f1(median(runs.map((run) => run.p50Ms)))} ms, p99 ${f1(median(runs.map((run) => run.p99Ms)))} ms`

function throughputTable (r: ReplicaResults, t: ThroughputFigure): string {
  const proxied = byRoute(t, 'haproxy')
  const direct = byRoute(t, 'direct')
  return table([`(4a) PUT ${sizeName(r.plan.bytes)}, ${f0(r.plan.uploads)} uploads over ${r.plan.connections} keep-alive connections, S3`, 'uploads/s, median (range)', 'latency (median of runs)', 'HAProxy / direct'], [
    ['HAProxy (deploy/haproxy.cfg) → 2 replicas', rateRange(proxied), latency(proxied), `**${f2(median(t.ratios))}**${range(t.ratios)}`],
    ['1 replica direct', rateRange(direct), latency(direct), '']
  ])
}

function refusalTable (r: ReplicaResults): string {
  return table(['(4b) through HAProxy, `Expect: 100-continue`', 'answers', '100 Continue', 'body bytes sent', 'median time to answer'],
    r.refusals.map((c) => [c.name, Object.entries(c.statuses).map(([status, n]) => `${n} × ${status}`).join(', '), String(c.continues), `**${f0(c.totalBodyBytes)}**`, `${f2(c.medianMs)} ms`]))
}

function shutdownTable (r: ReplicaResults, s: ShutdownFigure): string {
  const proxied = Object.entries(s.throughProxy).map(([status, n]) => `${n} × ${status}`).join(', ')
  return table(['(4c) SIGTERM to a replica', 'result'], [
    ['uploads in flight', `${s.inFlight} × ${f0(s.bytes / 1e6)} MB at ${f0(s.bytesPerSecond / 1e6)} MB/s each, SIGTERM ${f1(s.termAfter)} s into them`],
    ['delay before the replica stops listening (`SHUTDOWN_DELAY_MS`, as docker-compose.yml sets it)', `${f1(r.plan.shutdownDelayMs / 1000)} s`],
    ['exit', `**code ${String(s.exitCode)} after ${f2(s.exitAfter)} s**; ${s.created === s.inFlight ? 'all' : '**only**'} ${s.created}/${s.inFlight} uploads answered 201, verified (size, SHA-256)`],
    ['of which waiting for the uploads', `last body byte ${f2(s.lastBodyByteAfter)} s, last 201 ${f2(s.lastAnswerAfter)} s after the SIGTERM: exit **${f2(s.exitAfter - s.lastAnswerAfter)} s** after the last 201`],
    ['readiness (`/readyz`, fresh connection every 20 ms)', `**${s.notReadyOutcome} after ${f0(s.notReadyAfterMs)} ms**`],
    ['HAProxy (checks every 2 s, fall 2)', `replica no longer UP after ${f1(s.haproxyLeftUpAfter)} s, DOWN after ${f1(s.haproxyDownAfter)} s`],
    [`new 64 KiB uploads through HAProxy meanwhile (${r.plan.proxyStreams} clients, one upload after the other)`, Object.keys(s.throughProxy).every((status) => status === '201') ? proxied : `**${proxied}**`]
  ])
}

function readme (r: ReplicaResults): string {
  const parts = [`${machineLine(r.machine, r.command, `, load average ${r.machine.loadAverage} at the start, ${r.engine.server} at ${r.engine.endpoint}, ${r.haproxy}`, r.plan.quick)} ` +
    (r.pinned ? 'Pinned: the replicas on core 0, HAProxy and the clients on core 1; the engine unpinned.' : 'Not pinned.')]
  if (r.throughput !== null) parts.push(throughputTable(r, r.throughput))
  if (r.refusals.length > 0) parts.push(refusalTable(r))
  if (r.shutdown !== null) parts.push(shutdownTable(r, r.shutdown))
  if (r.problems.length > 0) parts.push(`**${r.problems.length} verification failure(s)**: see the details.`)
  return parts.join('\n\n')
}

function details (r: ReplicaResults): string {
  const out: string[] = []
  if (r.throughput !== null) {
    out.push(table(['(4a) round', 'route', 'uploads/s', 'verified', 'p50 ms', 'p99 ms', 'max ms', 'CPU ms per upload: replicas / HAProxy / engine', 'other processes, CPU s', 'connections opened', 'errors'],
      r.throughput.runs.map((run) => [String(run.round), run.route, f0(run.perSecond), `${run.ok}/${r.plan.uploads}`, f1(run.p50Ms), f1(run.p99Ms), f1(run.maxMs),
        `${f2(run.replicaCpuMs)} / ${f2(run.proxyCpuMs)} / ${f2(run.engineCpuMs)}`, f1(run.foreignCpu), String(run.connects), JSON.stringify(run.errors)])))
    out.push(`Ratios by round: ${r.throughput.ratios.map(f2).join(', ')}. Each side had ${r.plan.warmup} uploads of warm-up first.`)
  }
  if (r.shutdown !== null && r.shutdown.haproxyLog.length > 0) out.push(`(4c) HAProxy's log of the uploads through it that failed during the shutdown:\n\n\`\`\`\n${r.shutdown.haproxyLog.join('\n')}\n\`\`\``)
  if (r.stored !== null) out.push(`Objects under the run's prefix at its end: ${f0(r.stored.objects)} (a record and a data object per upload: ${f0(r.stored.expected)} expected).`)
  const busiest = Object.entries(r.backgroundByFigure).map(([figure, busy]) => `(${figure}) ${pcts(busy)}`).join('; ')
  out.push(`Load from other processes on each core: ${pcts(r.background)} at the start; the highest before each figure's runs: ${busiest || 'n/a'}. Replicas: \`${r.serviceCommand}\`, LOG_LEVEL=${r.logLevel}. Run time ${f0(r.seconds)} s.`)
  out.push(`HAProxy's configuration:\n\n\`\`\`\n${r.haproxyConfig.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('#')).join('\n')}\n\`\`\``)
  if (r.problems.length > 0) out.push(`**Verification failures:**\n\n${r.problems.map((p) => `- ${p}`).join('\n')}`)
  return out.join('\n\n')
}

export function renderReplicas (r: ReplicaResults): Rendered {
  return { title: 'Replicas behind HAProxy', readme: readme(r), details: details(r) }
}
