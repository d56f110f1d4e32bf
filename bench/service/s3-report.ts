// The S3 suite's tables, from its results (s3.ts): the README's tables, and
// the full account of the run.
import type { Machine } from '../lib/cpu.js'
import type { Rendered } from '../lib/report.js'
import { f0, f1, f2, machineLine, pcts, range, sizeName, table, verdict } from '../lib/report.js'
import { median } from '../lib/stats.js'
import type { ListingFigure, PageTimes } from './listing.js'
import type { S3Plan } from './s3-context.js'
import type { PutFigure, PutRun, RssFigure } from './s3-figures.js'
import { SERVICE_PART_SIZE, SERVICE_QUEUE_SIZE } from './s3-engine.js'
import type { Counts } from './s3-proxy.js'

export interface S3Results {
  suite: 's3'
  machine: Machine
  command: string
  plan: S3Plan
  pinned: boolean
  /** What the engine is (from its Server header) and where. */
  engine: { endpoint: string, server: string }
  serviceCommand: string
  logLevel: string
  background: number[]
  backgroundByFigure: Record<string, number[]>
  put: PutFigure | null
  rss: RssFigure | null
  listing: ListingFigure[]
  problems: string[]
  seconds: number
}

const mb = (bytes: number): string => `${f0(bytes / 1e6)} MB (${f0(bytes / 2 ** 20)} MiB)`
const mbsRange = (values: number[]): string => `${f0(median(values))} MB/s${values.length > 1 ? ` (${f0(Math.min(...values))}–${f0(Math.max(...values))})` : ''}`
const msRange = (values: number[]): string => `${f2(median(values))} ms${values.length > 1 ? ` (${f2(Math.min(...values))}–${f2(Math.max(...values))})` : ''}`
const ops = (counts: Counts): string => `${f0(counts.total)} (${Object.entries(counts.operations).sort((a, b) => b[1] - a[1]).map(([op, n]) => `${f0(n)} ${op}`).join(' + ')})`
const okRuns = (put: PutFigure, side: PutRun['side']): PutRun[] => put.runs.filter((run) => run.side === side && run.ok && run.counted)

function putTable (r: S3Results, put: PutFigure): string {
  const service = okRuns(put, 'service').map((run) => run.mbps)
  const direct = okRuns(put, 'direct').map((run) => run.mbps)
  const ratio = median(put.ratios)
  return table(['(1) PUT of ' + sizeName(r.plan.big) + ' to S3 (RGW)', 'service (curl -T)', `direct lib-storage Upload (${sizeName(put.partSize)} parts, queue ${put.queueSize})`, 'service / direct', 'goal'], [
    [`${put.ratios.length} rounds, alternated${put.setAside.length > 0 ? ` (${put.setAside.length} more set aside: other processes busy)` : ''}`, mbsRange(service), mbsRange(direct), `**${f2(ratio)}**${range(put.ratios)}`, `≥ 0.9: ${verdict(ratio >= 0.9)}`]
  ])
}

function rssTable (rss: RssFigure): string {
  const bound = SERVICE_PART_SIZE * (SERVICE_QUEUE_SIZE + 1)
  return table(['(2) service on S3', 'peak RSS (VmHWM)', 'after start-up', 'per upload above it', 'all uploads', 'goal'], [
    [`${rss.concurrent} × ${sizeName(rss.bytes)} at once (curl -T)`, `**${mb(rss.peak)}**`, mb(rss.startRss),
      `${f0((rss.peak - rss.startRss) / rss.concurrent / 1e6)} MB (part size × (queue size + 1): ${f0(bound / 1e6)} MB)`,
      `${f0(rss.mbps)} MB/s in ${f1(rss.seconds)} s`, `≤ 200 MB: ${verdict(rss.peak <= 200e6)}`]
  ])
}

const pageCell = (times: PageTimes): string => `${f1(times.firstMs)} ms; ${msRange(times.ms)}`

function listingTable (listing: ListingFigure[]): string {
  const first = listing[0]
  if (first === undefined) return ''
  return table([`(3) a page of ${first.pageSize} names of ${f0(first.files)}`, 'first page: first request (nothing cached); median of the repetitions (range)', 'middle page: likewise', 'storage work per page'],
    listing.map((l) => [
      l.backend === 's3' ? 'S3 (RGW)' : 'disk',
      pageCell(l.first),
      `${pageCell(l.mid)} (page ${l.middle + 1} of ${l.pages})`,
      l.pageCounts !== null
        ? `${ops(l.pageCounts.first)} engine requests with the records cached (every page: ${l.pageCounts.min}–${l.pageCounts.max})` +
          (l.coldPageCounts === null ? '' : `; ${ops(l.coldPageCounts.first)} in a process that had read none (every page: ${l.coldPageCounts.min}–${l.coldPageCounts.max})`)
        : l.syscalls !== null ? `${syscallTotal(l.syscalls.first)} system calls on files (strace)` : 'n/a'
    ]))
}

function sweepLine (l: ListingFigure, sweep: NonNullable<ListingFigure['sweep']>): string {
  return `A service process starting on these ${f0(l.files)} files on S3 sweeps them (at start-up, reading every record it has not cached, then every hour, reading only those changed since or beyond the 10,000 it keeps): ${ops(sweep.counts)} engine requests ` +
    `in ${f1(sweep.seconds)} s${sweep.complete ? '' : ' **and not over when the benchmark stopped following it**'}.`
}

function syscallTotal (calls: Record<string, number>): string {
  const total = Object.values(calls).reduce((a, b) => a + b, 0)
  return `${f0(total)} (${Object.entries(calls).sort((a, b) => b[1] - a[1]).map(([call, n]) => `${f0(n)} ${call}`).join(', ')})`
}

function readme (r: S3Results): string {
  const parts = [`${machineLine(r.machine, r.command, `, load average ${r.machine.loadAverage} at the start, ${r.engine.server} at ${r.engine.endpoint}`, r.plan.quick)} ` +
    (r.pinned ? 'Pinned: the service (and the direct uploader) on core 0, curl and the load generator on core 1; the engine unpinned.' : 'Not pinned.')]
  if (r.put !== null) parts.push(putTable(r, r.put))
  if (r.rss !== null) parts.push(rssTable(r.rss))
  if (r.listing.length > 0) parts.push(listingTable(r.listing))
  for (const l of r.listing) if (l.sweep !== null) parts.push(sweepLine(l, l.sweep))
  if (r.problems.length > 0) parts.push(`**${r.problems.length} verification failure(s)**: see the details.`)
  return parts.join('\n\n')
}

function details (r: S3Results): string {
  const out: string[] = []
  if (r.put !== null) {
    const gib = r.plan.big / 2 ** 30
    out.push(table(['(1) run', 'side', 'MB/s', 's', 'uploader CPU s/GiB', 'curl CPU s/GiB', 'engine CPU s/GiB', 'other processes, CPU s', 'verified', 'counted'],
      r.put.runs.map((run) => [String(run.round), run.side, f0(run.mbps), f2(run.seconds), f2(run.cpu / gib), run.side === 'service' ? f2(run.clientCpu / gib) : '', f2(run.engineCpu / gib),
        f1(run.foreignCpu), run.ok ? 'yes' : '**no**', run.counted ? 'yes' : 'set aside'])))
    out.push(`Ratios by round: ${r.put.ratios.map(f2).join(', ')}${r.put.setAside.length > 0 ? `; set aside (other processes took more than ${r.plan.foreignLimit} CPU s in one of their runs): ${r.put.setAside.map(f2).join(', ')}` : ''}. Waited for the engine to settle (its garbage collection of the deleted upload) after each upload: ${r.put.settleSeconds.map(f0).join(', ')} s.`)
  }
  if (r.rss !== null) {
    out.push(`(2): VmRSS sampled every 100 ms peaked at ${mb(r.rss.sampledPeak)}; the service's CPU ${f1(r.rss.cpu)} s for ${f0(r.rss.concurrent * r.rss.bytes / 2 ** 30)} GiB; other processes ${f1(r.rss.foreignCpu)} CPU s meanwhile.`)
  }
  for (const l of r.listing) {
    const lines = [`(3) ${l.backend}: ${f0(l.files)} files of ${r.plan.listBodyBytes} B created through the service at ${f0(l.create.perSecond)} uploads/s (${f0(l.create.ok)} verified 201s in ${f1(l.create.seconds)} s` +
      `${l.backend === 's3' ? ', through the counting proxy' : ''}); ${l.pages} pages.`]
    if (l.requestsPerUpload !== null) lines.push(`Engine requests per upload: ${Object.entries(l.requestsPerUpload).map(([op, n]) => `${f2(n)} ${op}`).join(', ')}.`)
    if (l.pageCounts !== null) lines.push(`Middle page: ${ops(l.pageCounts.middle)} engine requests.`)
    if (l.syscalls !== null) lines.push(`System calls on files, middle page: ${syscallTotal(l.syscalls.middle)}.`)
    lines.push(`Repetitions (ms): first page ${l.first.ms.map(f1).join(', ')}; middle ${l.mid.ms.map(f1).join(', ')}. Waited up to ${f1(l.idleWaitMs / 1000)} s for a fresh process's start-up sweep to end before timing it.`)
    out.push(lines.join(' '))
  }
  const busiest = Object.entries(r.backgroundByFigure).map(([figure, busy]) => `(${figure}) ${pcts(busy)}`).join('; ')
  out.push(`Load from other processes on each core: ${pcts(r.background)} at the start; the highest before each figure's runs: ${busiest || 'n/a'}. Service: \`${r.serviceCommand}\`, LOG_LEVEL=${r.logLevel}. Run time ${f0(r.seconds)} s.`)
  if (r.problems.length > 0) out.push(`**Verification failures:**\n\n${r.problems.map((p) => `- ${p}`).join('\n')}`)
  return out.join('\n\n')
}

export function renderS3 (r: S3Results): Rendered {
  return { title: 'The service on S3', readme: readme(r), details: details(r) }
}
