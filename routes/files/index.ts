import { finished } from 'node:stream'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Multipart } from '@fastify/multipart'
import type { ByteRange, CommitConditions, FileMeta, PendingUpload } from '../../plugins/storage/types.js'
import { UploadTooLargeError } from '../../plugins/storage/errors.js'
import {
  EtagMismatchError,
  FileBusyError,
  FileExistsError,
  FileNotFoundError,
  FormTooLargeError,
  InvalidFormError,
  InvalidHeaderError,
  InvalidNameError,
  InvalidQueryError,
  DigestMismatchError,
  NoFilesError,
  NotEnoughSpaceError,
  RangeNotSatisfiableError
} from './errors.js'
import { attachment, digestField, entityTags, expectedDigests, formBoundary, parseRange, strongMatch, weakMatch } from './http.js'
import { filePath, nameProblem } from './names.js'

export interface FilesRoutesOptions {
  /** Largest upload, in bytes (a caller's own limit can only lower it). */
  maxUploadBytes: number
  /** Most file parts in one multipart request. Default 100. */
  maxFilesPerForm?: number
}

/** What a client is told about a file. */
export interface FileInfo {
  name: string
  size: number
  sha256: string
  contentType: string
  etag: string
  createdAt: string
}

const DEFAULT_LIST_LIMIT = 100
const FORM_FRAMING_BYTES = 1024 * 1024
/** Fields other than files that a form may hold (they are ignored). */
const FORM_FIELDS = 100
const MAX_LIST_LIMIT = 1000

function fileInfo (meta: FileMeta): FileInfo {
  return {
    name: meta.name,
    size: meta.size,
    sha256: meta.sha256,
    contentType: meta.contentType,
    etag: meta.etag,
    createdAt: meta.createdAt
  }
}

function checkedName (name: string): string {
  const problem = nameProblem(name)
  if (problem !== null) throw new InvalidNameError(problem)
  return name
}

function nameOf (request: FastifyRequest): string {
  return checkedName((request.params as { '*': string })['*'])
}

/** Routes behind the auth plugin always have a principal. */
function ownerOf (request: FastifyRequest): string {
  return request.principal as string
}

/** A request header; Node joins repeated ones (only Set-Cookie stays a list, and requests carry none). */
function header (request: FastifyRequest, name: string): string | undefined {
  return request.headers[name] as string | undefined
}

function tagsOf (request: FastifyRequest, name: 'if-match' | 'if-none-match'): string[] | null {
  const value = header(request, name)
  if (value === undefined) return null
  const tags = entityTags(value)
  if (tags === null) throw new InvalidHeaderError(`${name === 'if-match' ? 'If-Match' : 'If-None-Match'} must be * or a list of quoted entity tags`)
  return tags
}

/** Aborts every pending upload, whatever happened to the others. */
async function abortAll (uploads: readonly PendingUpload[]): Promise<void> {
  await Promise.allSettled(uploads.map(async (upload) => { await upload.abort() }))
}

const filesRoutes: FastifyPluginAsync<FilesRoutesOptions> = async (fastify, options) => {
  const storage = fastify.storage
  const maxFilesPerForm = options.maxFilesPerForm ?? 100

  function uploadLimit (request: FastifyRequest): number {
    return Math.min(options.maxUploadBytes, request.maxUploadBytes ?? Infinity)
  }

  /** Refuses, before the body, an upload that cannot fit in the free space left. */
  async function checkFreeSpace (request: FastifyRequest): Promise<void> {
    const declared = header(request, 'content-length')
    if (declared === undefined) return
    const free = await storage.freeBytes()
    if (free !== null && Number(declared) > free) throw new NotEnoughSpaceError(Number(declared), free)
  }

  // Raw uploads: bodies are left to the handler, which streams them to storage.
  fastify.register(async (raw) => {
    raw.removeAllContentTypeParsers()
    raw.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

    raw.put('/files/*', async function putFile (request, reply) {
      const name = nameOf(request)
      const owner = ownerOf(request)
      const digests = expectedDigests(header(request, 'content-digest'), header(request, 'content-md5'))
      if (typeof digests === 'string') throw new InvalidHeaderError(digests)
      const ifMatch = tagsOf(request, 'if-match')
      const ifNoneMatch = tagsOf(request, 'if-none-match')

      // Every check that can be made from the headers is made before the
      // first read of the body, so the client is refused before it sends.
      if (ifMatch !== null || ifNoneMatch !== null) {
        const current = await storage.head(owner, name)
        if (ifNoneMatch !== null && current !== null && weakMatch(ifNoneMatch, current.etag)) throw new FileExistsError(name)
        if (ifMatch !== null && (current === null || !strongMatch(ifMatch, current.etag))) throw new EtagMismatchError(name)
      }
      await checkFreeSpace(request)

      const upload = await storage.begin(owner, name, {
        contentType: header(request, 'content-type') ?? 'application/octet-stream',
        maxBytes: uploadLimit(request),
        md5: digests.md5 !== null
      })
      try {
        const written = await upload.write(request.raw)
        if (digests.sha256 !== null && !written.sha256.equals(digests.sha256)) throw new DigestMismatchError('Content-Digest')
        if (digests.md5 !== null && written.md5?.equals(digests.md5) !== true) throw new DigestMismatchError('Content-MD5')
        // Checked again at the commit, atomically with it.
        const conditions: CommitConditions = {}
        if (ifNoneMatch?.includes('*') === true) conditions.ifNoneMatch = true
        if (ifMatch !== null) conditions.ifMatch = ifMatch
        const meta = await upload.commit(conditions)
        return await reply.code(201)
          .header('location', filePath(name))
          .header('etag', meta.etag)
          .header('repr-digest', digestField(meta.sha256))
          .send(fileInfo(meta))
      } catch (error) {
        await upload.abort()
        throw error
      }
    })
  })

  // A form carrying a file of exactly the limit is a little larger than the
  // file: its boundaries and part headers get this much room on top.
  const formLimit = Math.min(options.maxUploadBytes + FORM_FRAMING_BYTES, Number.MAX_SAFE_INTEGER)
  fastify.post('/files', {
    config: { upfront: { maxBytes: formLimit, contentTypes: ['multipart/form-data'] } }
  }, async function postFiles (request, reply) {
    const owner = ownerOf(request)
    const limit = uploadLimit(request)
    await checkFreeSpace(request)
    const uploads: PendingUpload[] = []
    const names = new Set<string>()
    // Checked before the body moves; busboy would only find out once it arrives.
    if (formBoundary(request.headers['content-type']) === null) {
      throw new InvalidFormError('its Content-Type has no valid boundary parameter, such as multipart/form-data; boundary=----a1b2c3')
    }
    /** The error of the form's parser, as opposed to one of the storage's. */
    let formFailure: unknown = null
    // The files and fields limits are what count: no separate one on parts.
    const formLimits = { fileSize: limit, files: maxFilesPerForm, fields: FORM_FIELDS, parts: Infinity }
    const parts = request.parts({ limits: formLimits })[Symbol.asyncIterator]()
    const nextPart = async (): Promise<IteratorResult<Multipart>> => {
      try {
        return await parts.next()
      } catch (error) {
        formFailure = error
        throw error
      }
    }
    try {
      // All or nothing: every part is written and checked before any is committed.
      for (let next = await nextPart(); next.done !== true; next = await nextPart()) {
        const part = next.value
        if (part.type !== 'file') continue
        // The parser's error for this part, even one it met before the part
        // reached this loop (while an earlier part was being written).
        finished(part.file, (error) => { if (error != null) formFailure = error })
        const name = checkedName(part.filename)
        if (names.has(name)) throw new InvalidNameError(`the form holds two files named ${JSON.stringify(name)}`)
        names.add(name)
        const upload = await storage.begin(owner, name, { contentType: part.mimetype, maxBytes: limit })
        uploads.push(upload)
        await upload.write(part.file)
      }
      if (uploads.length === 0) throw new NoFilesError()
      const files: FileInfo[] = []
      for (const upload of uploads) files.push(fileInfo(await upload.commit()))
      return await reply.code(201).send({ files })
    } catch (error) {
      await abortAll(uploads)
      // A malformed or truncated form: the parser's own errors carry no
      // status (its limits do, and keep theirs).
      // Storage never destroys a source (PendingUpload.write's contract), so an
      // error of the part's stream is the parser's. A client that went away
      // gets nothing; its error is left as it is.
      if (error === formFailure && request.raw.socket.destroyed !== true) throw formError(error as Error & { code?: string }, formLimits)
      throw error
    }
  })

  async function sendFile (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const name = nameOf(request)
    const owner = ownerOf(request)
    // A file replaced between the metadata read and the open is read again,
    // so headers and bytes always belong to the same version.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const meta = await storage.head(owner, name)
      if (meta === null) throw new FileNotFoundError(JSON.stringify(name))
      const range = describeFile(request, reply, name, meta)
      if (range === 'not-modified') return await reply.code(304).send()
      if (request.method === 'HEAD') return await reply.send()
      const file = await storage.get(owner, name, range ?? undefined)
      if (file !== null && file.meta.etag === meta.etag) return await reply.send(file.stream)
      file?.stream.destroy()
    }
    throw new FileBusyError(JSON.stringify(name))
  }

  /** Sets the headers that describe the file; returns the range to send, null for all of it, or 'not-modified'. */
  function describeFile (request: FastifyRequest, reply: FastifyReply, name: string, meta: FileMeta): ByteRange | null | 'not-modified' {
    const modified = new Date(meta.createdAt)
    reply
      .header('etag', meta.etag)
      .header('last-modified', modified.toUTCString())
      .header('accept-ranges', 'bytes')
      .header('cache-control', 'private, no-cache')
      // A stored HTML or SVG file must never run in the service's origin.
      .header('content-disposition', attachment(name))
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'; sandbox")
      .header('repr-digest', digestField(meta.sha256))

    // RFC 9110 §13.2.2: If-None-Match first; If-Modified-Since only without it.
    const ifNoneMatch = tagsOf(request, 'if-none-match')
    const ifModifiedSince = header(request, 'if-modified-since')
    if (ifNoneMatch !== null
      ? weakMatch(ifNoneMatch, meta.etag)
      : ifModifiedSince !== undefined && Math.floor(modified.getTime() / 1000) <= Math.floor(Date.parse(ifModifiedSince) / 1000)) {
      return 'not-modified'
    }

    // If-Range: serve the range only if the file is still the one the client has.
    const ifRange = header(request, 'if-range')
    const rangeApplies = ifRange === undefined || ifRange === meta.etag || ifRange === modified.toUTCString()
    const range = rangeApplies ? parseRange(header(request, 'range'), meta.size) : { kind: 'none' as const }
    if (range.kind === 'unsatisfiable') {
      reply.header('content-range', `bytes */${meta.size}`)
      throw new RangeNotSatisfiableError(meta.size)
    }
    reply.type(meta.contentType)
    if (range.kind === 'none') {
      reply.code(200).header('content-length', meta.size)
      return null
    }
    reply.code(206)
      .header('content-range', `bytes ${range.range.start}-${range.range.end}/${meta.size}`)
      .header('content-length', range.range.end - range.range.start + 1)
    return range.range
  }

  fastify.route({ method: ['GET', 'HEAD'], url: '/files/*', exposeHeadRoute: false, handler: sendFile })

  fastify.delete('/files/*', async function deleteFile (request, reply) {
    const name = nameOf(request)
    if (!await storage.delete(ownerOf(request), name)) throw new FileNotFoundError(JSON.stringify(name))
    return await reply.code(204).send()
  })

  fastify.get('/files', async function listFiles (request) {
    const query = request.query as { limit?: string, cursor?: string }
    const limit = query.limit === undefined ? DEFAULT_LIST_LIMIT : Number(query.limit)
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new InvalidQueryError(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`)
    }
    if (query.cursor !== undefined && !isCursor(query.cursor)) {
      throw new InvalidQueryError('cursor must be the nextCursor of a previous page, as it was given')
    }
    const page = await storage.list(ownerOf(request), query.cursor === undefined ? { limit } : { limit, cursor: query.cursor })
    return { files: page.files.map(fileInfo), nextCursor: page.nextCursor }
  })
}

/** The form parser's errors, with a code and a message that says what to do. */
function formError (error: Error & { code?: string }, limits: { fileSize: number, files: number, fields: number }): Error {
  switch (error.code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return new UploadTooLargeError(limits.fileSize)
    case 'FST_FILES_LIMIT':
      return new FormTooLargeError(`more than ${limits.files} files`)
    case 'FST_FIELDS_LIMIT':
      return new FormTooLargeError(`more than ${limits.fields} fields besides its files`)
    case 'FST_INVALID_JSON_FIELD_ERROR':
      return new InvalidFormError('a field sent as application/json is not valid JSON')
    case 'FST_PROTO_VIOLATION':
      return new InvalidFormError('a field is named __proto__')
  }
  // Busboy's: a malformed or truncated form.
  return new InvalidFormError(error.message)
}

/** A cursor as `list` makes them: the base64url of a valid name. */
function isCursor (cursor: string): boolean {
  const name = Buffer.from(cursor, 'base64url').toString()
  return Buffer.from(name).toString('base64url') === cursor && nameProblem(name) === null
}

export default filesRoutes
