// The service suite: the upload service (dist/server.js) against a bare
// node:http server (service/bare-server.ts) and against the machine's own
// ceilings. `npm run bench:uploads` builds and runs it; bench/README.md
// ("The service suite") says what each figure means.
//
//   node dist/bench/service/run.js [--quick] [--unpinned] [--service-node-args='--flag --other-flag']
//
// CPU split on a 2-core machine: core 0 runs the server under test (one
// loaded at a time), dd and the SHA-256 ceiling; core 1 runs the clients
// (curl, the load generator) and this orchestrator, idle while a client
// runs. `--unpinned` lets every process use both cores.
// `--service-node-args` adds Node/V8 flags to the service's command line
// (`node <flags> dist/server.js`), to try a deployment setting. `--quick`
// runs each figure once, with 64 MiB instead of 1 GiB.
//
// Everything it writes goes under one directory in the OS temp directory,
// removed at the end, on error and on SIGINT/SIGTERM. The results go to
// dist/bench-results/service.json (service-quick.json with --quick), and
// the tables made from that file to stdout.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { background, machine } from '../lib/cpu.js'
import { curlVersion } from '../lib/curl.js'
import { cpuSplit, hasCommand, killChildren, log, run } from '../lib/proc.js'
import { f0, loadResults, pct, pcts, reportText, resultsPath, saveResults, sizeName } from '../lib/report.js'
import { freeBytes, GIB, plan, syncDisk, writeSource } from './context.js'
import type { Bench } from './context.js'
import { bigUploads, ceilings, peakRss, smallUploads } from './figures.js'
import type { ServiceResults } from './figures.js'
import { renderService } from './report.js'
import { SERVICE_SCRIPT, SHIPPED_NODE_ARGS, startBare, stop, tail } from './servers.js'

const args = process.argv.slice(2)
const unpinned = args.includes('--unpinned')
const serviceNodeArgs = (args.find((a) => a.startsWith('--service-node-args='))?.slice(20) ?? '').split(' ').filter((a) => a !== '')
const runPlan = plan(args.includes('--quick'))
const startedAt = Date.now()

let tmp = ''
let cleaned = false
function cleanup (): void {
  if (cleaned) return
  cleaned = true
  killChildren()
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true })
}
// Also when the process dies of an uncaught error: no server and no large file is left behind.
process.once('exit', cleanup)
process.once('uncaughtException', (error) => {
  log(`bench:uploads failed: ${error.stack ?? error.message}`)
  cleanup()
  process.exit(1)
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping the servers and removing ${tmp}`)
    cleanup()
    process.exit(130)
  })
}

for (const command of ['curl', 'dd', 'sync']) {
  if (!hasCommand(command)) {
    log(`bench:uploads needs ${command} (apt-get install -y ${command === 'curl' ? 'curl' : 'coreutils'})`)
    process.exit(1)
  }
}
const split = cpuSplit(!unpinned)
if (!unpinned && !split.pinned) log('taskset is missing: processes are not pinned to cores (apt-get install -y util-linux)')

const freeAtStart = freeBytes(tmpdir())
if (freeAtStart < runPlan.minFree) {
  log(`bench:uploads refuses to run: ${tmpdir()} has ${(freeAtStart / GIB).toFixed(1)} GiB free, and it needs ${runPlan.minFree / GIB} GiB ` +
    `(it holds up to about ${runPlan.concurrent + 2} × ${sizeName(runPlan.big)} at once: the sources plus ${runPlan.concurrent} uploads). Free some space or point TMPDIR at a larger filesystem.`)
  process.exit(1)
}
tmp = mkdtempSync(join(tmpdir(), 'upfront-bench-uploads-'))

try {
  log(`bench:uploads: working in ${tmp} (${(freeAtStart / GIB).toFixed(0)} GiB free); CPU split: ${split.pinned ? 'servers on core 0, clients on core 1' : 'not pinned'}` +
    `${runPlan.quick ? `; quick: ${sizeName(runPlan.big)} instead of 1 GiB, one round` : ''}`)
  const machineInfo = machine()
  const startBackground = await background(1000)
  log(`background load: ${pcts(startBackground)} (load average ${machineInfo.loadAverage})`)

  // The sources: one random MiB repeated, each SHA-256 computed as it is written.
  const block = randomBytes(runPlan.small)
  const sources = {
    big: writeSource(join(tmp, 'source-big'), block, runPlan.big / runPlan.small),
    small: writeSource(join(tmp, 'source-small'), block, 1),
    medium: writeSource(join(tmp, 'source-medium'), block, runPlan.medium / runPlan.small)
  }
  const base = { plan: runPlan, split, tmp, startedAt, serviceNodeArgs, logLevel: process.env.BENCH_LOG_LEVEL ?? 'info', background: {}, problems: [] }
  await syncDisk(base)
  // Read once: from here on curl reads them from the page cache.
  await run('sh', ['-c', 'cat "$1" "$2" > /dev/null', 'sh', sources.big.path, sources.medium.path], { timeoutMs: 60_000 })
  const cached = hasCommand('fincore')
    ? Number((await run('fincore', ['--bytes', '--noheadings', '--output', 'RES', sources.big.path], { timeoutMs: 10_000 })).stdout.trim())
    : Number.NaN
  log(`source: ${sizeName(runPlan.big)}, sha256 ${sources.big.sha256.slice(0, 16)}..., ${Number.isFinite(cached) ? `${pct(cached / runPlan.big)} in the page cache` : 'page cache not checked (no fincore)'}`)
  const bench: Bench = {
    ...base,
    sources,
    bare: {
      pipe: await startBare(base, 'pipe'),
      sha256: await startBare(base, 'sha256'),
      'sha256-large': await startBare(base, 'sha256-large'),
      durable: await startBare(base, 'durable'),
      discard: await startBare(base, 'discard')
    }
  }

  const big = await bigUploads(bench)
  const ceilingRates = await ceilings(bench)
  const rss = await peakRss(bench)
  const small = await smallUploads(bench)
  for (const server of Object.values(bench.bare)) await stop(server)

  const results: ServiceResults = {
    suite: 'service',
    machine: machineInfo,
    command: `npm run bench:uploads${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
    plan: runPlan,
    pinned: split.pinned,
    serviceCommand: `node ${[...SHIPPED_NODE_ARGS, SERVICE_SCRIPT].join(' ')}`,
    serviceNodeArgs,
    logLevel: bench.logLevel,
    curl: await curlVersion(),
    tmpdir: tmpdir(),
    freeAtStart,
    freeAtEnd: freeBytes(tmp),
    cached,
    background: startBackground,
    backgroundByFigure: bench.background,
    big,
    ceilings: ceilingRates,
    rss,
    small,
    problems: bench.problems,
    seconds: (Date.now() - startedAt) / 1000
  }
  const path = resultsPath(runPlan.quick ? 'service-quick' : 'service')
  saveResults(path, results)
  process.stdout.write(reportText(renderService(loadResults<ServiceResults>(path))))
  log(`results: ${path} (node dist/bench/report.js ${path} re-renders them); total ${f0(results.seconds)} s`)
  if (bench.problems.length > 0) process.exitCode = 1
} catch (error) {
  log(`bench:uploads failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
  for (const entry of readdirSync(tmp)) {
    if (entry.endsWith('.log')) log(`--- ${entry} (last lines)\n${tail(join(tmp, entry))}`)
  }
  process.exitCode = 1
} finally {
  cleanup()
}
