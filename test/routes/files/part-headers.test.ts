import { PassThrough } from 'node:stream'
import t from 'tap'
import { watchPartHeaders } from '../../../routes/files/part-headers.js'

const body = Buffer.from([
  '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue with --xy in it\r\n',
  '--xyz\r\ncontent-disposition:form-data; name="f"; filename="e"f.txt"\r\nContent-Type: text/plain\r\n\r\n',
  '\r\n--xy not a delimiter\r\n\r\n',
  '\r\n--xyz\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n',
  '--xyz--\r\n'
].join(''))

t.test('every part\'s Content-Disposition, in order, however the body is cut into chunks', async (t) => {
  for (const size of [1, 2, 3, 5, 7, 16, 64, body.length]) {
    const stream = new PassThrough()
    const seen: string[] = []
    watchPartHeaders(stream, 'xyz', (value) => { seen.push(value) })
    for (let at = 0; at < body.length; at += size) stream.write(body.subarray(at, at + size))
    stream.end()
    await new Promise((resolve) => stream.on('end', resolve))
    t.same(seen, ['form-data; name="a"', 'form-data; name="f"; filename="e"f.txt"'], `chunks of ${size}`)
  }
})

t.test('a header section over 16 KiB is left to the parser', async (t) => {
  const padded = Buffer.concat([Buffer.from('--b\r\nX-Pad: '), Buffer.alloc(20_000, 97), Buffer.from('\r\nContent-Disposition: form-data; name="late"\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name="next"\r\n\r\ny\r\n--b--\r\n')])
  for (const size of [1000, padded.length]) {
    const stream = new PassThrough()
    const seen: string[] = []
    watchPartHeaders(stream, 'b', (value) => { seen.push(value) })
    for (let at = 0; at < padded.length; at += size) stream.write(padded.subarray(at, at + size))
    stream.end()
    await new Promise((resolve) => stream.on('end', resolve))
    t.same(seen, ['form-data; name="next"'], `chunks of ${size}`)
  }
})
