import createError from '@fastify/error'

// Client errors are expected traffic, not bugs: no stack trace is captured,
// which keeps a flood of refusals as cheap as the refusal itself.
const noStack = false

export const ExpectationFailedError = createError<'UPFRONT_EXPECTATION_FAILED', 417, [string]>(
  'UPFRONT_EXPECTATION_FAILED',
  'Unsupported expectation %s: this server only supports "100-continue"; retry the request without the Expect header',
  417,
  Error,
  noStack
)

export const BodyTooLargeError = createError<'UPFRONT_BODY_TOO_LARGE', 413, [number, number]>(
  'UPFRONT_BODY_TOO_LARGE',
  'Content-Length of %d bytes exceeds the %d-byte limit of this route; send a smaller body',
  413,
  Error,
  noStack
)

export const StreamTooLargeError = createError<'UPFRONT_BODY_TOO_LARGE', 413, [number]>(
  'UPFRONT_BODY_TOO_LARGE',
  'Request body exceeds the %d-byte limit of this route; send a smaller body',
  413,
  Error,
  noStack
)

export const UnsupportedMediaTypeError = createError<'UPFRONT_UNSUPPORTED_MEDIA_TYPE', 415, [string, string]>(
  'UPFRONT_UNSUPPORTED_MEDIA_TYPE',
  'Content-Type %s is not accepted by this route; send one of: %s',
  415,
  Error,
  noStack
)

export const RefusedBeforeBodyError = createError<'UPFRONT_REFUSED_BEFORE_BODY', 417, [number, string]>(
  'UPFRONT_REFUSED_BEFORE_BODY',
  'The request was refused with %d (%s) before its body was sent; fix the credentials, then send the request again',
  417,
  Error,
  noStack
)

export const InvalidOptionError = createError<'UPFRONT_INVALID_OPTION', number, [string, string]>(
  'UPFRONT_INVALID_OPTION',
  'Invalid upfront option "%s": %s',
  500,
  TypeError
)

export const AlreadyRegisteredError = createError<'UPFRONT_ALREADY_REGISTERED', number, []>(
  'UPFRONT_ALREADY_REGISTERED',
  'The upfront plugin is already registered on this server; register it once, at the root of the app',
  500
)
