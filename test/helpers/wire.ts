import { connect } from 'node:net'
import type { Socket } from 'node:net'

/** One HTTP/1.x exchange as it crossed the wire, seen from the client. */
export interface Exchange {
  /** Status lines of the 1xx responses, in order. */
  informational: string[]
  statusLine: string
  status: number
  /** Final response headers, names lower-cased. */
  headers: Record<string, string>
  body: string
  /** Body bytes the client had handed to the socket when the final answer's head arrived. */
  bodyBytesBeforeAnswer: number
  /** Body bytes the client handed to the socket in all. */
  bodyBytesWritten: number
  /** The server closed the connection (FIN) after its answer. */
  closedByServer: boolean
  /** The connection was reset (ECONNRESET or EPIPE) at some point. */
  reset: boolean
}

export interface ExchangeOptions {
  /** Request line and header lines, without the blank line that ends them. */
  head: string
  /** Body bytes; with `chunked`, sent as chunks of `chunkSize`. */
  body?: Buffer
  chunked?: boolean
  chunkSize?: number
  /**
   * `wait` (default): send the body only after a 100 Continue, like a client
   * that sent Expect: 100-continue and waits; `now`: headers and body at
   * once; `after:<ms>`: wait for a 100 at most this long, then send anyway.
   */
  send?: 'wait' | 'now' | `after:${number}`
  /** Stop sending the body once the final answer arrived (as curl does). Default true. */
  stopOnAnswer?: boolean
  /** How long to wait for the server to close after its answer. Default 300 ms. */
  closeWaitMs?: number
}

interface Parsed {
  lines: string[]
  headers: Record<string, string>
  rest: Buffer
}

function parseHead (buffer: Buffer): Parsed | null {
  const end = buffer.indexOf('\r\n\r\n')
  if (end === -1) return null
  const lines = buffer.subarray(0, end).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  return { lines, headers, rest: buffer.subarray(end + 4) }
}

export async function exchange (port: number, options: ExchangeOptions): Promise<Exchange> {
  const body = options.body ?? Buffer.alloc(0)
  const chunkSize = options.chunkSize ?? 65536
  const send = options.send ?? 'wait'
  const stopOnAnswer = options.stopOnAnswer ?? true
  const closeWaitMs = options.closeWaitMs ?? 300
  // Half-open allowed: like a client still busy sending, it goes on after the server's FIN.
  const socket: Socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  socket.setNoDelay(true)

  const result: Exchange = {
    informational: [],
    statusLine: '',
    status: 0,
    headers: {},
    body: '',
    bodyBytesBeforeAnswer: 0,
    bodyBytesWritten: 0,
    closedByServer: false,
    reset: false
  }
  let received: Buffer = Buffer.alloc(0)
  let answered = false
  let sending = false
  let ended = false
  let onProgress: () => void = () => {}

  socket.on('data', (data: Buffer) => {
    received = Buffer.concat([received, data])
    for (;;) {
      if (answered) break
      const parsed = parseHead(received)
      if (parsed === null) break
      const statusLine = parsed.lines[0] as string
      const status = Number(statusLine.split(' ')[1])
      received = parsed.rest
      if (status >= 100 && status < 200) {
        result.informational.push(statusLine)
        if (status === 100 && !sending && send !== 'now') startBody()
        continue
      }
      answered = true
      bodiless = options.head.startsWith('HEAD ') || status === 204 || status === 304
      result.statusLine = statusLine
      result.status = status
      result.headers = parsed.headers
      result.bodyBytesBeforeAnswer = result.bodyBytesWritten
    }
    onProgress()
  })
  socket.on('end', () => { ended = true; onProgress() })
  socket.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ECONNRESET' || error.code === 'EPIPE') result.reset = true
    ended = true
    onProgress()
  })

  const writeBody = async (): Promise<void> => {
    for (let offset = 0; offset < body.length; offset += chunkSize) {
      if ((answered && stopOnAnswer) || socket.destroyed) return
      const piece = body.subarray(offset, offset + chunkSize)
      const framed = options.chunked === true
        ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')])
        : piece
      result.bodyBytesWritten += piece.length
      if (!socket.write(framed)) {
        await new Promise<void>((resolve) => {
          const done = (): void => { socket.off('drain', done); socket.off('close', done); resolve() }
          socket.on('drain', done)
          socket.on('close', done)
        })
      }
    }
    if (options.chunked === true && !socket.destroyed && !(answered && stopOnAnswer)) socket.write('0\r\n\r\n')
  }
  let bodyDone: Promise<void> = Promise.resolve()
  function startBody (): void {
    sending = true
    bodyDone = writeBody().catch(() => {})
  }

  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  if (send === 'now' && options.chunked !== true && body.length <= chunkSize) {
    // Headers and body in one write, as one segment.
    sending = true
    result.bodyBytesWritten = body.length
    socket.write(Buffer.concat([Buffer.from(`${options.head}\r\n\r\n`), body]))
  } else socket.write(`${options.head}\r\n\r\n`)
  if (send === 'now' && !sending) startBody()
  else if (send.startsWith('after:')) {
    setTimeout(() => { if (!sending && !answered) startBody() }, Number(send.slice(6)))
  }

  // Wait for the final answer and its body.
  let bodiless = false
  await new Promise<void>((resolve) => {
    onProgress = () => {
      if (ended) { resolve(); return }
      if (!answered) return
      // RFC 9112 §6.3: no content after HEAD, 204 or 304, whatever the headers say.
      if (bodiless) { resolve(); return }
      const length = result.headers['content-length']
      if (length !== undefined && received.length >= Number(length)) resolve()
    }
    onProgress()
  })
  const length = bodiless ? '0' : result.headers['content-length']
  result.body = (length === undefined ? received : received.subarray(0, Number(length))).toString('utf8')

  // A client that goes on sending after the answer finishes its body first
  // (a server that closes too early shows up here as a reset).
  if (!stopOnAnswer) await bodyDone

  // Then see whether the server closes the connection.
  if (!ended) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, closeWaitMs)
      onProgress = () => { if (ended) { clearTimeout(timer); resolve() } }
    })
  }
  result.closedByServer = ended && !result.reset
  socket.destroy()
  return result
}

/** Parses the JSON body of an exchange. */
export function json (result: Exchange): unknown {
  return JSON.parse(result.body)
}
