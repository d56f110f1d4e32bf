// What becomes of a connection or stream whose request was answered while
// its body was still coming.
import { constants as http2 } from 'node:http2'
import type { ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { replaceDestroySoon } from './node-overrides.js'

export interface LingerSettings {
  /** Longest time, in ms, a closing connection is read and discarded in all. */
  readonly totalMs: number
  /** Longest time, in ms, between two reads of a closing connection. */
  readonly idleMs: number
}

/**
 * Closes a connection in stages (RFC 9112 §9.6): FIN first, then what the
 * client still sends is read and discarded for as long as it keeps coming
 * (at most `idleMs` between two reads, `totalMs` in all), then the socket
 * is destroyed. A client that writes its whole body before reading then
 * finds the answer in its socket buffer instead of a reset, which would
 * make its kernel throw the answer away. nginx's `lingering_timeout` and
 * `lingering_time` work the same way. The request's body is cut from its
 * readers and set flowing too: one that a reader started and then left (a
 * form parser stuck at a refused part) would otherwise hold the socket
 * paused, and Node only discards bodies nobody began to read.
 */
function lingeringClose (socket: Socket, body: Readable, settings: LingerSettings): void {
  const total = setTimeout(destroySocket, settings.totalMs, socket)
  total.unref()
  socket.once('close', () => { clearTimeout(total) })
  // Any activity restarts it; Node's HTTP server destroys a socket whose
  // timeout fires when nobody else handles it, and so does this listener.
  socket.setTimeout(settings.idleMs, () => { socket.destroy() })
  socket.end()
  body.unpipe()
  body.resume()
  socket.resume()
}

function destroySocket (socket: Socket): void {
  socket.destroy()
}

/** Makes the close that follows the `Connection: close` answer to a request with `body` a lingering one. */
export function lingerAfterAnswer (socket: Socket, body: Readable, settings: LingerSettings): void {
  replaceDestroySoon(socket, (closing) => { lingeringClose(closing, body, settings) })
}

/**
 * HTTP/2: once the answer is written, tells the client to stop sending
 * (RFC 9113 §8.1: a server may answer before the request is complete and
 * then send RST_STREAM with NO_ERROR). Without it the stream stays
 * half-open: a client still writing waits on a flow-control window that
 * never reopens, and the stream counts against the connection's limit of
 * concurrent streams. (Node's compatibility layer does this by itself only
 * while the body flows; a paused body keeps the stream open.) Its response
 * reports `finish` only once the stream is closed, so the stream's own
 * `finish` (its writable side ended) is the signal. What the stream still
 * holds is then discarded: a paused stream with unread data would never
 * close, and would go on counting against that limit.
 */
export function endStreamAfterAnswer (stream: ServerHttp2Stream): void {
  stream.once('finish', () => {
    /* c8 ignore next -- the client may close the stream (RST_STREAM) just as the answer ends: a race of nghttp2's callbacks no test can order */
    if (stream.closed) return
    stream.close(http2.NGHTTP2_NO_ERROR)
    stream.resume()
  })
}
