// What the plugin knows and decides about one request whose body is still
// to come: the 100 it owes, the bytes counted against its limit, and what
// the connection becomes once the request is answered.
import type { ServerResponse } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { StreamTooLargeError } from '../errors.js'
import { endStreamAfterAnswer, lingerAfterAnswer } from './connection.js'
import type { LingerSettings } from './connection.js'
import { failOnNextRead, failReaderKeepingConnection } from './node-overrides.js'

/** Reasons under which the plugin's own refusals are counted; the app's are counted by status code. */
export const REFUSAL_REASONS = {
  expectation: 'expectation',
  tooLarge: 'too-large',
  mediaType: 'media-type',
  tooLargeWhileStreaming: 'too-large-while-streaming'
} as const

/** Settings and counters shared by every request of one app. */
export interface PluginContext {
  readonly drainMaxBytes: number
  readonly linger: LingerSettings
  readonly refused: Record<string, number>
  unsentBytes: number
  continued: number
}

/** Whose limit a request is held to: the phrase completes "the N-byte limit …". */
export interface BodyLimit {
  readonly maxBytes: number
  readonly source: string
}

export const ROUTE_LIMIT_SOURCE = 'of this route'

type RawRequest = Readable & {
  complete: boolean
  readableLength: number
}

export class BodyWatch {
  /** A 100 is owed: the client waits for it before it sends the body. Cleared by the 100, the first body byte, or the answer. */
  awaiting: boolean
  /** Body bytes counted so far (only for a body of unknown length). */
  received = 0
  /** The lowest limit an app set with `limitBody`, or null. */
  lowered: BodyLimit | null = null
  /** The limit a body of unknown length is counted against once the checks have run. */
  streamLimit: BodyLimit | null = null
  /** The pre-body checks have run: a limit set from now on is applied at once. */
  checked = false
  /** The error that ended a body passing its limit, which the answer must carry. */
  tripped: Error | null = null
  /** The connection closes after the answer, whatever is left of the body. */
  closeAfter = false
  /** This request's refusal is counted already. */
  counted = false

  constructor (
    readonly ctx: PluginContext,
    readonly request: FastifyRequest,
    readonly reply: FastifyReply,
    /** Declared `Content-Length`, or null when the length is unknown. */
    readonly declared: number | null,
    awaiting: boolean,
    /** The connection of an HTTP/1 request; null over HTTP/2. */
    readonly socket: Socket | null,
    /** The stream of an HTTP/2 request; null over HTTP/1. */
    readonly stream: ServerHttp2Stream | null
  ) {
    this.awaiting = awaiting
  }

  get raw (): RawRequest {
    return this.request.raw as unknown as RawRequest
  }
}

/** Counts and logs this request's refusal, once, under `reason`. */
export function countRefusal (watch: BodyWatch, reason: string, statusCode: number): void {
  if (watch.counted) return
  watch.counted = true
  const { ctx } = watch
  ctx.refused[reason] = (ctx.refused[reason] ?? 0) + 1
  watch.request.log.info({
    upfront: { reason, statusCode, declaredBytes: watch.declared, receivedBytes: watch.received }
  }, watch.tripped === null ? 'request refused before its body was read' : 'request body passed its limit and was refused')
}

/** The first read of the body is the moment to send the 100 (RFC 9110 §10.1.1: not before the checks, not after body bytes came). */
export function sendContinue (watch: BodyWatch): void {
  if (!watch.awaiting) return
  watch.awaiting = false
  // No 100 is needed once body bytes came without one.
  if (watch.raw.readableLength > 0) return
  watch.reply.raw.writeContinue()
  watch.ctx.continued++
}

/** Counts a chunk of a body of unknown length; false once the body passed its limit (the chunk and the rest are dropped). */
export function countChunk (watch: BodyWatch, chunk: Buffer): boolean {
  // A client that sends its body without waiting needs no 100 any more.
  watch.awaiting = false
  watch.received += chunk.length
  if (watch.streamLimit === null || watch.received <= watch.streamLimit.maxBytes) return true
  trip(watch, watch.streamLimit)
  return false
}

/** Holds a body of unknown length to `limit` from now on; trips at once if it is already past it. */
export function holdToLimit (watch: BodyWatch, limit: BodyLimit): void {
  watch.streamLimit = limit
  if (watch.received > limit.maxBytes && watch.tripped === null) trip(watch, limit)
}

/**
 * The body passed its limit: its reader's stream fails with the 413 error
 * (so that storage can abort), what still arrives is discarded, and the
 * connection closes after the answer.
 */
function trip (watch: BodyWatch, limit: BodyLimit): void {
  const error = new StreamTooLargeError('The request body', limit.maxBytes, limit.source)
  watch.tripped = error
  countRefusal(watch, REFUSAL_REASONS.tooLargeWhileStreaming, 413)
  endBody(watch, error)
}

/**
 * Ends the body for its reader with `error`, keeping the connection (or
 * stream) for the answer, which then closes it: what still arrives is
 * discarded.
 */
export function endBody (watch: BodyWatch, error: Error): void {
  watch.closeAfter = true
  const raw = watch.raw
  if (raw.listenerCount('error') > 0) failReaderKeepingConnection(raw, error)
  // Nobody reads yet: a reader that starts later gets the error then.
  else failOnNextRead(raw, () => { failReaderKeepingConnection(raw, error) })
}

/**
 * Called just before the answer's head is written: counts an app's refusal
 * given before the body, and decides what becomes of the connection.
 */
export function concludeBeforeAnswer (watch: BodyWatch, res: ServerResponse, statusCode: number): void {
  const { ctx, raw, declared } = watch
  // Still waiting for its 100, unless body bytes came anyway.
  const beforeBody = watch.awaiting && raw.readableLength === 0
  watch.awaiting = false
  // Saturates rather than lose integer precision past 2^53 (8 PiB).
  if (beforeBody && declared !== null && declared > 0) ctx.unsentBytes = Math.min(ctx.unsentBytes + declared, Number.MAX_SAFE_INTEGER)
  if (statusCode >= 400 && beforeBody) countRefusal(watch, String(statusCode), statusCode)

  if (watch.socket !== null) {
    // What is left of an unread body: bytes are counted only for a body of
    // unknown length; otherwise the whole declared length is taken as the
    // remainder, which keeps the drain bounded.
    if (watch.closeAfter || beforeBody || (!raw.complete &&
      (declared === null || declared - watch.received > ctx.drainMaxBytes))) {
      res.setHeader('connection', 'close')
      lingerAfterAnswer(watch.socket, raw, ctx.linger)
    }
  } else if (watch.stream !== null && !raw.complete) {
    endStreamAfterAnswer(watch.stream)
  }
}
