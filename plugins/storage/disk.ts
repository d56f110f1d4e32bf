// Files on a local filesystem. Layout under the storage directory:
//
//   tmp/<id>.data, tmp/<id>.json   uploads being written, records being
//                                  prepared; a crash leaves them, `open`
//                                  removes them
//   files/<sha256(owner)>/<sha256(name)>.json         the record: metadata and
//                                                     the current data file
//   files/<sha256(owner)>/<sha256(name)>.<id>.data    one version of the bytes
//
// Names and owners only ever reach the disk as hashes (and inside records),
// so no name can point outside the directory. A commit places a new data
// file next to the old one, then swaps the record with one rename: a reader
// sees the old file or the new one, never a mix. One directory belongs to
// one process: commits are serialized in memory, and `open` clears what it
// finds unfinished.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, rm, statfs, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { finished } from 'node:stream'
import type { Readable } from 'node:stream'
import { NameIndex } from './names.js'
import { InsufficientStorageError, PreconditionFailedError, UploadTooLargeError } from './errors.js'
import type {
  BeginOptions,
  ByteRange,
  CommitConditions,
  FileList,
  FileMeta,
  ListOptions,
  PendingUpload,
  Storage,
  StoredFile,
  WrittenBody
} from './types.js'

export interface DiskStorageOptions {
  /**
   * Bytes gathered from an upload before they go to disk in one write.
   * Socket chunks are small (16-64 KiB); batching them saves system calls
   * and lets the next batch arrive while one is being written. An upload
   * holds at most about two batches in memory. Default 2 MiB.
   */
  writeBatchBytes?: number
  /**
   * Bytes written between two flushes to disk that run in the background
   * while an upload arrives, so that the commit does not wait for the whole
   * file to reach the disk. Default 16 MiB.
   */
  syncEveryBytes?: number
}

const mebibyte = 1024 * 1024

/** What `<sha256(name)>.json` holds. */
interface FileRecord {
  /** The current data file, in the same directory. */
  data: string
  meta: FileMeta
}

/** Where the files of one (owner, name) live. */
interface FileLocation {
  /** `files/<sha256(owner)>`. */
  directory: string
  nameHash: string
  /** Path of the record; also the key that serializes changes to this name. */
  record: string
}

/**
 * File names kept in memory after listings, about 70 bytes each: the owners
 * listed least recently are dropped past this many.
 */
const LISTED_NAMES_KEPT = 250_000
/** Records read at once: few descriptors held. */
const RECORDS_AT_ONCE = 32

const outOfSpaceCodes = new Set<unknown>(['ENOSPC', 'EDQUOT'])

export class DiskStorage implements Storage {
  readonly #files: string
  readonly #tmp: string
  readonly #options: Required<DiskStorageOptions>
  /** Per key, the end of the queue of operations that must not overlap. */
  readonly #queues = new Map<string, Promise<void>>()
  /** Uploads neither committed nor aborted yet. */
  readonly #uploads = new Set<DiskUpload>()
  /** The sorted names of the owners that listed their files lately, by owner directory. */
  readonly #names = new NameIndex(LISTED_NAMES_KEPT)
  #closed = false

  private constructor (dir: string, options: Required<DiskStorageOptions>) {
    this.#files = join(dir, 'files')
    this.#tmp = join(dir, 'tmp')
    this.#options = options
  }

  /** Opens (creating it if needed) the storage in `dir` and clears what a crash left unfinished. */
  static async open (dir: string, options: DiskStorageOptions = {}): Promise<DiskStorage> {
    const sizes = {
      writeBatchBytes: options.writeBatchBytes ?? 2 * mebibyte,
      syncEveryBytes: options.syncEveryBytes ?? 16 * mebibyte
    }
    for (const [option, value] of Object.entries(sizes)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`DiskStorage option ${option} must be a positive integer, not ${value}`)
    }
    const storage = new DiskStorage(dir, sizes)
    await rm(storage.#tmp, { recursive: true, force: true })
    await mkdir(storage.#tmp, { recursive: true })
    await mkdir(storage.#files, { recursive: true })
    await storage.#removeUnnamedData()
    return storage
  }

  async begin (owner: string, name: string, options: BeginOptions): Promise<PendingUpload> {
    if (this.#closed) throw new Error('This DiskStorage is closed')
    const location = this.#locate(owner, name)
    const id = randomBytes(16).toString('hex')
    const upload: DiskUpload = new DiskUpload({
      tempPath: join(this.#tmp, `${id}.data`),
      maxBytes: options.maxBytes,
      md5: options.md5 === true,
      writeBatchBytes: this.#options.writeBatchBytes,
      syncEveryBytes: this.#options.syncEveryBytes,
      place: async (tempPath, written, conditions) => {
        const sha256 = written.sha256.toString('hex')
        const meta: FileMeta = {
          name,
          owner,
          size: written.size,
          sha256,
          contentType: options.contentType,
          etag: `"${sha256}"`,
          createdAt: new Date().toISOString()
        }
        await this.#place(location, { data: `${location.nameHash}.${id}.data`, meta }, tempPath, join(this.#tmp, `${id}.json`), conditions)
        return meta
      },
      settled: () => { this.#uploads.delete(upload) }
    })
    this.#uploads.add(upload)
    return upload
  }

  async head (owner: string, name: string): Promise<FileMeta | null> {
    const record = await readRecord(this.#locate(owner, name).record)
    return record?.meta ?? null
  }

  async get (owner: string, name: string, range?: ByteRange): Promise<StoredFile | null> {
    const location = this.#locate(owner, name)
    // A commit or delete may remove the data file between reading the
    // record and opening the file: the record read again names the new one.
    for (let attempt = 0; attempt < 2; attempt++) {
      const record = await readRecord(location.record)
      if (record === null) return null
      const handle = await unlessMissing(open(join(location.directory, record.data), 'r'))
      if (handle !== null) {
        return { meta: record.meta, stream: handle.createReadStream({ start: range?.start, end: range?.end }) }
      }
    }
    throw new Error(`The data file of "${name}" is missing though its record names it`)
  }

  async delete (owner: string, name: string): Promise<boolean> {
    const location = this.#locate(owner, name)
    return await this.#exclusive(location.record, async () => {
      const current = await readRecord(location.record)
      if (current === null) return false
      await unlink(location.record)
      this.#names.change(location.directory, name, false)
      await syncDirectory(location.directory)
      await unlink(join(location.directory, current.data))
      return true
    })
  }

  async list (owner: string, { limit, cursor }: ListOptions): Promise<FileList> {
    const after = cursor === undefined ? null : Buffer.from(cursor, 'base64url').toString()
    const directory = join(this.#files, sha256Hex(owner))
    const names = await this.#names.of(directory, async () => (await readRecords(directory)).map((record) => record.meta.name))
    const files: FileMeta[] = []
    let from = after
    // A name deleted since it was indexed has no record any more: skipped.
    while (files.length < limit) {
      const batch = names.after(from, Math.min(limit - files.length, RECORDS_AT_ONCE))
      if (batch.length === 0) break
      const records = await Promise.all(batch.map(async (name) => await readRecord(this.#locate(owner, name).record)))
      for (const record of records) if (record !== null) files.push(record.meta)
      from = batch.at(-1) as string
    }
    const last = files.at(-1)
    const more = last !== undefined && names.after(last.name, 1).length > 0
    return { files, nextCursor: more ? Buffer.from(last.name).toString('base64url') : null }
  }

  async freeBytes (): Promise<number> {
    const { bavail, bsize } = await statfs(this.#files)
    return bavail * bsize
  }

  /** Aborts the uploads still pending and waits for the commits and deletes in progress. */
  async close (): Promise<void> {
    this.#closed = true
    await Promise.all(Array.from(this.#uploads, async (upload) => { await upload.abort() }))
    await Promise.all(this.#queues.values())
  }

  #locate (owner: string, name: string): FileLocation {
    const directory = join(this.#files, sha256Hex(owner))
    const nameHash = sha256Hex(name)
    return { directory, nameHash, record: join(directory, `${nameHash}.json`) }
  }

  /**
   * Moves a synced upload to its place and swaps in its record, durably;
   * the previous version's data goes once nothing names it any more.
   */
  async #place (location: FileLocation, record: FileRecord, tempData: string, tempRecord: string, conditions: CommitConditions): Promise<void> {
    try {
      await writeDurably(tempRecord, JSON.stringify(record))
      await this.#ensureDirectory(location.directory)
      await this.#exclusive(location.record, async () => {
        const current = await readRecord(location.record)
        checkConditions(current?.meta ?? null, conditions)
        await rename(tempData, join(location.directory, record.data))
        // The data must be on disk under its name before a record names it.
        await syncDirectory(location.directory)
        await rename(tempRecord, location.record)
        this.#names.change(location.directory, record.meta.name, true)
        await syncDirectory(location.directory)
        if (current !== null) await unlink(join(location.directory, current.data))
      })
    } catch (error) {
      await rm(tempRecord, { force: true })
      throw error
    }
  }

  /** Creates an owner's directory, durably: no commit goes into a directory that a crash could lose. */
  async #ensureDirectory (directory: string): Promise<void> {
    await this.#exclusive(directory, async () => {
      const created = await mkdir(directory, { recursive: true })
      if (created !== undefined) await syncDirectory(this.#files)
    })
  }

  /** Runs `task` after the previous tasks of the same key have settled. */
  async #exclusive<T> (key: string, task: () => Promise<T>): Promise<T> {
    const result = (this.#queues.get(key) ?? Promise.resolve()).then(task)
    const tail = result.then(ignore, ignore)
    this.#queues.set(key, tail)
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key)
    })
    return await result
  }

  /**
   * Removes data files that no record names: left by a crash between
   * placing a new version and swapping its record, or before the previous
   * version was unlinked.
   */
  async #removeUnnamedData (): Promise<void> {
    for (const owner of await readdir(this.#files)) {
      const directory = join(this.#files, owner)
      const named = new Set((await readRecords(directory)).map((record) => record.data))
      const unnamed = (await readdir(directory)).filter((entry) => entry.endsWith('.data') && !named.has(entry))
      await Promise.all(unnamed.map(async (entry) => { await unlink(join(directory, entry)) }))
    }
  }
}

type UploadState = 'ready' | 'writing' | 'written' | 'committing' | 'committed' | 'aborted'

interface UploadTarget extends ReceiveOptions {
  tempPath: string
  /** Makes the synced and closed temporary file visible; called at most once. */
  place: (tempPath: string, written: WrittenBody, conditions: CommitConditions) => Promise<FileMeta>
  /** Called once, when the upload is committed or dropped. */
  settled: () => void
}

class DiskUpload implements PendingUpload {
  readonly #target: UploadTarget
  /** Stops a write in progress when the upload is aborted. */
  readonly #aborting = new AbortController()
  #state: UploadState = 'ready'
  #handle: FileHandle | null = null
  #written: WrittenBody | null = null
  /** The write or commit in progress, which `abort` waits for. */
  #busy: Promise<unknown> = Promise.resolve()

  constructor (target: UploadTarget) {
    this.#target = target
  }

  async write (source: Readable): Promise<WrittenBody> {
    if (this.#state !== 'ready') throw new Error(`write() is called once, on a new upload; this one is ${this.#state}`)
    this.#state = 'writing'
    const writing = this.#write(source)
    this.#busy = writing
    return await writing
  }

  async commit (conditions: CommitConditions = {}): Promise<FileMeta> {
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

  async #write (source: Readable): Promise<WrittenBody> {
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

  async #commit (handle: FileHandle, written: WrittenBody, conditions: CommitConditions): Promise<FileMeta> {
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
  maxBytes: number
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
async function receive (source: Readable, handle: FileHandle, options: ReceiveOptions, signal: AbortSignal): Promise<WrittenBody> {
  return await new Promise<WrittenBody>((resolve, reject) => {
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
      if (size > options.maxBytes) {
        fail(new UploadTooLargeError(options.maxBytes))
        return
      }
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

function checkConditions (current: FileMeta | null, { ifNoneMatch = false, ifMatch }: CommitConditions): void {
  if (ifNoneMatch && current !== null) {
    throw new PreconditionFailedError('a file with this name exists (If-None-Match: *); choose another name, or send If-Match with its ETag to replace it')
  }
  if (ifMatch === undefined) return
  if (current === null) {
    throw new PreconditionFailedError('no file with this name exists (If-Match); send the upload without If-Match to create it')
  }
  if (!ifMatch.includes('*') && !ifMatch.includes(current.etag)) {
    throw new PreconditionFailedError('the file changed since you read its ETag (If-Match); fetch its current ETag and retry')
  }
}

async function readRecord (path: string): Promise<FileRecord | null> {
  const text = await unlessMissing(readFile(path, 'utf8'))
  return text === null ? null : JSON.parse(text) as FileRecord
}

/** The records in `directory`, in no particular order; none when it does not exist. */
async function readRecords (directory: string): Promise<FileRecord[]> {
  const entries = await unlessMissing(readdir(directory)) ?? []
  const paths = entries.filter((entry) => entry.endsWith('.json')).map((entry) => join(directory, entry))
  const records: FileRecord[] = []
  // A few at a time, to hold few descriptors; a record deleted meanwhile is skipped.
  for (let i = 0; i < paths.length; i += RECORDS_AT_ONCE) {
    const read = await Promise.all(paths.slice(i, i + RECORDS_AT_ONCE).map(readRecord))
    records.push(...read.filter((record): record is FileRecord => record !== null))
  }
  return records
}

/** `operation`'s result, or null when it failed because the file does not exist. */
async function unlessMissing<T> (operation: Promise<T>): Promise<T | null> {
  try {
    return await operation
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
}

/** Writes a new file and flushes it to disk before resolving. */
async function writeDurably (path: string, content: string): Promise<void> {
  const handle = await open(path, 'wx')
  try {
    await handle.writeFile(content)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Flushes a directory's entries (created, renamed, removed files) to disk. */
async function syncDirectory (path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** A full disk or quota becomes a 507 the client understands; other errors stay as they are. */
function storageError (error: unknown): unknown {
  return outOfSpaceCodes.has((error as NodeJS.ErrnoException).code) ? new InsufficientStorageError({ cause: error }) : error
}

function sha256Hex (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

function ignore (): void {}
