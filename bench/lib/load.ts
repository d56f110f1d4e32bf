// The Node load generator. It runs in its own process (lib/load-process.ts),
// started through `generate` / `generateLatency` below, and answers with
// one JSON line.
//
// - `keepalive`: `connections` keep-alive connections, each sending its next
//   request once the previous answer is complete (reconnecting when the
//   server closes, or answered before the whole body was sent). Used where
//   wrk cannot go: wrk does not understand a `100 Continue`.
// - `fresh`: a new connection per request, closed once the answer is read.
// Either runs until its deadline (`durationMs`: a rate over a fixed time),
// or sends `count` requests and stops (`durationMs` then only bounds the
// run, and reaching it is an error). With `numbered`, request i goes to
// `<path><i>`: a new name per upload.
// - `latency`: one request at a time on a fresh connection, the cases taken
//   in turn; time from the head's write to the final answer's head.
// With `expect`, a request carries `Expect: 100-continue` and its body is
// sent only after a 100 (or after 1 s without one, as curl does), in 64 KiB
// chunks, stopping as soon as a final answer has been read; without it,
// head and body go in one write, as wrk sends them.
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { upload } from './client.js'
import { requestHead, parseResponseHead } from './http.js'
import type { CpuSplit } from './proc.js'
import { runNodeJson } from './proc.js'
import { count, median, percentile } from './stats.js'

export interface LoadConfig {
  mode: 'keepalive' | 'fresh'
  port: number
  path: string
  numbered?: boolean
  /** Request headers besides Host, Content-Length and Expect. */
  headers: Record<string, string>
  bodyBytes: number
  expect: boolean
  connections: number
  durationMs: number
  count?: number
  /** Answers with this status are `ok`; with `checkSize`, only when their JSON body says `"size":<bodyBytes>`. */
  expectStatus: number
  checkSize?: boolean
  /** Bound on one exchange, counted as a `timeout` error. */
  timeoutMs: number
}

export interface LoadResult {
  /** Answers read in full (before the deadline, when it is the run's end). */
  completed: number
  /** Of which with the expected status (and size). */
  ok: number
  /** The run's length: `durationMs`, or the time the `count` requests took. */
  seconds: number
  statuses: Record<string, number>
  errors: Record<string, number>
  /** Body bytes handed to the socket, per completed request. */
  bodyBytesPerRequest: number
  /** 100 Continue answers received. */
  continues: number
  connects: number
  /** Of the `ok` exchanges: from the head's write to the end of the answer. */
  p50Ms: number
  p99Ms: number
  maxMs: number
}

export interface LatencyConfig {
  mode: 'latency'
  port: number
  path: string
  /** Request headers besides Host, Content-Length and Expect (always `100-continue`). */
  headers: Record<string, string>
  /** The declared body sizes, taken in turn. */
  cases: Array<{ name: string, bodyBytes: number }>
  samples: number
  /** Stop early after this long, whatever the sample count. */
  maxMs: number
}

export interface LatencyStats {
  name: string
  samples: number
  /** By status; "0" = no answer (a reset or a timeout). */
  statuses: Record<string, number>
  medianUs: number
  p99Us: number
  minUs: number
  errors: number
}

const CHUNK_SIZE = 64 * 1024
const EXPECT_WAIT_MS = 1000
const TICK_MS = 50

export async function runLoad (config: LoadConfig): Promise<LoadResult> {
  const body = Buffer.alloc(config.bodyBytes, 'x')
  const chunk = body.subarray(0, Math.min(CHUNK_SIZE, config.bodyBytes))
  const headOf = (index: number): Buffer => requestHead('PUT', config.numbered === true ? `${config.path}${index}` : config.path,
    { ...config.headers, 'Content-Length': config.bodyBytes, ...(config.expect ? { Expect: '100-continue' } : {}) })
  const fixedHead = config.numbered === true ? null : headOf(0)
  const fixedWhole = fixedHead === null || config.expect ? null : Buffer.concat([fixedHead, body])
  const sizeMark = `"size":${config.bodyBytes}`
  const limit = config.count ?? Number.POSITIVE_INFINITY
  const statuses: Record<string, number> = {}
  const errors: Record<string, number> = {}
  const latencies: number[] = []
  let next = 0
  let completed = 0
  let ok = 0
  let bodyBytes = 0
  let continues = 0
  let connects = 0
  let stopped = false
  let live = 0
  const started = process.hrtime.bigint()
  const deadline = Date.now() + config.durationMs
  let finish: () => void = () => {}
  const done = new Promise<void>((resolve) => { finish = resolve })

  class Conn {
    socket: Socket | null = null
    received: Buffer | null = null
    offset = 0
    inFlight = false
    startedMs = 0
    sentAt = 0n
    status = 0
    sending = false
    sent = 0
    bodyEnd = -1
    close = false
    /** Which request of this connection a scheduled body chunk belongs to. */
    generation = 0

    open (): void {
      if (stopped || next >= limit) { this.retire(); return }
      connects++
      const socket = connect(config.port, '127.0.0.1')
      this.socket = socket
      socket.setNoDelay(true)
      socket.on('connect', () => { this.send() })
      socket.on('data', (data: Buffer) => { this.onData(data) })
      socket.on('error', (error: NodeJS.ErrnoException) => { if (!stopped) count(errors, error.code ?? error.message) })
      socket.on('close', () => {
        if (this.socket !== socket) return
        this.socket = null
        if (this.inFlight && !stopped) count(errors, 'closed before the answer')
        this.inFlight = false
        this.open()
      })
    }

    retire (): void {
      const socket = this.socket
      this.socket = null
      socket?.destroy()
      if (--live === 0) finish()
    }

    send (): void {
      const socket = this.socket
      if (socket === null) return
      if (stopped || next >= limit) { this.retire(); return }
      const index = next++
      this.inFlight = true
      this.generation++
      this.status = 0
      this.sending = false
      this.sent = 0
      this.received = null
      this.offset = 0
      this.bodyEnd = -1
      this.startedMs = Date.now()
      this.sentAt = process.hrtime.bigint()
      const head = fixedHead ?? headOf(index)
      if (config.expect) {
        socket.write(head)
      } else {
        socket.write(fixedWhole ?? Buffer.concat([head, body]))
        this.sent = config.bodyBytes
      }
    }

    /** Sends the body in chunks, yielding between them so that an answer can stop it. */
    pump (generation: number): void {
      const socket = this.socket
      if (socket === null || socket.destroyed || this.status !== 0 || generation !== this.generation) return
      if (this.sent >= config.bodyBytes) return
      const piece = Math.min(chunk.length, config.bodyBytes - this.sent)
      this.sent += piece
      const flushed = socket.write(piece === chunk.length ? chunk : chunk.subarray(0, piece))
      if (this.sent >= config.bodyBytes) return
      if (flushed) setImmediate(() => { this.pump(generation) })
      else socket.once('drain', () => { this.pump(generation) })
    }

    startBody (): void {
      if (this.sending || this.status !== 0 || !config.expect) return
      this.sending = true
      this.pump(this.generation)
    }

    onData (data: Buffer): void {
      if (!this.inFlight) return
      this.received = this.received === null ? data : Buffer.concat([this.received, data])
      const received = this.received
      let continued = false
      while (this.status === 0) {
        const response = parseResponseHead(received, this.offset)
        if (response === null) break
        this.offset = response.end
        if (response.status < 200) {
          if (response.status === 100) { continued = true; continues++ }
          continue
        }
        this.status = response.status
        this.close = response.close
        this.bodyEnd = response.end + Math.max(0, response.contentLength)
        count(statuses, String(response.status))
      }
      if (this.status === 0) {
        if (continued) this.startBody()
        return
      }
      if (received.length < this.bodyEnd) return
      // The answer is complete.
      this.inFlight = false
      if (Date.now() <= deadline) {
        completed++
        bodyBytes += this.sent
        if (this.status === config.expectStatus) {
          if (config.checkSize !== true || received.toString('latin1', this.offset, this.bodyEnd).includes(sizeMark)) {
            ok++
            latencies.push(Number(process.hrtime.bigint() - this.sentAt) / 1e6)
          } else {
            count(errors, 'wrong size in the answer')
          }
        }
      }
      if (config.mode === 'fresh' || this.close || received.length > this.bodyEnd || this.sent < config.bodyBytes) {
        this.socket?.destroy() // and 'close' opens the next connection
        return
      }
      this.send()
    }

    /** Called every TICK_MS: curl's 1 s wait for a 100, and a bound on every exchange. */
    tick (now: number): void {
      if (!this.inFlight) return
      if (config.expect && !this.sending && this.status === 0 && now - this.startedMs >= EXPECT_WAIT_MS) this.startBody()
      if (now - this.startedMs >= config.timeoutMs) {
        count(errors, 'timeout')
        this.inFlight = false
        this.socket?.destroy()
      }
    }
  }

  const conns: Conn[] = []
  for (let i = 0; i < Math.min(config.connections, limit); i++) {
    const conn = new Conn()
    conns.push(conn)
    live++
    conn.open()
  }
  const ticker = setInterval(() => {
    const now = Date.now()
    for (const conn of conns) conn.tick(now)
    if (now >= deadline) {
      stopped = true
      if (config.count !== undefined) count(errors, 'gave up at the deadline')
      for (const conn of conns) conn.socket?.destroy()
      finish()
    }
  }, TICK_MS)
  await done
  clearInterval(ticker)
  return {
    completed,
    ok,
    seconds: config.count === undefined ? config.durationMs / 1000 : Number(process.hrtime.bigint() - started) / 1e9,
    statuses,
    errors,
    bodyBytesPerRequest: completed === 0 ? 0 : bodyBytes / completed,
    continues,
    connects,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length === 0 ? Number.NaN : Math.max(...latencies)
  }
}

export async function runLatency (config: LatencyConfig): Promise<LatencyStats[]> {
  const heads = config.cases.map((item) => requestHead('PUT', config.path, { ...config.headers, 'Content-Length': item.bodyBytes, Expect: '100-continue' }))
  const times = config.cases.map(() => [] as number[])
  const statuses = config.cases.map(() => ({}) as Record<string, number>)
  const errors = config.cases.map(() => 0)
  const deadline = Date.now() + config.maxMs
  for (let i = 0; i < config.samples && Date.now() < deadline; i++) {
    for (const [index, item] of config.cases.entries()) {
      const result = await upload({ port: config.port, head: heads[index]!, bodyBytes: item.bodyBytes, timeoutMs: 5000 })
      count(statuses[index]!, String(result.status))
      if (result.error !== null || result.status === 0) errors[index]!++
      else times[index]!.push(result.timeToAnswerNs / 1000)
    }
  }
  return config.cases.map((item, index) => ({
    name: item.name,
    samples: times[index]!.length,
    statuses: statuses[index]!,
    medianUs: median(times[index]!),
    p99Us: percentile(times[index]!, 99),
    minUs: Math.min(...times[index]!),
    errors: errors[index]!
  }))
}

const processScript = join(dirname(fileURLToPath(import.meta.url)), 'load-process.js')

/** Runs the load in its own process on the client core. */
export async function generate (split: CpuSplit, config: LoadConfig): Promise<LoadResult> {
  return await runNodeJson<LoadResult>(split, 'client', processScript, [JSON.stringify(config)], config.durationMs + 30_000)
}

export async function generateLatency (split: CpuSplit, config: LatencyConfig): Promise<LatencyStats[]> {
  return await runNodeJson<LatencyStats[]>(split, 'client', processScript, [JSON.stringify(config)], config.maxMs + 30_000)
}
