// The contract between the routes and a storage backend.
import type { Readable } from 'node:stream'
import type { ByteRange } from 'upfront/http'
import type { Preconditions } from './preconditions.js'

export type { ByteRange } from 'upfront/http'

/** A stored file: what the service keeps and tells about one version of one name. */
export interface StoredFile {
  /** The file's name as the client gave it (checked with `checkName`). */
  name: string
  /** Principal that owns the file; nobody else can see it. */
  owner: string
  /** Bytes. */
  size: number
  /** Lower-case hex SHA-256 of the content. */
  sha256: string
  contentType: string
  /** Strong entity tag, quoted: `"<sha256 hex>"`. */
  etag: string
  /** ISO 8601 time of the commit (the file's last modification). */
  createdAt: string
}

/** A stored file and its content (or a range of it). */
export interface FileContent {
  file: StoredFile
  /** Holds the file open until it ends or is destroyed. */
  stream: Readable
}

/** Size and digests of the bytes written to an upload. */
export interface Written {
  /** Bytes. */
  size: number
  sha256: Buffer
  /** Only when `begin` was asked for it (`md5: true`): MD5 costs as much CPU as SHA-256. */
  md5: Buffer | null
}

export interface Upload {
  /**
   * Streams `source` to its end into temporary storage, counting and
   * hashing as it goes. Rejects with `InsufficientStorageError` (507) when
   * the storage is full, and with the source's own error if it fails (a
   * body limit passed, a client gone); in every case the temporary data is
   * already gone. `source` is never destroyed: after a rejection it is left
   * paused, for the caller to drain or to close. Limits on the number of
   * bytes are not storage's: the caller hands a source that is held to them.
   */
  write: (source: Readable) => Promise<Written>
  /**
   * Makes the written bytes visible under the name, atomically and
   * durably (data and metadata on stable storage before it resolves).
   * Rejects with `PreconditionFailedError` (412) when `preconditions` do
   * not hold at that moment, or `InsufficientStorageError` (507) when the
   * storage is full, leaving nothing behind; the upload is then dropped.
   */
  commit: (preconditions?: Preconditions) => Promise<StoredFile>
  /** Drops whatever was written. Safe to call more than once and after commit (no-op then). */
  abort: () => Promise<void>
}

export interface BeginOptions {
  contentType: string
  /** Also compute the MD5 of the body (to check a `Content-MD5`). */
  md5?: boolean
}

export interface ListOptions {
  /** Most files on the page, 1 or more. */
  limit: number
  /** A previous page's `nextCursor`, as it was given. */
  cursor?: string
}

export interface FilePage {
  /** In name order (by UTF-16 code units). */
  files: StoredFile[]
  /** Opaque cursor of the next page, or null on the last page. */
  nextCursor: string | null
}

/**
 * A storage backend. Every operation is scoped to an owner: a name that
 * another owner stored is simply absent. Names reach a backend checked
 * (`checkName`), and a backend never uses one as a raw path.
 */
export interface Storage {
  begin: (owner: string, name: string, options: BeginOptions) => Promise<Upload>
  head: (owner: string, name: string) => Promise<StoredFile | null>
  /** The file, or a range of it (already checked against its size). */
  get: (owner: string, name: string, range?: ByteRange) => Promise<FileContent | null>
  /**
   * Deletes the file and returns what it was; null when there was none.
   * `preconditions` are checked atomically with the delete:
   * `PreconditionFailedError` (412) when they do not hold, and nothing is
   * deleted.
   */
  delete: (owner: string, name: string, preconditions?: Preconditions) => Promise<StoredFile | null>
  /** A page of the owner's files. A cursor the backend did not make: `InvalidCursorError` (400). */
  list: (owner: string, options: ListOptions) => Promise<FilePage>
  /** Bytes that can still be written, or null when the backend has no such limit. */
  freeBytes: () => Promise<number | null>
  /** Resolves when the store answers (the directory is there, the bucket reachable); rejects with why not. */
  ping: () => Promise<void>
  /** Releases what the backend holds (handles, clients). */
  close: () => Promise<void>
}
