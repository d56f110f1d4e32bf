// The rules for file names, which every backend and every route follows.
import { InvalidNameError } from '../../errors.js'

/** Longest name, in UTF-8 bytes (S3's key limit). */
export const MAX_NAME_BYTES = 1024
/** Longest segment, in UTF-8 bytes (a common file name limit). */
export const MAX_SEGMENT_BYTES = 255

// C0 and C1 controls, DEL, and the backslash, which some clients and file
// systems read as a separator.
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\\]/

function nameProblem (name: string): string | null {
  if (name === '') return 'the name is empty'
  if (!name.isWellFormed()) return 'the name is not valid UTF-8'
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `the name is longer than ${MAX_NAME_BYTES} bytes`
  if (FORBIDDEN.test(name)) return 'the name contains a control character or a backslash'
  for (const segment of name.split('/')) {
    if (segment === '') return 'the name has an empty segment (a leading, trailing or doubled "/")'
    if (segment === '.' || segment === '..') return 'the name has a "." or ".." segment'
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return `a segment of the name is longer than ${MAX_SEGMENT_BYTES} bytes`
  }
  return null
}

/**
 * Checks a file name: one or more `/`-separated segments of valid UTF-8,
 * none empty, `.` or `..`, without control characters or backslashes.
 * Returns the name, or throws `InvalidNameError` (400) saying why it is
 * refused. Names are never used as paths; these rules keep them
 * unambiguous for every backend and every client that turns them into one.
 */
export function checkName (name: string): string {
  const problem = nameProblem(name)
  if (problem !== null) throw new InvalidNameError(problem)
  return name
}

/** True when `name` follows the rules (`checkName` would return it). */
export function isValidName (name: string): boolean {
  return nameProblem(name) === null
}

/**
 * The order of names in listings: Unicode code point order, the order of
 * their UTF-8 bytes (S3 lists keys in it). JavaScript's `<` compares UTF-16
 * code units, which puts characters above U+FFFF (surrogate pairs) before
 * U+E000-U+FFFF; this does not.
 */
export function compareNames (a: string, b: string): number {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

/** A UTF-16 code unit's rank in code point order: surrogates after U+E000-U+FFFF. */
function codePointRank (unit: number): number {
  if (unit < 0xd800) return unit
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800
}
