// A minimal HTTP/1.1 request-head writer and response-head parser, for the
// raw clients (lib/client.ts, lib/load.ts).

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
  /** -1 when absent (the servers under test always send one on final answers). */
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
