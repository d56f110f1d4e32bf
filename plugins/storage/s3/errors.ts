// What an S3 engine's failures mean for a client and for the operator.
import { InsufficientStorageError, StorageUnavailableError } from '../../../errors.js'

/** An error of the AWS SDK: the engine's error name and HTTP status, or a network error's code. */
export interface SdkError {
  name?: string
  code?: string
  $metadata?: { httpStatusCode?: number }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])
const FULL_NAMES = new Set(['QuotaExceeded', 'QuotaExceededException', 'InsufficientCapacity', 'ServiceQuotaExceeded', 'EntityTooLarge'])

export function statusOf (error: unknown): number | undefined {
  return (error as SdkError)?.$metadata?.httpStatusCode
}

/** The engine said the key does not exist. */
export function isMissing (error: unknown): boolean {
  const { name } = error as SdkError
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(error) === 404
}

/** The engine refused a conditional request: the condition did not hold. */
export function isPreconditionFailed (error: unknown): boolean {
  return (error as SdkError)?.name === 'PreconditionFailed' || statusOf(error) === 412
}

/** The engine could not be reached, timed out, or is overloaded: worth a retry later. */
export function isUnavailable (error: unknown): boolean {
  const { name, code } = error as SdkError
  const status = statusOf(error)
  return (code !== undefined && NETWORK_CODES.has(code)) || name === 'TimeoutError' || name === 'RequestTimeout' ||
    name === 'SlowDown' || name === 'ServiceUnavailable' || status === 503 || status === 500
}

/**
 * What a client is told about a failure of the engine: 503 with
 * Retry-After when it cannot be reached (nothing was acknowledged), 507
 * when it is full or over quota; anything else (access denied, a bucket
 * gone) stays as it is, a 500 that the error handler logs in full.
 */
export function s3Error (error: unknown): unknown {
  if (isUnavailable(error)) return new StorageUnavailableError({ cause: error })
  if (FULL_NAMES.has((error as SdkError)?.name ?? '')) return new InsufficientStorageError({ cause: error })
  return error
}
