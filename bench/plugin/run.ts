// The plugin suite: stock Fastify 5 against the same app with the upfront
// plugin. `npm run bench` builds and runs it; bench/README.md says what
// each figure means.
//
//   node dist/bench/plugin/run.js [--quick] [--only=a,b1,b2,c,d1,d2,d3] [--restart]
//
// CPU split on a 2-core machine: core 0 runs the servers (both live for the
// whole run; one is loaded at a time, except in the A/B rounds where both
// are); core 1 runs the load generators (wrk -t1, the Node load generator,
// curl) and this orchestrator, which is idle while a load runs.
// It writes dist/bench-results/plugin.json (plugin-quick.json with
// --quick, plugin[-quick]-partial.json with --only), then prints the
// tables made from that file.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { background, machine } from '../lib/cpu.js'
import { cpuSplit, hasCommand, log } from '../lib/proc.js'
import { loadResults, reportText, resultsPath, saveResults } from '../lib/report.js'
import { endState, figures } from './figures.js'
import type { FigureKey, PluginResults } from './figures.js'
import { variants } from './protocol.js'
import type { Variant } from './protocol.js'
import { renderPlugin } from './report.js'
import { startServer, stopServer } from './servers.js'
import type { Server } from './servers.js'
import { plan } from './throughput.js'
import type { Bench } from './throughput.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const restart = args.includes('--restart')
const keys = Object.keys(figures) as FigureKey[]
const onlyArg = args.find((a) => a.startsWith('--only='))
const only = new Set(onlyArg === undefined ? keys : onlyArg.slice(7).split(','))
const unknown = [...only].filter((key) => !keys.includes(key as FigureKey))
if (unknown.length > 0) throw new Error(`unknown figure(s) ${unknown.join(', ')}: pick among ${keys.join(', ')}`)

const split = cpuSplit(true)
if (!hasCommand('wrk') && (only.has('b1') || only.has('d1'))) throw new Error('wrk is needed: apt-get install -y wrk')

const startedAt = Date.now()
const results = {
  suite: 'plugin',
  machine: machine(),
  command: `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
  plan: plan(quick),
  pinned: split.pinned,
  restart,
  background: await background(1000)
} as PluginResults
const servers: Record<Variant, Server> = { stock: await startServer('stock', split), plugin: await startServer('plugin', split) }
const tmp = mkdtempSync(join(tmpdir(), 'upfront-bench-'))
const bench: Bench = { plan: results.plan, split, servers, tmp, hasCurl: hasCommand('curl') }
try {
  // By default the servers are reused, in the order a, b1, b2, c, d1, d2, d3, so
  // that a figure includes the effect of the traffic before it, as on a real
  // server; `--restart` gives each figure fresh processes.
  let sections = 0
  for (const key of keys) {
    if (!only.has(key)) continue
    if (sections++ > 0 && restart) {
      for (const variant of variants) {
        stopServer(servers[variant])
        servers[variant] = await startServer(variant, split)
      }
    }
    Object.assign(results, { [key]: await figures[key](bench) })
  }
  results.fastify = servers.stock.fastify
  results.end = { stock: await endState(servers.stock), plugin: await endState(servers.plugin) }
  results.seconds = (Date.now() - startedAt) / 1000
} finally {
  rmSync(tmp, { recursive: true, force: true })
  for (const variant of variants) stopServer(servers[variant])
}

// A quick or partial run never replaces the results of a full one.
const path = resultsPath(`plugin${quick ? '-quick' : ''}${onlyArg === undefined ? '' : '-partial'}`)
saveResults(path, results)
process.stdout.write(reportText(renderPlugin(loadResults<PluginResults>(path))))
log(`results: ${path} (node dist/bench/report.js ${path} re-renders them)`)
