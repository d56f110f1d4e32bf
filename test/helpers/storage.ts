// The disk backend opened in a test directory, bodies to feed it, and the
// check that it left nothing behind.
import { createHash } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { Test } from 'tap'
import { DiskStorage } from '../../plugins/storage/disk/index.js'
import type { DiskStorageOptions } from '../../plugins/storage/disk/index.js'

export const KiB = 1024

// Small batches and syncs, so that a few hundred KiB go through every path
// that a large upload takes.
export const smallBatches: DiskStorageOptions = { writeBatchBytes: 64 * KiB, syncEveryBytes: 256 * KiB }

export async function openStorage (t: Test, dir = t.testdir(), options = smallBatches): Promise<{ storage: DiskStorage, dir: string }> {
  const storage = await DiskStorage.open(dir, options)
  t.teardown(async () => { await storage.close() })
  return { storage, dir }
}

/** Deterministic, non-repeating bytes. */
export function bytes (length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length)
  let x = seed
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

/** `body` as a byte stream of `chunkSize` chunks, like a socket delivers it. */
export function streamOf (body: Buffer, chunkSize = 16 * KiB): Readable {
  const chunks: Buffer[] = []
  for (let i = 0; i < body.length; i += chunkSize) chunks.push(body.subarray(i, i + chunkSize))
  return Readable.from(chunks, { objectMode: false })
}

/** A stream that fails after `failAt` bytes: with `error`, or with a bare destroy (premature close). */
export function failingStream (failAt: number, error?: Error, chunkSize = 16 * KiB): Readable {
  let sent = 0
  return new Readable({
    read () {
      if (sent >= failAt) {
        this.destroy(error)
        return
      }
      const length = Math.min(chunkSize, failAt - sent)
      sent += length
      this.push(bytes(length, sent))
    }
  })
}

export async function collect (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export function sha256 (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

export async function store (storage: DiskStorage, owner: string, name: string, body: Buffer, conditions = {}): Promise<void> {
  const upload = await storage.begin(owner, name, { contentType: 'application/octet-stream' })
  await upload.write(streamOf(body))
  await upload.commit(conditions)
}

/** Every file under `dir`, as paths relative to it. */
export async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1)).sort()
}

/**
 * The record at the end of a disk version (plugins/storage/disk/version.ts),
 * decoded here on its own: bytes, JSON, its length (uint32 BE), "upfront1".
 */
export function versionRecord (version: Buffer): { file: { name: string, size: number } } {
  if (version.subarray(-8).toString('latin1') !== 'upfront1') throw new Error('not a version: no footer')
  const length = version.readUInt32BE(version.length - 12)
  return JSON.parse(version.subarray(version.length - 12 - length, version.length - 12).toString('utf8')) as ReturnType<typeof versionRecord>
}

/** A disk version's content: what comes before its record. */
export function versionContent (version: Buffer): Buffer {
  const length = version.readUInt32BE(version.length - 12)
  return version.subarray(0, version.length - 12 - length)
}

/** A disk store's names: `files/<sha256(owner)>/<sha256(name)>`. */
const NAME = /^files\/[0-9a-f]{64}\/[0-9a-f]{64}$/

/** What a disk store holds besides its names' versions: temporary files, locks, anything else. */
export async function diskLeftovers (dir: string): Promise<string[]> {
  return (await filesUnder(dir)).filter((file) => !NAME.test(file))
}

/** Checks that the storage directory holds the committed files' versions and nothing else. */
export async function assertClean (t: Test, dir: string, committed: number): Promise<void> {
  t.same(await diskLeftovers(dir), [], 'no temporary file, lock or other file is left')
  t.equal((await filesUnder(dir)).filter((file) => NAME.test(file)).length, committed, 'one version per committed file')
}
