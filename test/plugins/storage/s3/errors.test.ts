// What an S3 engine's failures mean (plugins/storage/s3/errors.ts): one
// table per export, an SDK error's shape in, the meaning out.
import t from 'tap'
import { isMissing, isPreconditionFailed, isUnavailable, s3Error, statusOf } from '../../../../plugins/storage/s3/errors.js'
import type { SdkError } from '../../../../plugins/storage/s3/errors.js'

const status = (httpStatusCode: number, name?: string): SdkError => ({ name, $metadata: { httpStatusCode } })

t.test('statusOf', async (t) => {
  const cases: Array<[unknown, number | undefined]> = [
    [status(404), 404],
    [{ name: 'NoSuchKey' }, undefined],
    [{ $metadata: {} }, undefined],
    [null, undefined]
  ]
  for (const [error, expected] of cases) t.equal(statusOf(error), expected, JSON.stringify(error))
})

t.test('isMissing', async (t) => {
  const cases: Array<[SdkError, boolean]> = [
    [{ name: 'NoSuchKey' }, true],
    [{ name: 'NotFound' }, true],
    [status(404, 'Unknown'), true],
    [status(404), true],
    [{ name: 'NoSuchBucket', $metadata: { httpStatusCode: 400 } }, false],
    [status(403, 'AccessDenied'), false]
  ]
  for (const [error, expected] of cases) t.equal(isMissing(error), expected, JSON.stringify(error))
})

t.test('isPreconditionFailed', async (t) => {
  const cases: Array<[SdkError, boolean]> = [
    [{ name: 'PreconditionFailed' }, true],
    [status(412), true],
    [status(412, 'Unknown'), true],
    [status(409, 'ConditionalRequestConflict'), false],
    [status(200), false]
  ]
  for (const [error, expected] of cases) t.equal(isPreconditionFailed(error), expected, JSON.stringify(error))
})

t.test('isUnavailable', async (t) => {
  const cases: Array<[SdkError, boolean]> = [
    ...['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].map((code): [SdkError, boolean] => [{ code }, true]),
    ...['TimeoutError', 'RequestTimeout', 'SlowDown', 'ServiceUnavailable'].map((name): [SdkError, boolean] => [{ name }, true]),
    [status(503), true],
    [status(500, 'InternalError'), true],
    [{ code: 'EACCES' }, false],
    [status(403, 'AccessDenied'), false],
    [status(507), false]
  ]
  for (const [error, expected] of cases) t.equal(isUnavailable(error), expected, JSON.stringify(error))
})

t.test('s3Error: 503 when the engine cannot be reached, 507 when it is full, anything else as it is', async (t) => {
  const unavailable = { statusCode: 503, code: 'UPFRONT_STORAGE_UNAVAILABLE' }
  const full = { statusCode: 507, code: 'UPFRONT_INSUFFICIENT_STORAGE' }
  const cases: Array<[SdkError, object | null]> = [
    [{ code: 'ECONNREFUSED' }, unavailable],
    [status(503, 'SlowDown'), unavailable],
    ...['QuotaExceeded', 'QuotaExceededException', 'InsufficientCapacity', 'ServiceQuotaExceeded', 'EntityTooLarge']
      .map((name): [SdkError, object] => [status(400, name), full]),
    [status(403, 'AccessDenied'), null],
    [status(400), null],
    [{ name: 'NoSuchBucket' }, null]
  ]
  for (const [error, meaning] of cases) {
    const made = s3Error(error)
    if (meaning === null) {
      t.equal(made, error, `${JSON.stringify(error)}: as it is`)
      continue
    }
    t.match(made, meaning, JSON.stringify(error))
    t.equal((made as { cause?: unknown }).cause, error, `${JSON.stringify(error)}: the engine's error is its cause`)
  }
})
