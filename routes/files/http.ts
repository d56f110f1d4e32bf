import type { ByteRange } from '../../plugins/storage/types.js'

/**
 * Entity tags of an `If-Match` / `If-None-Match` value (RFC 9110 §13.1.1):
 * `*`, or a list of quoted tags (weak ones with their `W/`). Returns null
 * when the value is malformed.
 */
export function entityTags (value: string): string[] | null {
  if (value.trim() === '*') return ['*']
  const tags: string[] = []
  const pattern = /\s*((?:W\/)?"[\x21\x23-\x7e\x80-\xff]*")\s*(,|$)/y
  let match: RegExpExecArray | null
  while (pattern.lastIndex < value.length && (match = pattern.exec(value)) !== null) {
    tags.push(match[1] as string)
    if (match[2] === '') break
  }
  return pattern.lastIndex === value.length && tags.length > 0 ? tags : null
}

/** Weak comparison (RFC 9110 §8.8.3.2), used by If-None-Match. */
export function weakMatch (tags: readonly string[], etag: string): boolean {
  const opaque = etag.replace(/^W\//, '')
  return tags.some((tag) => tag === '*' || tag.replace(/^W\//, '') === opaque)
}

/** Strong comparison, used by If-Match: weak tags never match. */
export function strongMatch (tags: readonly string[], etag: string): boolean {
  return tags.some((tag) => tag === '*' || (!tag.startsWith('W/') && tag === etag))
}

export type RangeRequest =
  | { kind: 'none' }
  | { kind: 'unsatisfiable' }
  | { kind: 'range', range: ByteRange }

/**
 * A `Range` header against a representation of `size` bytes (RFC 9110
 * §14.1.2). One byte range is served as 206; a value this server does not
 * serve as a range (another unit, several ranges, a malformed value) is
 * ignored and the whole file is sent, which the RFC allows.
 */
export function parseRange (value: string | undefined, size: number): RangeRequest {
  if (value === undefined) return { kind: 'none' }
  const match = /^bytes=\s*(\d*)-(\d*)\s*$/i.exec(value)
  if (match === null) return { kind: 'none' }
  const [, first = '', last = ''] = match
  if (first === '' && last === '') return { kind: 'none' }
  if (first === '') {
    // A suffix: the last N bytes.
    const length = Number(last)
    if (length === 0 || size === 0) return { kind: 'unsatisfiable' }
    return { kind: 'range', range: { start: Math.max(0, size - length), end: size - 1 } }
  }
  const start = Number(first)
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
  if (last !== '' && Number(last) < start) return { kind: 'none' }
  if (start >= size) return { kind: 'unsatisfiable' }
  return { kind: 'range', range: { start, end } }
}

/**
 * Digests a client sent with its upload, from `Content-Digest` (RFC 9530,
 * `sha-256=:<base64>:`) and `Content-MD5` (RFC 1864). Algorithms other than
 * SHA-256 in Content-Digest are ignored, as RFC 9530 §2 allows. Returns a
 * string saying what is malformed instead when a header cannot be read.
 */
export function expectedDigests (contentDigest: string | undefined, contentMd5: string | undefined): { sha256: Buffer | null, md5: Buffer | null } | string {
  let sha256: Buffer | null = null
  let md5: Buffer | null = null
  if (contentDigest !== undefined) {
    for (const member of contentDigest.split(',')) {
      const match = /^\s*([a-z0-9-]+)\s*=\s*:([A-Za-z0-9+/]*={0,2}):\s*$/i.exec(member)
      if (match === null) return 'Content-Digest must be a list of algorithm=:base64: members, such as sha-256=:<base64 of the SHA-256>:'
      if ((match[1] as string).toLowerCase() !== 'sha-256') continue
      const digest = Buffer.from(match[2] as string, 'base64')
      if (digest.length !== 32) return 'the sha-256 member of Content-Digest must be the base64 of a 32-byte SHA-256'
      sha256 = digest
    }
  }
  if (contentMd5 !== undefined) {
    const digest = /^[A-Za-z0-9+/]{22}==$/.test(contentMd5.trim()) ? Buffer.from(contentMd5.trim(), 'base64') : null
    if (digest === null) return 'Content-MD5 must be the base64 of a 16-byte MD5'
    md5 = digest
  }
  return { sha256, md5 }
}

/** `sha-256=:<base64>:` for Repr-Digest / Content-Digest. */
export function digestField (sha256Hex: string): string {
  return `sha-256=:${Buffer.from(sha256Hex, 'hex').toString('base64')}:`
}

/** `attachment` with the file's last segment as its name (RFC 6266, RFC 8187 for non-ASCII). */
export function attachment (name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1)
  const ascii = base.replace(/[^\x20-\x7e]|["\\%]/g, '_')
  const encoded = encodeURIComponent(base).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`
}

const PARAMETER = /;[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+|"(?:[^"\\]|\\.)*")/g
/** RFC 2046 §5.1.1: 1 to 70 of these characters, not ending in a space. */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/

/** The `boundary` parameter of a multipart Content-Type (RFC 9110 §5.6.6 parameters), or null when it has no valid one. */
export function formBoundary (contentType: string | undefined): string | null {
  for (const match of (contentType ?? '').matchAll(PARAMETER)) {
    // Both groups always match.
    const name = match[1] as string
    const raw = match[2] as string
    if (name.toLowerCase() !== 'boundary') continue
    const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw
    return BOUNDARY.test(value) ? value : null
  }
  return null
}
