// Files on a local filesystem, shared safely by several processes. Layout
// under the storage directory:
//
//   tmp/<id>.data, tmp/<id>.json       uploads being written, records being
//                                      prepared; swept once older than an hour
//   files/<sha256(owner)>/<sha256(name)>/<seq>.json   the versions' records, seq
//                                      zero-padded: the highest is current; a
//                                      tombstone when the file was deleted
//   files/<sha256(owner)>/<sha256(name)>/<id>.data    the data of a version
//
// Names and owners only ever reach the disk as hashes (and inside records),
// so no name can point outside the directory. A commit is a compare-and-set
// that the filesystem itself arbitrates: read the current record (seq N),
// check the preconditions against it, then link a new record as N + 1,
// which fails if another writer, in this process or another, got there
// first; the loser reads again and checks again. A reader sees the old
// version or the new one, never a mix. Nothing another process needs lives
// in this one's memory: the name cache of listings is checked against the
// directory on every listing.
import { createHash, randomBytes } from 'node:crypto'
import { link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, statfs, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { cursorAfter, nameOfCursor } from '../cursor.js'
import { evaluatePreconditions } from '../preconditions.js'
import type { Preconditions } from '../preconditions.js'
import type { BeginOptions, ByteRange, FileContent, FilePage, ListOptions, Storage, StoredFile, Upload, Written } from '../types.js'
import { NameIndex } from './name-index.js'
import { DiskUpload } from './upload.js'

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
  /**
   * Age, in ms, after which what no upload or commit can still be using is
   * swept: temporary files no longer written to, data that no record names,
   * tombstones of deleted files. Default 3600000 (1 hour).
   */
  sweepAfterMs?: number
}

const mebibyte = 1024 * 1024

/** What a version's `<seq>.json` holds: the data file and the metadata, or that the file was deleted. */
type VersionRecord =
  | { data: string, meta: StoredFile }
  | { deleted: true, name: string }

/** A name's current version: its seq (0 when it never had one) and record (null when none). */
interface Current {
  seq: number
  record: VersionRecord | null
}

/** Where the versions of one (owner, name) live. */
interface Location {
  /** `files/<sha256(owner)>`. */
  ownerDirectory: string
  /** `files/<sha256(owner)>/<sha256(name)>`. */
  directory: string
}

/** File names kept in memory for listings, about 70 bytes each: the owners listed least recently are dropped past this many. */
const LISTED_NAMES_KEPT = 250_000
/** Records read at once: few descriptors held. */
const RECORDS_AT_ONCE = 32
/** A record's file name: the seq, zero-padded so that names sort as numbers. */
const SEQ_DIGITS = 16
const RECORD = /^(\d{16})\.json$/
/** Data files not named by the current record are left this long to a commit still placing them. */
const UNNAMED_DATA_GRACE_MS = 10 * 60_000

function recordName (seq: number): string {
  return `${String(seq).padStart(SEQ_DIGITS, '0')}.json`
}

function fileOf (record: VersionRecord | null): StoredFile | null {
  return record === null || 'deleted' in record ? null : record.meta
}

export class DiskStorage implements Storage {
  readonly #files: string
  readonly #tmp: string
  readonly #options: Required<DiskStorageOptions>
  /** Uploads neither committed nor aborted yet. */
  readonly #uploads = new Set<DiskUpload>()
  /** Commits and deletes in progress, which `close` waits for. */
  readonly #changes = new Set<Promise<unknown>>()
  /** The names of owners listed lately, by owner directory: a cache checked against the directory. */
  readonly #names = new NameIndex(LISTED_NAMES_KEPT)
  #sweeper: NodeJS.Timeout | null = null
  #closed = false

  private constructor (dir: string, options: Required<DiskStorageOptions>) {
    this.#files = join(dir, 'files')
    this.#tmp = join(dir, 'tmp')
    this.#options = options
  }

  /**
   * Opens (creating it if needed) the storage in `dir`, sweeps what crashes
   * left behind, and sweeps again every `sweepAfterMs`. Throws the
   * filesystem's error when the directory cannot be used.
   */
  static async open (dir: string, options: DiskStorageOptions = {}): Promise<DiskStorage> {
    const settings = {
      writeBatchBytes: options.writeBatchBytes ?? 2 * mebibyte,
      syncEveryBytes: options.syncEveryBytes ?? 16 * mebibyte,
      sweepAfterMs: options.sweepAfterMs ?? 3_600_000
    }
    for (const [option, value] of Object.entries(settings)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`DiskStorage option ${option} must be a positive integer, not ${value}`)
    }
    const storage = new DiskStorage(dir, settings)
    await mkdir(storage.#tmp, { recursive: true })
    await mkdir(storage.#files, { recursive: true })
    await storage.sweep()
    storage.#sweeper = setInterval(() => { storage.sweep().catch(ignore) }, settings.sweepAfterMs)
    storage.#sweeper.unref()
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
      place: async (tempPath, written, preconditions) => await this.#track(this.#place(location, id, tempPath, { name, owner, contentType: options.contentType }, written, preconditions)),
      settled: () => { this.#uploads.delete(upload) }
    })
    this.#uploads.add(upload)
    return upload
  }

  async head (owner: string, name: string): Promise<StoredFile | null> {
    return fileOf((await readCurrent(this.#locate(owner, name).directory)).record)
  }

  async get (owner: string, name: string, range?: ByteRange): Promise<FileContent | null> {
    const { directory } = this.#locate(owner, name)
    // A commit or delete may remove the data file between reading the
    // record and opening the file: the record read again names the new one.
    for (let attempt = 0; attempt < 3; attempt++) {
      const { record } = await readCurrent(directory)
      const file = fileOf(record)
      if (file === null) return null
      const handle = await unlessMissing(open(join(directory, (record as { data: string }).data), 'r'))
      if (handle !== null) return { file, stream: handle.createReadStream({ start: range?.start, end: range?.end }) }
    }
    throw new Error(`The data file of "${name}" is missing though its record names it`)
  }

  async delete (owner: string, name: string, preconditions: Preconditions = {}): Promise<StoredFile | null> {
    return await this.#track(this.#delete(this.#locate(owner, name), name, preconditions))
  }

  async list (owner: string, { limit, cursor }: ListOptions): Promise<FilePage> {
    const after = cursor === undefined ? null : nameOfCursor(cursor)
    const ownerDirectory = join(this.#files, sha256Hex(owner))
    const names = await this.#names.of(ownerDirectory, await unlessMissing(readdir(ownerDirectory)) ?? [],
      async (entry) => nameOfRecord((await readCurrent(join(ownerDirectory, entry))).record))
    const files: StoredFile[] = []
    let from = after
    // A name deleted or gone since the directory was read has no file: skipped.
    while (files.length < limit) {
      const batch = names.after(from, Math.min(limit - files.length, RECORDS_AT_ONCE))
      if (batch.length === 0) break
      const read = await Promise.all(batch.map(async (name) => await this.head(owner, name)))
      for (const file of read) if (file !== null) files.push(file)
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

  async ping (): Promise<void> {
    await statfs(this.#files)
  }

  /** Stops sweeping, aborts the uploads still pending and waits for the commits and deletes in progress. */
  async close (): Promise<void> {
    this.#closed = true
    if (this.#sweeper !== null) clearInterval(this.#sweeper)
    await Promise.all(Array.from(this.#uploads, async (upload) => { await upload.abort() }))
    await Promise.allSettled(this.#changes)
  }

  /**
   * Removes what no upload or commit can still use: temporary files older
   * than `sweepAfterMs` (a process that died mid-upload), records of past
   * versions and data no current record names (a process that died
   * mid-commit), and names whose only record is a tombstone older than
   * `sweepAfterMs`. Safe while other processes use the directory.
   */
  async sweep (): Promise<void> {
    const now = Date.now()
    for (const entry of await readdir(this.#tmp)) {
      await removeIfOlder(join(this.#tmp, entry), now - this.#options.sweepAfterMs)
    }
    for (const owner of await readdir(this.#files)) {
      const ownerDirectory = join(this.#files, owner)
      const entries = await unlessMissing(readdir(ownerDirectory)) ?? []
      // Files of the layout before versions: a record beside its data.
      for (const entry of entries.filter((entry) => entry.endsWith('.json'))) await migrate(ownerDirectory, entry)
      for (const entry of entries) {
        if (entry.endsWith('.data')) await removeIfOlder(join(ownerDirectory, entry), now - UNNAMED_DATA_GRACE_MS)
        else if (!entry.endsWith('.json')) await this.#sweepName(join(ownerDirectory, entry), now)
      }
    }
  }

  async #sweepName (directory: string, now: number): Promise<void> {
    const entries = await unlessMissing(readdir(directory)) ?? []
    const { seq, record } = await readCurrent(directory)
    const current = record !== null && 'data' in record ? record.data : null
    for (const entry of entries) {
      const match = RECORD.exec(entry)
      if (match !== null && Number(match[1]) < seq) await rm(join(directory, entry), { force: true })
      if (entry.endsWith('.data') && entry !== current) await removeIfOlder(join(directory, entry), now - UNNAMED_DATA_GRACE_MS)
    }
    if (record !== null && 'deleted' in record && await removeIfOlder(join(directory, recordName(seq)), now - this.#options.sweepAfterMs)) {
      // Another writer may be placing a file here right now: then the directory is not empty, and stays.
      await rmdir(directory).catch(ignore)
    }
  }

  #locate (owner: string, name: string): Location {
    const ownerDirectory = join(this.#files, sha256Hex(owner))
    return { ownerDirectory, directory: join(ownerDirectory, sha256Hex(name)) }
  }

  async #track<T> (change: Promise<T>): Promise<T> {
    this.#changes.add(change)
    try {
      return await change
    } finally {
      this.#changes.delete(change)
    }
  }

  /**
   * Moves a synced upload next to the name's versions, then links its
   * record as the next version, checking `preconditions` against the
   * version it replaces; the previous version goes once nothing names it.
   */
  async #place (location: Location, id: string, tempData: string, about: Pick<StoredFile, 'name' | 'owner' | 'contentType'>, written: Written, preconditions: Preconditions): Promise<StoredFile> {
    const sha256 = written.sha256.toString('hex')
    const meta: StoredFile = { ...about, size: written.size, sha256, etag: `"${sha256}"`, createdAt: new Date().toISOString() }
    const data = `${id}.data`
    const tempRecord = join(this.#tmp, `${id}.json`)
    try {
      await writeDurably(tempRecord, JSON.stringify({ data, meta } satisfies VersionRecord))
      await this.#ensureDirectory(location)
      await rename(tempData, join(location.directory, data))
      // The data must be on disk under its name before a record names it.
      await syncDirectory(location.directory)
      try {
        const replaced = await this.#link(location, tempRecord, (current) => { evaluatePreconditions(preconditions, fileOf(current), 'write') })
        await removeVersion(location.directory, replaced)
      } catch (error) {
        await rm(join(location.directory, data), { force: true })
        throw error
      }
      return meta
    } finally {
      await rm(tempRecord, { force: true })
    }
  }

  async #delete (location: Location, name: string, preconditions: Preconditions): Promise<StoredFile | null> {
    let deleted: StoredFile | null = null
    const tempRecord = join(this.#tmp, `${randomBytes(16).toString('hex')}.json`)
    try {
      await writeDurably(tempRecord, JSON.stringify({ deleted: true, name } satisfies VersionRecord))
      const replaced = await this.#link(location, tempRecord, (current) => {
        evaluatePreconditions(preconditions, fileOf(current), 'write')
        deleted = fileOf(current)
        // Nothing to delete: no tombstone either.
        if (deleted === null) throw new NothingToDelete()
      })
      await removeVersion(location.directory, replaced)
    } catch (error) {
      if (!(error instanceof NothingToDelete)) throw error
    } finally {
      await rm(tempRecord, { force: true })
    }
    return deleted
  }

  /**
   * Links `tempRecord` as the version after the current one, once `check`
   * accepts the current one; if another writer takes that place first, the
   * new current version is read and checked again. Returns the version
   * replaced.
   */
  async #link (location: Location, tempRecord: string, check: (current: VersionRecord | null) => void): Promise<Current> {
    for (;;) {
      const current = await readCurrent(location.directory)
      check(current.record)
      try {
        await link(tempRecord, join(location.directory, recordName(current.seq + 1)))
      } catch (error) {
        const { code } = error as NodeJS.ErrnoException
        if (code === 'EEXIST') continue
        // The sweeper removed the name's directory (a tombstone aged out): it is made again.
        if (code === 'ENOENT') {
          await this.#ensureDirectory(location)
          continue
        }
        throw error
      }
      await syncDirectory(location.directory)
      return current
    }
  }

  /** Creates a name's directory, and its owner's, durably: no commit goes into a directory that a crash could lose. */
  async #ensureDirectory ({ ownerDirectory, directory }: Location): Promise<void> {
    const created = await mkdir(directory, { recursive: true })
    if (created === undefined) return
    if (created === ownerDirectory) await syncDirectory(this.#files)
    await syncDirectory(ownerDirectory)
  }
}

/** Thrown inside a delete's check when there is no file: nothing is written. */
class NothingToDelete extends Error {}

/** The current version of a name: the record with the highest seq. */
async function readCurrent (directory: string): Promise<Current> {
  // A record removed between reading the directory and reading it was
  // replaced by a newer one: read the directory again.
  for (;;) {
    const entries = await unlessMissing(readdir(directory)) ?? []
    let last: string | null = null
    for (const entry of entries) if (RECORD.test(entry) && (last === null || entry > last)) last = entry
    if (last === null) return { seq: 0, record: null }
    const text = await unlessMissing(readFile(join(directory, last), 'utf8'))
    if (text !== null) return { seq: Number(last.slice(0, SEQ_DIGITS)), record: JSON.parse(text) as VersionRecord }
  }
}

/**
 * Moves a file of the layout before versions (`<nameHash>.json` naming
 * `<nameHash>.<id>.data`, beside it) into its name's directory as version 1.
 */
async function migrate (ownerDirectory: string, entry: string): Promise<void> {
  const nameHash = entry.slice(0, -'.json'.length)
  const old = JSON.parse(await readFile(join(ownerDirectory, entry), 'utf8')) as { data: string, meta: StoredFile }
  const directory = join(ownerDirectory, nameHash)
  const data = old.data.slice(nameHash.length + 1)
  await mkdir(directory, { recursive: true })
  await syncDirectory(ownerDirectory)
  // Each step is skipped when done already: a crash may have stopped an earlier run.
  await unlessMissing(rename(join(ownerDirectory, old.data), join(directory, data)))
  if ((await readCurrent(directory)).seq === 0) {
    await writeDurably(join(directory, recordName(1)), JSON.stringify({ data, meta: old.meta } satisfies VersionRecord))
  }
  await syncDirectory(directory)
  await unlink(join(ownerDirectory, entry))
  await syncDirectory(ownerDirectory)
}

/** The name a record is about. */
function nameOfRecord (record: VersionRecord | null): string | null {
  if (record === null) return null
  return 'deleted' in record ? record.name : record.meta.name
}

/** Removes a replaced version: its record, then its data. */
async function removeVersion (directory: string, { seq, record }: Current): Promise<void> {
  if (seq === 0) return
  await rm(join(directory, recordName(seq)), { force: true })
  if (record !== null && 'data' in record) await rm(join(directory, record.data), { force: true })
}

/** Removes `path` if it was last modified before `before` (ms); true when it did. */
async function removeIfOlder (path: string, before: number): Promise<boolean> {
  const info = await unlessMissing(stat(path))
  if (info === null || info.mtimeMs >= before) return false
  await rm(path, { force: true, recursive: true })
  return true
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

function ignore (): void {}
