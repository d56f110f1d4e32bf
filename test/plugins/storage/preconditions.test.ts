// RFC 9110 §13.2.2 (plugins/storage/preconditions.ts): the preconditions of
// a request evaluated in the RFC's order against the current version of a
// file, or against none.
//   1. If-Match (strong comparison; false without a current file): 412.
//   2. Without If-Match, If-Unmodified-Since (ignored without a file): 412.
//   3. If-None-Match (weak comparison): 304 for GET/HEAD, 412 otherwise.
//   4. Without If-None-Match, for GET/HEAD, If-Modified-Since: 304.
import t from 'tap'
import { evaluatePreconditions } from '../../../plugins/storage/preconditions.js'
import type { Preconditions, RequestKind } from '../../../plugins/storage/preconditions.js'
import type { StoredFile } from '../../../plugins/storage/types.js'

const createdAt = '2024-05-06T07:08:09.500Z'
/** The file's modification time, in the whole seconds of an HTTP-date. */
const modified = Math.floor(Date.parse(createdAt) / 1000)
const current: StoredFile = {
  name: 'report.pdf',
  owner: 'alice',
  size: 3,
  sha256: 'abc',
  contentType: 'application/pdf',
  etag: '"abc"',
  createdAt
}

const failed = {
  noFile: 'no file with this name exists (If-Match); send the request without If-Match to create it',
  ifMatch: 'the file does not match If-Match (it changed since you read its ETag); fetch its current ETag and try again',
  unmodified: 'the file was modified after If-Unmodified-Since; fetch it again and retry with its new date or ETag',
  exists: 'a file with this name exists and If-None-Match: * forbids replacing it; choose another name, or send If-Match with its ETag to replace it',
  noneMatch: 'the file matches If-None-Match; send If-Match with its ETag to change it'
} as const

type Outcome = 'proceed' | 'not-modified' | keyof typeof failed
/** [what, preconditions, with the current file or none, outcome for a read, outcome for a write] */
type Row = [string, Preconditions, StoredFile | null, Outcome, Outcome]

const table: Row[] = [
  ['no precondition', {}, current, 'proceed', 'proceed'],
  ['no precondition, no file', {}, null, 'proceed', 'proceed'],

  // Step 1: If-Match.
  ['If-Match: *', { ifMatch: ['*'] }, current, 'proceed', 'proceed'],
  ['If-Match: * without a file', { ifMatch: ['*'] }, null, 'noFile', 'noFile'],
  ['If-Match with the current tag', { ifMatch: ['"abc"'] }, current, 'proceed', 'proceed'],
  ['If-Match with one of its tags current', { ifMatch: ['"old"', '"abc"'] }, current, 'proceed', 'proceed'],
  ['If-Match with another tag', { ifMatch: ['"old"'] }, current, 'ifMatch', 'ifMatch'],
  ['If-Match with the current tag, weak: the strong comparison fails', { ifMatch: ['W/"abc"'] }, current, 'ifMatch', 'ifMatch'],
  ['If-Match with a tag, without a file', { ifMatch: ['"abc"'] }, null, 'noFile', 'noFile'],

  // Step 2: If-Unmodified-Since, only without If-Match.
  ['If-Unmodified-Since the modification', { ifUnmodifiedSince: modified }, current, 'proceed', 'proceed'],
  ['If-Unmodified-Since after it', { ifUnmodifiedSince: modified + 1 }, current, 'proceed', 'proceed'],
  ['If-Unmodified-Since before it', { ifUnmodifiedSince: modified - 1 }, current, 'unmodified', 'unmodified'],
  ['If-Unmodified-Since without a file: ignored', { ifUnmodifiedSince: modified - 1 }, null, 'proceed', 'proceed'],
  ['If-Match holds: If-Unmodified-Since is not evaluated', { ifMatch: ['"abc"'], ifUnmodifiedSince: modified - 1 }, current, 'proceed', 'proceed'],
  ['If-Match fails first', { ifMatch: ['"old"'], ifUnmodifiedSince: modified + 1 }, current, 'ifMatch', 'ifMatch'],

  // Step 3: If-None-Match.
  ['If-None-Match: *', { ifNoneMatch: ['*'] }, current, 'not-modified', 'exists'],
  ['If-None-Match: * without a file', { ifNoneMatch: ['*'] }, null, 'proceed', 'proceed'],
  ['If-None-Match with the current tag', { ifNoneMatch: ['"abc"'] }, current, 'not-modified', 'noneMatch'],
  ['If-None-Match with the current tag, weak: the weak comparison holds', { ifNoneMatch: ['"x"', 'W/"abc"'] }, current, 'not-modified', 'noneMatch'],
  ['If-None-Match with another tag', { ifNoneMatch: ['"old"'] }, current, 'proceed', 'proceed'],
  ['If-None-Match with a tag, without a file', { ifNoneMatch: ['"abc"'] }, null, 'proceed', 'proceed'],
  ['If-Match then If-None-Match: both evaluated', { ifMatch: ['"abc"'], ifNoneMatch: ['"abc"'] }, current, 'not-modified', 'noneMatch'],
  ['If-Match fails before If-None-Match', { ifMatch: ['"old"'], ifNoneMatch: ['"abc"'] }, current, 'ifMatch', 'ifMatch'],
  ['If-Unmodified-Since fails before If-None-Match', { ifUnmodifiedSince: modified - 1, ifNoneMatch: ['*'] }, current, 'unmodified', 'unmodified'],

  // Step 4: If-Modified-Since, for reads, only without If-None-Match.
  ['If-Modified-Since the modification', { ifModifiedSince: modified }, current, 'not-modified', 'proceed'],
  ['If-Modified-Since after it', { ifModifiedSince: modified + 1 }, current, 'not-modified', 'proceed'],
  ['If-Modified-Since before it', { ifModifiedSince: modified - 1 }, current, 'proceed', 'proceed'],
  ['If-Modified-Since without a file', { ifModifiedSince: modified + 1 }, null, 'proceed', 'proceed'],
  ['If-None-Match does not match: If-Modified-Since is not evaluated', { ifNoneMatch: ['"old"'], ifModifiedSince: modified + 1 }, current, 'proceed', 'proceed']
]

t.test('evaluatePreconditions, in the RFC\'s order, for reads and writes', async (t) => {
  for (const [what, preconditions, file, ...outcomes] of table) {
    for (const [kind, outcome] of [['read', outcomes[0]], ['write', outcomes[1]]] as Array<[RequestKind, Outcome]>) {
      const name = `${what}: ${kind}`
      if (outcome === 'proceed' || outcome === 'not-modified') {
        t.equal(evaluatePreconditions(preconditions, file, kind), outcome, name)
      } else {
        t.throws(() => evaluatePreconditions(preconditions, file, kind), {
          code: 'UPFRONT_PRECONDITION_FAILED',
          statusCode: 412,
          message: `Precondition failed, nothing was changed: ${failed[outcome]}`
        }, name)
      }
    }
  }
})
