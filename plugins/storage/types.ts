import type { Readable } from 'node:stream'

/** What the service keeps about one stored file. */
export interface FileMeta {
  /** The file's name as the client gave it (validated, `/`-separated segments). */
  name: string
  /** Principal that owns the file; nobody else can see it. */
  owner: string
  size: number
  /** Lower-case hex SHA-256 of the content. */
  sha256: string
  contentType: string
  /** Strong entity tag, quoted: `"<sha256 hex>"`. */
  etag: string
  /** ISO 8601 time of the commit. */
  createdAt: string
}

/** Size and digests of the bytes written to a pending upload. */
export interface WrittenBody {
  size: number
  sha256: Buffer
  /** Only when `begin` was asked for it (`md5: true`): MD5 costs as much CPU as SHA-256. */
  md5: Buffer | null
}

/** Preconditions checked atomically with the commit. */
export interface CommitConditions {
  /** `If-None-Match: *`: fail if the name exists. */
  ifNoneMatch?: boolean
  /** `If-Match`: fail unless the current etag is one of these (`*` means any existing file). */
  ifMatch?: readonly string[]
}

export interface PendingUpload {
  /**
   * Streams `source` into temporary storage, hashing as it goes. Rejects
   * with a 413 error (code `UPFRONT_UPLOAD_TOO_LARGE`) as soon as more than
   * `maxBytes` arrive, with a 507 error (code `UPFRONT_INSUFFICIENT_STORAGE`)
   * when the storage is full, and with the source's own error if it fails;
   * in every case the temporary data is already gone. `source` is never
   * destroyed: after a rejection it is left paused, for the caller to drain
   * or to close.
   */
  write: (source: Readable) => Promise<WrittenBody>
  /**
   * Makes the written bytes visible under the name, atomically and
   * durably (data and metadata on stable storage before it resolves).
   * Rejects with a 412 error (code `UPFRONT_PRECONDITION_FAILED`) when
   * `conditions` do not hold at that moment, or a 507 error when the
   * storage is full, leaving nothing behind; the upload is then dropped.
   */
  commit: (conditions?: CommitConditions) => Promise<FileMeta>
  /** Drops whatever was written. Safe to call more than once and after commit (no-op then). */
  abort: () => Promise<void>
}

export interface BeginOptions {
  contentType: string
  /** The most bytes `write` accepts. */
  maxBytes: number
  /** Also compute the MD5 of the body (to check a `Content-MD5`). */
  md5?: boolean
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number
  /** Last byte, inclusive. */
  end: number
}

export interface StoredFile {
  meta: FileMeta
  /** The content, or the requested range of it. It holds the file open until it ends or is destroyed. */
  stream: Readable
}

export interface ListOptions {
  limit: number
  /** Opaque cursor from a previous page's `nextCursor`. */
  cursor?: string
}

export interface FileList {
  files: FileMeta[]
  /** Cursor for the next page, or null on the last page. */
  nextCursor: string | null
}

/**
 * Storage backend. Every operation is scoped to an owner: a name that
 * another owner stored is simply absent. Names are validated by the
 * routes before they reach a backend, and a backend never uses a name as a
 * raw path.
 */
export interface Storage {
  begin: (owner: string, name: string, options: BeginOptions) => Promise<PendingUpload>
  head: (owner: string, name: string) => Promise<FileMeta | null>
  /** The file, or a range of it (range already validated against its size). */
  get: (owner: string, name: string, range?: ByteRange) => Promise<StoredFile | null>
  /** True when something was deleted. */
  delete: (owner: string, name: string) => Promise<boolean>
  /** The owner's files in name order. */
  list: (owner: string, options: ListOptions) => Promise<FileList>
  /** Bytes that can still be written, or null when the backend has no such limit. */
  freeBytes: () => Promise<number | null>
  /** Releases what the backend holds (handles, clients). */
  close: () => Promise<void>
}
