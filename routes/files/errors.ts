import createError from '@fastify/error'

export const InvalidNameError = createError<'UPFRONT_INVALID_NAME', 400, [string]>(
  'UPFRONT_INVALID_NAME',
  'Invalid file name: %s; use one or more "/"-separated segments of UTF-8 text, without control characters or backslashes',
  400
)

export const FileNotFoundError = createError<'UPFRONT_FILE_NOT_FOUND', 404, [string]>(
  'UPFRONT_FILE_NOT_FOUND',
  'No file named %s; list your files with GET /files',
  404
)

export const InvalidHeaderError = createError<'UPFRONT_INVALID_HEADER', 400, [string]>(
  'UPFRONT_INVALID_HEADER',
  'Invalid header: %s',
  400
)

export const FileExistsError = createError<'UPFRONT_PRECONDITION_FAILED', 412, [string]>(
  'UPFRONT_PRECONDITION_FAILED',
  'A file named %s already exists and If-None-Match: * forbids replacing it; choose another name or drop the header',
  412
)

export const EtagMismatchError = createError<'UPFRONT_PRECONDITION_FAILED', 412, [string]>(
  'UPFRONT_PRECONDITION_FAILED',
  'The file %s does not match If-Match (it changed or does not exist); fetch its current ETag and try again',
  412
)

export const RangeNotSatisfiableError = createError<'UPFRONT_RANGE_NOT_SATISFIABLE', 416, [number]>(
  'UPFRONT_RANGE_NOT_SATISFIABLE',
  'The requested range starts past the end of the file (%d bytes); ask for a range inside it',
  416
)

export const DigestMismatchError = createError<'UPFRONT_DIGEST_MISMATCH', 400, [string]>(
  'UPFRONT_DIGEST_MISMATCH',
  'The body does not match its %s; nothing was stored: send the file again',
  400
)

export const NotEnoughSpaceError = createError<'UPFRONT_INSUFFICIENT_STORAGE', 507, [number, number]>(
  'UPFRONT_INSUFFICIENT_STORAGE',
  'The upload declares %d bytes but only %d bytes of storage are free; try again later or send a smaller file',
  507
)

export const NoFilesError = createError<'UPFRONT_NO_FILES', 400, []>(
  'UPFRONT_NO_FILES',
  'The form holds no file part; send multipart/form-data with at least one file field',
  400
)

export const InvalidFormError = createError<'UPFRONT_INVALID_FORM', 400, [string]>(
  'UPFRONT_INVALID_FORM',
  'The multipart form cannot be read (%s); send multipart/form-data with a boundary parameter, each part delimited by it and the closing delimiter at the end',
  400
)

export const FormTooLargeError = createError<'UPFRONT_FORM_TOO_LARGE', 413, [string]>(
  'UPFRONT_FORM_TOO_LARGE',
  'The form holds %s, and nothing from it was stored; send fewer per request',
  413
)

export const InvalidQueryError = createError<'UPFRONT_INVALID_QUERY', 400, [string]>(
  'UPFRONT_INVALID_QUERY',
  'Invalid query: %s',
  400
)

export const FileBusyError = createError<'UPFRONT_FILE_BUSY', 503, [string]>(
  'UPFRONT_FILE_BUSY',
  'The file %s kept changing while it was being read; try again',
  503
)
