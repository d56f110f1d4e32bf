// Files on a local filesystem, shared safely by several processes. Layout
// under the storage directory:
//
//   tmp/<id>                       versions being written; swept once not
//                                  written to for an hour
//   files/<sha256(owner)>/<sha256(name)>
//                                  the name's current version
//   files/<sha256(owner)>/<sha256(name)>.lock
//                                  the name's lock, during a commit
//
// A version is one file: its bytes, then its record (version.ts). Names and
// owners only ever reach the disk as hashes (and inside records), so no name
// can point outside the directory.
//
// A commit takes the name's lock by linking the new version as `.lock`,
// which fails while another writer, in this process or another, holds it;
// reads the current version and checks the preconditions against it; then
// renames the lock over the name: the new version is in place and the lock
// released in one step, and the version it replaced goes with its last
// link. A delete takes the lock by linking the current version itself, and
// removes the name. The lock is held between two system calls of one
// synchronous stretch: no commit of this process comes between, and one of
// another process is waited for. A reader opens the name: it sees the old
// version or the new one, never a mix, and reads the one it opened to its
// end whatever commits meanwhile. Nothing another process needs lives in
// this one's memory: the name cache of listings is checked against the
// directory on every listing.
//
// The metadata calls of a commit or a lookup (open, link, rename, a
// record's read) take microseconds on a local filesystem; through libuv's
// threadpool each would cost a hand-off between threads several times the
// call itself (about 80 µs of CPU against 5-15 µs on the benchmark machine).
// They are made synchronously. What waits for the device (an upload's
// writes, fsync) and what grows with the data (streaming a file, reading an
// owner's directory for a listing, sweeping) stays asynchronous. The
// storage directory must therefore be on a local filesystem.
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, createReadStream, existsSync, fsync, linkSync, mkdirSync, openSync, renameSync, statfsSync, statSync, unlinkSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, stat, statfs, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { StorageBusyError } from '../../../errors.js'
import { cursorAfter, nameOfCursor } from '../cursor.js'
import { evaluatePreconditions } from '../preconditions.js'
import type { Preconditions } from '../preconditions.js'
import type { BeginOptions, ByteRange, FileContent, FilePage, ListOptions, Storage, StoredFile, Upload } from '../types.js'
import { NameIndex } from './name-index.js'
import { DiskUpload, writeAll } from './upload.js'
import { readVersion, recordTrailer } from './version.js'

const fsyncAsync = promisify(fsync)

export interface DiskStorageOptions {
  /**
   * Bytes gathered from an upload before they go to disk in one write.
   * Socket chunks are small (16-64 KiB); batching them saves system calls
   * and lets the next batch arrive while one is being written. An upload
   * holds at most about two batches in memory; one that fits in a batch is
   * written once, at its commit. Default 2 MiB.
   */
  writeBatchBytes?: number
  /**
   * Bytes written between two flushes to disk that run in the background
   * while an upload arrives, so that the commit does not wait for the whole
   * file to reach the disk. Default 16 MiB.
   */
  syncEveryBytes?: number
  /**
   * Age, in ms, after which a temporary file no longer written to (its
   * process died mid-upload) is swept. Default 3600000 (1 hour).
   */
  sweepAfterMs?: number
  /**
   * How long, in ms, a writer waits for a name's lock held by another
   * process (which holds it for microseconds) before it answers 503.
   * Default 2000.
   */
  lockWaitMs?: number
  /**
   * A lock held this long, in ms, was left by a process that died in the
   * middle of a commit: the next writer or sweep breaks it. Default 30000.
   */
  lockStaleMs?: number
}

const mebibyte = 1024 * 1024

/** Where the versions of one (owner, name) live. */
interface Location {
  /** `files/<sha256(owner)>`. */
  ownerDirectory: string
  /** `files/<sha256(owner)>/<sha256(name)>`: the current version. */
  path: string
  /** `<path>.lock`. */
  lock: string
}

/** File names kept in memory for listings, about 70 bytes each: the owners listed least recently are dropped past this many. */
const LISTED_NAMES_KEPT = 250_000
/** Records read at once for a page of a listing. */
const RECORDS_AT_ONCE = 32
/** A name's entry in its owner's directory: the hash of the name. */
const NAME_ENTRY = /^[0-9a-f]{64}$/

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
      sweepAfterMs: options.sweepAfterMs ?? 3_600_000,
      lockWaitMs: options.lockWaitMs ?? 2_000,
      lockStaleMs: options.lockStaleMs ?? 30_000
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
    const upload: DiskUpload = new DiskUpload({
      tempPath: join(this.#tmp, randomBytes(16).toString('hex')),
      md5: options.md5 === true,
      writeBatchBytes: this.#options.writeBatchBytes,
      syncEveryBytes: this.#options.syncEveryBytes,
      describe: (written) => {
        const sha256 = written.sha256.toString('hex')
        return { name, owner, size: written.size, sha256, contentType: options.contentType, etag: `"${sha256}"`, createdAt: new Date().toISOString() }
      },
      place: async (tempPath, file, preconditions) => {
        await this.#track(this.#commit(name, location, tempPath, preconditions))
        return file
      },
      settled: () => { this.#uploads.delete(upload) }
    })
    this.#uploads.add(upload)
    return upload
  }

  async head (owner: string, name: string): Promise<StoredFile | null> {
    return readFileAt(this.#locate(owner, name).path)
  }

  async get (owner: string, name: string, range?: ByteRange): Promise<FileContent | null> {
    const { path } = this.#locate(owner, name)
    const fd = unlessMissing(() => openSync(path, 'r'))
    if (fd === null) return null
    let file: StoredFile
    try {
      file = readVersion(fd, path)
    } catch (error) {
      closeSync(fd)
      throw error
    }
    if (file.size === 0) {
      closeSync(fd)
      return { file, stream: Readable.from([]) }
    }
    // The open descriptor keeps this version's bytes readable, whatever commits meanwhile.
    return { file, stream: createReadStream(path, { fd, start: range?.start ?? 0, end: range?.end ?? file.size - 1 }) }
  }

  async delete (owner: string, name: string, preconditions: Preconditions = {}): Promise<StoredFile | null> {
    return await this.#track(this.#delete(name, this.#locate(owner, name), preconditions))
  }

  async list (owner: string, { limit, cursor }: ListOptions): Promise<FilePage> {
    const after = cursor === undefined ? null : nameOfCursor(cursor)
    const ownerDirectory = join(this.#files, sha256Hex(owner))
    const entries = (await unlessMissingAsync(readdir(ownerDirectory)) ?? []).filter((entry) => NAME_ENTRY.test(entry))
    // (A name deleted between the directory's read and its version's has none.)
    /* c8 ignore next */
    const names = await this.#names.of(ownerDirectory, entries, async (entry) => readFileAt(join(ownerDirectory, entry))?.name ?? null)
    const files: StoredFile[] = []
    let from = after
    // A name deleted since the directory was read has no file: skipped.
    while (files.length < limit) {
      const batch = names.after(from, Math.min(limit - files.length, RECORDS_AT_ONCE))
      if (batch.length === 0) break
      for (const name of batch) {
        const file = await this.head(owner, name)
        if (file !== null) files.push(file)
      }
      from = batch.at(-1) as string
    }
    const last = files.at(-1)
    const more = last !== undefined && names.after(last.name, 1).length > 0
    return { files, nextCursor: more ? cursorAfter(last.name) : null }
  }

  async freeBytes (): Promise<number> {
    const { bavail, bsize } = statfsSync(this.#files)
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
   * Removes what no upload or commit can still use: temporary files not
   * written to for `sweepAfterMs` (a process that died mid-upload), and
   * locks of processes that died mid-commit. Moves files of the layout
   * before versions into it. Safe while other processes use the directory.
   */
  async sweep (): Promise<void> {
    const now = Date.now()
    for (const entry of await readdir(this.#tmp)) {
      await removeIfOlder(join(this.#tmp, entry), now - this.#options.sweepAfterMs)
    }
    for (const owner of await readdir(this.#files)) {
      const ownerDirectory = join(this.#files, owner)
      const entries = await readdir(ownerDirectory)
      // Files of the layout before versions: a record beside its data.
      for (const entry of entries.filter((entry) => entry.endsWith('.json'))) await migrate(ownerDirectory, entry)
      for (const entry of entries) {
        if (entry.endsWith('.data')) await removeIfOlder(join(ownerDirectory, entry), now - this.#options.sweepAfterMs)
        if (entry.endsWith('.lock')) this.#breakIfStale(join(ownerDirectory, entry))
      }
    }
  }

  #locate (owner: string, name: string): Location {
    const ownerDirectory = join(this.#files, sha256Hex(owner))
    const path = join(ownerDirectory, sha256Hex(name))
    return { ownerDirectory, path, lock: `${path}.lock` }
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
   * Makes the synced version at `tempPath` the name's current one, once the
   * preconditions hold against the version it replaces, and waits until
   * that is durable.
   */
  async #commit (name: string, location: Location, tempPath: string, preconditions: Preconditions): Promise<void> {
    const changed = [location.ownerDirectory]
    await this.#locked(name, location, () => {
      try {
        linkSync(tempPath, location.lock)
        return true
      } catch (error) {
        // A new owner: its directory is made, durably (also when another
        // process just made it: its sync may not be over), and the lock
        // taken then. Without the temporary file, nothing can be linked.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync(tempPath)) throw error
        mkdirSync(location.ownerDirectory, { recursive: true })
        changed.push(this.#files)
        return false
      }
    }, () => {
      evaluatePreconditions(preconditions, readFileAt(location.path), 'write')
      renameSync(location.lock, location.path)
    })
    unlinkSync(tempPath)
    await Promise.all(changed.map(syncDirectory))
  }

  async #delete (name: string, location: Location, preconditions: Preconditions): Promise<StoredFile | null> {
    let deleted: StoredFile | null = null
    await this.#locked(name, location, () => {
      // The lock is the current version itself: what it is is what is deleted.
      const taken = unlessMissing(() => { linkSync(location.path, location.lock) })
      if (taken === null) evaluatePreconditions(preconditions, null, 'write')
      return taken === null ? null : true
    }, () => {
      deleted = readFileAt(location.lock)
      evaluatePreconditions(preconditions, deleted, 'write')
      unlinkSync(location.path)
      unlinkSync(location.lock)
    })
    if (deleted !== null) await syncDirectory(location.ownerDirectory)
    return deleted
  }

  /**
   * Runs `change` holding the name's lock: `take` tries to take it (true
   * when taken, false to try again at once, null when there is nothing to
   * change), and `change` releases it, by a rename or an unlink, or throws
   * (the lock is then released here). A lock held by another process is
   * waited for up to `lockWaitMs`, then a 503; one held past `lockStaleMs`
   * is broken.
   */
  async #locked (name: string, location: Location, take: () => boolean | null, change: () => void): Promise<void> {
    const started = Date.now()
    let wait = 1
    let taken: boolean | null = false
    while (taken === false) {
      try {
        taken = take()
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
        // Held by another process, in the middle of its commit, or dead there.
        if (this.#breakIfStale(location.lock)) continue
        if (Date.now() - started >= this.#options.lockWaitMs) throw new StorageBusyError(JSON.stringify(name))
        await sleep(wait)
        wait = Math.min(wait * 2, 100)
      }
    }
    if (taken === null) return
    try {
      change()
    } catch (error) {
      unlinkSync(location.lock)
      throw error
    }
  }

  /**
   * Removes `lock` when it has been held past `lockStaleMs`; true when it
   * did (or another process just did). It is moved aside first and removed
   * only if it is still the stale one: a lock taken again meanwhile goes
   * back.
   */
  #breakIfStale (lock: string): boolean {
    const held = unlessMissing(() => statSync(lock))
    /* c8 ignore next -- released by its holder between the failed link and this stat */
    if (held === null) return true
    if (held.ctimeMs >= Date.now() - this.#options.lockStaleMs) return false
    const aside = join(this.#tmp, `${randomBytes(16).toString('hex')}.lock`)
    /* c8 ignore next -- broken by another process between this one's stat and rename */
    if (unlessMissing(() => { renameSync(lock, aside) }) === null) return true
    try {
      /* c8 ignore next -- another process broke it and took the lock again between this one's stat and rename */
      if (statSync(aside).ino !== held.ino) unlessExists(() => { linkSync(aside, lock) })
    } finally {
      unlinkSync(aside)
    }
    return true
  }
}

/** The file whose current version is at `path`; null when there is none. */
function readFileAt (path: string): StoredFile | null {
  const fd = unlessMissing(() => openSync(path, 'r'))
  if (fd === null) return null
  try {
    return readVersion(fd, path)
  } finally {
    closeSync(fd)
  }
}

/**
 * Moves a file of the layout before versions (`<nameHash>.json` naming
 * `<nameHash>.<id>.data`, beside it) into place: the record appended to the
 * data, which is then linked as the name's version.
 */
async function migrate (ownerDirectory: string, entry: string): Promise<void> {
  const path = join(ownerDirectory, entry.slice(0, -'.json'.length))
  const record = join(ownerDirectory, entry)
  // Each step is skipped when done already: a crash may have stopped an
  // earlier run, and other processes opening the store at the same time
  // move the same files. (A record whose data is missing names nothing to
  // serve.)
  const json = await unlessMissingAsync(readFile(record, 'utf8'))
  /* c8 ignore next -- moved by another process between this one's readdir and this read */
  if (json === null) return
  const old = JSON.parse(json) as { data: string, meta: StoredFile }
  const data = join(ownerDirectory, old.data)
  const fd = existsSync(path) ? null : unlessMissing(() => openSync(data, 'r+'))
  if (fd !== null) {
    try {
      // Written whole whatever a crash left of it (a part, or zeros after a
      // power loss): the same bytes at the same place, also when another
      // process writes them at the same time.
      await writeAll(fd, [recordTrailer(old.meta)], old.meta.size)
      await fsyncAsync(fd)
    } finally {
      closeSync(fd)
    }
    // (The data is gone once another process linked it, then removed it.)
    unlessMissing(() => { unlessExists(() => { linkSync(data, path) }) })
    await syncDirectory(ownerDirectory)
  }
  await unlessMissingAsync(unlink(data))
  await unlessMissingAsync(unlink(record))
  await syncDirectory(ownerDirectory)
}

/** Removes `path` if it was last modified before `before` (ms). */
async function removeIfOlder (path: string, before: number): Promise<void> {
  const info = await unlessMissingAsync(stat(path))
  if (info !== null && info.mtimeMs < before) await rm(path, { force: true })
}

/** `operation()`, or null when it failed because the file does not exist. */
function unlessMissing<T> (operation: () => T): T | null {
  try {
    return operation()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
}

async function unlessMissingAsync<T> (operation: Promise<T>): Promise<T | null> {
  try {
    return await operation
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
}

/** `operation()`, done or found done: a failure because the file exists is ignored. */
function unlessExists (operation: () => void): void {
  try {
    operation()
  /* c8 ignore start -- used where only another process, doing the same, can make the file exist first */
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  }
  /* c8 ignore stop */
}

/** Flushes a directory's entries (created, renamed, removed files) to disk. */
async function syncDirectory (path: string): Promise<void> {
  const fd = openSync(path, 'r')
  try {
    await fsyncAsync(fd)
  } finally {
    closeSync(fd)
  }
}

function sha256Hex (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

function ignore (): void {}
