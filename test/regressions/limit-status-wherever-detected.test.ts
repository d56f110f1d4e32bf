// A body limit passed while the body streams was answered as whatever the
// reader made of the stream's error: a chunked form over the form's limit
// came back as 400 UPFRONT_INVALID_FORM. The limit's 413 must reach the
// client whoever was reading the body.
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { bearer, startService } from '../helpers/service.js'
import { exchange, json } from '../helpers/wire.js'

const KiB = 1024

/** A multipart/form-data body with these files. */
function formOf (files: Array<{ filename: string, data: Buffer }>): Buffer {
  const chunks: Buffer[] = []
  for (const { filename, data } of files) {
    chunks.push(Buffer.from(`--b\r\nContent-Disposition: form-data; name="f"; filename="${filename}"\r\n\r\n`), data, Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from('--b--\r\n'))
  return Buffer.concat(chunks)
}

t.test('the service: a chunked form over the form limit is a 413, one file too large or many files together', async (t) => {
  // Files up to 100 KiB; a form up to 100 KiB + 1 MiB of framing.
  const { port, files } = await startService(t, { MAX_UPLOAD_BYTES: String(100 * KiB) })
  const formLimit = 100 * KiB + 1024 * KiB
  const cases = [
    ['one file over its limit', formOf([{ filename: 'big.bin', data: Buffer.alloc(500 * KiB, 1) }]),
      'A file of the form exceeds the 102400-byte limit of this route; send a smaller body'],
    ['one file over the form limit', formOf([{ filename: 'huge.bin', data: Buffer.alloc(formLimit + KiB, 1) }]),
      `The request body exceeds the ${formLimit}-byte limit of this route; send a smaller body`],
    ['fifteen files of 90 KiB, each under its limit, together over it', formOf(Array.from({ length: 15 }, (_, i) => ({ filename: `part-${i}.bin`, data: Buffer.alloc(90 * KiB, i) }))),
      `The request body exceeds the ${formLimit}-byte limit of this route; send a smaller body`]
  ] as const
  for (const [what, body, message] of cases) {
    const result = await exchange(port, {
      head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=b', 'Transfer-Encoding: chunked'].join('\r\n'),
      body,
      chunked: true,
      send: 'now'
    })
    t.equal(result.status, 413, what)
    t.same(json(result), { statusCode: 413, code: 'UPFRONT_BODY_TOO_LARGE', error: 'Payload Too Large', message }, what)
    if (message.startsWith('The request body')) t.equal(result.headers.connection, 'close', `${what}: the rest of the body is not waited for`)
  }
  t.same(files(), [], 'nothing stored, no temporary file left')
})

t.test('a plugin app: whatever the reader makes of the stream error, the client gets the 413', async (t) => {
  const { app, port } = await startApp(t, { maxBytes: 64 * KiB }, (app) => {
    // A handler that turns any read failure into an error of its own.
    app.post('/rewrap', async (request) => {
      try {
        await pipeline(request.raw, new Writable({ write (_chunk, _encoding, done) { done() } }))
      } catch (error) {
        throw Object.assign(new Error('upload failed'), { statusCode: 400, code: 'APP_UPLOAD_FAILED', cause: error })
      }
      return { ok: true }
    })
    // And one that answers by itself, without rethrowing.
    app.post('/swallow', async (request, reply) => {
      try {
        await pipeline(request.raw, new Writable({ write (_chunk, _encoding, done) { done() } }))
      } catch {
        return await reply.code(500).send({ statusCode: 500, code: 'APP_FAILED', error: 'Internal Server Error', message: 'oops' })
      }
      return { ok: true }
    })
  })
  for (const path of ['/rewrap', '/swallow']) {
    const result = await exchange(port, {
      head: [`POST ${path} HTTP/1.1`, 'Host: x', 'Transfer-Encoding: chunked'].join('\r\n'),
      body: Buffer.alloc(256 * KiB),
      chunked: true,
      send: 'now'
    })
    t.equal(result.status, 413, path)
    t.same(json(result), {
      statusCode: 413,
      code: 'UPFRONT_BODY_TOO_LARGE',
      error: 'Payload Too Large',
      message: 'The request body exceeds the 65536-byte limit of this route; send a smaller body'
    }, path)
  }
  t.same(app.upfront.stats.refused, { 'too-large-while-streaming': 2 }, 'each counted once, under the limit\'s reason')
})
