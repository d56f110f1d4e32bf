// What the bench processes share: the app's constants, the messages between
// the orchestrator and a server, and a minimal HTTP/1.1 response-head parser.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { UpfrontStats } from '../plugins/upfront/index.js'

export type Variant = 'plugin' | 'stock'

export const TOKEN = 'Bearer bench-token'
/** Limit of the upload routes (`bodyLimit`, which the plugin takes as its `maxBytes`). */
export const UPLOAD_LIMIT = 8 * 1024 * 1024
/** Limit of `/small`, the route of the time-to-413 measurement. */
export const SMALL_LIMIT = 512
export const UPLOAD_TYPE = 'application/octet-stream'

export type ParentMessage =
  | { type: 'track', on: boolean }
  | { type: 'conn', id: number, port: number, timeoutMs: number }
  | { type: 'probe', id: number }

export type ServerMessage =
  | { type: 'ready', port: number, fastify: string, node: string }
  | { type: 'conn', id: number, bytesRead: number, closed: boolean }
  | { type: 'probe', id: number, connections: number, cpuMicros: number, rss: number, upfront: UpfrontStats | null }

/** A request head, as bytes, with its blank line. */
export function requestHead (method: string, path: string, headers: Record<string, string | number>): Buffer {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1']
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
}

export interface ResponseHead {
  status: number
  /** Offset just past the head's blank line. */
  end: number
  /** -1 when absent (the bench server always sends one on final answers). */
  contentLength: number
  close: boolean
}

const CRLFCRLF = Buffer.from('\r\n\r\n')

/** Parses the response head that starts at `from`, or returns null while it is incomplete. */
export function parseResponseHead (buffer: Buffer, from: number): ResponseHead | null {
  const blank = buffer.indexOf(CRLFCRLF, from)
  if (blank === -1) return null
  // "HTTP/1.1 NNN": the status is at a fixed offset.
  const status = (buffer[from + 9]! - 48) * 100 + (buffer[from + 10]! - 48) * 10 + (buffer[from + 11]! - 48)
  let contentLength = -1
  let close = false
  if (status >= 200) {
    const head = buffer.toString('latin1', from, blank).toLowerCase()
    const cl = head.indexOf('\r\ncontent-length:')
    if (cl !== -1) {
      const eol = head.indexOf('\r\n', cl + 2)
      contentLength = Number.parseInt(head.slice(cl + 17, eol === -1 ? head.length : eol), 10)
    }
    close = head.includes('\r\nconnection: close')
  }
  return { status, end: blank + 4, contentLength, close }
}

export function median (values: readonly number[]): number {
  return percentile(values, 50)
}

/** Nearest-rank percentile. */
export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

export type CoreTimes = number[][]

/** Per-core [busy, total] jiffies from /proc/stat (Linux); empty elsewhere. */
export function coreTimes (): CoreTimes {
  try {
    return readFileSync('/proc/stat', 'utf8').split('\n')
      .filter((line) => /^cpu\d+ /.test(line))
      .map((line) => {
        const fields = line.trim().split(/\s+/).slice(1).map(Number)
        const total = fields.reduce((a, b) => a + b, 0)
        const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
        return [total - idle, total]
      })
  } catch {
    return []
  }
}

/** Busy share of each core between two samples. */
export function coreBusy (before: CoreTimes, after: CoreTimes): number[] {
  return after.map((core, i) => {
    const b = before[i] ?? [0, 0]
    const total = core[1]! - b[1]!
    return total > 0 ? (core[0]! - b[0]!) / total : 0
  })
}

/** Whether a command is on the PATH. */
export function hasCommand (name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Adds one to `record[key]`. */
export function count (record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1
}
