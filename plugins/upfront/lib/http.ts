// Header grammar, one reader per field, shared by the plugin and by apps
// that check the same fields (`import { entityTags } from 'upfront/http'`).
// Each follows the RFC rule it names. A reader returns null for a value it
// cannot read; what that means (ignore it, or refuse the request) is the
// caller's decision.

/** RFC 9110 §5.6.2: the characters of a token. */
const TCHAR = "[!#$%&'*+.^_`|~0-9A-Za-z-]"
const TOKEN = `${TCHAR}+`

// ---------------------------------------------------------------------------
// Content-Length (RFC 9110 §8.6)

/**
 * The declared length of a request's content, in bytes, or null when it
 * has no `Content-Length` (no content, or content of unknown length:
 * chunked, or an HTTP/2 stream without the field). Node's HTTP/1 and HTTP/2
 * parsers have already refused a malformed or repeated value.
 */
export function contentLength (headers: { 'content-length'?: string | undefined }): number | null {
  const value = headers['content-length']
  return value === undefined ? null : Number(value)
}

// ---------------------------------------------------------------------------
// Media types (RFC 9110 §8.3.1): type "/" subtype, case-insensitive

const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}$`)
const MEDIA_RANGE = new RegExp(`^${TOKEN}/(?:${TOKEN}|\\*)$`)

/** True for a concrete `type/subtype` without parameters, in any case (`*` is a token character, but `type/*` is a range). */
export function isMediaType (value: string): boolean {
  return MEDIA_TYPE.test(value) && !value.split('/').includes('*')
}

/** True for a `type/subtype` or a `type/*` family. */
export function isMediaRange (value: string): boolean {
  return MEDIA_RANGE.test(value)
}

/** The media type of a Content-Type value without its parameters, lower-cased. */
export function mediaTypeOf (contentType: string): string {
  const semicolon = contentType.indexOf(';')
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase()
}

/** A compiled list of accepted media types. */
export interface MediaTypeMatcher {
  /** `type/subtype` values, lower-cased. */
  readonly exact: ReadonlySet<string>
  /** `type/` prefixes of `type/*` entries, lower-cased. */
  readonly families: readonly string[]
  /** The list as configured, for messages. */
  readonly description: string
}

/** Compiles media ranges (each checked with `isMediaRange` first). */
export function compileMediaTypes (list: readonly string[]): MediaTypeMatcher {
  const exact = new Set<string>()
  const families: string[] = []
  for (const entry of list) {
    const range = entry.toLowerCase()
    // `*/*` is every type: the empty prefix.
    if (range === '*/*') families.push('')
    else if (range.endsWith('/*')) families.push(range.slice(0, -1))
    else exact.add(range)
  }
  return { exact, families, description: list.join(', ') }
}

/** Whether a Content-Type value (parameters allowed) is in the list; a missing one never is. */
export function acceptsMediaType (matcher: MediaTypeMatcher, contentType: string | undefined): boolean {
  if (contentType === undefined) return false
  const type = mediaTypeOf(contentType)
  if (matcher.exact.has(type)) return true
  for (const family of matcher.families) {
    if (type.startsWith(family) && type.length > family.length) return true
  }
  return false
}

const PARAMETER = new RegExp(`;[ \\t]*(${TOKEN})[ \\t]*=[ \\t]*(${TOKEN}|"(?:[^"\\\\]|\\\\.)*")`, 'g')

/** A parameter of a media type (RFC 9110 §5.6.6; the name case-insensitive, a quoted value unquoted), or null. */
export function mediaTypeParameter (contentType: string | undefined, name: string): string | null {
  const wanted = name.toLowerCase()
  for (const match of (contentType ?? '').matchAll(PARAMETER)) {
    // Both groups always match.
    if ((match[1] as string).toLowerCase() !== wanted) continue
    const raw = match[2] as string
    return raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw
  }
  return null
}

/** RFC 2046 §5.1.1: 1 to 70 of these characters, not ending in a space. */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/

/** The `boundary` of a multipart Content-Type, or null when it has no valid one. */
export function multipartBoundary (contentType: string | undefined): string | null {
  const boundary = mediaTypeParameter(contentType, 'boundary')
  return boundary !== null && BOUNDARY.test(boundary) ? boundary : null
}

// ---------------------------------------------------------------------------
// Entity tags (RFC 9110 §8.8.3, §13.1.1, §13.1.2)

/**
 * The entity tags of an `If-Match` / `If-None-Match` value: `['*']`, or the
 * quoted tags of the list (weak ones with their `W/`). Null when malformed.
 */
export function entityTags (value: string): string[] | null {
  if (value.trim() === '*') return ['*']
  const tags: string[] = []
  // One list element at a time: a tag or nothing (empty elements are
  // ignored, RFC 9110 §5.6.1.2), then a comma or the end.
  const element = /[ \t]*((?:W\/)?"[\x21\x23-\x7e\x80-\xff]*")?[ \t]*(,|$)/y
  for (;;) {
    const match = element.exec(value)
    if (match === null) return null
    if (match[1] !== undefined) tags.push(match[1])
    if (match[2] === '') break
  }
  return tags.length > 0 ? tags : null
}

/** Weak comparison (RFC 9110 §8.8.3.2), the one `If-None-Match` uses; `*` matches any tag. */
export function weakMatch (tags: readonly string[], etag: string): boolean {
  const opaque = etag.replace(/^W\//, '')
  return tags.some((tag) => tag === '*' || tag.replace(/^W\//, '') === opaque)
}

/** Strong comparison, the one `If-Match` uses: weak tags never match; `*` matches any tag. */
export function strongMatch (tags: readonly string[], etag: string): boolean {
  return tags.some((tag) => tag === '*' || (!tag.startsWith('W/') && tag === etag))
}

// ---------------------------------------------------------------------------
// HTTP-date (RFC 9110 §5.6.7)

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)'
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)'
const MONTH = `(${MONTHS.join('|')})`
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})'
/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`)
/** rfc850-date: `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete). */
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`)
/** asctime-date: `Sun Nov  6 08:49:37 1994` (obsolete; in UTC). */
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`)

/**
 * A date field (`If-Modified-Since`, `If-Unmodified-Since`, `If-Range`) in
 * whole seconds since the epoch, or null when it is not an HTTP-date: the
 * RFC says to ignore such a field. The three formats a recipient must read
 * are read, all in UTC (RFC 9110 §5.6.7); a two-digit year more than 50
 * years ahead is taken as in the past.
 */
export function httpDate (value: string): number | null {
  let day: string, month: string, year: number, hour: string, minute: string, second: string
  let match = IMF_FIXDATE.exec(value)
  if (match !== null) {
    [, day = '', month = '', , hour = '', minute = '', second = ''] = match
    year = Number(match[3])
  } else if ((match = RFC850_DATE.exec(value)) !== null) {
    [, day = '', month = '', , hour = '', minute = '', second = ''] = match
    const thisYear = new Date().getUTCFullYear()
    year = 2000 + Number(match[3])
    while (year > thisYear + 50) year -= 100
  } else if ((match = ASCTIME_DATE.exec(value)) !== null) {
    [, month = '', day = '', hour = '', minute = '', second = ''] = match
    year = Number(match[6])
  } else {
    return null
  }
  const time = Date.UTC(year, MONTHS.indexOf(month), Number(day), Number(hour), Number(minute), Number(second))
  // Out-of-range fields (31 Feb, 25:00) are not dates.
  return new Date(time).getUTCDate() === Number(day) && Number(hour) < 24 && Number(minute) < 60 && Number(second) < 61 ? time / 1000 : null
}

// ---------------------------------------------------------------------------
// Range (RFC 9110 §14.1.2)

/** Bytes `start` to `end` of a representation, both inclusive. */
export interface ByteRange {
  start: number
  end: number
}

/** What a `Range` header asks of a representation of a known size. */
export type RangeRequest =
  | { kind: 'none' }
  | { kind: 'unsatisfiable' }
  | { kind: 'range', range: ByteRange }

/**
 * A `Range` value against a representation of `size` bytes. One byte range
 * is served as 206; what a server may ignore (another unit, several ranges,
 * a malformed value) gives `none`, and the whole representation is sent.
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

// ---------------------------------------------------------------------------
// Digests (RFC 9530 Content-Digest / Repr-Digest; RFC 1864 Content-MD5)

const DIGEST_MEMBER = /^\s*([A-Za-z0-9_-]+)\s*=\s*:([A-Za-z0-9+/]*={0,2}):\s*$/

/**
 * The members of a `Content-Digest` or `Repr-Digest` value, by lower-cased
 * algorithm (`sha-256`, …), each decoded from base64. Null when a member is
 * not `algorithm=:base64:` (RFC 9530 §2, a structured dictionary of byte
 * sequences).
 */
export function digestFields (value: string): Map<string, Buffer> | null {
  const digests = new Map<string, Buffer>()
  for (const member of value.split(',')) {
    const match = DIGEST_MEMBER.exec(member)
    if (match === null) return null
    digests.set((match[1] as string).toLowerCase(), Buffer.from(match[2] as string, 'base64'))
  }
  return digests
}

/** A `Content-MD5` value as its 16 bytes, or null when it is not the base64 of 16 bytes. */
export function contentMd5 (value: string): Buffer | null {
  const trimmed = value.trim()
  return /^[A-Za-z0-9+/]{22}==$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : null
}

/** `sha-256=:<base64>:`, the value of a `Repr-Digest` or `Content-Digest` holding one SHA-256. */
export function sha256Field (sha256Hex: string): string {
  return `sha-256=:${Buffer.from(sha256Hex, 'hex').toString('base64')}:`
}

// ---------------------------------------------------------------------------
// Content-Disposition (RFC 6266, with RFC 8187 for non-ASCII names)

/** `attachment` with the last `/`-segment of `name` as its file name. */
export function attachment (name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1)
  const ascii = base.replace(/[^\x20-\x7e]|["\\%]/g, '_')
  const encoded = encodeURIComponent(base).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`
}

/**
 * Whether the `filename` parameter of a `Content-Disposition` value is
 * well-formed (RFC 6266 §4.1, RFC 7578 §4.2): a token, or a quoted-string
 * in which a `"` is escaped (`\"`; browsers send `%22`). True when there is
 * no such parameter. A raw quote inside the name ends the quoted-string
 * early, and parsers then keep only the part before it.
 */
export function wellFormedFilename (disposition: string): boolean {
  const start = /;\s*filename\s*=\s*/i.exec(disposition)
  if (start === null) return true
  const rest = disposition.slice(start.index + start[0].length)
  const match = rest.startsWith('"') ? /^"(?:[^"\\]|\\.)*"/s.exec(rest) : new RegExp(`^${TOKEN}`).exec(rest)
  return match !== null && /^[ \t]*(?:;|$)/.test(rest.slice(match[0].length))
}
