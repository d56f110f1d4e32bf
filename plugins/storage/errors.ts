import createError from '@fastify/error'

// Refusals are expected traffic, not bugs: no stack trace is captured.
const noStack = false

export const UploadTooLargeError = createError<'UPFRONT_UPLOAD_TOO_LARGE', 413, [number]>(
  'UPFRONT_UPLOAD_TOO_LARGE',
  'Upload exceeds the %d-byte limit and was not stored; send a smaller file',
  413,
  Error,
  noStack
)

export const PreconditionFailedError = createError<'UPFRONT_PRECONDITION_FAILED', 412, [string]>(
  'UPFRONT_PRECONDITION_FAILED',
  'Precondition failed, the upload was not stored: %s',
  412,
  Error,
  noStack
)

export const InsufficientStorageError = createError<'UPFRONT_INSUFFICIENT_STORAGE', 507, [{ cause: unknown }]>(
  'UPFRONT_INSUFFICIENT_STORAGE',
  'The server has no space left for this upload and did not store it; retry later or delete files you no longer need',
  507
)
