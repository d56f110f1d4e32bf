// Clients of the replica benchmark that lib/load.ts is not: an upload whose
// body is sent at a set rate (to have uploads in flight when a replica is
// told to stop), and a probe that asks for a URL on a fresh connection
// until the answer changes.
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { requestHead, parseResponseHead } from '../lib/http.js'

export interface PacedResult {
  status: number
  /** The answer's body (JSON for the service). */
  body: string
  /** When the answer's head came, and when the last body byte was written (performance.now()). */
  answeredAt: number
  sentAt: number
  error: string | null
}

/** A PUT of `body` to `path`, sent in pieces every 100 ms at `bytesPerSecond`; resolves with the answer. */
export async function pacedPut (port: number, path: string, headers: Record<string, string>, body: Buffer, bytesPerSecond: number): Promise<PacedResult> {
  const socket = connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  const result: PacedResult = { status: 0, body: '', answeredAt: 0, sentAt: 0, error: null }
  let received = Buffer.alloc(0)
  let bodyEnd = -1
  let headEnd = -1
  const done = new Promise<void>((resolve) => {
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data])
      if (result.status === 0) {
        const head = parseResponseHead(received, 0)
        if (head === null || head.status < 200) {
          if (head !== null) received = received.subarray(head.end)
          return
        }
        result.status = head.status
        result.answeredAt = performance.now()
        headEnd = head.end
        bodyEnd = head.end + Math.max(0, head.contentLength)
      }
      if (received.length >= bodyEnd) {
        result.body = received.toString('utf8', headEnd, bodyEnd)
        socket.destroy()
      }
    })
    socket.once('error', (error: NodeJS.ErrnoException) => { result.error ??= error.code ?? error.message })
    socket.once('close', () => { resolve() })
  })
  await new Promise<void>((resolve) => { socket.once('connect', resolve) })
  socket.write(requestHead('PUT', path, { ...headers, 'Content-Length': body.length }))
  const piece = Math.max(1, Math.round(bytesPerSecond / 10))
  const started = performance.now()
  for (let at = 0; at < body.length && result.status === 0 && !socket.destroyed; at += piece) {
    socket.write(body.subarray(at, at + piece))
    // Against the clock, not after each write: the rate holds whatever the timers' drift.
    const next = started + ((at + piece) / bytesPerSecond) * 1000
    await sleep(Math.max(0, next - performance.now()))
  }
  result.sentAt = performance.now()
  const timer = setTimeout(() => { result.error ??= 'timeout'; socket.destroy() }, 120_000)
  await done
  clearTimeout(timer)
  if (result.status === 0) result.error ??= 'closed before the answer'
  return result
}

export interface ProbeSample {
  /** performance.now() when the probe was sent. */
  at: number
  /** The status, or the connection's error code (ECONNREFUSED, ...). */
  outcome: string
}

/** GETs `path` on a fresh connection every `everyMs` until `stop()` resolves; every outcome, in order. */
export async function probeUntil (port: number, path: string, everyMs: number, stopped: () => boolean): Promise<ProbeSample[]> {
  const samples: ProbeSample[] = []
  while (!stopped()) {
    const at = performance.now()
    samples.push({ at, outcome: await probeOnce(port, path) })
    await sleep(Math.max(0, at + everyMs - performance.now()))
  }
  return samples
}

async function probeOnce (port: number, path: string): Promise<string> {
  return await new Promise<string>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let received = Buffer.alloc(0)
    const finish = (outcome: string): void => { clearTimeout(timer); socket.destroy(); resolve(outcome) }
    const timer = setTimeout(() => { finish('timeout') }, 2000)
    socket.once('connect', () => { socket.write(requestHead('GET', path, {})) })
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data])
      const head = parseResponseHead(received, 0)
      if (head !== null) finish(String(head.status))
    })
    socket.once('error', (error: NodeJS.ErrnoException) => { finish(error.code ?? error.message) })
    socket.once('close', () => { finish('closed') })
  })
}
