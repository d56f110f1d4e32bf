// Throughput figures (b1, b2, d1, d2, d3): a load, by wrk or by the Node
// load generator, against one server alone or both at once, with the
// servers' CPU time, the cores' load and the connections left open.
import { join } from 'node:path'
import { background, coreBusy, coreTimes } from '../lib/cpu.js'
import { generate } from '../lib/load.js'
import type { LoadConfig } from '../lib/load.js'
import type { CpuSplit } from '../lib/proc.js'
import { log, repoRoot, runChecked } from '../lib/proc.js'
import { pct, pcts } from '../lib/report.js'
import { variants } from './protocol.js'
import type { Variant } from './protocol.js'
import { drained, probe } from './servers.js'
import type { Server } from './servers.js'

/** How much of each kind of run: set by `--quick`. */
export interface Plan {
  quick: boolean
  /** Seconds per measured throughput run, and runs per side (the median is reported). */
  runSeconds: number
  runs: number
  /** Rounds in which stock and plugin are loaded at the same time. */
  abRounds: number
  warmupSeconds: number
  /** Exchanges per case in (a), after one of warm-up. */
  wireSamples: number
  /** Exchanges per declared size in (c). */
  latencySamples: number
}

export function plan (quick: boolean): Plan {
  return {
    quick,
    runSeconds: quick ? 1 : 2,
    runs: quick ? 1 : 3,
    abRounds: quick ? 1 : 5,
    warmupSeconds: 1,
    wireSamples: quick ? 2 : 5,
    latencySamples: quick ? 300 : 2000
  }
}

/** What every figure function gets. */
export interface Bench {
  plan: Plan
  split: CpuSplit
  servers: Record<Variant, Server>
  /** For curl's request bodies. */
  tmp: string
  hasCurl: boolean
}

export interface RunFigure {
  perSecond: number
  /** Completed requests counted by the load generator. */
  completed: number
  /** Share of one core the server used during the run. */
  serverCpu: number
  /** Server CPU time (user + system) per completed request, in microseconds: little affected by other load on the machine. */
  cpuPerRequestUs: number
  /** Busy share of each core during the run (all processes). */
  cores: number[]
  errors: Record<string, number>
  statuses: Record<string, number>
  /** Body bytes the client sent per request (Node load generator only). */
  bodyBytesPerRequest: number | null
  /** Connections the server still held 3 s after the load stopped. */
  left: number
  drainMs: number
}

export interface Throughput {
  /** `wrk` or `node` (the Node load generator), and its connections. */
  client: 'wrk' | 'node'
  connections: number
  /** Each side alone, runs alternated. */
  runs: Record<Variant, RunFigure[]>
  /** Both sides loaded at the same time, each by its own load generator: they share whatever else the machine does. */
  together: Record<Variant, RunFigure[]>
  /** Core load from other processes just before the figure. */
  background: number[]
}

type ClientFigure = Pick<RunFigure, 'perSecond' | 'completed' | 'errors' | 'statuses' | 'bodyBytesPerRequest'>

export interface Runner {
  client: Throughput['client']
  connections: number
  load: (server: Server, seconds: number) => Promise<ClientFigure>
}

const WRK_CONNECTIONS = 64

/** wrk -t1 -c64 with a script of plugin/wrk/, which prints its summary as a WRK_JSON line. */
export function wrkRunner (split: CpuSplit, script: string, path: string, expectStatus: number): Runner {
  const load = async (server: Server, seconds: number): Promise<ClientFigure> => {
    const out = await runChecked(...split.on('client', 'wrk', [
      '-t1', `-c${WRK_CONNECTIONS}`, `-d${seconds}s`, '-s', join(repoRoot, 'bench', 'plugin', 'wrk', script), `http://127.0.0.1:${server.port}${path}`
    ]), { timeoutMs: seconds * 1000 + 30_000 })
    const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '))
    if (line === undefined) throw new Error(`no summary from wrk:\n${out}`)
    const summary = JSON.parse(line.slice(9)) as Record<string, number>
    const requests = summary.requests ?? 0
    const errors: Record<string, number> = {}
    for (const key of ['connect', 'read', 'write', 'timeout']) {
      if ((summary[key] ?? 0) > 0) errors[key] = summary[key] ?? 0
    }
    // wrk counts every status >= 400 as a "status error"; the expected one is not an error here.
    const statusErrors = summary.status ?? 0
    const statuses: Record<string, number> = expectStatus >= 400
      ? { [String(expectStatus)]: statusErrors, other: requests - statusErrors }
      : { [String(expectStatus)]: requests - statusErrors, '>=400': statusErrors }
    return { perSecond: requests / ((summary.duration_us ?? 1) / 1e6), completed: requests, errors, statuses, bodyBytesPerRequest: null }
  }
  return { client: 'wrk', connections: WRK_CONNECTIONS, load }
}

/** The Node load generator (lib/load.ts); its rate counts every completed exchange, whatever its status. */
export function nodeRunner (split: CpuSplit, config: Omit<LoadConfig, 'port' | 'durationMs' | 'timeoutMs'>): Runner {
  const load = async (server: Server, seconds: number): Promise<ClientFigure> => {
    const result = await generate(split, { ...config, port: server.port, durationMs: seconds * 1000, timeoutMs: 5000 })
    return {
      perSecond: result.completed / result.seconds,
      completed: result.completed,
      errors: result.errors,
      statuses: result.statuses,
      bodyBytesPerRequest: result.bodyBytesPerRequest
    }
  }
  return { client: 'node', connections: config.connections, load }
}

/** Runs the load against one or more servers at the same time, and measures each. */
async function measureAll (targets: Server[], runner: Runner, seconds: number): Promise<RunFigure[]> {
  const before = await Promise.all(targets.map(probe))
  const coresBefore = coreTimes()
  const started = process.hrtime.bigint()
  const figures = await Promise.all(targets.map(async (server) => await runner.load(server, seconds)))
  const wallMicros = Number(process.hrtime.bigint() - started) / 1000
  const cores = coreBusy(coresBefore, coreTimes())
  const after = await Promise.all(targets.map(probe))
  const results: RunFigure[] = []
  for (const [i, server] of targets.entries()) {
    const figure = figures[i]!
    const cpuMicros = after[i]!.cpuMicros - before[i]!.cpuMicros
    // What is still open once the load generator has exited (lingering closes take up to 2 s).
    const { left, ms } = await drained(server, 3000)
    results.push({
      ...figure,
      serverCpu: cpuMicros / wallMicros,
      cpuPerRequestUs: figure.completed > 0 ? cpuMicros / figure.completed : Number.NaN,
      cores,
      left,
      drainMs: ms
    })
  }
  return results
}

function describe (figure: RunFigure): string {
  return `${figure.perSecond.toFixed(0)}/s, server CPU ${pct(figure.serverCpu)}, ${figure.cpuPerRequestUs.toFixed(1)} µs/req, cores ${pcts(figure.cores, ' ')}` +
    `${Object.keys(figure.errors).length > 0 ? `, errors ${JSON.stringify(figure.errors)}` : ''}, statuses ${JSON.stringify(figure.statuses)}` +
    `${figure.left > 0 ? `, ${figure.left} connections still open after ${figure.drainMs} ms` : ''}`
}

/** A warm-up per side, the runs of each side alone (alternated), then the A/B rounds. */
export async function throughput (key: string, bench: Bench, runner: Runner): Promise<Throughput> {
  const { plan, servers } = bench
  const idle = await background(500)
  log(`[${key}] background load: ${pcts(idle, ' ')}; warm-up`)
  for (const variant of variants) await measureAll([servers[variant]], runner, plan.warmupSeconds)
  const runs: Record<Variant, RunFigure[]> = { stock: [], plugin: [] }
  for (let i = 0; i < plan.runs; i++) {
    // Alternate which side goes first, so that a drift in the machine hits both.
    const order = i % 2 === 0 ? variants : [...variants].reverse()
    for (const variant of order) {
      const [figure] = await measureAll([servers[variant]], runner, plan.runSeconds)
      runs[variant].push(figure!)
      log(`[${key}] ${variant} alone, run ${i + 1}: ${describe(figure!)}`)
    }
  }
  const together: Record<Variant, RunFigure[]> = { stock: [], plugin: [] }
  for (let i = 0; i < plan.abRounds; i++) {
    const [stock, plugin] = await measureAll([servers.stock, servers.plugin], runner, plan.runSeconds)
    together.stock.push(stock!)
    together.plugin.push(plugin!)
    log(`[${key}] together, round ${i + 1}: stock ${describe(stock!)}; plugin ${describe(plugin!)}`)
  }
  return { client: runner.client, connections: runner.connections, runs, together, background: idle }
}
