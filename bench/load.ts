// The Node load generator, in its own process: `node load.js '<json LoadConfig>'`.
// It prints one JSON line (LoadResult or LatencyResult) on stdout.
//
// - `keepalive`: `connections` keep-alive connections, each sending its next
//   request once the previous answer is complete (reconnecting when the
//   server closes). Used where wrk cannot go: wrk does not understand a
//   `100 Continue` and sends its body at once.
// - `fresh`: a new connection per request, closed once the answer is read.
// - `latency`: one request at a time on a fresh connection, cases taken in
//   turn; time from the head's write to the final answer's head.
// With `expect`, a request carries `Expect: 100-continue` and its body is
// sent only after a 100 (or after 1 s without one, as curl does), in 64 KiB
// chunks, stopping as soon as a final answer has been read.
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { upload } from './client.js'
import { count, median, parseResponseHead, percentile } from './common.js'

export interface LoadConfig {
  mode: 'keepalive' | 'fresh'
  port: number
  /** Request head, blank line included (latin1). */
  head: string
  bodyBytes: number
  expect: boolean
  connections: number
  durationMs: number
}

export interface LatencyCase {
  name: string
  head: string
  bodyBytes: number
}

export interface LatencyConfig {
  mode: 'latency'
  port: number
  cases: LatencyCase[]
  samples: number
  /** Stop early after this long, whatever the sample count. */
  maxMs: number
}

export interface LoadResult {
  completed: number
  seconds: number
  perSecond: number
  statuses: Record<string, number>
  errors: Record<string, number>
  /** Body bytes handed to the socket, per completed request. */
  bodyBytesPerRequest: number
  connects: number
}

export interface LatencyStats {
  name: string
  samples: number
  statuses: Record<string, number>
  medianUs: number
  p99Us: number
  minUs: number
  errors: number
}

const CHUNK_SIZE = 64 * 1024
const EXPECT_WAIT_MS = 1000
const REQUEST_TIMEOUT_MS = 5000


async function runLoad (config: LoadConfig): Promise<LoadResult> {
  const head = Buffer.from(config.head, 'latin1')
  const chunk = Buffer.alloc(Math.min(CHUNK_SIZE, Math.max(1, config.bodyBytes)), 'x')
  // Without Expect, head and body go in one write, as wrk sends them.
  const whole = config.expect ? head : Buffer.concat([head, Buffer.alloc(config.bodyBytes, 'x')])
  const statuses: Record<string, number> = {}
  const errors: Record<string, number> = {}
  let completed = 0
  let bodyBytes = 0
  let connects = 0
  const start = Date.now()
  const deadline = start + config.durationMs
  let stopped = false
  const conns = new Set<Conn>()

  class Conn {
    socket: Socket | null = null
    received: Buffer | null = null
    offset = 0
    inFlight = false
    requestStart = 0
    answered = false
    sending = false
    sent = 0
    bodyEnd = -1
    close = false
    /** Which request of this connection a scheduled body chunk belongs to. */
    generation = 0

    open (): void {
      if (stopped) { conns.delete(this); return }
      connects++
      const socket = connect(config.port, '127.0.0.1')
      this.socket = socket
      socket.setNoDelay(true)
      socket.on('connect', () => { this.send() })
      socket.on('data', (data: Buffer) => { this.onData(data) })
      socket.on('error', (error: NodeJS.ErrnoException) => {
        if (!stopped) count(errors, error.code ?? error.message)
      })
      socket.on('close', () => {
        if (this.socket !== socket) return
        this.socket = null
        if (this.inFlight && !stopped) count(errors, 'closed before the answer')
        this.inFlight = false
        this.open()
      })
    }

    send (): void {
      const socket = this.socket
      if (socket === null) return
      if (stopped) { socket.destroy(); return }
      this.inFlight = true
      this.generation++
      this.answered = false
      this.sending = false
      this.sent = 0
      this.received = null
      this.offset = 0
      this.requestStart = Date.now()
      if (config.expect) {
        socket.write(head)
      } else {
        socket.write(whole)
        this.sent = config.bodyBytes
      }
    }

    /** Sends the body in chunks, yielding between them so an answer can stop it. */
    pump (generation: number): void {
      const socket = this.socket
      if (socket === null || socket.destroyed || this.answered || generation !== this.generation) return
      if (this.sent >= config.bodyBytes) return
      const piece = Math.min(chunk.length, config.bodyBytes - this.sent)
      this.sent += piece
      const flushed = socket.write(piece === chunk.length ? chunk : chunk.subarray(0, piece))
      if (this.sent >= config.bodyBytes) return
      if (flushed) setImmediate(() => { this.pump(generation) })
      else socket.once('drain', () => { this.pump(generation) })
    }

    startBody (): void {
      if (this.sending || this.answered || !config.expect) return
      this.sending = true
      this.pump(this.generation)
    }

    onData (data: Buffer): void {
      if (!this.inFlight) return
      this.received = this.received === null ? data : Buffer.concat([this.received, data])
      const received = this.received
      let continued = false
      while (!this.answered) {
        const response = parseResponseHead(received, this.offset)
        if (response === null) break
        this.offset = response.end
        if (response.status < 200) {
          if (response.status === 100) continued = true
          continue
        }
        this.answered = true
        this.close = response.close
        this.bodyEnd = response.end + Math.max(0, response.contentLength)
        count(statuses, String(response.status))
      }
      if (!this.answered) {
        if (continued) this.startBody()
        return
      }
      if (received.length < this.bodyEnd) return
      // The answer is complete.
      this.inFlight = false
      if (Date.now() <= deadline) {
        completed++
        bodyBytes += this.sent
      }
      if (config.mode === 'fresh' || this.close || received.length > this.bodyEnd) {
        this.socket?.destroy()
        return
      }
      this.send()
    }

    /** Called every 100 ms: curl's 1 s wait for a 100, and a bound on every request. */
    tick (now: number): void {
      if (!this.inFlight) return
      if (config.expect && !this.sending && !this.answered && now - this.requestStart >= EXPECT_WAIT_MS) {
        this.startBody()
      }
      if (now - this.requestStart >= REQUEST_TIMEOUT_MS) {
        count(errors, 'timeout')
        this.inFlight = false
        this.socket?.destroy()
      }
    }
  }

  for (let i = 0; i < config.connections; i++) {
    const conn = new Conn()
    conns.add(conn)
    conn.open()
  }
  await new Promise<void>((resolve) => {
    const ticker = setInterval(() => {
      const now = Date.now()
      for (const conn of conns) conn.tick(now)
      if (now >= deadline) {
        stopped = true
        clearInterval(ticker)
        for (const conn of conns) conn.socket?.destroy()
        resolve()
      }
    }, 100)
  })
  const seconds = config.durationMs / 1000
  return {
    completed,
    seconds,
    perSecond: completed / seconds,
    statuses,
    errors,
    bodyBytesPerRequest: completed === 0 ? 0 : bodyBytes / completed,
    connects
  }
}

async function runLatency (config: LatencyConfig): Promise<LatencyStats[]> {
  const times = config.cases.map(() => [] as number[])
  const statuses = config.cases.map(() => ({} as Record<string, number>))
  const errors = config.cases.map(() => 0)
  const deadline = Date.now() + config.maxMs
  for (let i = 0; i < config.samples && Date.now() < deadline; i++) {
    for (const [index, item] of config.cases.entries()) {
      const result = await upload({ port: config.port, head: Buffer.from(item.head, 'latin1'), bodyBytes: item.bodyBytes, timeoutMs: 5000 })
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

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig | LatencyConfig
const output = config.mode === 'latency' ? await runLatency(config) : await runLoad(config)
process.stdout.write(`${JSON.stringify(output)}\n`)
process.exit(0)
