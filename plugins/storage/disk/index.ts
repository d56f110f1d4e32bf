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
import { join } from 'node:path'
import { InvalidCursorError } from '../../../errors.js'
import { isValidName } from '../names.js'
import { evaluatePreconditions } from '../preconditions.js'
import type { Preconditions } from '../preconditions.js'
import type {
  BeginOptions,
  ByteRange,
  FileContent,
  FilePage,
  ListOptions,
  Storage,
  StoredFile,
  Upload
} from '../types.js'
import { NameIndex } from './name-index.js'
import { DiskUpload, ignore } from './upload.js'

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

/** What `<sha256(name)>.json` holds: which data file is the current version, and its metadata. */
interface VersionPointer {
  /** The current data file, in the same directory. */
  data: string
  meta: StoredFile
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

  async begin (owner: string, name: string, options: BeginOptions): Promise<Upload> {
    if (this.#closed) throw new Error('This DiskStorage is closed')
    const location = this.#locate(owner, name)
    const id = randomBytes(16).toString('hex')
    const upload: DiskUpload = new DiskUpload({
      tempPath: join(this.#tmp, `${id}.data`),
      md5: options.md5 === true,
      writeBatchBytes: this.#options.writeBatchBytes,
      syncEveryBytes: this.#options.syncEveryBytes,
      place: async (tempPath, written, conditions) => {
        const sha256 = written.sha256.toString('hex')
        const meta: StoredFile = {
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

  async head (owner: string, name: string): Promise<StoredFile | null> {
    const record = await readRecord(this.#locate(owner, name).record)
    return record?.meta ?? null
  }

  async get (owner: string, name: string, range?: ByteRange): Promise<FileContent | null> {
    const location = this.#locate(owner, name)
    // A commit or delete may remove the data file between reading the
    // record and opening the file: the record read again names the new one.
    for (let attempt = 0; attempt < 2; attempt++) {
      const record = await readRecord(location.record)
      if (record === null) return null
      const handle = await unlessMissing(open(join(location.directory, record.data), 'r'))
      if (handle !== null) {
        return { file: record.meta, stream: handle.createReadStream({ start: range?.start, end: range?.end }) }
      }
    }
    throw new Error(`The data file of "${name}" is missing though its record names it`)
  }

  async delete (owner: string, name: string, preconditions: Preconditions = {}): Promise<boolean> {
    const location = this.#locate(owner, name)
    return await this.#exclusive(location.record, async () => {
      const current = await readRecord(location.record)
      evaluatePreconditions(preconditions, current?.meta ?? null, 'write')
      if (current === null) return false
      await unlink(location.record)
      this.#names.change(location.directory, name, false)
      await syncDirectory(location.directory)
      await unlink(join(location.directory, current.data))
      return true
    })
  }

  async list (owner: string, { limit, cursor }: ListOptions): Promise<FilePage> {
    const after = cursor === undefined ? null : nameOfCursor(cursor)
    const directory = join(this.#files, sha256Hex(owner))
    const names = await this.#names.of(directory, async () => (await readRecords(directory)).map((record) => record.meta.name))
    const files: StoredFile[] = []
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
    return { files, nextCursor: more ? cursorAfter(last.name) : null }
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
  async #place (location: FileLocation, record: VersionPointer, tempData: string, tempRecord: string, conditions: Preconditions): Promise<void> {
    try {
      await writeDurably(tempRecord, JSON.stringify(record))
      await this.#ensureDirectory(location.directory)
      await this.#exclusive(location.record, async () => {
        const current = await readRecord(location.record)
        evaluatePreconditions(conditions, current?.meta ?? null, 'write')
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
    tail.then(() => {
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

async function readRecord (path: string): Promise<VersionPointer | null> {
  const text = await unlessMissing(readFile(path, 'utf8'))
  return text === null ? null : JSON.parse(text) as VersionPointer
}

/** The records in `directory`, in no particular order; none when it does not exist. */
async function readRecords (directory: string): Promise<VersionPointer[]> {
  const entries = await unlessMissing(readdir(directory)) ?? []
  const paths = entries.filter((entry) => entry.endsWith('.json')).map((entry) => join(directory, entry))
  const records: VersionPointer[] = []
  // A few at a time, to hold few descriptors; a record deleted meanwhile is skipped.
  for (let i = 0; i < paths.length; i += RECORDS_AT_ONCE) {
    const read = await Promise.all(paths.slice(i, i + RECORDS_AT_ONCE).map(readRecord))
    records.push(...read.filter((record): record is VersionPointer => record !== null))
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

function sha256Hex (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** A cursor is the name a page ended with, as base64url. */
function cursorAfter (name: string): string {
  return Buffer.from(name).toString('base64url')
}

/** The name a cursor stands for; `InvalidCursorError` when it is not one `cursorAfter` made. */
function nameOfCursor (cursor: string): string {
  const name = Buffer.from(cursor, 'base64url').toString()
  if (cursorAfter(name) !== cursor || !isValidName(name)) throw new InvalidCursorError()
  return name
}
