// One upload exchange over a raw socket, sent the way curl sends an upload
// with `Expect: 100-continue`: the head first, then the body only after a
// 100 or after waiting `expectWaitMs` (curl's --expect100-timeout, 1 s) for
// one; it stops sending as soon as a final answer has arrived, and checks
// for one between body chunks.
import { connect } from 'node:net'
import { setImmediate as yieldToIo } from 'node:timers/promises'
import { parseResponseHead } from './http.js'

export interface UploadOptions {
  port: number
  /** The request head, blank line included. */
  head: Buffer
  /** Body bytes the client is willing to send (the declared Content-Length). */
  bodyBytes: number
  /** How long to wait for a 100 before sending anyway. Default 1000 ms. */
  expectWaitMs?: number
  /** Give up on the exchange after this long. Default 10000 ms. */
  timeoutMs?: number
}

export interface UploadResult {
  /** Final status, or 0 on a timeout or a connection lost before it. */
  status: number
  /** 1xx statuses seen before the final answer. */
  informational: number[]
  /** Body bytes handed to the socket before the final answer's head was read. */
  bodyBytesBeforeAnswer: number
  /** Client's local port: the server reports its byte count by it. */
  localPort: number
  /** From the head's write to the final answer's head, in nanoseconds. */
  timeToAnswerNs: number
  /** The final answer said `Connection: close`. */
  close: boolean
  error: string | null
}

const CHUNK = Buffer.alloc(64 * 1024, 'x')

export async function upload (options: UploadOptions): Promise<UploadResult> {
  const socket = connect(options.port, '127.0.0.1')
  socket.setNoDelay(true)
  const result: UploadResult = {
    status: 0,
    informational: [],
    bodyBytesBeforeAnswer: 0,
    localPort: 0,
    timeToAnswerNs: 0,
    close: false,
    error: null
  }
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  result.localPort = socket.localPort as number

  let received: Buffer = Buffer.alloc(0)
  let offset = 0
  let answered = false
  let sending = false
  let written = 0
  let bodyEnd = -1
  let started = 0n

  return await new Promise<UploadResult>((resolve) => {
    const finish = (error: string | null): void => {
      clearTimeout(waitTimer)
      clearTimeout(giveUpTimer)
      if (result.error === null) result.error = error
      socket.destroy()
      resolve(result)
    }
    const sendBody = async (): Promise<void> => {
      sending = true
      // eslint-disable-next-line no-unmodified-loop-condition -- `answered` is set by the socket's data handler
      while (written < options.bodyBytes && !answered && !socket.destroyed) {
        const piece = Math.min(CHUNK.length, options.bodyBytes - written)
        written += piece
        if (!socket.write(piece === CHUNK.length ? CHUNK : CHUNK.subarray(0, piece))) {
          await new Promise<void>((resolve) => {
            const done = (): void => { socket.off('drain', done); socket.off('close', done); resolve() }
            socket.on('drain', done)
            socket.on('close', done)
          })
        } else {
          // Let a final answer that arrived meanwhile be read, as curl does.
          await yieldToIo()
        }
      }
    }
    const startBody = (): void => {
      if (sending || answered) return
      sendBody().catch((error: Error) => { finish(error.message) })
    }

    socket.on('data', (data: Buffer) => {
      received = received.length === 0 ? data : Buffer.concat([received, data])
      // Everything that arrived is read before deciding to send, so a 100
      // and a final answer that came together send nothing.
      while (!answered) {
        const head = parseResponseHead(received, offset)
        if (head === null) break
        offset = head.end
        if (head.status < 200) {
          result.informational.push(head.status)
          continue
        }
        answered = true
        result.timeToAnswerNs = Number(process.hrtime.bigint() - started)
        result.status = head.status
        result.close = head.close
        result.bodyBytesBeforeAnswer = written
        bodyEnd = head.end + Math.max(0, head.contentLength)
      }
      if (answered) {
        if (received.length >= bodyEnd) finish(null)
      } else if (result.informational.includes(100)) {
        startBody()
      }
    })
    socket.on('end', () => { finish(answered ? null : 'closed before the answer') })
    socket.on('error', (error: NodeJS.ErrnoException) => { finish(error.code ?? error.message) })
    const waitTimer = setTimeout(startBody, options.expectWaitMs ?? 1000)
    const giveUpTimer = setTimeout(() => { finish('timeout') }, options.timeoutMs ?? 10_000)

    started = process.hrtime.bigint()
    socket.write(options.head)
  })
}
