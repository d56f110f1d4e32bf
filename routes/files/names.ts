/** Longest name, in UTF-8 bytes (S3's key limit). */
export const MAX_NAME_BYTES = 1024
/** Longest segment, in UTF-8 bytes (a common file name limit). */
export const MAX_SEGMENT_BYTES = 255

// C0 and C1 controls, DEL, and the backslash, which some clients and file
// systems read as a separator.
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\\]/

/**
 * Checks a file name: one or more `/`-separated segments of valid UTF-8,
 * none empty, `.` or `..`, without control characters or backslashes.
 * Returns why the name is refused, or null when it is fine. Names are
 * never used as paths; this keeps them unambiguous for every backend and
 * every client that will one day turn them into one.
 */
export function nameProblem (name: string): string | null {
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

/** The URL path of a file: each segment percent-encoded. */
export function filePath (name: string): string {
  return '/files/' + name.split('/').map(encodeURIComponent).join('/')
}
