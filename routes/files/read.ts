// GET and HEAD /files/<name>: the file, a range of it, or 304.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { attachment, httpDate, parseRange, sha256Field } from 'upfront/http'
import type { ByteRange } from 'upfront/http'
import { FileBusyError, FileNotFoundError, RangeNotSatisfiableError } from '../../errors.js'
import { evaluatePreconditions } from '../../plugins/storage/index.js'
import type { StoredFile } from '../../plugins/storage/index.js'
import { header, nameOf, ownerOf, preconditionsOf } from './common.js'

/** A file replaced between reading its metadata and opening it is read again, at most this many times. */
const READ_ATTEMPTS = 3

/** Sets the headers that describe the file. */
function describe (reply: FastifyReply, name: string, file: StoredFile, modified: Date): void {
  reply
    .header('etag', file.etag)
    .header('last-modified', modified.toUTCString())
    .header('accept-ranges', 'bytes')
    .header('cache-control', 'private, no-cache')
    // A stored HTML or SVG file must never run in the service's origin.
    .header('content-disposition', attachment(name))
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', "default-src 'none'; sandbox")
    .header('repr-digest', sha256Field(file.sha256))
}

/** The range to send (RFC 9110 §14.1.2, §13.1.5 If-Range), null for all of it; sets the status and length headers. */
function selectRange (request: FastifyRequest, reply: FastifyReply, file: StoredFile, modified: Date): ByteRange | null {
  // If-Range: the range only if the file is still the one the client has
  // (an entity tag compared strongly, or the exact modification date).
  const ifRange = header(request, 'if-range')
  const rangeApplies = ifRange === undefined || ifRange === file.etag ||
    (!ifRange.startsWith('"') && !ifRange.startsWith('W/') && httpDate(ifRange) === Math.floor(modified.getTime() / 1000))
  const range = rangeApplies ? parseRange(header(request, 'range'), file.size) : { kind: 'none' as const }
  if (range.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${file.size}`)
    throw new RangeNotSatisfiableError(file.size)
  }
  reply.type(file.contentType)
  if (range.kind === 'none') {
    reply.code(200).header('content-length', file.size)
    return null
  }
  reply.code(206)
    .header('content-range', `bytes ${range.range.start}-${range.range.end}/${file.size}`)
    .header('content-length', range.range.end - range.range.start + 1)
  return range.range
}

const readRoutes: FastifyPluginAsync = async (fastify) => {
  const { storage } = fastify

  async function sendFile (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const name = nameOf(request)
    const owner = ownerOf(request)
    const preconditions = preconditionsOf(request)
    // A file replaced between the metadata read and the open is read again,
    // so headers and bytes always belong to the same version.
    for (let attempt = 1; attempt <= READ_ATTEMPTS; attempt++) {
      const file = await storage.head(owner, name)
      // If-Match on a missing file is a failed precondition (412), not a 404.
      const outcome = evaluatePreconditions(preconditions, file, 'read')
      if (file === null) throw new FileNotFoundError(JSON.stringify(name))
      const modified = new Date(file.createdAt)
      describe(reply, name, file, modified)
      if (outcome === 'not-modified') return await reply.code(304).send()
      const range = selectRange(request, reply, file, modified)
      if (request.method === 'HEAD') return await reply.send()
      const content = await storage.get(owner, name, range ?? undefined)
      if (content !== null && content.file.etag === file.etag) return await reply.send(content.stream)
      content?.stream.destroy()
    }
    throw new FileBusyError(JSON.stringify(name))
  }

  fastify.route({ method: ['GET', 'HEAD'], url: '/*', exposeHeadRoute: false, handler: sendFile })
}

export default readRoutes
