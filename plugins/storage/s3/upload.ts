// One upload to S3: its bytes become a data object under a key of its
// own, through the multipart API in parts of `partSize` bytes with at most
// `queueSize` parts in flight, or one PutObject when the whole body fits
// in one part. The data is written once and never changed; the commit is
// the record that names it (see index.ts).
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  UploadPartCommand
} from '@aws-sdk/client-s3'
import type { S3Client } from '@aws-sdk/client-s3'
import { StagedUpload } from '../intake.js'
import type { Sink } from '../intake.js'
import type { Preconditions } from '../preconditions.js'
import type { StoredFile, Written } from '../types.js'
import { s3Error } from './errors.js'

export interface PartOptions {
  /** Bytes in each part but the last (S3: at least 5 MiB). */
  partSize: number
  /** Parts uploaded at once: memory per upload is about `partSize` x (`queueSize` + 1). */
  queueSize: number
}

interface S3UploadTarget extends PartOptions {
  client: S3Client
  bucket: string
  /** Key of the data object. */
  key: string
  md5: boolean
  /** Makes the stored data object the named file; called at most once. */
  place: (key: string, written: Written, preconditions: Preconditions) => Promise<StoredFile>
  /** Called once, when the upload is committed or dropped. */
  settled: () => void
}

export class S3Upload extends StagedUpload {
  readonly #target: S3UploadTarget
  /** The multipart upload's id, once one is being started and until it is completed or aborted. */
  #multipart: Promise<string> | null = null
  /** The data object exists (completed or put) and no record names it yet. */
  #stored = false

  constructor (target: S3UploadTarget) {
    super(target.md5)
    this.#target = target
  }

  protected async open (): Promise<Sink> {
    return partSink(this.#target, {
      begin: async () => {
        this.#multipart = this.#target.client.send(new CreateMultipartUploadCommand({ Bucket: this.#target.bucket, Key: this.#target.key }))
          .then(({ UploadId }) => UploadId as string)
        return await this.#multipart
      },
      stored: () => {
        this.#multipart = null
        this.#stored = true
      }
    })
  }

  protected async place (written: Written, preconditions: Preconditions): Promise<StoredFile> {
    const file = await this.#target.place(this.#target.key, written, preconditions)
    this.#stored = false
    return file
  }

  protected async discard (): Promise<void> {
    const { client, bucket, key } = this.#target
    // A multipart upload still being started is waited for, so that it is aborted too.
    const multipart = await this.#multipart?.catch(() => null) ?? null
    this.#multipart = null
    if (multipart !== null) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: multipart }))
    if (this.#stored) {
      this.#stored = false
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
    }
  }

  protected storageError (error: unknown): unknown {
    return s3Error(error)
  }

  protected settled (): void {
    this.#target.settled()
  }
}

interface PartHooks {
  /** Starts the multipart upload; resolves to its id. */
  begin: () => Promise<string>
  /** The data object is complete. */
  stored: () => void
}

/**
 * Gathers chunks into parts and uploads each as it fills, at most
 * `queueSize` at once; the writer waits while that many are in flight and
 * the next one is full. A body that ends within its first part is stored
 * with one PutObject of the chunks it came in. From the second part on,
 * chunks are copied into part buffers of `partSize` bytes, reused once
 * their part is uploaded: an upload holds at most `queueSize` + 1 of them.
 */
function partSink (target: S3UploadTarget, hooks: PartHooks): Sink {
  const { client, bucket, key, partSize, queueSize } = target
  /** The first part's chunks, as they came. */
  let first: Buffer[] = []
  let firstBytes = 0
  /** The part being filled once the first one is sent, and how much of it is. */
  let part: Buffer | null = null
  let used = 0
  /** Part buffers whose upload ended. */
  const spare: Buffer[] = []
  let multipart: Promise<string> | null = null
  let nextPart = 1
  const inFlight = new Set<Promise<void>>()
  const parts: Array<{ PartNumber: number, ETag: string }> = []
  let failure: unknown = null
  let resume: (() => void) | null = null
  /* c8 ignore next -- replaced by the writer's own at its first write(), before any part is sent */
  let fail: (error: unknown) => void = () => {}

  const failed = (error: unknown): void => {
    if (failure !== null) return
    failure = error
    fail(error)
  }
  /** Uploads `body`; `buffer`, if given, is reused once it is uploaded. */
  const send = (body: Buffer, buffer: Buffer | null): void => {
    const partNumber = nextPart++
    multipart ??= hooks.begin()
    const uploading = multipart.then(async (uploadId) => {
      const { ETag } = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length }))
      parts.push({ PartNumber: partNumber, ETag: ETag as string })
    })
    inFlight.add(uploading)
    uploading.then(() => {
      inFlight.delete(uploading)
      if (buffer !== null) spare.push(buffer)
      const ready = resume
      resume = null
      ready?.()
    }, failed)
  }
  /** Sends the full part; the next is taken when more bytes come. */
  const sendPart = (): void => {
    send(part as Buffer, part)
    part = null
    used = 0
  }
  /** Copies `chunk` into parts, sending each that fills; false when it waits for room in the queue (then `ready` is called once it is all copied). */
  const fill = (chunk: Buffer, ready: () => void): boolean => {
    let at = 0
    while (at < chunk.length) {
      part ??= spare.pop() ?? Buffer.allocUnsafeSlow(partSize)
      const copied = chunk.copy(part, used, at)
      used += copied
      at += copied
      if (used < partSize) return true
      if (inFlight.size >= queueSize) {
        resume = () => {
          sendPart()
          if (fill(chunk.subarray(at), ready)) ready()
        }
        return false
      }
      sendPart()
    }
    return true
  }

  return {
    write (chunk, ready, onFailure) {
      fail = onFailure
      if (multipart !== null) return fill(chunk, ready)
      first.push(chunk)
      firstBytes += chunk.length
      if (firstBytes < partSize) return true
      // Nothing is in flight before the first part.
      send(Buffer.concat(first, firstBytes), null)
      first = []
      firstBytes = 0
      return true
    },
    async end () {
      /* c8 ignore next -- the intake stops at the first failure reported through failed(): it never calls end() after one */
      if (failure !== null) throw failure
      if (multipart === null) {
        // The whole body fits in one part.
        const body = Buffer.concat(first, firstBytes)
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }))
        hooks.stored()
        return
      }
      // The source may end while the writer waits for room (its last
      // chunk filled a part): that part goes first, as the writer would.
      // eslint-disable-next-line no-unmodified-loop-condition -- a part's completion runs `resume` and clears it
      while (resume !== null) await Promise.race(inFlight)
      if (part !== null && used > 0) {
        // The last part waits for room in the queue like the others.
        while (inFlight.size >= queueSize) await Promise.race(inFlight)
        send(part.subarray(0, used), null)
      }
      while (inFlight.size > 0) await Promise.all(inFlight)
      /* c8 ignore next -- a failed part stays in inFlight: the waits above throw its error first */
      if (failure !== null) throw failure
      const uploadId = await multipart
      parts.sort((a, b) => a.PartNumber - b.PartNumber)
      await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }))
      hooks.stored()
    }
  }
}
