// Inputs that were silently changed: a form file name with a raw quote was
// stored cut at the quote; /presign dropped unknown fields and refused
// "Application/PDF" (media types are case-insensitive, RFC 9110 §8.3.1);
// NODE_ENV=prod silently meant development, with a random token.
import t from 'tap'
import { loadConfig } from '../../config.js'
import { bearer, startService } from '../helpers/service.js'
import { exchange, json } from '../helpers/wire.js'

async function post (port: number, disposition: string): Promise<ReturnType<typeof json>> {
  const body = Buffer.from(`--b\r\nContent-Disposition: ${disposition}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n`)
  const answer = await exchange(port, {
    head: ['POST /files HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: multipart/form-data; boundary=b', `Content-Length: ${body.length}`].join('\r\n'),
    body,
    send: 'now'
  })
  return { status: answer.status, ...(json(answer) as object) }
}

t.test('a form file name is kept whole, or refused when it cannot be read whole', async (t) => {
  const { port, files } = await startService(t)
  t.match(await post(port, 'form-data; name="f"; filename="a\\"b.txt"'), { status: 201, files: [{ name: 'a"b.txt' }] }, 'an escaped quote (Go, RFC 7578)')
  t.match(await post(port, 'form-data; name="f"; filename="c%22d.txt"'), { status: 201, files: [{ name: 'c%22d.txt' }] }, 'as browsers and curl send it: kept as sent')
  const stored = files().length
  t.same(await post(port, 'form-data; name="f"; filename="e"f.txt"'), {
    status: 400,
    statusCode: 400,
    code: 'UPFRONT_INVALID_FORM',
    error: 'Bad Request',
    message: 'A part\'s file name is not a valid quoted string (Content-Disposition: form-data; name="f"; filename="e"f.txt"), so it cannot be read whole; send a " inside a file name as \\" (or %22, as browsers do)'
  }, 'a raw quote: refused, not cut')
  t.equal(files().length, stored, 'nothing stored')
  t.match(await post(port, 'form-data; name="f"; filename=plain.txt'), { status: 201, files: [{ name: 'plain.txt' }] }, 'a token needs no quotes')
})

async function presign (port: number, body: object): Promise<{ status: number, body: Record<string, unknown> }> {
  const bytes = Buffer.from(JSON.stringify(body))
  const answer = await exchange(port, {
    head: ['POST /presign HTTP/1.1', 'Host: x', bearer('alice'), 'Content-Type: application/json', `Content-Length: ${bytes.length}`].join('\r\n'),
    body: bytes,
    send: 'now'
  })
  return { status: answer.status, body: json(answer) as Record<string, unknown> }
}

t.test('/presign refuses fields it does not take, and reads media types in any case', async (t) => {
  const { port } = await startService(t)
  const unknown = await presign(port, { name: 'a.pdf', maxbytes: 10 })
  t.equal(unknown.status, 400)
  t.same(unknown.body, {
    statusCode: 400,
    code: 'FST_ERR_VALIDATION',
    error: 'Bad Request',
    message: 'The body has a field "maxbytes" that this route does not take; remove it (see the HTTP API in the README)'
  })
  const typed = await presign(port, { name: 'a.pdf', contentType: 'Application/PDF' })
  t.equal(typed.status, 201)
  t.equal(typed.body.contentType, 'application/pdf', 'kept in lower case')
  const path = typed.body.path as string
  for (const type of ['application/pdf', 'APPLICATION/Pdf; charset=binary']) {
    const upload = await exchange(port, { head: [`PUT ${path} HTTP/1.1`, 'Host: x', `Content-Type: ${type}`, 'Content-Length: 1'].join('\r\n'), body: Buffer.from('x'), send: 'now' })
    t.equal(upload.status, 201, `uploaded as ${type}`)
  }
  const invalid = await presign(port, { name: 'a.pdf', contentType: 'pdf' })
  t.same(invalid.body, {
    statusCode: 400,
    code: 'UPFRONT_INVALID_BODY',
    error: 'Bad Request',
    message: 'Invalid request body: contentType "pdf" is not a media type; send type/subtype without parameters, such as "application/pdf"'
  })
})

t.test('NODE_ENV: an unknown value is refused, not taken for development', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'prod' }), {
    code: 'UPFRONT_INVALID_CONFIG',
    message: 'Invalid configuration:\nNODE_ENV: expected production, development or test, got "prod"'
  })
  t.equal(loadConfig({ NODE_ENV: 'test' }).nodeEnv, 'test')
})
