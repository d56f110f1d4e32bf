// One upload to disk: a temporary file written as the body arrives,
// hashed on the way, synced, then handed to the storage to be placed.
import { createHash } from 'node:crypto'
import { open, rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { finished } from 'node:stream'
import type { Readable } from 'node:stream'
import { InsufficientStorageError } from '../../../errors.js'
import type { Preconditions } from '../preconditions.js'
import type { StoredFile, Upload, Written } from '../types.js'

type UploadState = 'ready' | 'writing' | 'written' | 'committing' | 'committed' | 'aborted'

interface UploadTarget extends ReceiveOptions {
  tempPath: string
  /** Makes the synced and closed temporary file visible; called at most once. */
  place: (tempPath: string, written: Written, conditions: Preconditions) => Promise<StoredFile>
  /** Called once, when the upload is committed or dropped. */
  settled: () => void
}

export class DiskUpload implements Upload {
  readonly #target: UploadTarget
  /** Stops a write in progress when the upload is aborted. */
  readonly #aborting = new AbortController()
  #state: UploadState = 'ready'
  #handle: FileHandle | null = null
  #written: Written | null = null
  /** The write or commit in progress, which `abort` waits for. */
  #busy: Promise<unknown> = Promise.resolve()

  constructor (target: UploadTarget) {
    this.#target = target
  }

  async write (source: Readable): Promise<Written> {
    if (this.#state !== 'ready') throw new Error(`write() is called once, on a new upload; this one is ${this.#state}`)
    this.#state = 'writing'
    const writing = this.#write(source)
    this.#busy = writing
    return await writing
  }

  async commit (conditions: Preconditions = {}): Promise<StoredFile> {
    if (this.#state !== 'written' || this.#handle === null || this.#written === null) {
      throw new Error(`commit() is called once, after write(); this upload is ${this.#state}`)
    }
    this.#state = 'committing'
    const committing = this.#commit(this.#handle, this.#written, conditions)
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
      this.#handle = await open(this.#target.tempPath, 'wx')
      const written = await receive(source, this.#handle, this.#target, this.#aborting.signal)
      this.#written = written
      this.#state = 'written'
      return written
    } catch (error) {
      await this.#drop()
      throw storageError(error)
    }
  }

  async #commit (handle: FileHandle, written: Written, conditions: Preconditions): Promise<StoredFile> {
    try {
      await handle.sync()
      this.#handle = null
      await handle.close()
      const meta = await this.#target.place(this.#target.tempPath, written, conditions)
      this.#settle('committed')
      return meta
    } catch (error) {
      await this.#drop()
      throw storageError(error)
    }
  }

  async #drop (): Promise<void> {
    this.#settle('aborted')
    const handle = this.#handle
    this.#handle = null
    await handle?.close()
    await rm(this.#target.tempPath, { force: true })
  }

  #settle (state: 'committed' | 'aborted'): void {
    this.#state = state
    this.#target.settled()
  }
}

interface ReceiveOptions {
  md5: boolean
  writeBatchBytes: number
  syncEveryBytes: number
}

/**
 * Reads `source` to its end into `handle`, hashing each chunk as it arrives
 * and writing the chunks in batches: one batch is written while the next
 * one fills, and the source is paused only when both are full. Every
 * `syncEveryBytes` a flush to disk starts in the background, so that the
 * disk works while the network does and the commit's fsync finds little
 * left to do; its outcome is awaited, so that no write error goes unseen.
 * On failure the source is left paused, not destroyed: whoever owns it
 * decides between draining it (so that a 413 can be read) and closing the
 * connection.
 */
async function receive (source: Readable, handle: FileHandle, options: ReceiveOptions, signal: AbortSignal): Promise<Written> {
  return await new Promise<Written>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const sha256 = createHash('sha256')
    const md5 = options.md5 ? createHash('md5') : null
    let size = 0
    let batch: Buffer[] = []
    let batchBytes = 0
    /** Bytes handed to writes so far: where the next batch goes. */
    let position = 0
    let unsyncedBytes = 0
    let writing = false
    let syncing = false
    let paused = false
    let ended = false
    let settled = false

    const stop = (): void => {
      settled = true
      source.off('data', onData)
      stopWatching()
      signal.removeEventListener('abort', onAbort)
      source.pause()
    }
    const fail = (error: unknown): void => {
      stop()
      reject(error)
    }
    const onAbort = (): void => { fail(signal.reason) }

    /** Starts what can start now: the next batch, a background sync, or the end. */
    const advance = (): void => {
      if (settled) return
      if (!writing && (batchBytes >= options.writeBatchBytes || (ended && batchBytes > 0))) {
        write()
        if (paused) {
          paused = false
          source.resume()
        }
      }
      if (!syncing && !ended && unsyncedBytes >= options.syncEveryBytes) {
        syncing = true
        unsyncedBytes = 0
        handle.datasync().then(() => {
          syncing = false
          advance()
        }, fail)
      }
      if (ended && !writing && !syncing) {
        stop()
        resolve({ size, sha256: sha256.digest(), md5: md5 === null ? null : md5.digest() })
      }
    }
    const write = (): void => {
      const buffers = batch
      const bytes = batchBytes
      const at = position
      position += bytes
      batch = []
      batchBytes = 0
      writing = true
      writeAll(handle, buffers, at).then(() => {
        writing = false
        unsyncedBytes += bytes
        advance()
      }, fail)
    }

    const onData = (chunk: Buffer): void => {
      size += chunk.length
      sha256.update(chunk)
      md5?.update(chunk)
      batch.push(chunk)
      batchBytes += chunk.length
      if (batchBytes < options.writeBatchBytes) return
      if (writing) {
        // Both batches are full: wait for the disk.
        paused = true
        source.pause()
      } else {
        advance()
      }
    }

    const stopWatching = finished(source, { writable: false }, (error) => {
      if (error != null) {
        fail(error)
        return
      }
      ended = true
      advance()
    })
    signal.addEventListener('abort', onAbort)
    source.on('data', onData)
  })
}

/** Writes all of `buffers` at `position`, going on after a partial write (the disk filling up, typically). */
async function writeAll (handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let remaining = buffers
  let at = position
  while (remaining.length > 0) {
    const { bytesWritten } = await handle.writev(remaining, at)
    at += bytesWritten
    remaining = skipBytes(remaining, bytesWritten)
  }
}

function skipBytes (buffers: Buffer[], count: number): Buffer[] {
  let skip = count
  const rest: Buffer[] = []
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length
    } else {
      rest.push(buffer.subarray(skip))
      skip = 0
    }
  }
  return rest
}

const outOfSpaceCodes = new Set<unknown>(['ENOSPC', 'EDQUOT'])

/** A full disk or quota becomes a 507 the client understands; other errors stay as they are. */
export function storageError (error: unknown): unknown {
  return outOfSpaceCodes.has((error as NodeJS.ErrnoException).code) ? new InsufficientStorageError({ cause: error }) : error
}

export function ignore (): void {}
