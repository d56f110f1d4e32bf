import createError from '@fastify/error'

// Refused credentials are expected traffic, not bugs: no stack trace is
// captured, which keeps a flood of refusals as cheap as the refusal itself.
const noStack = false

export const MissingCredentialsError = createError<'UPFRONT_UNAUTHORIZED', 401, []>(
  'UPFRONT_UNAUTHORIZED',
  'Authentication required: send "Authorization: Bearer <token>" with an API token or a JWT, or use a presigned URL',
  401,
  Error,
  noStack
)

export const UnsupportedSchemeError = createError<'UPFRONT_UNAUTHORIZED', 401, []>(
  'UPFRONT_UNAUTHORIZED',
  'Only the Bearer authorization scheme is accepted: send "Authorization: Bearer <token>"',
  401,
  Error,
  noStack
)

/** The reason also goes into `WWW-Authenticate` as `error_description`, so it holds no `"` or `\`. */
export const InvalidTokenError = createError<'UPFRONT_UNAUTHORIZED', 401, [string]>(
  'UPFRONT_UNAUTHORIZED',
  'Invalid bearer token: %s',
  401,
  Error,
  noStack
)

/** For routes: the caller is known but may not do this, e.g. touch another principal's file. */
export const ForbiddenError = createError<'UPFRONT_FORBIDDEN', 403, [string]>(
  'UPFRONT_FORBIDDEN',
  'Forbidden: %s',
  403,
  Error,
  noStack
)

export const PresignedUrlInvalidError = createError<'UPFRONT_FORBIDDEN', 403, [string]>(
  'UPFRONT_FORBIDDEN',
  'This presigned URL is not valid for this request: %s; use the URL exactly as it was issued, or ask for a new one',
  403,
  Error,
  noStack
)

export const PresignedUrlExpiredError = createError<'UPFRONT_FORBIDDEN', 403, [string]>(
  'UPFRONT_FORBIDDEN',
  'This presigned URL expired at %s; ask for a new one',
  403,
  Error,
  noStack
)

export const PresignedMethodError = createError<'UPFRONT_FORBIDDEN', 403, [string]>(
  'UPFRONT_FORBIDDEN',
  'A presigned URL is only valid for PUT, not %s; send the upload with PUT',
  403,
  Error,
  noStack
)

export const CallerBodyTooLargeError = createError<'UPFRONT_BODY_TOO_LARGE', 413, [number, number, string]>(
  'UPFRONT_BODY_TOO_LARGE',
  'Content-Length of %d bytes exceeds the %d bytes %s; send a smaller body',
  413,
  Error,
  noStack
)

export const GrantMediaTypeError = createError<'UPFRONT_UNSUPPORTED_MEDIA_TYPE', 415, [string, string]>(
  'UPFRONT_UNSUPPORTED_MEDIA_TYPE',
  'Content-Type %s is not the one this presigned URL was issued for; send the body with Content-Type: %s',
  415,
  Error,
  noStack
)

export const AuthInvalidOptionError = createError<'UPFRONT_AUTH_INVALID_OPTION', number, [string, string]>(
  'UPFRONT_AUTH_INVALID_OPTION',
  'Invalid upfront-auth option "%s": %s',
  500,
  TypeError
)

export const InvalidGrantError = createError<'UPFRONT_INVALID_GRANT', number, [string]>(
  'UPFRONT_INVALID_GRANT',
  'Invalid upload grant: %s',
  500,
  TypeError
)

export const PresignNotConfiguredError = createError<'UPFRONT_PRESIGN_NOT_CONFIGURED', number, []>(
  'UPFRONT_PRESIGN_NOT_CONFIGURED',
  'Presigned uploads are not configured: register upfront-auth with presign.secret',
  500
)
