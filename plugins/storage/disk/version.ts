// One version of a file on disk is one file: its bytes, then its record
// (JSON), then a footer. Bytes and record in one file cost one inode to
// create and one rename to commit, and a reader that opened a version reads
// bytes and record of the same version whatever commits meanwhile.
//
//   <bytes: size><record: JSON, UTF-8><record length: uint32 BE><"upfront1">
import { fstatSync, readSync } from 'node:fs'
import type { StoredFile } from '../types.js'

const MAGIC = Buffer.from('upfront1', 'latin1')
const FOOTER_BYTES = 4 + MAGIC.length
/** Read from the end of a version at once: the footer and, nearly always, the whole record. */
const TAIL_BYTES = 4096

/** The bytes that follow a file's content in its version: its record and the footer. */
export function recordTrailer (file: StoredFile): Buffer {
  const json = Buffer.from(JSON.stringify({ file }), 'utf8')
  const footer = Buffer.allocUnsafe(FOOTER_BYTES)
  footer.writeUInt32BE(json.length, 0)
  MAGIC.copy(footer, 4)
  return Buffer.concat([json, footer])
}

/**
 * The file whose version is open as `fd` (`path` names it in errors).
 * Throws a `DamagedVersionError` when the file does not end with a record
 * that matches its length, a `SyntaxError` when the record is not JSON.
 */
export function readVersion (fd: number, path: string): StoredFile {
  const total = fstatSync(fd).size
  const tail = readAt(fd, Math.min(total, TAIL_BYTES), total - Math.min(total, TAIL_BYTES))
  if (tail.length < FOOTER_BYTES || !tail.subarray(tail.length - MAGIC.length).equals(MAGIC)) {
    throw new DamagedVersionError(path, 'it does not end with a record')
  }
  const length = tail.readUInt32BE(tail.length - FOOTER_BYTES)
  const size = total - FOOTER_BYTES - length
  if (size < 0) throw new DamagedVersionError(path, `its record is said to be ${length} bytes long, more than the file holds`)
  const json = length + FOOTER_BYTES <= tail.length
    ? tail.subarray(tail.length - FOOTER_BYTES - length, tail.length - FOOTER_BYTES)
    : readAt(fd, length, size)
  const file = (JSON.parse(json.toString('utf8')) as { file?: StoredFile } | null)?.file
  if (file?.size !== size) throw new DamagedVersionError(path, `its record does not say ${size} bytes of content, what the file holds`)
  return file
}

/** A file in the storage directory that should be a version and is not one. */
export class DamagedVersionError extends Error {
  constructor (path: string, why: string) {
    super(`${path} is not a valid version: ${why}`)
    this.name = 'DamagedVersionError'
  }
}

/** Up to `length` bytes of `fd` from `position` (fewer only at the end of the file: a regular file is read whole). */
function readAt (fd: number, length: number, position: number): Buffer {
  const buffer = Buffer.allocUnsafe(length)
  return buffer.subarray(0, readSync(fd, buffer, 0, length, position))
}
