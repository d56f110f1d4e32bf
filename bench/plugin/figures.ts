// The plugin suite's figures, one function each, returning plain data:
// (a) body bytes before the answer, (b1, b2) refusals per second, (c) time
// to 413, (d1, d2, d3) accepted uploads per second. bench/README.md says
// what each one means; plugin/report.ts turns them into tables.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { upload } from '../lib/client.js'
import type { Machine } from '../lib/cpu.js'
import { curl } from '../lib/curl.js'
import { requestHead } from '../lib/http.js'
import { generateLatency } from '../lib/load.js'
import type { LatencyStats } from '../lib/load.js'
import { log } from '../lib/proc.js'
import { SMALL_LIMIT, TOKEN, UPLOAD_LIMIT, UPLOAD_TYPE, variants } from './protocol.js'
import type { Variant } from './protocol.js'
import { drained, probe, serverRead } from './servers.js'
import type { Drained, Server } from './servers.js'
import { nodeRunner, throughput, wrkRunner } from './throughput.js'
import type { Bench, Plan, Throughput } from './throughput.js'

interface WireCase {
  key: string
  path: string
  headers: Record<string, string>
  bodyBytes: number
  /** The status both servers should answer. */
  status: number
}

const MB5 = 5_000_000
const wireCases: WireCase[] = [
  { key: 'no-token', path: '/upload', headers: { 'Content-Type': UPLOAD_TYPE }, bodyBytes: MB5, status: 401 },
  { key: 'too-large', path: '/upload', headers: { Authorization: TOKEN, 'Content-Type': UPLOAD_TYPE }, bodyBytes: 10_000_000, status: 413 },
  { key: 'media-type', path: '/upload', headers: { Authorization: TOKEN, 'Content-Type': 'image/png' }, bodyBytes: MB5, status: 415 },
  { key: 'prehandler-buffered', path: '/upload-prehandler', headers: { 'Content-Type': UPLOAD_TYPE }, bodyBytes: MB5, status: 401 },
  { key: 'prehandler-streamed', path: '/stream-prehandler', headers: { 'Content-Type': UPLOAD_TYPE }, bodyBytes: MB5, status: 401 },
  // Under Fastify's default 1 MiB bodyLimit, which the 404 route has: above it both answer 413.
  { key: '404-parsed-type', path: '/no-such-route', headers: { Authorization: TOKEN, 'Content-Type': UPLOAD_TYPE }, bodyBytes: 1_000_000, status: 404 },
  { key: '404-unparsed-type', path: '/no-such-route', headers: { Authorization: TOKEN, 'Content-Type': 'image/png' }, bodyBytes: MB5, status: 404 }
]

export interface WireSide {
  statuses: number[]
  /** Body bytes the client had written when the final answer's head arrived, per exchange. */
  sent: number[]
  /** Body bytes the server's socket read, per exchange (-1: unknown). */
  read: number[]
  /** Exchanges that got a 100. */
  continues: number
  errors: string[]
  /** The same request once with curl. */
  curl: { status: number, sent: number, read: number } | null
}

export interface WireFigure {
  cases: Array<{ key: string, declared: number, status: number, uploadLimit: number } & Record<Variant, WireSide>>
  /** Connections each server still held 3 s after the last exchange. */
  left: Record<Variant, Drained>
}

export interface LatencyFigure {
  /** The route's limit, in bytes. */
  limit: number
  declared: number[]
  sides: Record<Variant, LatencyStats[]>
}

export interface EndState {
  rss: number
  upfront: unknown
}

/** The results file of the suite. */
export interface PluginResults {
  suite: 'plugin'
  machine: Machine
  fastify: string
  command: string
  plan: Plan
  pinned: boolean
  restart: boolean
  seconds: number
  /** Core load from other processes before the servers started. */
  background: number[]
  a?: WireFigure
  b1?: Throughput
  b2?: Throughput
  c?: LatencyFigure
  d1?: Throughput
  d2?: Throughput
  d3?: Throughput
  end: Record<Variant, EndState>
}

async function wireOne (bench: Bench, server: Server, item: WireCase, file: string | undefined): Promise<WireSide> {
  const head = requestHead('PUT', item.path, { ...item.headers, 'Content-Length': item.bodyBytes, Expect: '100-continue' })
  const side: WireSide = { statuses: [], sent: [], read: [], continues: 0, errors: [], curl: null }
  for (let i = 0; i <= bench.plan.wireSamples; i++) {
    const result = await upload({ port: server.port, head, bodyBytes: item.bodyBytes })
    const read = await serverRead(server, result.localPort, head.length)
    if (i === 0) continue // warm-up: the first request on a route is slower (lazy compilation)
    side.statuses.push(result.status)
    side.sent.push(result.bodyBytesBeforeAnswer)
    side.read.push(read)
    if (result.informational.includes(100)) side.continues++
    if (result.error !== null) side.errors.push(result.error)
  }
  if (file !== undefined) {
    const headerArgs = Object.entries(item.headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`])
    const result = await curl(bench.split, ['-T', file, '-H', 'Expect: 100-continue', '--expect100-timeout', '1', ...headerArgs,
      `http://127.0.0.1:${server.port}${item.path}`], 10)
    if (result.error === null) {
      side.curl = { status: result.status, sent: result.uploaded, read: await serverRead(server, result.localPort, result.requestBytes) }
    } else {
      side.errors.push(`curl: ${result.error.split('\n')[0] ?? ''}`)
    }
  }
  return side
}

/** (a): each refusal case, a few exchanges per server with the raw client, then one with curl. */
export async function figureA (bench: Bench): Promise<WireFigure> {
  const files = new Map<number, string>()
  if (bench.hasCurl) {
    for (const size of new Set(wireCases.map((c) => c.bodyBytes))) {
      const file = join(bench.tmp, `body-${size}`)
      writeFileSync(file, Buffer.alloc(size, 'x'))
      files.set(size, file)
    }
  }
  for (const variant of variants) bench.servers[variant].tell({ type: 'track', on: true })
  const cases: WireFigure['cases'] = []
  for (const item of wireCases) {
    const sides = {} as Record<Variant, WireSide>
    for (const variant of variants) sides[variant] = await wireOne(bench, bench.servers[variant], item, files.get(item.bodyBytes))
    cases.push({ key: item.key, declared: item.bodyBytes, status: item.status, uploadLimit: UPLOAD_LIMIT, ...sides })
    log(`[a] ${item.key}: stock sent ${JSON.stringify(sides.stock.sent)} read ${JSON.stringify(sides.stock.read)}; ` +
      `plugin sent ${JSON.stringify(sides.plugin.sent)} read ${JSON.stringify(sides.plugin.read)}`)
  }
  for (const variant of variants) bench.servers[variant].tell({ type: 'track', on: false })
  return { cases, left: { stock: await drained(bench.servers.stock, 3000), plugin: await drained(bench.servers.plugin, 3000) } }
}

/** (b1): 401 refusals, keep-alive, no body, by wrk. */
export async function figureB1 (bench: Bench): Promise<Throughput> {
  return await throughput('b1', bench, wrkRunner(bench.split, 'refuse.lua', '/upload', 401))
}

/** (b2): 401 refusals of `Expect: 100-continue` with 1 MiB declared, a fresh connection each. */
export async function figureB2 (bench: Bench): Promise<Throughput> {
  return await throughput('b2', bench, nodeRunner(bench.split, {
    mode: 'fresh', path: '/upload', headers: { 'Content-Type': UPLOAD_TYPE }, bodyBytes: 1048576, expect: true, connections: 32, expectStatus: 401
  }))
}

/** (c): time to 413 for a declared 1 KiB and 10 TiB over the 512-byte limit, one at a time, per server. */
export async function figureC (bench: Bench): Promise<LatencyFigure> {
  const declared = [1024, 10 * 1024 ** 4]
  const sides = {} as Record<Variant, LatencyStats[]>
  log('[c] latency')
  for (const variant of variants) {
    sides[variant] = await generateLatency(bench.split, {
      mode: 'latency',
      port: bench.servers[variant].port,
      path: '/small',
      headers: { Authorization: TOKEN, 'Content-Type': UPLOAD_TYPE },
      cases: declared.map((bodyBytes) => ({ name: String(bodyBytes), bodyBytes })),
      samples: bench.plan.latencySamples,
      maxMs: 15_000
    })
  }
  return { limit: SMALL_LIMIT, declared, sides }
}

/** Accepted 4 KiB uploads per second, keep-alive, by the Node load generator, with or without Expect. */
async function acceptedUploads (bench: Bench, key: string, expect: boolean): Promise<Throughput> {
  return await throughput(key, bench, nodeRunner(bench.split, {
    mode: 'keepalive', path: '/upload', headers: { Authorization: TOKEN, 'Content-Type': UPLOAD_TYPE }, bodyBytes: 4096, expect, connections: 64, expectStatus: 200
  }))
}

/** (d1): accepted 4 KiB uploads, keep-alive, no Expect, by wrk. */
export async function figureD1 (bench: Bench): Promise<Throughput> {
  return await throughput('d1', bench, wrkRunner(bench.split, 'upload.lua', '/upload', 200))
}

/** (d2): the same by the Node load generator. */
export async function figureD2 (bench: Bench): Promise<Throughput> {
  return await acceptedUploads(bench, 'd2', false)
}

/** (d3): the same with `Expect: 100-continue`, the body sent after the 100. */
export async function figureD3 (bench: Bench): Promise<Throughput> {
  return await acceptedUploads(bench, 'd3', true)
}

/** Every figure, in the order a run takes them (`--only` picks some). */
export const figures = {
  a: figureA,
  b1: figureB1,
  b2: figureB2,
  c: figureC,
  d1: figureD1,
  d2: figureD2,
  d3: figureD3
} satisfies Record<string, (bench: Bench) => Promise<unknown>>

export type FigureKey = keyof typeof figures

export async function endState (server: Server): Promise<EndState> {
  const probed = await probe(server)
  return { rss: probed.rss, upfront: probed.upfront }
}
