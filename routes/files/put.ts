// PUT /files/<name>: the raw body, streamed to storage.
import type { FastifyPluginAsync } from 'fastify'
import { sha256Field } from 'upfront/http'
import { DigestMismatchError } from '../../errors.js'
import { evaluatePreconditions } from '../../plugins/storage/index.js'
import { audit, checkFreeSpace, expectedDigests, filePath, fileSchema, hasWritePreconditions, header, nameOf, ownerOf, preconditionsOf } from './common.js'
import type { FilesRoutesOptions } from './common.js'

const putRoute: FastifyPluginAsync<FilesRoutesOptions> = async (fastify, options) => {
  // Bodies are left to the handler, which streams them to storage.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

  fastify.put('/*', {
    config: { upfront: { maxBytes: options.maxUploadBytes } },
    schema: { response: { 201: fileSchema } }
  }, async function putFile (request, reply) {
    const name = nameOf(request)
    const owner = ownerOf(request)
    const digests = expectedDigests(request)
    const preconditions = preconditionsOf(request)

    // Every check that can be made from the headers is made before the
    // first read of the body, so the client is refused before it sends.
    if (hasWritePreconditions(preconditions)) evaluatePreconditions(preconditions, await fastify.storage.head(owner, name), 'write')
    await checkFreeSpace(fastify, request)

    const upload = await fastify.storage.begin(owner, name, {
      contentType: header(request, 'content-type') ?? 'application/octet-stream',
      md5: digests.md5 !== null
    })
    try {
      const written = await upload.write(request.raw)
      if (digests.sha256 !== null && !written.sha256.equals(digests.sha256)) throw new DigestMismatchError('Content-Digest')
      if (digests.md5 !== null && written.md5?.equals(digests.md5) !== true) throw new DigestMismatchError('Content-MD5')
      // Checked again at the commit, atomically with it.
      const file = await upload.commit(preconditions)
      audit(request, 'stored', file, 201)
      const path = filePath(fastify, name)
      return await reply.code(201)
        .header('location', options.publicUrl === null ? path : options.publicUrl + path)
        .header('etag', file.etag)
        .header('repr-digest', sha256Field(file.sha256))
        .send(file)
    } catch (error) {
      await upload.abort()
      throw error
    }
  })
}

export default putRoute
