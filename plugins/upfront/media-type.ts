// RFC 9110 §8.3.1: media-type = type "/" subtype, both tokens; a route may
// also allow a whole family with "type/*".
const MEDIA_RANGE = /^[!#$%&'*+.^_`|~0-9a-z-]+\/(?:[!#$%&'*+.^_`|~0-9a-z-]+|\*)$/

export interface MediaTypeMatcher {
  /** `type/subtype` values, lower-cased. */
  readonly exact: ReadonlySet<string>
  /** `type/` prefixes from `type/*` entries, lower-cased. */
  readonly families: readonly string[]
  /** The list as configured, for error messages. */
  readonly description: string
}

/** Returns null when the list is valid, otherwise the first invalid entry. */
export function invalidMediaRange (list: readonly unknown[]): string | null {
  for (const entry of list) {
    if (typeof entry !== 'string' || !MEDIA_RANGE.test(entry.toLowerCase())) return String(entry)
  }
  return null
}

export function compileMediaTypes (list: readonly string[]): MediaTypeMatcher {
  const exact = new Set<string>()
  const families: string[] = []
  for (const entry of list) {
    const range = entry.toLowerCase()
    if (range.endsWith('/*')) families.push(range.slice(0, -1))
    else exact.add(range)
  }
  return { exact, families, description: list.join(', ') }
}

/** The media type of a Content-Type value without its parameters, lower-cased. */
export function mediaTypeOf (contentType: string): string {
  const semicolon = contentType.indexOf(';')
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase()
}

export function acceptsMediaType (matcher: MediaTypeMatcher, contentType: string | undefined): boolean {
  if (contentType === undefined) return false
  const type = mediaTypeOf(contentType)
  if (matcher.exact.has(type)) return true
  for (const family of matcher.families) {
    if (type.startsWith(family) && type.length > family.length) return true
  }
  return false
}
