const CONTINUE = '100-continue'

/**
 * Reads an `Expect` field value (all `Expect` lines of a request joined with
 * commas, as Node joins them) and returns the first expectation this server
 * cannot meet, or `null` when every member is `100-continue`.
 *
 * Members are compared case-insensitively (RFC 9110 §10.1.1). Empty list
 * elements are ignored (§5.6.1.2), but a field with no expectation in it at
 * all is refused: it asks for something, and nothing it names can be met.
 */
export function unsupportedExpectation (value: string): string | null {
  if (value.length === CONTINUE.length && value.toLowerCase() === CONTINUE) return null
  let members = 0
  for (const part of value.split(',')) {
    const member = part.trim()
    if (member === '') continue
    if (member.toLowerCase() !== CONTINUE) return member
    members++
  }
  return members === 0 ? '' : null
}
