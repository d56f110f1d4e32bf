// What every backend does with an upload's bytes, whatever it stores them
// in: count them, hash them (SHA-256, and MD5 when asked), hand them in
// order to a sink with backpressure, and drop everything on failure. A
// backend brings only its sink (disk: batched writes to a temporary file;
// S3: parts of a multipart upload) and its commit.
//
// Limits on the number of bytes are not storage's: the expectation
// plugin holds the request body to its limit, and the form parser each
// file to its own, before the bytes reach a backend.
import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { finished } from 'node:stream'
import type { Readable } from 'node:stream'
import type { Preconditions } from './preconditions.js'
import type { StoredFile, Upload, Written } from './types.js'

/** Where a backend puts an upload's bytes, in order. */
export interface Sink {
  /**
   * Takes the next chunk. Returns false when it wants no more for now; it
   * then calls `ready()` when it does. A failure is reported by rejecting
   * `end()`, or at once through `failed(error)`.
   */
  write: (chunk: Buffer, ready: () => void, failed: (error: unknown) => void) => boolean
  /** After the last chunk: resolves once everything written is stored (durably or not: the commit decides). */
  end: () => Promise<void>
}

/** Count and digests of the bytes seen. */
class Tally {
  size = 0
  readonly #sha256: Hash = createHash('sha256')
  readonly #md5: Hash | null

  constructor (md5: boolean) {
    this.#md5 = md5 ? createHash('md5') : null
  }

  update (chunk: Buffer): void {
    this.size += chunk.length
    this.#sha256.update(chunk)
    this.#md5?.update(chunk)
  }

  digest (): Written {
    return { size: this.size, sha256: this.#sha256.digest(), md5: this.#md5 === null ? null : this.#md5.digest() }
  }
}

/**
 * Reads `source` to its end into `sink`, counting and hashing each chunk
 * as it arrives; the source is paused while the sink wants no more. Settles
 * once the sink has stored everything, or with the first failure (of the
 * source, the sink, or `signal`). On failure the source is left paused, not
 * destroyed: whoever owns it decides between draining it (so that an
 * answer can be read) and closing the connection.
 */
async function intake (source: Readable, sink: Sink, tally: Tally, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    let settled = false
    const stop = (): void => {
      settled = true
      source.off('data', onData)
      stopWatching()
      signal.removeEventListener('abort', onAbort)
      source.pause()
    }
    const fail = (error: unknown): void => {
      if (settled) return
      stop()
      reject(error)
    }
    const ready = (): void => { if (!settled) source.resume() }
    const onData = (chunk: Buffer): void => {
      tally.update(chunk)
      if (!sink.write(chunk, ready, fail)) source.pause()
    }
    const onAbort = (): void => { fail(signal.reason) }
    const stopWatching = finished(source, { writable: false }, (error) => {
      if (error != null) {
        fail(error)
        return
      }
      sink.end().then(() => {
        if (settled) return
        stop()
        resolve()
      }, fail)
    })
    signal.addEventListener('abort', onAbort)
    source.on('data', onData)
  })
}

type UploadState = 'ready' | 'writing' | 'written' | 'committing' | 'committed' | 'aborted'

/**
 * An upload's life, the same on every backend: `write` once, then `commit`
 * or `abort`; `abort` may come at any time, and waits for a write or commit
 * in progress. A backend supplies where the bytes go (`open`), how they
 * become the file (`place`), and how they are dropped (`discard`).
 */
export abstract class StagedUpload implements Upload {
  readonly #md5: boolean
  /** Stops a write in progress when the upload is aborted. */
  readonly #aborting = new AbortController()
  #state: UploadState = 'ready'
  #written: Written | null = null
  /** The write or commit in progress, which `abort` waits for. */
  #busy: Promise<unknown> = Promise.resolve()

  constructor (md5: boolean) {
    this.#md5 = md5
  }

  /** Opens the temporary place the bytes go to. */
  protected abstract open (): Promise<Sink>
  /** Makes the written bytes the named file, durably, with `preconditions` checked atomically. */
  protected abstract place (written: Written, preconditions: Preconditions): Promise<StoredFile>
  /** Removes whatever was written; safe to call at any point, and more than once. */
  protected abstract discard (): Promise<void>
  /** Turns a backend's failure into what a client is told (507 for a full store, say); others as they are. */
  protected abstract storageError (error: unknown): unknown
  /** Called once, when the upload is committed or dropped. */
  protected abstract settled (): void

  async write (source: Readable): Promise<Written> {
    if (this.#state !== 'ready') throw new Error(`write() is called once, on a new upload; this one is ${this.#state}`)
    this.#state = 'writing'
    const writing = this.#write(source)
    this.#busy = writing
    return await writing
  }

  async commit (preconditions: Preconditions = {}): Promise<StoredFile> {
    if (this.#state !== 'written' || this.#written === null) {
      throw new Error(`commit() is called once, after write(); this upload is ${this.#state}`)
    }
    this.#state = 'committing'
    const committing = this.#commit(this.#written, preconditions)
    this.#busy = committing
    return await committing
  }

  async abort (): Promise<void> {
    this.#aborting.abort()
    await this.#busy.then(ignore, ignore)
    if (this.#state === 'ready' || this.#state === 'written') await this.#drop()
  }

  async #write (source: Readable): Promise<Written> {
    try {
      const tally = new Tally(this.#md5)
      await intake(source, await this.open(), tally, this.#aborting.signal)
      this.#written = tally.digest()
      this.#state = 'written'
      return this.#written
    } catch (error) {
      await this.#drop()
      throw this.storageError(error)
    }
  }

  async #commit (written: Written, preconditions: Preconditions): Promise<StoredFile> {
    try {
      const file = await this.place(written, preconditions)
      this.#settle('committed')
      return file
    } catch (error) {
      await this.#drop()
      throw this.storageError(error)
    }
  }

  async #drop (): Promise<void> {
    this.#settle('aborted')
    await this.discard()
  }

  #settle (state: 'committed' | 'aborted'): void {
    /* c8 ignore next -- each upload settles once: abort() drops only a ready or written upload, a failed write or commit only itself, and settled() cannot throw after a commit */
    if (this.#state === 'committed' || this.#state === 'aborted') return
    this.#state = state
    this.settled()
  }
}

export function ignore (): void {}
