// Every Node internal the plugin replaces, in one place, with why. Node
// offers no event for any of these moments; each replacement is installed
// per request, only where it is needed, and undone by assignment.
//
// | replaced                      | on             | why                                                            | tests that fail without it            |
// | ----------------------------- | -------------- | -------------------------------------------------------------- | ------------------------------------- |
// | `ServerResponse#writeHead`    | the response   | the last moment before the answer's head is written: count the | test/plugins/upfront/connection.test.ts |
// |                               |                | refusal, choose keep-alive or close, end an HTTP/2 stream      | test/plugins/upfront/http2.test.ts    |
// | `Readable#_read`              | the request    | the first read of the body, by whatever reader: the moment to  | test/plugins/upfront/expect.test.ts   |
// |                               |                | send the 100 (Go's rule); or, past the limit, to fail a reader | test/plugins/upfront/limits.test.ts   |
// |                               |                | that starts late                                               |                                       |
// | `Readable#push`               | the request    | bytes of a body of unknown length as they arrive: counted      | test/plugins/upfront/limits.test.ts   |
// |                               |                | against the limit, discarded past it; any body's, discarded    | test/plugins/upfront/wiring.test.ts   |
// |                               |                | once its reader was failed (`abortBody`)                       |                                       |
// | `Readable#_destroy`           | the request    | failing the reader with the 413 without destroying the socket  | test/plugins/upfront/limits.test.ts   |
// |                               |                | that must still carry the 413                                  |                                       |
// | `Socket#destroySoon`          | the socket     | Node's close after `Connection: close`: FIN, then keep reading | test/plugins/upfront/linger.test.ts   |
// |                               |                | and discarding (lingering close) instead of destroying at once |                                       |
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'

/**
 * Undoes a per-request replacement by assignment, never with `delete`: a
 * deleted property turns a V8 object into a slow dictionary, and every
 * later request then pays for it in Node's and Fastify's hot paths.
 */
function restoreFromPrototype<T extends object> (target: T, key: keyof T): void {
  target[key] = (Object.getPrototypeOf(target) as T)[key]
}

/** Calls `before(statusCode)` just before the answer's head is written, once. */
export function beforeWriteHead (res: ServerResponse, before: (statusCode: number) => void): void {
  res.writeHead = function writeHeadOnce (this: ServerResponse, ...args: unknown[]): ServerResponse {
    restoreFromPrototype(this, 'writeHead')
    before(args[0] as number)
    return (this.writeHead as (...a: unknown[]) => ServerResponse)(...args)
  } as ServerResponse['writeHead']
}

/** Calls `before()` at the first read of the body, by any reader, once. */
export function beforeFirstRead (raw: Readable, before: () => void): void {
  raw._read = function readOnce (this: Readable, size: number): void {
    restoreFromPrototype(this, '_read')
    before()
    this._read(size)
  }
}

/**
 * Routes every chunk the parser pushes through `accept`: true passes it on,
 * false drops it (the push reports success, so the parser goes on and the
 * bytes are discarded). `null`, the end of the body, is passed on only
 * while `accept` has not dropped anything.
 */
export function filterPush (raw: Readable, accept: (chunk: Buffer) => boolean): void {
  let dropping = false
  raw.push = function filteredPush (this: Readable, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (dropping) return true
    if (chunk !== null && !accept(chunk as Buffer)) {
      dropping = true
      return true
    }
    return Object.getPrototypeOf(this).push.call(this, chunk, encoding)
  }
}

/**
 * Fails the body's reader with `error` but keeps the connection: a plain
 * `destroy` of an HTTP/1 request destroys its socket, which must still
 * carry the answer. What the parser still pushes is dropped (the push
 * reports success, so the parser goes on and the bytes are discarded):
 * refused by the destroyed body, it would pause that connection.
 */
export function failReaderKeepingConnection (raw: Readable, error: Error): void {
  raw._destroy = function destroyKeepingConnection (destroyError: Error | null, callback: (error: Error | null) => void): void {
    callback(destroyError)
  }
  raw.push = function discardingPush (): boolean {
    return true
  }
  raw.destroy(error)
}

/**
 * At the first read from now on: `fail()` when someone listens for errors
 * (a reader that started late), else a plain read (Node discarding the
 * unread body after the answer).
 */
export function failOnNextRead (raw: Readable, fail: () => void): void {
  raw._read = function failingRead (this: Readable, size: number): void {
    restoreFromPrototype(this, '_read')
    if (this.listenerCount('error') > 0) fail()
    else this._read(size)
  }
}

/** Replaces the close Node makes after a `Connection: close` answer (`destroySoon`), once. */
export function replaceDestroySoon (socket: Socket, close: (socket: Socket) => void): void {
  socket.destroySoon = function closeOnce (this: Socket): void {
    restoreFromPrototype(this, 'destroySoon')
    close(this)
  }
}
