// Files in an S3-compatible bucket, shared by any number of processes.
// Layout under the key prefix:
//
//   r/<owner hash>/<name>   the record: the current version's metadata and
//                           its data key, or empty (a tombstone) once deleted
//   d/<owner hash>/<id>     the data of one version, written once, never changed
//
// The commit point is the record, written with a conditional PutObject:
// If-None-Match: * when the name has no record, If-Match with the record's
// entity tag when it has one. Two writers, in any processes, cannot both
// replace the version they read: the engine refuses the second, which
// reads again and checks its preconditions again. Nothing here relies on
// what engines do not all honour (conditional CompleteMultipartUpload,
// flexible checksums, the ETag of CompleteMultipartUpload): the data is
// hashed as it streams, and only the small record is conditional. Names are
// in the record keys, so that a listing is one LIST in name order (the
// UTF-8 byte order of keys, which is code point order).
import { createHash, randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client
} from '@aws-sdk/client-s3'
import type { S3ClientConfig } from '@aws-sdk/client-s3'
import { InvalidNameError, StorageBusyError, StorageStartError } from '../../../errors.js'
import { cursorAfter, nameOfCursor } from '../cursor.js'
import { evaluatePreconditions } from '../preconditions.js'
import type { Preconditions } from '../preconditions.js'
import type { BeginOptions, ByteRange, FileContent, FilePage, ListOptions, Storage, StoredFile, Upload, Written } from '../types.js'
import { isMissing, isPreconditionFailed, isUnavailable, s3Error } from './errors.js'
import { S3Upload } from './upload.js'

export interface S3StorageOptions {
  bucket: string
  /** The engine's URL (`http://127.0.0.1:7480`); AWS's own when left out. */
  endpoint?: string
  /** Default `us-east-1`. */
  region?: string
  /** Path-style URLs (`endpoint/bucket/key`), which most engines besides AWS need. Default false. */
  forcePathStyle?: boolean
  /** Prefix of every key the service writes, ending in `/` (`upfront/`); default none. */
  prefix?: string
  /** Bytes in each part of a multipart upload (at least 5 MiB); an upload has at most `MAX_PARTS` (10,000) of them. Default 5 MiB. */
  partSize?: number
  /** Parts of one upload in flight at once. Default 2: memory per upload at most `partSize` x (`queueSize` + 1), 15 MiB. */
  queueSize?: number
  /**
   * Age, in ms, after which an unfinished multipart upload, or data that no
   * record names, is removed by the sweep: longer than any upload takes.
   * Default 86400000 (24 h).
   */
  sweepAfterMs?: number
  /** Credentials and anything else for the SDK client; by default the SDK's standard chain (environment, profiles, instance roles). */
  client?: Partial<S3ClientConfig>
}

/** A record as read: the version it describes (null for a tombstone), and its entity tag for the next conditional write. */
export interface RecordState {
  file: StoredFile | null
  data: string | null
  etag: string
}

const MEBIBYTE = 1024 * 1024
/** Default bytes per part: S3's smallest, as @aws-sdk/lib-storage's. */
export const DEFAULT_PART_SIZE = 5 * MEBIBYTE
/** Default parts of one upload in flight at once. */
export const DEFAULT_QUEUE_SIZE = 2
/** Parts one multipart upload may have (S3's limit): the largest upload is 10,000 x the part size. */
export const MAX_PARTS = 10_000
/** The largest object S3 holds: 5 TiB. */
export const MAX_OBJECT_BYTES = 5 * 1024 ** 4
/** Records read at once while listing or sweeping. */
const RECORDS_AT_ONCE = 16
/** Records kept in memory (a few hundred bytes each), so that listing and sweeping read again only those whose entity tag changed (or that did not fit). */
const RECORDS_CACHED = 10_000
/** Conditional writes lost to other writers before the commit gives up with a 503. */
const MAX_ATTEMPTS = 20

/**
 * The records this process last read or wrote, by key, each with its
 * entity tag. Never the truth: an entry is used only when the engine lists
 * the record with that same entity tag (the MD5 of its bytes, as a record is
 * written whole with PutObject), and the least recently used go first. The
 * sweep, which reads every record, only fills free room: it never pushes
 * out what listings use.
 */
export class RecordCache {
  readonly #entries = new Map<string, RecordState>()
  readonly #limit: number

  constructor (limit = RECORDS_CACHED) {
    this.#limit = limit
  }

  /** The record under `key` if it still has entity tag `etag`. */
  get (key: string, etag: string | undefined): RecordState | null {
    const entry = this.#entries.get(key)
    if (entry === undefined || etag === undefined || bareTag(entry.etag) !== bareTag(etag)) return null
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    return entry
  }

  /** Keeps `record` under `key`; with `evict` false, only if there is room or the key is cached already. */
  set (key: string, record: RecordState, evict = true): void {
    const known = this.#entries.delete(key)
    if (!evict && !known && this.#entries.size >= this.#limit) return
    this.#entries.set(key, record)
    if (this.#entries.size > this.#limit) this.#entries.delete(this.#entries.keys().next().value as string)
  }
}

/** An entity tag without its quotes. */
function bareTag (etag: string): string {
  return etag.replace(/^"(.*)"$/, '$1')
}

function ownerKey (owner: string): string {
  return createHash('sha256').update(owner).digest('hex').slice(0, 32)
}

export class S3Storage implements Storage {
  readonly #client: S3Client
  readonly #bucket: string
  readonly #prefix: string
  readonly #parts: { partSize: number, queueSize: number }
  readonly #sweepAfterMs: number
  /** How this engine wants the entity tag in If-Match: as sent in ETag, or without its quotes (Ceph RGW). */
  /* c8 ignore next -- always replaced by #probe, which open() runs before the storage is handed out */
  #ifMatch: (etag: string) => string = (etag) => etag
  readonly #uploads = new Set<S3Upload>()
  readonly #changes = new Set<Promise<unknown>>()
  readonly #records = new RecordCache()
  #sweeper: NodeJS.Timeout | null = null
  #closed = false

  private constructor (options: S3StorageOptions) {
    this.#bucket = options.bucket
    this.#prefix = options.prefix ?? ''
    this.#parts = { partSize: options.partSize ?? DEFAULT_PART_SIZE, queueSize: options.queueSize ?? DEFAULT_QUEUE_SIZE }
    this.#sweepAfterMs = options.sweepAfterMs ?? 86_400_000
    this.#client = new S3Client({
      region: options.region ?? 'us-east-1',
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
      // Checksums the engine computes or checks only where S3 requires
      // them: many engines refuse or mis-store the SDK's default trailers,
      // and the service hashes every byte itself.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 5000, requestTimeout: 60_000 },
      ...options.client
    })
  }

  /**
   * Connects to the bucket and checks that the engine enforces the
   * conditional writes the commit relies on (PutObject with If-None-Match
   * and If-Match), then sweeps what a crash left behind in the background,
   * and again every `sweepAfterMs`. Throws `StorageStartError` naming the
   * setting to change when the bucket cannot be used.
   */
  static async open (options: S3StorageOptions): Promise<S3Storage> {
    const { partSize = DEFAULT_PART_SIZE, queueSize = DEFAULT_QUEUE_SIZE, prefix = '' } = options
    if (!Number.isSafeInteger(partSize) || partSize < 5 * MEBIBYTE) throw new RangeError(`S3Storage option partSize must be at least 5 MiB (S3's smallest part), not ${partSize}`)
    if (!Number.isSafeInteger(queueSize) || queueSize < 1) throw new RangeError(`S3Storage option queueSize must be a positive integer, not ${queueSize}`)
    if (prefix !== '' && !prefix.endsWith('/')) throw new RangeError(`S3Storage option prefix must end with "/", not ${JSON.stringify(prefix)}`)
    const storage = new S3Storage(options)
    try {
      await storage.#probe()
    } catch (error) {
      storage.#client.destroy()
      throw error
    }
    storage.sweep().catch(ignore)
    storage.#sweeper = setInterval(() => { storage.sweep().catch(ignore) }, Math.min(storage.#sweepAfterMs, 3_600_000))
    storage.#sweeper.unref()
    return storage
  }

  async begin (owner: string, name: string, options: BeginOptions): Promise<Upload> {
    if (this.#closed) throw new Error('This S3Storage is closed')
    if (!this.#fits(owner, name)) throw new InvalidNameError('the name is too long for this storage (S3 keys hold 1024 bytes, the key prefix and owner included)')
    const recordKey = this.#recordKey(owner, name)
    const key = `${this.#prefix}d/${ownerKey(owner)}/${randomBytes(16).toString('hex')}`
    const upload: S3Upload = new S3Upload({
      client: this.#client,
      bucket: this.#bucket,
      key,
      md5: options.md5 === true,
      ...this.#parts,
      place: async (data, written, preconditions) => await this.#track(this.#place(recordKey, data, { name, owner, contentType: options.contentType }, written, preconditions)),
      settled: () => { this.#uploads.delete(upload) }
    })
    this.#uploads.add(upload)
    return upload
  }

  async head (owner: string, name: string): Promise<StoredFile | null> {
    if (!this.#fits(owner, name)) return null
    return (await this.#read(this.#recordKey(owner, name)))?.file ?? null
  }

  async get (owner: string, name: string, range?: ByteRange): Promise<FileContent | null> {
    if (!this.#fits(owner, name)) return null
    const recordKey = this.#recordKey(owner, name)
    // A commit or delete may remove the data between reading the record
    // and reading the data: the record read again names the new one.
    for (let attempt = 0; attempt < 3; attempt++) {
      const record = await this.#read(recordKey)
      if (record?.file == null) return null
      try {
        const { Body } = await this.#client.send(new GetObjectCommand({
          Bucket: this.#bucket,
          Key: record.data as string,
          Range: range === undefined ? undefined : `bytes=${range.start}-${range.end}`
        }))
        return { file: record.file, stream: Body as Readable }
      } catch (error) {
        if (!isMissing(error)) throw s3Error(error)
      }
    }
    throw new Error(`The data of "${name}" is missing though its record names it`)
  }

  async delete (owner: string, name: string, preconditions: Preconditions = {}): Promise<StoredFile | null> {
    if (!this.#fits(owner, name)) {
      evaluatePreconditions(preconditions, null, 'write')
      return null
    }
    return await this.#track(this.#delete(this.#recordKey(owner, name), preconditions))
  }

  async list (owner: string, { limit, cursor }: ListOptions): Promise<FilePage> {
    const prefix = `${this.#prefix}r/${ownerKey(owner)}/`
    const after = cursor === undefined ? null : nameOfCursor(cursor)
    // Live records (a tombstone is empty), one more than the page to know whether another follows.
    const names: Array<{ key: string, etag: string | undefined }> = []
    let token: string | undefined
    let startAfter = after === null ? undefined : prefix + after
    do {
      const listed = await this.#call(async (client) => await client.send(new ListObjectsV2Command({
        Bucket: this.#bucket,
        Prefix: prefix,
        StartAfter: startAfter,
        ContinuationToken: token,
        MaxKeys: Math.min(1000, limit + 1 - names.length)
      })))
      for (const object of listed.Contents ?? []) {
        if ((object.Size ?? 0) > 0 && names.length <= limit) names.push({ key: object.Key as string, etag: object.ETag })
      }
      token = listed.IsTruncated === true ? listed.NextContinuationToken : undefined
      startAfter = undefined
    } while (token !== undefined && names.length <= limit)
    const page = names.slice(0, limit)
    const files: StoredFile[] = []
    const records = page.map(({ key, etag }) => this.#records.get(key, etag))
    const unread = page.flatMap((listed, i) => records[i] === null ? [i] : [])
    const read = await this.#readMany(unread.map((at) => page[at]?.key as string))
    unread.forEach((at, i) => { records[at] = read[i] as RecordState | null })
    // A record deleted since the listing is skipped.
    for (const record of records) if (record?.file != null) files.push(record.file)
    const last = files.at(-1)
    return { files, nextCursor: names.length > limit && last !== undefined ? cursorAfter(last.name) : null }
  }

  async freeBytes (): Promise<null> {
    return null
  }

  async ping (): Promise<void> {
    await this.#call(async (client) => await client.send(new HeadBucketCommand({ Bucket: this.#bucket })))
  }

  /** Stops sweeping, aborts the uploads still pending, waits for the commits and deletes in progress, and closes the client. */
  async close (): Promise<void> {
    this.#closed = true
    if (this.#sweeper !== null) clearInterval(this.#sweeper)
    await Promise.all(Array.from(this.#uploads, async (upload) => { await upload.abort() }))
    await Promise.allSettled(this.#changes)
    this.#client.destroy()
  }

  /**
   * Removes what a crash left behind, once older than `sweepAfterMs`:
   * multipart uploads never completed or aborted, and data objects that no
   * record names (a commit that did not finish, a replaced version whose
   * data was not deleted). Safe while other processes use the bucket.
   */
  async sweep (): Promise<void> {
    const before = Date.now() - this.#sweepAfterMs
    let keyMarker: string | undefined
    let uploadIdMarker: string | undefined
    do {
      const listed = await this.#call(async (client) => await client.send(new ListMultipartUploadsCommand({ Bucket: this.#bucket, Prefix: `${this.#prefix}d/`, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })))
      for (const upload of listed.Uploads ?? []) {
        if ((upload.Initiated?.getTime() ?? Infinity) < before) {
          await this.#call(async (client) => await client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: upload.Key, UploadId: upload.UploadId })))
        }
      }
      const more = listed.IsTruncated === true
      keyMarker = more ? listed.NextKeyMarker : undefined
      uploadIdMarker = more ? listed.NextUploadIdMarker : undefined
    } while (keyMarker !== undefined)

    const named = new Set<string>()
    // Records not cached in their listed version are read in batches.
    let unread: string[] = []
    const readUnread = async (): Promise<void> => {
      for (const record of await this.#readMany(unread, false)) if (record?.data != null) named.add(record.data)
      unread = []
    }
    for await (const object of this.#objects(`${this.#prefix}r/`)) {
      if ((object.Size ?? 0) === 0) continue
      const cached = this.#records.get(object.Key as string, object.ETag)
      if (cached === null) unread.push(object.Key as string)
      else if (cached.data !== null) named.add(cached.data)
      if (unread.length === RECORDS_AT_ONCE) await readUnread()
    }
    await readUnread()
    for await (const object of this.#objects(`${this.#prefix}d/`)) {
      if (!named.has(object.Key as string) && (object.LastModified?.getTime() ?? Infinity) < before) {
        await this.#call(async (client) => await client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: object.Key })))
      }
    }
  }

  /** Every object under `prefix`, page after page. */
  async * #objects (prefix: string): AsyncGenerator<{ Key?: string, Size?: number, ETag?: string, LastModified?: Date }> {
    let token: string | undefined
    do {
      const listed = await this.#call(async (client) => await client.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, ContinuationToken: token })))
      yield * listed.Contents ?? []
      token = listed.IsTruncated === true ? listed.NextContinuationToken : undefined
    } while (token !== undefined)
  }

  #recordKey (owner: string, name: string): string {
    return `${this.#prefix}r/${ownerKey(owner)}/${name}`
  }

  /** Whether a name fits in a key (S3 keys hold at most 1024 bytes, prefix included). */
  #fits (owner: string, name: string): boolean {
    return Buffer.byteLength(this.#recordKey(owner, name)) <= 1024
  }

  /** A request to the engine; its failures as `s3Error` tells them. */
  async #call<T> (request: (client: S3Client) => Promise<T>): Promise<T> {
    try {
      return await request(this.#client)
    } catch (error) {
      throw s3Error(error)
    }
  }

  /** A record and its entity tag; null when the name has none. */
  async #read (recordKey: string, evict = true): Promise<RecordState | null> {
    try {
      const { Body, ETag } = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: recordKey }))
      const text = await (Body as { transformToString: () => Promise<string> }).transformToString()
      const record: RecordState = text === '' ? { file: null, data: null, etag: ETag as string } : { ...parseRecord(text), etag: ETag as string }
      this.#records.set(recordKey, record, evict)
      return record
    } catch (error) {
      if (isMissing(error)) return null
      throw s3Error(error)
    }
  }

  /** The records under `keys`, in order, read `RECORDS_AT_ONCE` at a time; null for a key without one. `evict` as `RecordCache.set` takes it. */
  async #readMany (keys: string[], evict = true): Promise<Array<RecordState | null>> {
    const records: Array<RecordState | null> = []
    for (let i = 0; i < keys.length; i += RECORDS_AT_ONCE) {
      records.push(...await Promise.all(keys.slice(i, i + RECORDS_AT_ONCE).map(async (key) => await this.#read(key, evict))))
    }
    return records
  }

  /**
   * Writes `next` (a version, or a tombstone when its file is null) as
   * the record after `current`, only if `current` is
   * still the record (If-Match), or if there is none (If-None-Match: *).
   * False when another writer changed it first.
   */
  async #replace (recordKey: string, current: RecordState | null, next: Omit<RecordState, 'etag'>): Promise<boolean> {
    const body = next.file === null ? '' : JSON.stringify({ data: next.data, meta: next.file })
    try {
      const { ETag } = await this.#client.send(new PutObjectCommand({
        Bucket: this.#bucket,
        Key: recordKey,
        Body: body,
        ContentType: 'application/json',
        ...(current === null ? { IfNoneMatch: '*' } : { IfMatch: this.#ifMatch(current.etag) })
      }))
      /* c8 ignore next -- every engine sends an ETag with a PutObject's answer; without one, the record is read when next needed */
      if (ETag !== undefined) this.#records.set(recordKey, { ...next, etag: ETag })
      return true
    } catch (error) {
      if (isPreconditionFailed(error)) return false
      throw s3Error(error)
    }
  }

  async #place (recordKey: string, data: string, about: Pick<StoredFile, 'name' | 'owner' | 'contentType'>, written: Written, preconditions: Preconditions): Promise<StoredFile> {
    const sha256 = written.sha256.toString('hex')
    const meta: StoredFile = { ...about, size: written.size, sha256, etag: `"${sha256}"`, createdAt: new Date().toISOString() }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.#read(recordKey)
      evaluatePreconditions(preconditions, current?.file ?? null, 'write')
      if (await this.#replace(recordKey, current, { file: meta, data })) {
        // The version replaced: its data goes (the sweep removes it if this fails).
        if (current?.data != null) await this.#call(async (client) => await client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: current.data as string }))).catch(ignore)
        return meta
      }
    }
    throw new StorageBusyError(JSON.stringify(about.name))
  }

  async #delete (recordKey: string, preconditions: Preconditions): Promise<StoredFile | null> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.#read(recordKey)
      evaluatePreconditions(preconditions, current?.file ?? null, 'write')
      if (current?.file == null) return null
      // A tombstone, not a DeleteObject: engines do not all honour If-Match on DeleteObject.
      if (await this.#replace(recordKey, current, { file: null, data: null })) {
        await this.#call(async (client) => await client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: current.data as string }))).catch(ignore)
        return current.file
      }
    }
    throw new StorageBusyError(JSON.stringify(recordKey.slice(recordKey.lastIndexOf('/', recordKey.length) + 1)))
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
   * Checks the bucket and the engine: it must refuse a PutObject with
   * If-None-Match: * on an existing key, and honour If-Match on PutObject
   * (with the entity tag quoted, as S3 takes it, or bare, as Ceph RGW 16
   * does). Without both, two writers could overwrite each other.
   */
  async #probe (): Promise<void> {
    const where = `bucket ${JSON.stringify(this.#bucket)}`
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }))
    } catch (error) {
      if (isUnavailable(error)) throw new StorageStartError(`S3_ENDPOINT: the S3 engine cannot be reached (${describe(error)}); check S3_ENDPOINT and that the engine runs`)
      if (isMissing(error)) throw new StorageStartError(`S3_BUCKET: ${where} does not exist; create it, or set S3_BUCKET to an existing bucket`)
      throw new StorageStartError(`S3_BUCKET: ${where} cannot be used (${describe(error)}); check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the SDK's other sources) and their access to the bucket`)
    }
    const key = `${this.#prefix}probe/${randomBytes(8).toString('hex')}`
    const put = async (body: string, condition: { IfNoneMatch?: string, IfMatch?: string }): Promise<string | false> => {
      try {
        return (await this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: body, ...condition }))).ETag as string
      } catch (error) {
        if (isPreconditionFailed(error)) return false
        throw new StorageStartError(`S3_BUCKET: writing to ${where} failed (${describe(error)}); check the credentials' write access`)
      }
    }
    try {
      const etag = await put('1', { IfNoneMatch: '*' })
      const refused = 'the S3 engine does not enforce conditional writes (%s on PutObject), which keep two writers from overwriting each other; use an engine that does (AWS S3, Ceph RGW)'
      if (etag === false || await put('2', { IfNoneMatch: '*' }) !== false) throw new StorageStartError(refused.replace('%s', 'If-None-Match: *'))
      if (await put('3', { IfMatch: '"0"' }) !== false) throw new StorageStartError(refused.replace('%s', 'If-Match'))
      if (await put('4', { IfMatch: etag }) !== false) this.#ifMatch = (tag) => tag
      else if (await put('4', { IfMatch: bareTag(etag) }) !== false) this.#ifMatch = bareTag
      else throw new StorageStartError(refused.replace('%s', 'If-Match'))
    } finally {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key })).catch(ignore)
    }
  }
}

/** A record's JSON: the version's metadata and its data key. */
function parseRecord (text: string): { file: StoredFile, data: string } {
  const { data, meta } = JSON.parse(text) as { data: string, meta: StoredFile }
  return { file: meta, data }
}

function describe (error: unknown): string {
  const { name, code, message } = error as { name?: string, code?: string, message?: string }
  return [code ?? name, message].filter((part) => part !== undefined && part !== '').join(': ')
}

function ignore (): void {}
