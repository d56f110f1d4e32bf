// Every error the upload service can answer or throw, once. (The
// expectation plugin's own are in the `upfront` package.) Each message says
// what to do. Client errors capture no stack trace: they are expected
// traffic, and a flood of them should cost no more than the refusal.
import createError from '@fastify/error'
import type { FastifyErrorConstructor } from '@fastify/error'

const noStack = false

type ClientError<C extends string, S extends number, A extends unknown[]> = FastifyErrorConstructor<{ code: C, statusCode: S }, A>

// --- Requests that are not HTTP, or not this API --------------------------

export const BadRequestError: ClientError<'UPFRONT_BAD_REQUEST', 400, [string]> = createError(
  'UPFRONT_BAD_REQUEST', 'The request is not valid HTTP/1.1 (%s); check what the client sends', 400, Error, noStack)

export const RequestTimeoutError: ClientError<'UPFRONT_REQUEST_TIMEOUT', 408, []> = createError(
  'UPFRONT_REQUEST_TIMEOUT', 'The request\'s header section did not arrive in time; send it at once', 408, Error, noStack)

export const HeadersTooLargeError: ClientError<'UPFRONT_HEADERS_TOO_LARGE', 431, []> = createError(
  'UPFRONT_HEADERS_TOO_LARGE', 'The request\'s header section is over the server\'s limit (16 KiB); send fewer or shorter headers', 431, Error, noStack)

export const BadUrlError: ClientError<'UPFRONT_BAD_URL', 400, [string]> = createError(
  'UPFRONT_BAD_URL', 'The URL %s holds a malformed percent-encoding; encode each path segment with encodeURIComponent', 400, Error, noStack)

export const RouteNotFoundError: ClientError<'UPFRONT_ROUTE_NOT_FOUND', 404, [string, string]> = createError(
  'UPFRONT_ROUTE_NOT_FOUND', 'No route %s %s: files are under /files/<name> (GET, HEAD, PUT, DELETE), listed and uploaded as forms at /files (GET, POST); presigned URLs come from POST /presign', 404, Error, noStack)

export const MethodNotAllowedError: ClientError<'UPFRONT_METHOD_NOT_ALLOWED', 405, [string, string, string]> = createError(
  'UPFRONT_METHOD_NOT_ALLOWED', '%s is not allowed on %s; use one of: %s', 405, Error, noStack)

export const InvalidHeaderError: ClientError<'UPFRONT_INVALID_HEADER', 400, [string]> = createError(
  'UPFRONT_INVALID_HEADER', 'Invalid header: %s', 400, Error, noStack)

export const InvalidQueryError: ClientError<'UPFRONT_INVALID_QUERY', 400, [string]> = createError(
  'UPFRONT_INVALID_QUERY', 'Invalid query: %s', 400, Error, noStack)

export const InvalidBodyError: ClientError<'UPFRONT_INVALID_BODY', 400, [string]> = createError(
  'UPFRONT_INVALID_BODY', 'Invalid request body: %s', 400, Error, noStack)

export const InternalError: ClientError<'UPFRONT_INTERNAL_ERROR', 500, []> = createError(
  'UPFRONT_INTERNAL_ERROR', 'The server failed to handle the request; try again later', 500)

// --- Credentials ------------------------------------------------------------

export const MissingCredentialsError: ClientError<'UPFRONT_UNAUTHORIZED', 401, []> = createError(
  'UPFRONT_UNAUTHORIZED', 'Authentication required: send "Authorization: Bearer <token>" with an API token or a JWT, or use a presigned URL', 401, Error, noStack)

export const UnsupportedSchemeError: ClientError<'UPFRONT_UNAUTHORIZED', 401, []> = createError(
  'UPFRONT_UNAUTHORIZED', 'Only the Bearer authorization scheme is accepted: send "Authorization: Bearer <token>"', 401, Error, noStack)

/** The reason also goes into `WWW-Authenticate` as `error_description`. */
export const InvalidTokenError: ClientError<'UPFRONT_UNAUTHORIZED', 401, [string]> = createError(
  'UPFRONT_UNAUTHORIZED', 'Invalid bearer token: %s', 401, Error, noStack)

export const PresignedUrlInvalidError: ClientError<'UPFRONT_FORBIDDEN', 403, [string]> = createError(
  'UPFRONT_FORBIDDEN', 'This presigned URL is not valid for this request: %s; use the URL exactly as it was issued, or ask for a new one', 403, Error, noStack)

export const PresignedUrlExpiredError: ClientError<'UPFRONT_FORBIDDEN', 403, [string]> = createError(
  'UPFRONT_FORBIDDEN', 'This presigned URL expired at %s; ask for a new one', 403, Error, noStack)

export const PresignedMethodError: ClientError<'UPFRONT_FORBIDDEN', 403, [string]> = createError(
  'UPFRONT_FORBIDDEN', 'A presigned URL is only valid for PUT, not %s; send the upload with PUT', 403, Error, noStack)

export const GrantMediaTypeError: ClientError<'UPFRONT_UNSUPPORTED_MEDIA_TYPE', 415, [string, string]> = createError(
  'UPFRONT_UNSUPPORTED_MEDIA_TYPE', 'Content-Type %s is not the one this presigned URL was issued for; send the body with Content-Type: %s', 415, Error, noStack)

export const KeysUnavailableError: FastifyErrorConstructor<{ code: 'UPFRONT_AUTH_UNAVAILABLE', statusCode: 503 }, [{ cause: unknown }]> = createError(
  'UPFRONT_AUTH_UNAVAILABLE', 'The keys that verify your token cannot be fetched from the identity provider right now; retry later', 503)

// --- Files ------------------------------------------------------------------

export const InvalidNameError: ClientError<'UPFRONT_INVALID_NAME', 400, [string]> = createError(
  'UPFRONT_INVALID_NAME', 'Invalid file name: %s; use one or more "/"-separated segments of UTF-8 text, without control characters or backslashes', 400, Error, noStack)

export const FileNotFoundError: ClientError<'UPFRONT_FILE_NOT_FOUND', 404, [string]> = createError(
  'UPFRONT_FILE_NOT_FOUND', 'No file named %s; list your files with GET /files', 404, Error, noStack)

/** RFC 9110 §13.1: a precondition of the request does not hold. Argument: which one, and what to do. */
export const PreconditionFailedError: ClientError<'UPFRONT_PRECONDITION_FAILED', 412, [string]> = createError(
  'UPFRONT_PRECONDITION_FAILED', 'Precondition failed, nothing was changed: %s', 412, Error, noStack)

export const RangeNotSatisfiableError: ClientError<'UPFRONT_RANGE_NOT_SATISFIABLE', 416, [number]> = createError(
  'UPFRONT_RANGE_NOT_SATISFIABLE', 'The requested range starts past the end of the file (%d bytes); ask for a range inside it', 416, Error, noStack)

export const DigestMismatchError: ClientError<'UPFRONT_DIGEST_MISMATCH', 400, [string]> = createError(
  'UPFRONT_DIGEST_MISMATCH', 'The body does not match its %s; nothing was stored: send the file again', 400, Error, noStack)

export const NoFilesError: ClientError<'UPFRONT_NO_FILES', 400, []> = createError(
  'UPFRONT_NO_FILES', 'The form holds no file part; send multipart/form-data with at least one file field', 400, Error, noStack)

export const InvalidFormError: ClientError<'UPFRONT_INVALID_FORM', 400, [string]> = createError(
  'UPFRONT_INVALID_FORM', 'The multipart form cannot be read (%s); send multipart/form-data with a boundary parameter, each part delimited by it and the closing delimiter at the end', 400, Error, noStack)

export const MalformedFileNameError: ClientError<'UPFRONT_INVALID_FORM', 400, [string]> = createError(
  'UPFRONT_INVALID_FORM', 'A part\'s file name is not a valid quoted string (Content-Disposition: %s), so it cannot be read whole; send a " inside a file name as \\" (or %%22, as browsers do)', 400, Error, noStack)

export const DuplicateFileError: ClientError<'UPFRONT_DUPLICATE_FILE', 400, [string]> = createError(
  'UPFRONT_DUPLICATE_FILE', 'The form holds two files named %s; give each file of a form its own name, or send them in separate requests', 400, Error, noStack)

export const FormTooLargeError: ClientError<'UPFRONT_FORM_TOO_LARGE', 413, [string]> = createError(
  'UPFRONT_FORM_TOO_LARGE', 'The form holds %s, and nothing from it was stored; send fewer per request', 413, Error, noStack)

export const InvalidCursorError: ClientError<'UPFRONT_INVALID_QUERY', 400, []> = createError(
  'UPFRONT_INVALID_QUERY', 'Invalid query: cursor must be the nextCursor of a previous page, as it was given', 400, Error, noStack)

export const FileBusyError: ClientError<'UPFRONT_FILE_BUSY', 503, [string]> = createError(
  'UPFRONT_FILE_BUSY', 'The file %s kept changing while it was being read; try again', 503, Error, noStack)

export const NotEnoughSpaceError: ClientError<'UPFRONT_INSUFFICIENT_STORAGE', 507, [number, number]> = createError(
  'UPFRONT_INSUFFICIENT_STORAGE', 'The upload declares %d bytes but only %d bytes of storage are free; try again later or send a smaller file', 507, Error, noStack)

export const InsufficientStorageError: FastifyErrorConstructor<{ code: 'UPFRONT_INSUFFICIENT_STORAGE', statusCode: 507 }, [{ cause: unknown }]> = createError(
  'UPFRONT_INSUFFICIENT_STORAGE', 'The server has no space left for this upload and did not store it; retry later or delete files you no longer need', 507)

export const StorageUnavailableError: FastifyErrorConstructor<{ code: 'UPFRONT_STORAGE_UNAVAILABLE', statusCode: 503 }, [{ cause: unknown }]> = createError(
  'UPFRONT_STORAGE_UNAVAILABLE', 'The storage cannot be reached right now and nothing was stored or changed; retry later', 503)

export const StorageBusyError: FastifyErrorConstructor<{ code: 'UPFRONT_STORAGE_BUSY', statusCode: 503 }, [string]> = createError(
  'UPFRONT_STORAGE_BUSY', 'The file %s is being changed by many writers at once and nothing was stored; retry later', 503)

export const ShuttingDownError: ClientError<'UPFRONT_SHUTTING_DOWN', 503, []> = createError(
  'UPFRONT_SHUTTING_DOWN', 'This server is shutting down and did not store or change anything for this request; send it again', 503, Error, noStack)

export const OverloadedError: ClientError<'UPFRONT_OVERLOADED', 503, []> = createError(
  'UPFRONT_OVERLOADED', 'This server is overloaded and refused the request before its body; retry after the delay in Retry-After', 503, Error, noStack)

export const UploadTooSlowError: ClientError<'UPFRONT_UPLOAD_TOO_SLOW', 408, [number]> = createError(
  'UPFRONT_UPLOAD_TOO_SLOW', 'The upload sent less than %d bytes per second for a minute and was cut; nothing was stored: send it again over a faster link', 408, Error, noStack)

export const MetricsUnauthorizedError: ClientError<'UPFRONT_UNAUTHORIZED', 401, []> = createError(
  'UPFRONT_UNAUTHORIZED', 'The metrics need the metrics token: send "Authorization: Bearer <METRICS_TOKEN>"', 401, Error, noStack)

// --- Configuration and programming errors (thrown at start-up, never answered) ----

/** The storage cannot be used at start-up. Argument: what is wrong and which setting to change. */
export const StorageStartError: FastifyErrorConstructor<{ code: 'UPFRONT_STORAGE_START' }, [string]> = createError(
  'UPFRONT_STORAGE_START', '%s', 500)

export const InvalidConfigError: FastifyErrorConstructor<{ code: 'UPFRONT_INVALID_CONFIG' }, [string]> = createError(
  'UPFRONT_INVALID_CONFIG', 'Invalid configuration:\n%s', 500)

export const AuthInvalidOptionError: FastifyErrorConstructor<{ code: 'UPFRONT_AUTH_INVALID_OPTION' }, [string, string]> = createError(
  'UPFRONT_AUTH_INVALID_OPTION', 'Invalid upfront-auth option "%s": %s', 500, TypeError)

/** Why a configured public key cannot verify tokens. */
export const UnusableKeyError: FastifyErrorConstructor<{ code: 'UPFRONT_UNUSABLE_KEY' }, [string]> = createError(
  'UPFRONT_UNUSABLE_KEY', '%s', 500, TypeError)

export const InvalidGrantError: FastifyErrorConstructor<{ code: 'UPFRONT_INVALID_GRANT' }, [string]> = createError(
  'UPFRONT_INVALID_GRANT', 'Invalid upload grant: %s', 500, TypeError)

export const PresignNotConfiguredError: FastifyErrorConstructor<{ code: 'UPFRONT_PRESIGN_NOT_CONFIGURED' }, []> = createError(
  'UPFRONT_PRESIGN_NOT_CONFIGURED', 'Presigned uploads are not configured: register upfront-auth with presign.secret', 500)

/**
 * The server errors a client may see as they are (status, code, message):
 * each says something true and useful without internals. Any other error
 * of 500 or more is logged and answered as `InternalError`.
 */
export const EXPOSED_SERVER_ERRORS: ReadonlySet<string> = new Set([
  'UPFRONT_AUTH_UNAVAILABLE',
  'UPFRONT_FILE_BUSY',
  'UPFRONT_INSUFFICIENT_STORAGE',
  'UPFRONT_OVERLOADED',
  'UPFRONT_SHUTTING_DOWN',
  'UPFRONT_STORAGE_BUSY',
  'UPFRONT_STORAGE_UNAVAILABLE'
])
