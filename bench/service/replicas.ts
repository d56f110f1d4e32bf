// The replica suite: two replicas of the service on one S3 bucket (Ceph
// RGW on loopback) behind HAProxy, configured as deploy/haproxy.cfg.
// bench/README.md ("The replica suite") says what each figure means.
//
//   source <rgw state dir>/env     # or `npm run services:start`, whose settings go to .tap/rgw/env
//   node dist/bench/service/replicas.js [--quick] [--unpinned] [--only=throughput,refusals,shutdown]
//
// (4a) 64 KiB uploads per second through HAProxy and two replicas against
// one replica direct, alternated rounds; (4b) refusals through HAProxy that
// cost no body byte; (4c) a SIGTERM to a replica with uploads in flight.
// Every key is under a prefix of the run's own (bench-<random>/), emptied at
// the end, on an error and on SIGINT/SIGTERM. Results:
// dist/bench-results/replicas.json (replicas-quick.json with --quick,
// replicas-partial.json with --only), and the tables on stdout.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { background, machine } from '../lib/cpu.js'
import { cpuSplit, hasCommand, killChildren, log, run } from '../lib/proc.js'
import { f0, loadResults, pcts, reportText, resultsPath, saveResults } from '../lib/report.js'
import { startHaproxy, stopHaproxy } from './haproxy.js'
import type { Proxy } from './haproxy.js'
import { refusals, replicaPlan, shutdown, throughput } from './replicas-figures.js'
import type { ReplicaBench } from './replicas-figures.js'
import { renderReplicas } from './replicas-report.js'
import type { ReplicaResults } from './replicas-report.js'
import { benchPrefix, countUnder, emptyPrefix, engineSettings, serviceS3Env } from './s3-engine.js'
import type { Engine } from './s3-engine.js'
import { freePort, SERVICE_SCRIPT, SHIPPED_NODE_ARGS, startServiceWith, stop, tail } from './servers.js'
import type { Server } from './servers.js'

const figures = ['throughput', 'refusals', 'shutdown'] as const
type Figure = typeof figures[number]
const args = process.argv.slice(2)
const onlyArg = args.find((a) => a.startsWith('--only='))?.slice(7)
const only = onlyArg === undefined ? [...figures] : onlyArg.split(',') as Figure[]
for (const figure of only) {
  if (!figures.includes(figure)) {
    log(`unknown figure ${JSON.stringify(figure)}: --only takes ${figures.join(', ')}`)
    process.exit(2)
  }
}
const plan = replicaPlan(args.includes('--quick'))
const startedAt = Date.now()
if (!hasCommand('haproxy')) {
  log('bench:replicas needs haproxy (apt-get install -y haproxy)')
  process.exit(1)
}
function loadEngine (): Engine {
  try {
    return engineSettings()
  } catch (error) {
    log(`bench:replicas: ${(error as Error).message}`)
    process.exit(1)
  }
}
const engine = loadEngine()
const split = cpuSplit(!args.includes('--unpinned'))
const tmp = mkdtempSync(join(tmpdir(), 'upfront-bench-replicas-'))
const prefix = benchPrefix()
const bench: ReplicaBench = { plan, split, background: {}, problems: [] }
const logLevel = process.env.BENCH_LOG_LEVEL ?? 'warn'

let cleaning: Promise<void> | null = null
async function cleanup (): Promise<void> {
  cleaning ??= (async () => {
    killChildren()
    try {
      const emptied = await emptyPrefix(engine, prefix)
      log(`emptied ${prefix}: ${emptied.objects} objects, ${emptied.multipart} multipart uploads`)
    } catch (error) {
      log(`could not empty ${prefix}: ${(error as Error).message}`)
    }
    rmSync(tmp, { recursive: true, force: true })
  })()
  await cleaning
}
process.once('uncaughtException', (error) => {
  log(`bench:replicas failed: ${error.stack ?? error.message}`)
  cleanup().finally(() => process.exit(1))
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping, emptying ${prefix} and removing ${tmp}`)
    cleanup().finally(() => process.exit(130))
  })
}

async function versionOf (command: string, pattern: RegExp, name: string): Promise<string> {
  const done = await run(command, ['--version'], { timeoutMs: 10_000 }).catch(() => null)
  const match = pattern.exec(`${done?.stdout ?? ''}${done?.stderr ?? ''}`)
  return match === null ? name : `${name} ${match[1] as string}`
}

const replicas: Server[] = []
let proxy: Proxy | null = null
try {
  const machineInfo = machine()
  const startBackground = await background(1000)
  log(`bench:replicas: ${only.join(', ')}; prefix ${prefix}; engine ${engine.endpoint}; CPU split: ${split.pinned ? 'replicas on core 0, HAProxy and clients on core 1' : 'not pinned'}` +
    `; background load ${pcts(startBackground)} (load average ${machineInfo.loadAverage})`)
  const proxyPort = await freePort()
  const env = {
    ...serviceS3Env(engine, prefix),
    PUBLIC_URL: `http://127.0.0.1:${proxyPort}`,
    TRUST_PROXY: '127.0.0.1',
    SHUTDOWN_DELAY_MS: String(plan.shutdownDelayMs)
  }
  for (const name of ['a', 'b']) {
    replicas.push(await startServiceWith({ split, tmp, label: `replica-${name}`, env, maxUploadBytes: plan.maxUploadBytes, logLevel }))
  }
  const [a, b] = replicas as [Server, Server]
  proxy = await startHaproxy(split, tmp, proxyPort, [a.port, b.port])

  const throughputFigure = only.includes('throughput') ? await throughput(bench, proxy, replicas, a) : null
  const refusalCases = only.includes('refusals') ? await refusals(bench, proxy) : []
  const shutdownFigure = only.includes('shutdown') ? await shutdown(bench, proxy, b, 'upfront-2') : null
  const expected = 2 * ((throughputFigure === null ? 0 : 2 * (plan.warmup + plan.rounds * plan.uploads)) +
    (shutdownFigure === null ? 0 : shutdownFigure.created + (shutdownFigure.throughProxy['201'] ?? 0)))
  // A data object and a record per upload: nothing lost, nothing left over.
  const stored = { objects: (await countUnder(engine, prefix)).objects, expected }
  if (stored.objects !== stored.expected) bench.problems.push(`${stored.objects} objects under the prefix, ${stored.expected} expected`)

  const results: ReplicaResults = {
    suite: 'replicas',
    machine: machineInfo,
    command: `npm run bench:replicas${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
    plan,
    pinned: split.pinned,
    engine: { endpoint: engine.endpoint, server: await versionOf('radosgw', /ceph version ([\d.]+)/, 'Ceph RGW') },
    haproxy: await versionOf('haproxy', /HAProxy version ([\d.]+)/, 'HAProxy'),
    haproxyConfig: proxy.config,
    serviceCommand: `node ${[...SHIPPED_NODE_ARGS, SERVICE_SCRIPT].join(' ')}`,
    logLevel,
    background: startBackground,
    backgroundByFigure: bench.background,
    throughput: throughputFigure,
    refusals: refusalCases,
    shutdown: shutdownFigure,
    stored,
    problems: bench.problems,
    seconds: (Date.now() - startedAt) / 1000
  }
  const path = resultsPath(onlyArg !== undefined ? 'replicas-partial' : plan.quick ? 'replicas-quick' : 'replicas')
  saveResults(path, results)
  process.stdout.write(reportText(renderReplicas(loadResults<ReplicaResults>(path))))
  log(`results: ${path} (node dist/bench/report.js ${path} re-renders them); total ${f0(results.seconds)} s`)
  if (bench.problems.length > 0) process.exitCode = 1
} catch (error) {
  log(`bench:replicas failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
  for (const entry of readdirSync(tmp)) {
    if (entry.endsWith('.log')) log(`--- ${entry} (last lines)\n${tail(join(tmp, entry))}`)
  }
  process.exitCode = 1
} finally {
  if (proxy !== null) await stopHaproxy(proxy)
  for (const replica of replicas) await stop(replica)
  await cleanup()
}
