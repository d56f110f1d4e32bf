// One upload to disk: a temporary file written in batches as the body
// arrives and flushed in the background; at the commit, the last batch and
// the record (version.ts) in one write, flushed, then handed to the storage
// to be linked in place.
//
// A body that fits in one batch touches the disk once: the file is created
// at the commit with O_DSYNC, and one write stores bytes and record
// durably, with no separate fsync.
import { closeSync, constants, fdatasync, openSync, rmSync, writev } from 'node:fs'
import { promisify } from 'node:util'
import { InsufficientStorageError } from '../../../errors.js'
import { StagedUpload } from '../intake.js'
import type { Sink } from '../intake.js'
import type { Preconditions } from '../preconditions.js'
import type { StoredFile, Written } from '../types.js'
import { recordTrailer } from './version.js'

const writevAsync = promisify(writev)
const fdatasyncAsync = promisify(fdatasync)

export interface DiskSinkOptions {
  /** Bytes gathered before they go to disk in one write. */
  writeBatchBytes: number
  /** Bytes written between two background flushes to disk. */
  syncEveryBytes: number
}

interface DiskUploadTarget extends DiskSinkOptions {
  tempPath: string
  md5: boolean
  /** The metadata of the bytes written, stored after them. */
  describe: (written: Written) => StoredFile
  /** Makes the synced and closed temporary file the named file's current version; called at most once. */
  place: (tempPath: string, file: StoredFile, preconditions: Preconditions) => Promise<StoredFile>
  /** Called once, when the upload is committed or dropped. */
  settled: () => void
}

export class DiskUpload extends StagedUpload {
  readonly #target: DiskUploadTarget
  #file: VersionFile | null = null

  constructor (target: DiskUploadTarget) {
    super(target.md5)
    this.#target = target
  }

  protected async open (): Promise<Sink> {
    this.#file = new VersionFile(this.#target.tempPath, this.#target)
    return this.#file
  }

  protected async place (written: Written, preconditions: Preconditions): Promise<StoredFile> {
    const file = this.#target.describe(written)
    const versionFile = this.#file as VersionFile
    await versionFile.finish(recordTrailer(file))
    return await this.#target.place(this.#target.tempPath, file, preconditions)
  }

  protected async discard (): Promise<void> {
    await this.#file?.close()
    rmSync(this.#target.tempPath, { force: true })
  }

  protected storageError (error: unknown): unknown {
    return storageError(error)
  }

  protected settled (): void {
    this.#target.settled()
  }
}

/** Creates `path` for writing, failing if it exists; with `durable`, each write is on disk when it returns (O_DSYNC). */
export function createFile (path: string, durable: boolean): number {
  return openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (durable ? constants.O_DSYNC : 0), 0o666)
}

/**
 * A version being written, as the sink of an upload. Chunks are written in
 * batches: one batch is written while the next one fills, and the writer is
 * asked to wait only when both are full. The file is created when the first
 * batch is full. Every `syncEveryBytes` a flush to disk starts in the
 * background, so that the disk works while the network does and the
 * commit's flush finds little left to do; its outcome is awaited, so that
 * no write error goes unseen. The last batch, never full, waits for
 * `finish`, which writes it with the record.
 */
class VersionFile implements Sink {
  readonly #path: string
  readonly #options: DiskSinkOptions
  #fd: number | null = null
  #batch: Buffer[] = []
  #batchBytes = 0
  /** Bytes handed to writes so far: where the next batch goes. */
  #position = 0
  #unsyncedBytes = 0
  /** The write in progress, and the background flush in progress (settled promises, whatever their outcome). */
  #writing: Promise<void> | null = null
  #syncing: Promise<void> | null = null
  #ending: { resolve: () => void, reject: (error: unknown) => void } | null = null
  #failure: unknown = null
  #resume: (() => void) | null = null
  /* c8 ignore next -- replaced by the intake's own at its first write(), before anything is written */
  #fail: (error: unknown) => void = () => {}

  constructor (path: string, options: DiskSinkOptions) {
    this.#path = path
    this.#options = options
  }

  write (chunk: Buffer, ready: () => void, failed: (error: unknown) => void): boolean {
    this.#fail = failed
    this.#batch.push(chunk)
    this.#batchBytes += chunk.length
    if (this.#batchBytes < this.#options.writeBatchBytes) return true
    if (this.#writing !== null) {
      // Both batches are full: wait for the disk.
      this.#resume = ready
      return false
    }
    this.#advance()
    return true
  }

  async end (): Promise<void> {
    /* c8 ignore next -- the intake stops at the first failure reported through failed(): it never calls end() after one */
    if (this.#failure !== null) throw this.#failure
    await new Promise<void>((resolve, reject) => {
      this.#ending = { resolve, reject }
      this.#advance()
    })
  }

  /** Writes the last batch and `trailer`, and flushes the whole file to disk; then closes it. */
  async finish (trailer: Buffer): Promise<void> {
    const buffers = [...this.#batch, trailer]
    this.#batch = []
    this.#batchBytes = 0
    if (this.#fd === null) {
      this.#fd = createFile(this.#path, true)
      await writeAll(this.#fd, buffers, 0)
    } else {
      await writeAll(this.#fd, buffers, this.#position)
      await fdatasyncAsync(this.#fd)
    }
    await this.close()
  }

  /** Closes the file once the write and flush in progress are over. Safe to call more than once. */
  async close (): Promise<void> {
    await this.#writing
    await this.#syncing
    if (this.#fd === null) return
    const fd = this.#fd
    this.#fd = null
    closeSync(fd)
  }

  readonly #failed = (error: unknown): void => {
    this.#failure ??= error
    if (this.#ending !== null) this.#ending.reject(this.#failure)
    else this.#fail(this.#failure)
  }

  /** Starts what can start now: the next batch, a background flush, or the end. */
  #advance (): void {
    /* c8 ignore next -- a background flush that succeeds after a write failed: nothing more starts */
    if (this.#failure !== null) return
    if (this.#writing === null && this.#batchBytes >= this.#options.writeBatchBytes) {
      this.#flush()
      const ready = this.#resume
      this.#resume = null
      ready?.()
    }
    if (this.#syncing === null && this.#ending === null && this.#fd !== null && this.#unsyncedBytes >= this.#options.syncEveryBytes) {
      this.#unsyncedBytes = 0
      this.#syncing = fdatasyncAsync(this.#fd).then(() => {
        this.#syncing = null
        this.#advance()
      }, this.#failed)
    }
    if (this.#ending !== null && this.#writing === null && this.#syncing === null) this.#ending.resolve()
  }

  #flush (): void {
    const buffers = this.#batch
    const bytes = this.#batchBytes
    const at = this.#position
    this.#batch = []
    this.#batchBytes = 0
    this.#position += bytes
    try {
      this.#fd ??= createFile(this.#path, false)
    } catch (error) {
      this.#failed(error)
      return
    }
    this.#writing = writeAll(this.#fd, buffers, at).then(() => {
      this.#writing = null
      this.#unsyncedBytes += bytes
      this.#advance()
    }, this.#failed)
  }
}

/** Writes all of `buffers` at `position`, going on after a partial write (the disk filling up, typically). */
export async function writeAll (fd: number, buffers: Buffer[], position: number): Promise<void> {
  let remaining = buffers
  let at = position
  while (remaining.length > 0) {
    const { bytesWritten } = await writevAsync(fd, remaining, at)
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
