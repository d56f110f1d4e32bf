// The service suite's tables, from its results (service/figures.ts): the
// README's table, and the full account of the run. CPU seconds are given
// per GiB whatever the upload size (a quick run uploads 64 MiB).
import type { Rendered } from '../lib/report.js'
import { f0, f1, f2, machineLine, pct, pcts, sizeName, table, verdict } from '../lib/report.js'
import { median, medianBy } from '../lib/stats.js'
import { GIB } from './context.js'
import type { BigKind, BigRun, RssFigure, ServiceResults, SmallRun } from './figures.js'

/** The server's median CPU time per upload over `runs` (all threads: the event loop, libuv's pool, GC). */
function cpuPerUpload (runs: SmallRun[]): string {
  return `${f2(median(runs.map((x) => x.cpuMsPerUpload)))} ms`
}

/** The rounds' ratios of rates, `a` over `b`, round by round. */
const ratios = (a: SmallRun[], b: SmallRun[]): number[] => a.map((x, i) => x.perSecond / (b[i]?.perSecond ?? Number.NaN))
/** The median of the rounds' ratios, and their range. */
const ratioCell = (a: SmallRun[], b: SmallRun[]): string => {
  const each = ratios(a, b)
  return `${f2(median(each))} (${f2(Math.min(...each))}–${f2(Math.max(...each))})`
}

const mb = (bytes: number): string => `${f0(bytes / 1e6)} MB (${f0(bytes / 2 ** 20)} MiB)`

/** The figures both tables are made of. */
interface Derived {
  okRuns: (kind: BigKind) => BigRun[]
  /** Median MB/s of a kind's verified runs. */
  med: (kind: BigKind) => number
  cpuPerGib: (kind: BigKind) => number
  /** CPU seconds per GiB that any server storing a hashed upload spends, by part. */
  parts: { client: number, receive: number, write: number, hash: number }
  serverParts: number
  /** The rate those parts leave on this machine's cores, in MB/s. */
  budget: number
  /** The RSS figures, largest uploads first. */
  bySize: RssFigure[]
  rssBig: RssFigure | undefined
  rssSmall: RssFigure | undefined
  /** Peak growth from the medium to the large uploads, against the bytes added. */
  flat: { growth: number, extra: number } | undefined
  midRun: (runs: SmallRun[]) => SmallRun | undefined
  busiest: number
  /** "1 GiB". */
  size: string
}

function derive (r: ServiceResults): Derived {
  const okRuns = (kind: BigKind): BigRun[] => r.big[kind].filter((x) => x.ok)
  const perGib = GIB / r.plan.big
  const med = (kind: BigKind): number => median(okRuns(kind).map((x) => x.mbps))
  const cpuPerGib = (kind: BigKind): number => median(okRuns(kind).map((x) => x.cpu)) * perGib
  const gibMB = GIB / 1e6
  // What any server that hashes what it stores must spend per GiB, from the
  // parts measured alone, and the rate that leaves on this machine's cores.
  const parts = {
    client: median(okRuns('service PUT').map((x) => x.clientCpu)) * perGib,
    receive: cpuPerGib('loopback (discard)'),
    write: gibMB / median(r.ceilings.ddCache),
    hash: gibMB / median(r.ceilings.sha256)
  }
  const serverParts = parts.receive + parts.write + parts.hash
  const budget = r.pinned ? Math.min(gibMB / serverParts, gibMB / parts.client) : gibMB * r.machine.cpus / (serverParts + parts.client)
  const bySize = [...r.rss].sort((a, b) => b.bytes - a.bytes)
  const rssOf = (bytes: number): RssFigure | undefined => r.rss.find((x) => x.bytes === bytes)
  const [rssBig, rssMedium, rssSmall] = [rssOf(r.plan.big), rssOf(r.plan.medium), rssOf(r.plan.small)]
  const extra = r.plan.concurrent * (r.plan.big - r.plan.medium)
  const flat = rssBig === undefined || rssMedium === undefined ? undefined : { growth: rssBig.peak - rssMedium.peak, extra }
  const midRun = (runs: SmallRun[]): SmallRun | undefined => medianBy(runs, (x) => x.perSecond)
  const busiest = Math.max(...r.background, ...Object.values(r.backgroundByFigure).flat())
  return { okRuns, med, cpuPerGib, parts, serverParts, budget, bySize, rssBig, rssSmall, flat, midRun, busiest, size: sizeName(r.plan.big) }
}

function readme (r: ServiceResults): string {
  const d = derive(r)
  const { med, parts } = d
  const bare = med('bare pipe PUT')
  const putRatio = med('service PUT') / bare
  const formRatio = med('service multipart POST') / bare
  const majorGc = median(d.okRuns('service PUT').map((x) => x.majorGc))
  const rows: string[][] = [
    [`PUT ${d.size} (curl -T), SHA-256 + fsync + atomic rename`, `**${f0(med('service PUT'))} MB/s**, ${f1(d.cpuPerGib('service PUT'))} CPU s/GiB, ${f0(majorGc)} full GCs`,
      `bare pipe ${f0(bare)} MB/s (ratio **${f2(putRatio)}**)`, `1.2 vs bare pipe: ${verdict(putRatio >= 1.2)}`],
    ['references: bare pipe + SHA-256; the same with 4 MiB stream buffers', `${f0(med('bare sha256 PUT'))} MB/s; ${f0(med('bare sha256 large-buffers PUT'))} MB/s`,
      `bare pipe: ${f2(med('bare sha256 PUT') / bare)}; ${f2(med('bare sha256 large-buffers PUT') / bare)}`, ''],
    [`what the parts of a hashed upload allow: curl ${f2(parts.client)} + receiving ${f2(parts.receive)} + page-cache write ${f2(parts.write)} + SHA-256 ${f2(parts.hash)} CPU s/GiB`,
      `at most **${f0(d.budget)} MB/s** ${r.pinned ? "with the server's parts on one core" : `with all parts sharing ${r.machine.cpus} cores`}`, `bare pipe: at most **${f2(d.budget / bare)}**`, ''],
    [`multipart POST ${d.size} (curl -F)`, `**${f0(med('service multipart POST'))} MB/s**`,
      `bare pipe PUT (ratio **${f2(formRatio)}**); service PUT ${f2(med('service multipart POST') / med('service PUT'))}`, `1.0: ${verdict(formRatio >= 1.0)}`],
    ['ceilings on this machine', `loopback ${f0(med('loopback (discard)'))} MB/s; disk with fsync ${f0(median(r.ceilings.ddFsync))} MB/s; SHA-256 ${f0(median(r.ceilings.sha256))} MB/s (one core)`, '', '']
  ]
  if (d.bySize.length > 0) {
    const peak = Math.max(...d.bySize.map((x) => x.peak))
    rows.push([`peak RSS, ${r.plan.concurrent} concurrent PUTs of ${d.bySize.map((x) => sizeName(x.bytes)).join(' / ')}`,
      `**${d.bySize.map((x) => f0(x.peak / 1e6)).join(' / ')} MB** (${f0(median(d.bySize.map((x) => x.startRss)) / 1e6)} MB after start-up)`,
      `flat in file size${d.flat === undefined ? '' : `: ${verdict(d.flat.growth < 0.01 * d.flat.extra)}`}`, `<= 150 MB: ${verdict(peak <= 150e6)} in this run`])
  }
  const { small } = r
  const smallCell = (runs: SmallRun[]): string => {
    const mid = d.midRun(runs)
    return mid === undefined ? 'n/a' : `**${f0(mid.perSecond)} uploads/s**, p50 ${f1(mid.p50Ms)} ms, p99 ${f1(mid.p99Ms)} ms; server CPU ${cpuPerUpload(runs)} per upload`
  }
  rows.push([`${f0(r.plan.smallCount)} × ${sizeName(r.plan.smallBytes)} over ${r.plan.smallConnections} keep-alive connections, no \`Expect\``,
    smallCell(small.service.plain),
    `bare pipe (no fsync, no hash) ${f0(median(small.bare.pipe.map((x) => x.perSecond)))}/s, CPU ${cpuPerUpload(small.bare.pipe)}: ratio **${ratioCell(small.service.plain, small.bare.pipe)}**; ` +
    `bare durable (SHA-256, fdatasync, rename, directory fsync) ${f0(median(small.bare.durable.map((x) => x.perSecond)))}/s, CPU ${cpuPerUpload(small.bare.durable)}: ratio **${ratioCell(small.service.plain, small.bare.durable)}**`,
    `>= 0.9 vs bare pipe: ${verdict(median(ratios(small.service.plain, small.bare.pipe)) >= 0.9)}`])
  rows.push(['the same with `Expect: 100-continue`', smallCell(small.service.expect), `ratio to bare pipe without Expect ${ratioCell(small.service.expect, small.bare.pipe)}`, ''])
  const extra = `, ${r.pinned ? 'the server pinned to one core, the clients to the other' : 'not pinned'}` +
    `${r.serviceNodeArgs.length > 0 ? `, the service with \`${r.serviceNodeArgs.join(' ')}\`` : ''}`
  return [
    machineLine(r.machine, r.command, extra, r.plan.quick),
    table(['figure', 'result', 'compared with', 'goal'], rows),
    (r.problems.length === 0
      ? 'Every upload verified: 201, size and SHA-256 in the answer and on disk.'
      : `**${r.problems.length} verification failure(s)**: ${r.problems.slice(0, 3).join('; ')}${r.problems.length > 3 ? '; …' : ''}`) +
    (d.busiest > 0.25 ? ` Other processes kept a core up to ${pct(d.busiest)} busy during this run.` : '')
  ].join('\n\n')
}

function details (r: ServiceResults): string {
  const d = derive(r)
  const { med, okRuns, cpuPerGib } = d
  const { plan } = r
  const wallShare = (kind: BigKind): number => median(okRuns(kind).map((x) => x.cpu)) / median(okRuns(kind).map((x) => x.seconds))
  const bigCell = (kind: BigKind): string => {
    const runs = okRuns(kind)
    const gc = `${f0(median(runs.map((x) => x.majorGc)))} mark-compact + ${f0(median(runs.map((x) => x.minorGc)))} scavenge, ${f0(median(runs.map((x) => x.gcMs)))} ms paused`
    return `**${f0(med(kind))} MB/s** (runs ${r.big[kind].map((x) => `${f0(x.mbps)}${x.ok ? '' : ' (failed)'}`).join(', ')}); ` +
      `server CPU ${f2(cpuPerGib(kind))} s/GiB (main thread ${f2(median(runs.map((x) => x.mainCpu)) * GIB / plan.big)} s), ${pct(wallShare(kind))} of the wall time; GC ${gc}`
  }
  const bare = med('bare pipe PUT')
  const service = med('service PUT')
  const putRatio = service / bare
  const formRatio = med('service multipart POST') / bare
  const loopback = med('loopback (discard)')
  const disk = median(r.ceilings.ddFsync)
  const sha = median(r.ceilings.sha256)
  const lowest = Math.min(loopback, disk, sha)
  const large = 'bare sha256 large-buffers PUT'
  const lines: string[] = []
  lines.push(`- Command: \`${r.command}\`; Node ${r.machine.node}, ${r.curl}, ${r.machine.os}; total time ${f0(r.seconds)} s (build excluded).`)
  lines.push(`- CPU split: ${r.pinned
    ? 'core 0 = the server under test (the service, or one of the bare servers; only one is loaded at a time), dd and the SHA-256 ceiling; ' +
      "core 1 = curl, the small-upload load generator and the orchestrator (taskset). Threads of a pinned process (libuv's pool, V8's GC helpers) share its core; kernel writeback and journal threads run where the kernel puts them."
    : 'not pinned: every process may use both cores.'}`)
  lines.push(`- Service: \`${r.serviceCommand}\` (as \`npm start\` runs it), NODE_ENV=production, LOG_LEVEL=${r.logLevel} (to a file), MAX_UPLOAD_BYTES=${plan.maxUploadBytes} (2 GiB: ` +
    'a multipart form carrying a 1 GiB file is a little over 1 GiB), one principal (AUTH_TOKENS). A fresh process for the large uploads, for each RSS scenario and for the small uploads.')
  lines.push('- Bare = `bench/service/bare-server.ts`: node:http, `stream.pipeline(req, fs.createWriteStream(path))`, default buffers, no fsync (its 201 means "in the page cache"); ' +
    '"bare sha256" adds a SHA-256 Transform to the pipeline, "large buffers" sets every stream buffer of that to 4 MiB; "loopback" = the same server discarding the body. ' +
    'curl\'s CPU comes from the shell\'s `times`.')
  lines.push(`- ${d.size} uploads: curl -T (PUT) or -F (multipart POST) of a ${d.size} file ${Number.isFinite(r.cached) ? `(${pct(r.cached / plan.big)} in the page cache, per fincore)` : ''}; ` +
    `MB/s = 10^6 bytes per second of curl's total time (connection to the final answer: the service's includes its fsyncs and renames). ${plan.rounds} round(s), each kind once per round, ` +
    'the first kind rotating; the median is shown, then all runs. After each upload the stored file is verified (status, size, SHA-256), deleted, and the disk synced (`sync -f`) so that no writeback spills into the next run. ' +
    '"server CPU" = user + system time of the server process, all threads, for the upload, per GiB.')
  lines.push(`- Other processes on this machine: cores busy ${pcts(r.background)} at the start (load average ${r.machine.loadAverage}); highest before each figure: ` +
    `${Object.entries(r.backgroundByFigure).map(([figure, busy]) => `(${figure}) ${pcts(busy, '/')}`).join(', ')}.`)
  if (d.busiest > 0.25) {
    lines.push(`- **Warning: other processes kept a core up to ${pct(d.busiest)} busy during this run: absolute rates are lower and noisier than on an idle machine; the ratios (same rounds, alternated) hold better.**`)
  }
  lines.push(`- Disk: ${(r.freeAtStart / GIB).toFixed(0)} GiB free in ${r.tmpdir} at the start, ${(r.freeAtEnd / GIB).toFixed(0)} GiB at the end (before removing the work directory).`, '')
  const rows: string[][] = []
  const { parts } = d
  rows.push(['1', `PUT ${d.size} (curl -T): service (SHA-256, fsync, rename) vs bare pipe`, bigCell('service PUT'), `bare pipe: ${bigCell('bare pipe PUT')}`,
    `service/bare **${f2(putRatio)}**`, '≥ 1.2', verdict(putRatio >= 1.2)])
  rows.push(['1', 'reference: bare pipe with SHA-256 in the pipeline', bigCell('bare sha256 PUT'), '',
    `bare sha256/bare ${f2(med('bare sha256 PUT') / bare)}; service/bare sha256 ${f2(service / med('bare sha256 PUT'))}`, '', ''])
  rows.push(['1', 'reference: the same with every stream buffer at 4 MiB ("a Node server that only enlarged its stream buffers", with SHA-256)', bigCell(large), '',
    `large buffers/bare **${f2(med(large) / bare)}**; /bare sha256 ${f2(med(large) / med('bare sha256 PUT'))}; service/large buffers ${f2(service / med(large))}`, '', ''])
  rows.push(['2', `estimate: CPU a hashing server cannot avoid, per GiB (${r.pinned ? 'server parts on one core, curl on the other' : `all parts shared by ${r.machine.cpus} cores`})`,
    `curl ${f2(parts.client)} s + receiving ${f2(parts.receive)} s (the loopback server) + page-cache write ${f2(parts.write)} s (dd) + SHA-256 ${f2(parts.hash)} s = ${f2(d.serverParts + parts.client)} s`,
    '', `at most **${f0(d.budget)} MB/s** if nothing else cost anything: service/bare at most **${f2(d.budget / bare)}**; the service reaches ${pct(service / d.budget)} of it`, '', ''])
  rows.push(['2', 'ceiling: loopback HTTP (curl -T to the bare server discarding the body)', bigCell('loopback (discard)'), '', `service PUT at ${pct(service / loopback)}`, '', ''])
  rows.push(['2', `ceiling: disk (\`dd if=/dev/zero bs=4M count=${r.ceilings.ddBlocks} conv=fsync\`, core 0)`, `**${f0(disk)} MB/s** (runs ${r.ceilings.ddFsync.map(f0).join(', ')})`, '', `service PUT at ${pct(service / disk)}`, '', ''])
  rows.push(['2', 'reference: page cache (the same dd without conv=fsync)', `**${f0(median(r.ceilings.ddCache))} MB/s** (runs ${r.ceilings.ddCache.map(f0).join(', ')})`, '', 'what the bare server writes into', '', ''])
  rows.push(['2', `ceiling: SHA-256 (node:crypto, ${d.size} in memory, core 0)`, `**${f0(sha)} MB/s** (runs ${r.ceilings.sha256.map(f0).join(', ')})`, '', `service PUT at ${pct(service / sha)}`, '', ''])
  rows.push(['2', 'the lowest ceiling', `${f0(lowest)} MB/s (${lowest === disk ? 'disk' : lowest === sha ? 'SHA-256' : 'loopback'})`, '', `service PUT at **${pct(service / lowest)}**`, '', ''])
  rows.push(['3', `multipart POST ${d.size} (curl -F) vs the bare pipe PUT`, bigCell('service multipart POST'), `bare pipe PUT: ${f0(bare)} MB/s`,
    `multipart/bare **${f2(formRatio)}**; multipart/service PUT ${f2(med('service multipart POST') / service)}`, '≥ 1.0', verdict(formRatio >= 1.0)])
  for (const figure of r.rss) {
    rows.push(['4', `peak RSS (VmHWM) of a fresh service process, ${plan.concurrent} concurrent PUTs of ${sizeName(figure.bytes)}`,
      `**${mb(figure.peak)}**${figure.ok ? '' : ' (uploads failed)'}`, `after start-up: ${mb(figure.startRss)}`,
      `${f2(figure.seconds)} s for all ${plan.concurrent} (${f0(figure.mbps)} MB/s together); ${figure.majorGc} mark-compacts`, '≤ 150 MB', verdict(figure.peak <= 150e6)])
  }
  if (d.flat !== undefined && d.rssBig !== undefined && d.rssSmall !== undefined) {
    rows.push(['4', `flat in file size: peak with ${plan.concurrent} × ${d.size} minus peak with ${plan.concurrent} × ${sizeName(plan.medium)} (${plan.big / plan.medium}× the bytes)`, `**${mb(d.flat.growth)}**`,
      `${plan.concurrent} × ${d.size} minus ${plan.concurrent} × ${sizeName(plan.small)}: ${mb(d.rssBig.peak - d.rssSmall.peak)} (the per-upload buffers, which a ${sizeName(plan.small)} upload never fills, and chunks awaiting GC)`,
      `${f2(d.flat.growth / d.flat.extra * 100)} % of the extra bytes`, 'flat: < 1 % of the extra bytes', verdict(d.flat.growth < 0.01 * d.flat.extra)])
  }
  const { small } = r
  const smallCell = (runs: SmallRun[]): string => {
    const mid = d.midRun(runs)
    if (mid === undefined) return 'n/a'
    return `**${f0(mid.perSecond)} uploads/s**, p50 **${f1(mid.p50Ms)} ms**, p99 **${f1(mid.p99Ms)} ms** (median run; runs ${runs.map((x) => `${f0(x.perSecond)}/s p99 ${f1(x.p99Ms)} ms CPU ${f2(x.cpuMsPerUpload)} ms`).join(', ')}; ` +
      `verified 201s ${runs.map((x) => x.ok).join('+')} of ${runs.length * plan.smallCount})`
  }
  const bareCell = (label: string, runs: SmallRun[]): string => `${label}: ${runs.map((x) => `${f0(x.perSecond)}/s p99 ${f1(x.p99Ms)} ms CPU ${f2(x.cpuMsPerUpload)} ms`).join(', ')}`
  const smallLabel = `${f0(plan.smallCount)} PUTs of ${sizeName(plan.smallBytes)} over ${plan.smallConnections} keep-alive connections`
  rows.push(['5', `${smallLabel}, no Expect (head and body in one write)`, smallCell(small.service.plain),
    `${bareCell('bare pipe (no fsync, no hash)', small.bare.pipe)}; ${bareCell('bare durable (SHA-256, fdatasync, rename, directory fsync)', small.bare.durable)}`,
    `service/bare pipe ${ratioCell(small.service.plain, small.bare.pipe)}; service/bare durable ${ratioCell(small.service.plain, small.bare.durable)} (median of the rounds' ratios, min–max)`,
    '>= 0.9 vs bare pipe', verdict(median(ratios(small.service.plain, small.bare.pipe)) >= 0.9)])
  rows.push(['5', 'the same with Expect: 100-continue, body sent after the 100', smallCell(small.service.expect), '',
    `Expect/no Expect ${f2(median(small.service.expect.map((x) => x.perSecond)) / median(small.service.plain.map((x) => x.perSecond)))} (median rates); 100s received ${small.service.expect.map((x) => x.continues).join('+')}`, '', ''])
  lines.push(table(['#', 'measurement', 'result', 'compared with', 'ratio / figure', 'goal', ''], rows), '')
  lines.push('GC = collections counted in the server by `bench/service/gc-probe.ts` (preloaded with --import; perf_hooks \'gc\' entries), per upload; "paused" = their main-thread time. ' +
    `${r.serviceNodeArgs.length > 0 ? `**The service ran with extra Node flags: \`${r.serviceNodeArgs.join(' ')}\`.** ` : ''}`)
  lines.push(`Small uploads: a fresh service process, ${plan.smallWarmup} uploads of warm-up first (and of each bare server), then ${plan.rounds} round(s), each of ${plan.smallCount} with and ${plan.smallCount} without Expect (alternated), then ${plan.smallCount} to each bare server, all to new names; ` +
    `latency = head written to answer read, at the client (\`bench/lib/load.ts\`, one process on core 1). Its peak RSS at the end: ${mb(small.serviceRss)}.`)
  lines.push(r.problems.length === 0
    ? 'Verification: every upload answered 201 with the right size and SHA-256 (checked in the answers and on disk).'
    : `**Verification failures (${r.problems.length}):**\n${r.problems.map((p) => `- ${p}`).join('\n')}`)
  return lines.join('\n')
}

export function renderService (results: ServiceResults): Rendered {
  return { title: 'upfront uploads benchmark: the service vs a bare node:http server', readme: readme(results), details: details(results) }
}
