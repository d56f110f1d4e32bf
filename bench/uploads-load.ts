// The small-uploads load generator of bench/uploads.ts, in its own process:
//
//   node uploads-load.js '<json SmallLoadConfig>'
//
// Sends `count` PUTs of `bodyBytes` bytes over `connections` keep-alive
// connections, each connection sending its next request once the previous
// answer is complete; request i goes to `<pathPrefix><i>`. With `expect`,
// a request carries `Expect: 100-continue` and its body is sent only after
// the 100 (or after 1 s without one), as curl does; without it, head and body
// go in one write. Latency: from the head's write to the end of the answer.
// Every answer is checked: status `expectStatus`, and `"size":<bodyBytes>` in
// its JSON body. Prints one JSON line (SmallLoadResult) on stdout.
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { count, parseResponseHead, percentile } from './common.js'

export interface SmallLoadConfig {
  port: number
  /** URL path of each upload, followed by its index. */
  pathPrefix: string
  /** Extra request headers (Authorization, Content-Type). */
  headers: Record<string, string>
  count: number
  bodyBytes: number
  connections: number
  expect: boolean
  expectStatus: number
  /** Give up after this long, whatever is left. */
  maxMs: number
}

export interface SmallLoadResult {
  /** Exchanges that got `expectStatus` with the right size. */
  ok: number
  /** Exchanges that got an answer of any kind. */
  answered: number
  seconds: number
  perSecond: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  statuses: Record<string, number>
  /** Failures: wrong size, connection errors, timeouts. */
  errors: Record<string, number>
  /** 100 Continue answers received. */
  continues: number
  connects: number
}

const EXPECT_WAIT_MS = 1000
const REQUEST_TIMEOUT_MS = 10_000


async function run (config: SmallLoadConfig): Promise<SmallLoadResult> {
  const body = Buffer.alloc(config.bodyBytes, 'u')
  const sizeMark = `"size":${config.bodyBytes}`
  const statuses: Record<string, number> = {}
  const errors: Record<string, number> = {}
  const latencies: number[] = []
  let next = 0
  let ok = 0
  let answered = 0
  let continues = 0
  let connects = 0
  let stopped = false
  const started = process.hrtime.bigint()
  const deadline = Date.now() + config.maxMs

  const headFor = (index: number): Buffer => {
    const lines = [`PUT ${config.pathPrefix}${index} HTTP/1.1`, 'Host: 127.0.0.1', `Content-Length: ${config.bodyBytes}`]
    for (const [name, value] of Object.entries(config.headers)) lines.push(`${name}: ${value}`)
    if (config.expect) lines.push('Expect: 100-continue')
    return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
  }

  let finishAll: () => void = () => {}
  const allDone = new Promise<void>((resolve) => { finishAll = resolve })
  let live = 0

  class Conn {
    socket: Socket | null = null
    received: Buffer = Buffer.alloc(0)
    offset = 0
    index = -1
    sentAt = 0n
    headWrittenAt = 0
    bodySent = false
    status = 0
    bodyEnd = -1
    close = false

    open (): void {
      if (stopped || next >= config.count) { this.retire(); return }
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
        if (this.index !== -1 && !stopped) {
          count(errors, 'closed before the answer')
          this.index = -1
        }
        this.open()
      })
    }

    retire (): void {
      this.socket?.destroy()
      this.socket = null
      if (--live === 0) finishAll()
    }

    send (): void {
      const socket = this.socket
      if (socket === null) return
      if (stopped || next >= config.count) { this.retire(); return }
      this.index = next++
      this.received = Buffer.alloc(0)
      this.offset = 0
      this.status = 0
      this.bodyEnd = -1
      this.bodySent = !config.expect
      this.sentAt = process.hrtime.bigint()
      this.headWrittenAt = Date.now()
      const head = headFor(this.index)
      socket.write(config.expect ? head : Buffer.concat([head, body]))
    }

    sendBody (): void {
      if (this.bodySent || this.socket === null) return
      this.bodySent = true
      this.socket.write(body)
    }

    onData (data: Buffer): void {
      if (this.index === -1) return
      this.received = this.received.length === 0 ? data : Buffer.concat([this.received, data])
      while (this.status === 0) {
        const response = parseResponseHead(this.received, this.offset)
        if (response === null) return
        this.offset = response.end
        if (response.status < 200) {
          if (response.status === 100) {
            continues++
            this.sendBody()
          }
          continue
        }
        this.status = response.status
        this.close = response.close
        this.bodyEnd = response.end + Math.max(0, response.contentLength)
      }
      if (this.received.length < this.bodyEnd) return
      // The answer is complete.
      const latencyMs = Number(process.hrtime.bigint() - this.sentAt) / 1e6
      answered++
      count(statuses, String(this.status))
      const text = this.received.toString('latin1', this.offset, this.bodyEnd)
      if (this.status === config.expectStatus && text.includes(sizeMark)) {
        ok++
        latencies.push(latencyMs)
      } else if (this.status === config.expectStatus) {
        count(errors, 'wrong size in the answer')
      }
      this.index = -1
      if (this.close || !this.bodySent) {
        // The server closes, or answered before the body: this connection is done.
        const socket = this.socket
        this.socket = null
        socket?.destroy()
        this.open()
        return
      }
      this.send()
    }

    tick (now: number): void {
      if (this.index === -1) return
      if (!this.bodySent && now - this.headWrittenAt >= EXPECT_WAIT_MS) this.sendBody()
      if (now - this.headWrittenAt >= REQUEST_TIMEOUT_MS) {
        count(errors, 'timeout')
        this.index = -1
        this.socket?.destroy()
      }
    }
  }

  const conns: Conn[] = []
  for (let i = 0; i < Math.min(config.connections, config.count); i++) {
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
      count(errors, 'gave up at the deadline')
      for (const conn of conns) conn.socket?.destroy()
      finishAll()
    }
  }, 50)
  await allDone
  clearInterval(ticker)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return {
    ok,
    answered,
    seconds,
    perSecond: ok / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length === 0 ? Number.NaN : Math.max(...latencies),
    statuses,
    errors,
    continues,
    connects
  }
}

const config = JSON.parse(process.argv[2] ?? '{}') as SmallLoadConfig
process.stdout.write(`${JSON.stringify(await run(config))}\n`)
process.exit(0)
