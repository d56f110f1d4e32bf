// (3) of the S3 suite: a listing page (`GET /files?limit=100&cursor=...`)
// from many files of one owner, on S3 and on disk. The files are created
// through the service (lib/load.ts, numbered names), then a fresh service
// process is timed on the first page and on a page in the middle (the
// first request of each, then repetitions, alternated). What a page costs
// the storage: on S3 the engine requests, counted by a proxy in front of
// the engine (s3-proxy.ts), through the process that wrote the files (its
// records cached) and through one that has read none of them; on disk the
// system calls on files, counted with `strace -f -c` when it is installed.
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { generate } from '../lib/load.js'
import { hasCommand, log, track } from '../lib/proc.js'
import { f0, f1, f2 } from '../lib/report.js'
import { median } from '../lib/stats.js'
import { checkBackground, checkDeadline, releasePrefix, takePrefix } from './s3-context.js'
import type { S3Bench } from './s3-context.js'
import { serviceS3Env } from './s3-engine.js'
import { startCountingProxy } from './s3-proxy.js'
import type { Counts, CountingProxy } from './s3-proxy.js'
import { AUTH, startServiceWith, stop, waitIdle } from './servers.js'
import type { Server } from './servers.js'

export type Backend = 's3' | 'disk'

export interface PageTimes {
  /** The first request for the page in a fresh process (after its start-up sweep). */
  firstMs: number
  /** The repetitions after it. */
  ms: number[]
  medianMs: number
}

export interface ListingFigure {
  backend: Backend
  files: number
  pageSize: number
  /** Creating the files through the service: uploads per second, verified 201s. */
  create: { perSecond: number, ok: number, seconds: number, errors: Record<string, number> }
  /** S3: engine requests the creation cost, per upload. */
  requestsPerUpload: Record<string, number> | null
  /** S3: what the start-up sweep of a fresh process over the files cost (cut after the plan's sweepMaxMs: `complete` false). */
  sweep: { counts: Counts, seconds: number, complete: boolean } | null
  /** Pages the whole walk took, and which one is "the middle". */
  pages: number
  middle: number
  first: PageTimes
  mid: PageTimes
  /** S3: engine requests of each page of the walk through the process that wrote the files (first, middle, and the range over all). */
  pageCounts: { first: Counts, middle: Counts, min: number, max: number } | null
  /** S3: the same through a process that had read none of the records. */
  coldPageCounts: { first: Counts, middle: Counts, min: number, max: number } | null
  /** Disk: system calls on files for one page (strace -f -c), first and middle; null without strace. */
  syscalls: { first: Record<string, number>, middle: Record<string, number> } | null
  /** Waited for the timed process to go idle (its start-up sweep). */
  idleWaitMs: number
}

interface Page { files: Array<{ name: string }>, nextCursor: string | null }

async function getPage (port: number, limit: number, cursor: string | undefined): Promise<{ page: Page, ms: number }> {
  const started = process.hrtime.bigint()
  const answer = await fetch(`http://127.0.0.1:${port}/files?limit=${limit}${cursor === undefined ? '' : `&cursor=${cursor}`}`, {
    headers: { authorization: AUTH },
    signal: AbortSignal.timeout(120_000)
  })
  const text = await answer.text()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  if (answer.status !== 200) throw new Error(`GET /files answered ${answer.status}: ${text.slice(0, 300)}`)
  return { page: JSON.parse(text) as Page, ms }
}

/** Walks every page; returns the cursor of each page (undefined for the first) after checking the names: all there, in order. */
async function walk (bench: S3Bench, port: number, proxy: CountingProxy | null, perPage: Counts[]): Promise<Array<string | undefined>> {
  const cursors: Array<string | undefined> = []
  let cursor: string | undefined
  let previous: Buffer | null = null
  let names = 0
  do {
    proxy?.take()
    const { page } = await getPage(port, bench.plan.pageSize, cursor)
    if (proxy !== null) perPage.push(proxy.take())
    cursors.push(cursor)
    for (const file of page.files) {
      const name = Buffer.from(file.name)
      if (previous !== null && Buffer.compare(previous, name) >= 0) throw new Error(`listing out of order: ${previous.toString()} before ${file.name}`)
      previous = name
      names++
    }
    cursor = page.nextCursor ?? undefined
  } while (cursor !== undefined)
  if (names !== bench.plan.listFiles) bench.problems.push(`(3) the walk listed ${names} names, not ${bench.plan.listFiles}`)
  return cursors
}

/** `listReps` requests of the first and of the middle page, alternated. */
async function timePages (bench: S3Bench, port: number, cursors: Array<string | undefined>, middle: number): Promise<{ first: number[], mid: number[] }> {
  const times = { first: [] as number[], mid: [] as number[] }
  for (let i = 0; i < bench.plan.listReps; i++) {
    for (const which of i % 2 === 0 ? (['first', 'mid'] as const) : (['mid', 'first'] as const)) {
      const { page, ms } = await getPage(port, bench.plan.pageSize, which === 'first' ? undefined : cursors[middle])
      if (page.files.length !== bench.plan.pageSize) bench.problems.push(`(3) a page of ${page.files.length} names, not ${bench.plan.pageSize}`)
      times[which].push(ms)
    }
  }
  return times
}

/** System calls on files made by a process (all threads) while `action` runs, from `strace -f -c`. */
async function countSyscalls (pid: number, action: () => Promise<unknown>): Promise<Record<string, number>> {
  const child = track(spawn('strace', ['-f', '-c', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] }))
  let out = ''
  child.stderr?.on('data', (data: Buffer) => { out += data.toString() })
  for (let i = 0; i < 50 && !out.includes('attached'); i++) await sleep(100)
  await sleep(300)
  await action()
  const done = new Promise<void>((resolve) => { child.once('close', () => { resolve() }) })
  child.kill('SIGINT')
  await done
  const files = /^(openat|open|close|read|pread64|readv|getdents64|newfstatat|fstat|statx|lstat|stat|fsync|fdatasync|readlink)$/
  const calls: Record<string, number> = {}
  for (const match of out.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/gm)) {
    if (files.test(match[2] as string)) calls[match[2] as string] = Number(match[1])
  }
  return calls
}

async function create (bench: S3Bench, server: Server, proxy: CountingProxy | null): Promise<Pick<ListingFigure, 'create' | 'requestsPerUpload'>> {
  proxy?.take()
  const result = await generate(bench.split, {
    mode: 'keepalive',
    port: server.port,
    path: '/files/list/',
    numbered: true,
    headers: { Authorization: AUTH, 'Content-Type': 'text/plain' },
    bodyBytes: bench.plan.listBodyBytes,
    expect: false,
    connections: bench.plan.listConnections,
    durationMs: 900_000,
    count: bench.plan.listFiles,
    expectStatus: 201,
    checkSize: true,
    timeoutMs: 30_000
  })
  if (result.ok !== bench.plan.listFiles) {
    throw new Error(`(3) creating ${bench.plan.listFiles} files: ${result.ok} verified 201s; statuses ${JSON.stringify(result.statuses)}, errors ${JSON.stringify(result.errors)}`)
  }
  const counts = proxy?.take() ?? null
  const perUpload = counts === null ? null : Object.fromEntries(Object.entries(counts.operations).map(([op, n]) => [op, n / bench.plan.listFiles]))
  return { create: { perSecond: result.ok / result.seconds, ok: result.ok, seconds: result.seconds, errors: result.errors }, requestsPerUpload: perUpload }
}

/** Until the proxy has seen no request for `quietMs` (and none is open), at most `maxMs`; the time from `since` to the last request, and whether it went quiet. */
async function proxyQuiet (proxy: CountingProxy, since: number, maxMs: number, quietMs = 3000): Promise<{ seconds: number, quiet: boolean }> {
  while ((proxy.open > 0 || Date.now() - Math.max(proxy.lastAt, since) < quietMs) && Date.now() - since < maxMs) await sleep(200)
  return { seconds: Math.max(0, proxy.lastAt - since) / 1000, quiet: proxy.open === 0 && Date.now() - proxy.lastAt >= quietMs }
}

interface Timed {
  first: PageTimes
  mid: PageTimes
  middle: number
  cursors: Array<string | undefined>
  syscalls: ListingFigure['syscalls']
  idleWaitMs: number
}

/** Times the pages on `timed` (the first request: its first listing; then the repetitions), and the middle page's first request on `timedMiddle`. */
async function timeBoth (bench: S3Bench, timed: Server, timedMiddle: () => Promise<Server>, known: Array<string | undefined>, perPage: Counts[], strace: boolean): Promise<Timed> {
  let idleWaitMs = await waitIdle(timed.pid)
  await checkBackground(bench, '3')
  const firstMs = (await getPage(timed.port, bench.plan.pageSize, undefined)).ms
  const cursors = known.length > 0 ? known : await walk(bench, timed.port, null, perPage)
  const middle = Math.floor(cursors.length / 2)
  // Read once, untimed, as the first page was: the repetitions of both are of a page this process has listed.
  await getPage(timed.port, bench.plan.pageSize, cursors[middle])
  const reps = await timePages(bench, timed.port, cursors, middle)
  let syscalls: ListingFigure['syscalls'] = null
  if (strace && hasCommand('strace')) {
    syscalls = {
      first: await countSyscalls(timed.pid, async () => await getPage(timed.port, bench.plan.pageSize, undefined)),
      middle: await countSyscalls(timed.pid, async () => await getPage(timed.port, bench.plan.pageSize, cursors[middle]))
    }
  }
  await stop(timed)
  const other = await timedMiddle()
  idleWaitMs = Math.max(idleWaitMs, await waitIdle(other.pid))
  const midFirstMs = (await getPage(other.port, bench.plan.pageSize, cursors[middle])).ms
  await stop(other)
  return {
    first: { firstMs, ms: reps.first, medianMs: median(reps.first) },
    mid: { firstMs: midFirstMs, ms: reps.mid, medianMs: median(reps.mid) },
    middle,
    cursors,
    syscalls,
    idleWaitMs
  }
}

/**
 * (3) on one backend. On S3 the timed processes start before the files are
 * created, so that their start-up sweep is over at once and has cached no
 * record: their first request for a page reads its records, as a fresh
 * process's would; the middle page is requested once before its
 * repetitions are timed, as the first page was. On disk, where a process keeps the names it
 * resolved, they start after. The start-up sweep of a process over the S3
 * files is measured last, through the proxy.
 */
export async function listing (bench: S3Bench, backend: Backend): Promise<ListingFigure> {
  checkDeadline(bench, `(3) on ${backend}`)
  const prefix = backend === 's3' ? takePrefix(bench) : null
  const proxy = backend === 's3' ? await startCountingProxy(bench.engine.endpoint, bench.engine.bucket) : null
  const label = `list-${backend}`
  const dataDir = join(bench.tmp, `service-${label}`)
  const servers: Server[] = []
  const start = async (name: string, counted: boolean): Promise<Server> => {
    const server = await startServiceWith({
      split: bench.split,
      tmp: bench.tmp,
      label: name,
      env: prefix === null ? { DATA_DIR: dataDir } : serviceS3Env(bench.engine, prefix, counted && proxy !== null ? proxy.endpoint : bench.engine.endpoint),
      maxUploadBytes: bench.plan.maxUploadBytes,
      logLevel: bench.logLevel
    })
    servers.push(server)
    return server
  }
  try {
    const creator = await start(`${label}-create`, true)
    const early = proxy === null ? null : [await start(`${label}-time`, false), await start(`${label}-time-middle`, false), await start(`${label}-cold`, true)]
    await waitIdle(creator.pid)
    await checkBackground(bench, '3')
    const created = await create(bench, creator, proxy)
    log(`[list ${backend}] ${bench.plan.listFiles} files created: ${f0(created.create.perSecond)}/s` +
      (created.requestsPerUpload === null ? '' : `, engine requests per upload ${JSON.stringify(created.requestsPerUpload)}`))
    // S3: the walk through the counted process, page by page.
    const perPage: Counts[] = []
    const cursors = proxy === null ? [] : await walk(bench, creator.port, proxy, perPage)
    await stop(creator)
    const coldPerPage: Counts[] = []
    if (early !== null) {
      await walk(bench, (early[2] as Server).port, proxy, coldPerPage)
      await stop(early[2] as Server)
    }
    const timed = early === null
      ? await timeBoth(bench, await start(`${label}-time`, false), async () => await start(`${label}-time-middle`, false), cursors, perPage, true)
      : await timeBoth(bench, early[0] as Server, async () => early[1] as Server, cursors, perPage, false)
    const { first, mid, middle } = timed

    let sweep: ListingFigure['sweep'] = null
    if (proxy !== null) {
      proxy.take()
      const startedAt = Date.now()
      const sweeper = await start(`${label}-sweep`, true)
      const { seconds, quiet } = await proxyQuiet(proxy, startedAt, bench.plan.sweepMaxMs)
      sweep = { counts: proxy.take(), seconds, complete: quiet }
      await stop(sweeper)
      log(`[list s3] a fresh process's start-up sweep: ${sweep.counts.total} engine requests ${JSON.stringify(sweep.counts.operations)} in ${f1(seconds)} s${quiet ? '' : ' (cut: not over)'}`)
    }
    const summary = (counts: Counts[]): ListingFigure['pageCounts'] => {
      const totals = counts.map((c) => c.total)
      return counts.length === 0 ? null : { first: counts[0] as Counts, middle: counts[middle] as Counts, min: Math.min(...totals), max: Math.max(...totals) }
    }
    const pageCounts = summary(perPage)
    const coldPageCounts = summary(coldPerPage)
    log(`[list ${backend}] ${timed.cursors.length} pages; first page ${f1(first.firstMs)} ms first, median ${f2(first.medianMs)} ms; page ${middle + 1} ${f1(mid.firstMs)} ms first, median ${f2(mid.medianMs)} ms` +
      (pageCounts === null ? '' : `; engine requests per page ${pageCounts.min}–${pageCounts.max} (${JSON.stringify(pageCounts.first.operations)})`) +
      (coldPageCounts === null ? '' : `, in a process that had read no record ${coldPageCounts.min}–${coldPageCounts.max} (${JSON.stringify(coldPageCounts.first.operations)})`) +
      (timed.syscalls === null ? '' : `; system calls on files: first ${JSON.stringify(timed.syscalls.first)}, middle ${JSON.stringify(timed.syscalls.middle)}`))
    return {
      backend,
      files: bench.plan.listFiles,
      pageSize: bench.plan.pageSize,
      ...created,
      sweep,
      pages: timed.cursors.length,
      middle,
      first,
      mid,
      pageCounts,
      coldPageCounts,
      syscalls: timed.syscalls,
      idleWaitMs: timed.idleWaitMs
    }
  } finally {
    for (const server of servers) await stop(server)
    await proxy?.close()
    if (prefix !== null) await releasePrefix(bench, prefix)
    rmSync(dataDir, { recursive: true, force: true })
  }
}
