// The plugin suite's tables, from its results (plugin/figures.ts): the
// README's two tables (a; b to d), and the full account of the run.
import type { LatencyStats } from '../lib/load.js'
import type { Rendered } from '../lib/report.js'
import { f0, f1, f2, machineLine, pct, pcts, range, sizeName, table } from '../lib/report.js'
import { median, medianBy } from '../lib/stats.js'
import type { PluginResults, WireFigure, WireSide } from './figures.js'
import type { RunFigure, Throughput } from './throughput.js'
import type { Variant } from './protocol.js'

type WireCase = WireFigure['cases'][number]
const mb = (bytes: number): string => `${f0(bytes / 1e6)} MB`

/** Per case of (a), in the README's order: the README's label, and the full one. */
const wireLabels: Record<string, (c: WireCase) => [string, string]> = {
  'no-token': (c) => [`no token, onRequest hook: ${c.status} (${mb(c.declared)} body)`, `no token, onRequest auth hook (${c.status})`],
  'too-large': (c) => [`declared ${mb(c.declared)} over an ${sizeName(c.uploadLimit)} limit: ${c.status}`, `declared ${mb(c.declared)} over the ${sizeName(c.uploadLimit)} limit (${c.status})`],
  'media-type': (c) => [`wrong type: ${c.status} (${mb(c.declared)})`, `wrong content type, image/png (${c.status})`],
  'prehandler-streamed': (c) => [`preHandler auth, body streamed by the handler: ${c.status}`, `no token, auth in preHandler, body streamed by the handler (${c.status})`],
  '404-parsed-type': (c) => [`unknown route, type with a parser: ${c.status} (${mb(c.declared)})`, `unknown route, octet-stream (a parser exists), ${mb(c.declared)} (${c.status})`],
  '404-unparsed-type': (c) => [`unknown route, type without parser: ${c.status} (${mb(c.declared)})`, `unknown route, image/png (no parser) (${c.status})`],
  'prehandler-buffered': (c) => [`preHandler auth, body parsed by Fastify first: ${c.status} (see *Where in the lifecycle*)`, `no token, auth in preHandler, body parsed by Fastify (${c.status})`]
}
const readmeOrder = Object.keys(wireLabels)
const wireLabel = (c: WireCase, which: 0 | 1): string => wireLabels[c.key]?.(c)[which] ?? c.key

/** Per throughput figure: the README's label, the full one, the goal, and whether the body sent per request matters. */
const throughputs: Array<{ key: 'b1' | 'b2' | 'd1' | 'd2' | 'd3', readme: string, details: (t: Throughput) => string, goal: string, bytes: boolean }> = [
  { key: 'b1', readme: '(b1) 401 refusals/s, keep-alive, no body (wrk)', details: () => 'refusals/s: no token, onRequest 401; keep-alive, no body (wrk)', goal: '>= 0.95', bytes: false },
  {
    key: 'b2',
    readme: '(b2) 401 refusals/s, `Expect` + 1 MiB declared, new connection each',
    details: (t) => `refusals/s: no token, onRequest 401; Expect: 100-continue, declared 1 MiB, fresh connection each, body only after a 100 (Node, ${t.connections} conns)`,
    goal: '>= 0.95',
    bytes: true
  },
  { key: 'd1', readme: '(d1) accepted 4 KiB uploads/s, no `Expect` (wrk)', details: () => 'accepted 4 KiB uploads/s: keep-alive, no Expect (wrk)', goal: '>= 0.95', bytes: false },
  { key: 'd2', readme: '(d2) the same, Node load generator', details: (t) => `accepted 4 KiB uploads/s: keep-alive, no Expect (Node, ${t.connections} conns)`, goal: '>= 0.95', bytes: false },
  { key: 'd3', readme: '(d3) accepted 4 KiB uploads/s with `Expect: 100-continue`', details: (t) => `accepted 4 KiB uploads/s: keep-alive, Expect: 100-continue, body after the 100 (Node, ${t.connections} conns)`, goal: '', bytes: false }
]

const medianRun = (runs: RunFigure[]): RunFigure => medianBy(runs, (r) => r.perSecond)!
const pairedRatio = (set: Record<Variant, RunFigure[]>): number[] => set.plugin.map((p, i) => p.perSecond / set.stock[i]!.perSecond)
const bodyBytes = (n: number): string => n < 1000 ? `${f0(n)} B` : `${f0(n / 1000)} KB`
const time = (us: number): string => us < 1000 ? `${f0(us)} µs` : `${f1(us / 1000)} ms`
const resets = (l: LatencyStats): number => l.statuses['0'] ?? 0
const total = (l: LatencyStats): number => Object.values(l.statuses).reduce((a, b) => a + b, 0)

/** "100 sent; 393,216 B (curl 917,504)": what a careful client sent before the answer. */
function wireReadme (side: WireSide, expected: number): string {
  const n = side.statuses.length
  const hundred = side.continues === 0 ? 'no 100' : side.continues === n ? '100 sent' : `100 sent ${side.continues}/${n}`
  const [med, min, max] = [median(side.sent), Math.min(...side.sent), Math.max(...side.sent)]
  const sent = max === 0 ? '**0**' : `${f0(med)} B${min === max ? '' : `, range ${f0(min)}–${f0(max)}`}`
  const wrong = side.statuses.filter((s) => s !== expected)
  return `${wrong.length > 0 ? `answered ${[...new Set(side.statuses)].join('/')}; ` : ''}${hundred}; ${sent}` +
    `${side.curl === null ? '' : ` (curl ${f0(side.curl.sent)})`}${side.errors.length > 0 ? `; errors: ${[...new Set(side.errors)].join(', ')}` : ''}`
}

function readme (r: PluginResults): string {
  const parts = [machineLine(r.machine, r.command, `, Fastify ${r.fastify}${r.pinned ? ', servers pinned to one core and load generators to the other' : ', not pinned'}`, r.plan.quick)]
  if (r.a !== undefined) {
    const cases = [...r.a.cases].sort((x, y) => readmeOrder.indexOf(x.key) - readmeOrder.indexOf(y.key))
    parts.push(table(['refusal', 'stock', 'upfront'], cases.map((c) => [wireLabel(c, 0), wireReadme(c.stock, c.status), wireReadme(c.plugin, c.status)])))
  }
  const rows: string[][] = []
  const rate = (t: { bytes: boolean }, f: RunFigure): string =>
    `${f0(f.perSecond)}/s${t.bytes && f.bodyBytesPerRequest !== null ? `, ${bodyBytes(f.bodyBytesPerRequest)} of body sent per refusal` : ''}`
  const throughputRow = (t: typeof throughputs[number]): void => {
    const figure = r[t.key]
    if (figure === undefined) return
    const ab = pairedRatio(figure.together)
    rows.push([t.readme, rate(t, medianRun(figure.runs.stock)), rate(t, medianRun(figure.runs.plugin)), `**${f2(median(ab))}**${range(ab)}`, t.goal])
  }
  for (const t of throughputs.slice(0, 2)) throughputRow(t)
  if (r.c !== undefined) {
    const { c } = r
    for (const [i, declared] of c.declared.entries()) {
      const stock = c.sides.stock[i]!
      const plugin = c.sides.plugin[i]!
      const showResets = resets(stock) + resets(plugin) > 0
      const cell = (l: LatencyStats): string => `${time(l.medianUs)} / ${time(l.p99Us)}${showResets ? `; ${resets(l)} of ${total(l)} reset` : ''}`
      rows.push([`(c) time to 413, declared ${sizeName(declared)}: median / p99`, cell(stock), cell(plugin), '', 'equal'])
    }
  }
  for (const t of throughputs.slice(2)) throughputRow(t)
  if (rows.length > 0) parts.push(table(['figure', 'stock', 'upfront', 'ratio (A/B)', 'goal'], rows))
  const busiest = Math.max(...r.background, ...throughputs.flatMap((t) => r[t.key]?.background ?? []))
  if (busiest > 0.25) parts.push(`Other processes kept a core up to ${pct(busiest)} busy during this run: trust the A/B ratios and the byte counts more than the rates.`)
  return parts.join('\n\n')
}

function details (r: PluginResults): string {
  const { plan } = r
  const lines: string[] = []
  const figures = throughputs.filter((t) => r[t.key] !== undefined)
  const wrk = throughputs.map((t) => r[t.key]).find((t) => t?.client === 'wrk')
  lines.push(`- Node ${r.machine.node}, Fastify ${r.fastify}; command: \`${r.command}\`; total time ${f0(r.seconds)} s.`)
  lines.push(`- CPU split: ${r.pinned
    ? `core 0 = the server under test (both servers run throughout, one loaded at a time); core 1 = the load generator (wrk -t1${wrk === undefined ? '' : ` -c${wrk.connections}`}, the Node load generator, curl) and the orchestrator (taskset).`
    : 'not pinned (no taskset).'}`)
  lines.push(`- Throughput, each side alone: ${plan.runs} run(s) of ${plan.runSeconds} s per side after a ${plan.warmupSeconds} s warm-up, stock and plugin runs alternated; the median run is shown, then all runs; "CPU" = the server's CPU time (user + system) per request.`)
  lines.push(`- Ratio (plugin/stock): "A/B" = median over ${plan.abRounds} round(s) of ${plan.runSeconds} s in which both servers were loaded at the same time, each by its own load generator, so that both share whatever else the machine is doing (the figure to trust on a busy machine); ` +
    '"alone" = median of the ratios of back-to-back runs above; "CPU" = stock µs/req ÷ plugin µs/req in the A/B rounds. Ranges in brackets.')
  lines.push(`- Other processes on this machine: cores busy ${pcts(r.background)} before the run` +
    `${figures.length > 0 ? `; before each figure: ${figures.map((t) => `${t.key} ${pcts(r[t.key]!.background, '/')}`).join(', ')}` : ''}.`)
  const busiest = Math.max(...r.background, ...figures.flatMap((t) => r[t.key]!.background))
  if (busiest > 0.25) {
    lines.push(`- **Warning: other processes kept a core up to ${pct(busiest)} busy during this run. Rates measured alone and latency tails move with that load; trust the A/B ratios and the byte counts.**`)
  }
  lines.push('- Stock = the same app without the plugin: same routes, same auth hooks, same Fastify body parser and limits. ' +
    (r.restart
      ? 'Servers restarted before each section (`--restart`).'
      : 'The same two server processes serve every section, in table order: each figure includes the effect of the traffic before it, as on a real server (`--restart` gives each section fresh processes).'), '')
  const rows: string[][] = []
  const bytes = (values: number[]): string => {
    if (values.length === 0) return 'n/a'
    const [med, max] = [median(values), Math.max(...values)]
    return med === max ? f0(med) : `${f0(med)} (max ${f0(max)})`
  }
  for (const c of r.a?.cases ?? []) {
    const cell = (side: WireSide): string => {
      const curl = side.curl === null ? '' : `; curl: ${side.curl.status}, sent ${f0(side.curl.sent)}, server read ${f0(side.curl.read)}`
      const errors = side.errors.length > 0 ? `; errors: ${[...new Set(side.errors)].join(', ')}` : ''
      return `**${[...new Set(side.statuses)].join('/')}**, 100 sent ${side.continues}/${side.statuses.length}: sent ${bytes(side.sent)}, server read ${bytes(side.read)}${curl}${errors}`
    }
    rows.push(['a', `body bytes before the answer: ${wireLabel(c, 1)}; ${f0(c.declared)} B declared`, cell(c.stock), cell(c.plugin), '', 'plugin: 0'])
  }
  const errorsOf = (runs: RunFigure[]): string => {
    const sum: Record<string, number> = {}
    for (const run of runs) for (const [k, v] of Object.entries(run.errors)) sum[k] = (sum[k] ?? 0) + v
    return Object.keys(sum).length === 0 ? 'none' : Object.entries(sum).map(([k, v]) => `${k} ×${v}`).join(', ')
  }
  const rate = (runs: RunFigure[], withBytes: boolean): string => {
    const f = medianRun(runs)
    return `**${f0(f.perSecond)}/s**, CPU ${f1(f.cpuPerRequestUs)} µs/req (runs: ${runs.map((x) => f0(x.perSecond)).join(', ')}; server at ${pct(f.serverCpu)} of a core` +
      `${withBytes && f.bodyBytesPerRequest !== null ? `; body sent ${f0(f.bodyBytesPerRequest)} B/req` : ''}; errors: ${errorsOf(runs)}; left open: ${Math.max(...runs.map((x) => x.left))})`
  }
  const throughputRow = (t: typeof throughputs[number]): void => {
    const figure = r[t.key]
    if (figure === undefined) return
    const { runs, together } = figure
    const ab = pairedRatio(together)
    const alone = pairedRatio(runs)
    const cpu = together.plugin.map((p, i) => together.stock[i]!.cpuPerRequestUs / p.cpuPerRequestUs)
    rows.push([t.key, t.details(figure), rate(runs.stock, t.bytes), rate(runs.plugin, t.bytes),
      `A/B **${f2(median(ab))}**${range(ab)}; alone ${f2(median(alone))}${range(alone)}; CPU ${f2(median(cpu))}`, t.goal.replace('>=', '≥')])
  }
  for (const t of throughputs.slice(0, 2)) throughputRow(t)
  for (const [i, declared] of (r.c?.declared ?? []).entries()) {
    const cell = (l: LatencyStats): string =>
      `median **${f0(l.medianUs)} µs**, p99 **${f0(l.p99Us)} µs** (n=${l.samples}; ${Object.entries(l.statuses).map(([k, v]) => `${k === '0' ? 'no answer' : k} ×${v}`).join(', ')})`
    rows.push(['c', `time to 413: declared ${sizeName(declared)} over the ${r.c!.limit} B limit, Expect: 100-continue, fresh connection, one at a time`,
      cell(r.c!.sides.stock[i]!), cell(r.c!.sides.plugin[i]!), '', '1 KiB ≈ 10 TiB'])
  }
  for (const t of throughputs.slice(2)) throughputRow(t)
  lines.push(table(['#', 'measurement', 'stock Fastify 5', 'with upfront', 'ratio', 'goal'], rows), '')
  lines.push(`Plugin counters at the end: ${JSON.stringify(r.end.plugin.upfront)}. Server RSS at the end: stock ${f0(r.end.stock.rss / 1048576)} MiB, plugin ${f0(r.end.plugin.rss / 1048576)} MiB.` +
    `${r.a === undefined ? '' : ` Connections left open 3 s after (a): stock ${r.a.left.stock.left}, plugin ${r.a.left.plugin.left}.`}`)
  return lines.join('\n')
}

export function renderPlugin (results: PluginResults): Rendered {
  return { title: 'upfront benchmark: stock Fastify 5 vs the same app with upfront', readme: readme(results), details: details(results) }
}
