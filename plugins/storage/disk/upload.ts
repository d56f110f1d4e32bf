// One upload to disk: a temporary file written in batches as the body
// arrives, flushed in the background, synced, then handed to the storage
// to be placed.
import { open, rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { InsufficientStorageError } from '../../../errors.js'
import { StagedUpload } from '../intake.js'
import type { Sink } from '../intake.js'
import type { Preconditions } from '../preconditions.js'
import type { StoredFile, Written } from '../types.js'

export interface DiskSinkOptions {
  /** Bytes gathered before they go to disk in one write. */
  writeBatchBytes: number
  /** Bytes written between two background flushes to disk. */
  syncEveryBytes: number
}

interface DiskUploadTarget extends DiskSinkOptions {
  tempPath: string
  md5: boolean
  /** Makes the synced and closed temporary file the named file; called at most once. */
  place: (tempPath: string, written: Written, preconditions: Preconditions) => Promise<StoredFile>
  /** Called once, when the upload is committed or dropped. */
  settled: () => void
}

export class DiskUpload extends StagedUpload {
  readonly #target: DiskUploadTarget
  #handle: FileHandle | null = null

  constructor (target: DiskUploadTarget) {
    super(target.md5)
    this.#target = target
  }

  protected async open (): Promise<Sink> {
    this.#handle = await open(this.#target.tempPath, 'wx')
    return diskSink(this.#handle, this.#target)
  }

  protected async place (written: Written, preconditions: Preconditions): Promise<StoredFile> {
    const handle = this.#handle as FileHandle
    await handle.sync()
    this.#handle = null
    await handle.close()
    return await this.#target.place(this.#target.tempPath, written, preconditions)
  }

  protected async discard (): Promise<void> {
    const handle = this.#handle
    this.#handle = null
    await handle?.close()
    await rm(this.#target.tempPath, { force: true })
  }

  protected storageError (error: unknown): unknown {
    return storageError(error)
  }

  protected settled (): void {
    this.#target.settled()
  }
}

/**
 * Writes chunks to `handle` in batches: one batch is written while the next
 * one fills, and the writer is asked to wait only when both are full. Every
 * `syncEveryBytes` a flush to disk starts in the background, so that the
 * disk works while the network does and the commit's fsync finds little
 * left to do; its outcome is awaited, so that no write error goes unseen.
 */
function diskSink (handle: FileHandle, options: DiskSinkOptions): Sink {
  let batch: Buffer[] = []
  let batchBytes = 0
  /** Bytes handed to writes so far: where the next batch goes. */
  let position = 0
  let unsyncedBytes = 0
  let writing = false
  let syncing = false
  let ending: { resolve: () => void, reject: (error: unknown) => void } | null = null
  let failure: unknown = null
  let resume: (() => void) | null = null
  let fail: (error: unknown) => void = () => {}

  const failed = (error: unknown): void => {
    failure ??= error
    if (ending !== null) ending.reject(failure)
    else fail(failure)
  }
  /** Starts what can start now: the next batch, a background sync, or the end. */
  const advance = (): void => {
    if (failure !== null) return
    if (!writing && (batchBytes >= options.writeBatchBytes || (ending !== null && batchBytes > 0))) {
      flush()
      const ready = resume
      resume = null
      ready?.()
    }
    if (!syncing && ending === null && unsyncedBytes >= options.syncEveryBytes) {
      syncing = true
      unsyncedBytes = 0
      handle.datasync().then(() => {
        syncing = false
        advance()
      }, failed)
    }
    if (ending !== null && !writing && !syncing) ending.resolve()
  }
  const flush = (): void => {
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
    }, failed)
  }

  return {
    write (chunk, ready, onFailure) {
      fail = onFailure
      batch.push(chunk)
      batchBytes += chunk.length
      if (batchBytes < options.writeBatchBytes) return true
      if (writing) {
        // Both batches are full: wait for the disk.
        resume = ready
        return false
      }
      advance()
      return true
    },
    async end () {
      if (failure !== null) throw failure
      await new Promise<void>((resolve, reject) => {
        ending = { resolve, reject }
        advance()
      })
    }
  }
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
