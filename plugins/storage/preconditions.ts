// RFC 9110 §13.2.2: the order in which a request's preconditions are
// evaluated, and what each outcome means. The routes evaluate them before
// the body moves; backends evaluate them again, atomically, at the commit
// or the delete.
import { strongMatch, weakMatch } from 'upfront/http'
import { PreconditionFailedError } from '../../errors.js'
import type { StoredFile } from './types.js'

/** A request's preconditions, as read from its headers. */
export interface Preconditions {
  /** `If-Match`: quoted entity tags, or `['*']`. */
  ifMatch?: readonly string[]
  /** `If-Unmodified-Since`, in whole seconds since the epoch. */
  ifUnmodifiedSince?: number
  /** `If-None-Match`: quoted entity tags, or `['*']`. */
  ifNoneMatch?: readonly string[]
  /** `If-Modified-Since`, in whole seconds since the epoch (reads only). */
  ifModifiedSince?: number
}

/** Whether the request reads (GET, HEAD) or changes the file (PUT, POST, DELETE). */
export type RequestKind = 'read' | 'write'

function modifiedAt (file: StoredFile): number {
  return Math.floor(Date.parse(file.createdAt) / 1000)
}

/**
 * Evaluates `preconditions` against the current version of a file (null
 * when there is none), in the RFC's order. Returns `'proceed'`, or
 * `'not-modified'` for a read that the client already has (304). Throws
 * `PreconditionFailedError` (412) for a precondition that does not hold.
 */
export function evaluatePreconditions (preconditions: Preconditions, current: StoredFile | null, kind: RequestKind): 'proceed' | 'not-modified' {
  const { ifMatch, ifUnmodifiedSince, ifNoneMatch, ifModifiedSince } = preconditions
  // Step 1, or step 2 without If-Match. A file that does not exist has no
  // modification date, so If-Unmodified-Since is ignored for it (§13.1.4).
  if (ifMatch !== undefined) {
    if (current === null || !strongMatch(ifMatch, current.etag)) {
      throw new PreconditionFailedError(current === null
        ? 'no file with this name exists (If-Match); send the request without If-Match to create it'
        : 'the file does not match If-Match (it changed since you read its ETag); fetch its current ETag and try again')
    }
  } else if (ifUnmodifiedSince !== undefined && current !== null && modifiedAt(current) > ifUnmodifiedSince) {
    throw new PreconditionFailedError('the file was modified after If-Unmodified-Since; fetch it again and retry with its new date or ETag')
  }
  // Step 3, or step 4 without If-None-Match.
  if (ifNoneMatch !== undefined) {
    if (current !== null && weakMatch(ifNoneMatch, current.etag)) {
      if (kind === 'read') return 'not-modified'
      throw new PreconditionFailedError(ifNoneMatch.includes('*')
        ? 'a file with this name exists and If-None-Match: * forbids replacing it; choose another name, or send If-Match with its ETag to replace it'
        : 'the file matches If-None-Match; send If-Match with its ETag to change it')
    }
  } else if (kind === 'read' && ifModifiedSince !== undefined && current !== null && modifiedAt(current) <= ifModifiedSince) {
    return 'not-modified'
  }
  return 'proceed'
}
