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
 * with one PutObject instead.
 */
function partSink (target: S3UploadTarget, hooks: PartHooks): Sink {
  const { client, bucket, key, partSize, queueSize } = target
  let filling: Buffer[] = []
  let fillingBytes = 0
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
  const send = (): void => {
    const body = Buffer.concat(filling, fillingBytes)
    filling = []
    fillingBytes = 0
    const partNumber = nextPart++
    multipart ??= hooks.begin()
    const uploading = multipart.then(async (uploadId) => {
      const { ETag } = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length }))
      parts.push({ PartNumber: partNumber, ETag: ETag as string })
    })
    inFlight.add(uploading)
    uploading.then(() => {
      inFlight.delete(uploading)
      const ready = resume
      resume = null
      ready?.()
    }, failed)
  }

  return {
    write (chunk, ready, onFailure) {
      fail = onFailure
      filling.push(chunk)
      fillingBytes += chunk.length
      if (fillingBytes < partSize) return true
      if (inFlight.size < queueSize) {
        send()
        return true
      }
      // The queue is full: the part waits, and so does the writer.
      resume = () => { send(); ready() }
      return false
    },
    async end () {
      /* c8 ignore next -- the intake stops at the first failure reported through failed(): it never calls end() after one */
      if (failure !== null) throw failure
      if (multipart === null) {
        // The whole body fits in one part.
        const body = Buffer.concat(filling, fillingBytes)
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }))
        hooks.stored()
        return
      }
      if (fillingBytes > 0) {
        // The last part waits for room in the queue like the others.
        while (inFlight.size >= queueSize) await Promise.race(inFlight)
        send()
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
