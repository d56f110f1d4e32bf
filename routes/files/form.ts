// POST /files: the file parts of a multipart/form-data body, all or nothing.
import { finished } from 'node:stream'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { Multipart, MultipartFile } from '@fastify/multipart'
import { StreamTooLargeError } from 'upfront'
import { multipartBoundary, wellFormedFilename } from 'upfront/http'
import { DuplicateFileError, FormTooLargeError, InvalidFormError, MalformedFileNameError, NoFilesError } from '../../errors.js'
import { checkName, evaluatePreconditions } from '../../plugins/storage/index.js'
import type { Preconditions, StoredFile, Upload } from '../../plugins/storage/index.js'
import { audit, checkFreeSpace, fileSchema, hasWritePreconditions, ownerOf, preconditionsOf } from './common.js'
import type { FilesRoutesOptions } from './common.js'
import { watchPartHeaders } from './part-headers.js'

/** A form carrying a file of exactly the limit is a little larger than the file: its boundaries and part headers get this much room. */
const FORM_FRAMING_BYTES = 1024 * 1024
/** Most file parts in one form. */
const FORM_FILES = 100
/** Most other fields in one form (they are ignored). */
const FORM_FIELDS = 100

/** Aborts every upload, whatever happened to the others. */
async function abortAll (uploads: readonly Upload[]): Promise<void> {
  await Promise.allSettled(uploads.map(async (upload) => { await upload.abort() }))
}

const formRoute: FastifyPluginAsync<FilesRoutesOptions> = async (fastify, options) => {
  const { storage } = fastify
  const errors = fastify.multipartErrors
  const formLimit = Math.min(options.maxUploadBytes + FORM_FRAMING_BYTES, Number.MAX_SAFE_INTEGER)
  const limits = { fileSize: options.maxUploadBytes, files: FORM_FILES, fields: FORM_FIELDS, parts: Infinity }

  /** What the form parser's errors mean for the client. */
  function formError (error: Error, request: FastifyRequest): Error {
    // A file over its own limit is found first, whatever the client sent after it.
    if (error instanceof errors.RequestFileTooLargeError) return new StreamTooLargeError('A file of the form', limits.fileSize, 'of this route')
    // Otherwise the body stream's own error (its limit passed, the client
    // gone) is the cause of whatever the parser made of it.
    const bodyError = request.raw.errored
    if (bodyError != null) return bodyError
    if (error instanceof errors.FilesLimitError) return new FormTooLargeError(`more than ${limits.files} files`)
    if (error instanceof errors.FieldsLimitError) return new FormTooLargeError(`more than ${limits.fields} fields besides its files`)
    // Not among the classes @fastify/multipart exposes: matched by its code.
    if ((error as Error & { code?: string }).code === 'FST_INVALID_JSON_FIELD_ERROR') return new InvalidFormError('a field sent as application/json is not valid JSON')
    if (error instanceof errors.PrototypeViolationError) return new InvalidFormError('a field is named __proto__, which is not allowed; rename it')
    /* c8 ignore next -- made when the request closes before its end, which it does only destroyed with an error (client gone, limit passed, abortBody) that bodyError above returns first */
    if (error instanceof errors.PrematureCloseError) return new InvalidFormError('the body ended before the form\'s closing delimiter')
    // Busboy's own: a malformed or truncated form.
    return new InvalidFormError(error.message)
  }

  /** Refuses a file part whose name is bad, repeated, or taken against the request's preconditions: before its body is stored. */
  async function admitPart (part: MultipartFile, owner: string, names: Set<string>, preconditions: Preconditions, malformed: string | null): Promise<string> {
    if (malformed !== null) throw new MalformedFileNameError(malformed)
    const name = checkName(part.filename)
    if (names.has(name)) throw new DuplicateFileError(JSON.stringify(name))
    names.add(name)
    if (hasWritePreconditions(preconditions)) evaluatePreconditions(preconditions, await storage.head(owner, name), 'write')
    return name
  }

  fastify.post('/', {
    prefixTrailingSlash: 'no-slash',
    config: { upfront: { maxBytes: formLimit, contentTypes: ['multipart/form-data'] } },
    schema: { response: { 201: { type: 'object', properties: { files: { type: 'array', items: fileSchema } } } } }
  }, async function postFiles (request, reply) {
    const owner = ownerOf(request)
    // They apply to each file of the form.
    const preconditions = preconditionsOf(request)
    await checkFreeSpace(fastify, request)
    // Checked before the body moves; busboy would only find out once it arrives.
    const boundary = multipartBoundary(request.headers['content-type'])
    if (boundary === null) {
      throw new InvalidFormError('its Content-Type has no valid boundary parameter, such as multipart/form-data; boundary=----a1b2c3')
    }
    const uploads: Upload[] = []
    const names = new Set<string>()
    /** An error of the form's parser, as opposed to one of storage's or of the checks. */
    let formFailure: unknown = null
    const parts = request.parts({ limits })[Symbol.asyncIterator]()
    const nextPart = async (): Promise<IteratorResult<Multipart>> => {
      try {
        return await parts.next()
      } catch (error) {
        formFailure = error
        throw error
      }
    }
    // The first call starts the parser, which pipes the body from then on;
    // the raw part headers are watched beside it.
    const first = nextPart()
    let malformed: string | null = null
    watchPartHeaders(request.raw, boundary, (disposition) => {
      if (malformed === null && !wellFormedFilename(disposition)) malformed = disposition
    })
    try {
      // All or nothing: every part is written and checked before any is committed.
      for (let next = await first; next.done !== true; next = await nextPart()) {
        const part = next.value
        if (part.type !== 'file') continue
        // The parser's error for this part, even one it met before the
        // part reached this loop (while an earlier part was being written).
        finished(part.file, (error) => { if (error != null) formFailure = error })
        const name = await admitPart(part, owner, names, preconditions, malformed)
        const upload = await storage.begin(owner, name, { contentType: part.mimetype })
        uploads.push(upload)
        await upload.write(part.file)
      }
      if (uploads.length === 0) throw new NoFilesError()
      // Each commit checks the preconditions again, atomically with it.
      const files: StoredFile[] = []
      for (const upload of uploads) files.push(await upload.commit(preconditions))
      for (const file of files) audit(request, 'stored', file, 201)
      return await reply.code(201).send({ files })
    } catch (error) {
      await abortAll(uploads)
      // Storage never destroys a source (Upload.write's contract), so an
      // error of the part's stream is the parser's.
      if (error === formFailure) throw formError(error as Error, request)
      throw error
    }
  })
}

export default formRoute
