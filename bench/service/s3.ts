// The S3 suite: the upload service on an S3 engine (Ceph RGW on loopback).
// bench/README.md ("The S3 suite") says what each figure means.
//
//   source <rgw state dir>/env     # or `npm run services:start`, whose settings go to .tap/rgw/env
//   node dist/bench/service/s3.js [--quick] [--unpinned] [--only=put,rss,list-s3,list-disk]
//
// (1) PUT of 1 GiB through the service against a direct lib-storage Upload,
// (2) peak RSS during concurrent 1 GiB uploads, (3) a listing page of 100
// of 10,000 files, on S3 and on disk. Every key it writes is under prefixes
// of its own (bench-<random>/), emptied when each figure ends, on an error
// and on SIGINT/SIGTERM; files on disk go under one temp directory, removed
// likewise. Results: dist/bench-results/s3.json (s3-quick.json with
// --quick, s3-partial.json with --only), and the tables on stdout.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HeadBucketCommand } from '@aws-sdk/client-s3'
import { background, machine } from '../lib/cpu.js'
import { cpuSplit, hasCommand, killChildren, log, run } from '../lib/proc.js'
import { f0, loadResults, pcts, reportText, resultsPath, saveResults, sizeName } from '../lib/report.js'
import { freeBytes, writeSource } from './context.js'
import { listing } from './listing.js'
import { releasePrefix, s3Figures, s3Plan } from './s3-context.js'
import type { S3Bench, S3Figure } from './s3-context.js'
import { engineClient, enginePids, engineSettings } from './s3-engine.js'
import type { Engine } from './s3-engine.js'
import { s3PeakRss, s3Put } from './s3-figures.js'
import { renderS3 } from './s3-report.js'
import type { S3Results } from './s3-report.js'
import { SERVICE_SCRIPT, SHIPPED_NODE_ARGS, tail } from './servers.js'

const args = process.argv.slice(2)
const unpinned = args.includes('--unpinned')
const onlyArg = args.find((a) => a.startsWith('--only='))?.slice(7)
const only = onlyArg === undefined ? [...s3Figures] : onlyArg.split(',') as S3Figure[]
for (const figure of only) {
  if (!s3Figures.includes(figure)) {
    log(`unknown figure ${JSON.stringify(figure)}: --only takes ${s3Figures.join(', ')}`)
    process.exit(2)
  }
}
const plan = s3Plan(args.includes('--quick'))
const startedAt = Date.now()

for (const command of ['curl']) {
  if (!hasCommand(command)) {
    log(`bench:s3 needs ${command} (apt-get install -y ${command})`)
    process.exit(1)
  }
}
function loadEngine (): Engine {
  try {
    return engineSettings()
  } catch (error) {
    log(`bench:s3: ${(error as Error).message}`)
    process.exit(1)
  }
}
const engine = loadEngine()
const split = cpuSplit(!unpinned)
const needed = plan.big + plan.warmup + 512 * 1024 * 1024
if (freeBytes(tmpdir()) < needed) {
  log(`bench:s3 refuses to run: ${tmpdir()} has less than ${sizeName(needed)} free (the sources and the disk listing). Point TMPDIR at a larger filesystem.`)
  process.exit(1)
}
const tmp = mkdtempSync(join(tmpdir(), 'upfront-bench-s3-'))
const bench: S3Bench = {
  plan,
  split,
  tmp,
  engine,
  enginePids: enginePids(),
  logLevel: process.env.BENCH_LOG_LEVEL ?? 'warn',
  startedAt,
  sources: { big: { path: '', bytes: 0, sha256: '' }, warmup: { path: '', bytes: 0, sha256: '' } },
  prefixes: new Set(),
  emptied: {},
  background: {},
  problems: []
}

let cleaning: Promise<void> | null = null
/** Ends every process it started, empties the prefixes still in use, removes the temp directory. */
async function cleanup (): Promise<void> {
  cleaning ??= (async () => {
    killChildren()
    for (const prefix of [...bench.prefixes]) {
      try {
        await releasePrefix(bench, prefix)
      } catch (error) {
        log(`could not empty ${prefix}: ${(error as Error).message}`)
      }
    }
    rmSync(tmp, { recursive: true, force: true })
  })()
  await cleaning
}
process.once('uncaughtException', (error) => {
  log(`bench:s3 failed: ${error.stack ?? error.message}`)
  cleanup().finally(() => process.exit(1))
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping, emptying ${[...bench.prefixes].join(', ') || 'no prefix'} and removing ${tmp}`)
    cleanup().finally(() => process.exit(130))
  })
}

async function engineName (): Promise<string> {
  if (hasCommand('radosgw')) {
    const version = /ceph version ([\d.]+)/.exec((await run('radosgw', ['--version'], { timeoutMs: 10_000 })).stdout)
    if (version !== null) return `Ceph RGW ${version[1] as string}`
  }
  return 'an S3 engine'
}

try {
  const client = engineClient(engine)
  await client.send(new HeadBucketCommand({ Bucket: engine.bucket }))
  client.destroy()
  const machineInfo = machine()
  const startBackground = await background(1000)
  log(`bench:s3: ${only.join(', ')}; working in ${tmp}; engine ${engine.endpoint} bucket ${engine.bucket}; CPU split: ${split.pinned ? 'services on core 0, clients on core 1' : 'not pinned'}` +
    `; background load ${pcts(startBackground)} (load average ${machineInfo.loadAverage})`)
  if (only.includes('put') || only.includes('rss')) {
    const block = randomBytes(1024 * 1024)
    bench.sources.big = writeSource(join(tmp, 'source-big'), block, plan.big / block.length)
    bench.sources.warmup = writeSource(join(tmp, 'source-warmup'), block, plan.warmup / block.length)
    // Read once: from here on curl and the direct uploader read it from the page cache.
    await run('sh', ['-c', 'cat "$1" > /dev/null', 'sh', bench.sources.big.path], { timeoutMs: 60_000 })
  }

  const put = only.includes('put') ? await s3Put(bench) : null
  const rss = only.includes('rss') ? await s3PeakRss(bench) : null
  const listings = []
  if (only.includes('list-s3')) listings.push(await listing(bench, 's3'))
  if (only.includes('list-disk')) listings.push(await listing(bench, 'disk'))

  const results: S3Results = {
    suite: 's3',
    machine: machineInfo,
    command: `npm run bench:s3${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
    plan,
    pinned: split.pinned,
    engine: { endpoint: engine.endpoint, server: await engineName() },
    serviceCommand: `node ${[...SHIPPED_NODE_ARGS, SERVICE_SCRIPT].join(' ')}`,
    logLevel: bench.logLevel,
    background: startBackground,
    backgroundByFigure: bench.background,
    put,
    rss,
    listing: listings,
    problems: bench.problems,
    seconds: (Date.now() - startedAt) / 1000
  }
  const path = resultsPath(onlyArg !== undefined ? 's3-partial' : plan.quick ? 's3-quick' : 's3')
  saveResults(path, results)
  process.stdout.write(reportText(renderS3(loadResults<S3Results>(path))))
  log(`results: ${path} (node dist/bench/report.js ${path} re-renders them); total ${f0(results.seconds)} s; prefixes emptied: ` +
    Object.entries(bench.emptied).map(([prefix, e]) => `${prefix} (${e.objects} objects, ${e.multipart} multipart uploads)`).join(', '))
  if (bench.problems.length > 0) process.exitCode = 1
} catch (error) {
  log(`bench:s3 failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
  for (const entry of readdirSync(tmp)) {
    if (entry.endsWith('.log')) log(`--- ${entry} (last lines)\n${tail(join(tmp, entry))}`)
  }
  process.exitCode = 1
} finally {
  await cleanup()
}
