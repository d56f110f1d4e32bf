// The raw header sections of a multipart body's parts, seen as the body
// flows to the form parser, for what the parser cannot tell: busboy keeps
// a file name cut at an unescaped quote without a word.
import type { Readable } from 'node:stream'

/** Longest part header section looked at; a longer one is left to the parser's own limits. */
const MAX_HEADER_BYTES = 16 * 1024

/**
 * Watches `body` (a multipart/form-data body with `boundary`) and calls
 * `onDisposition` with each part's `Content-Disposition` value, in order.
 * Content is only searched for the next delimiter, never copied.
 */
export function watchPartHeaders (body: Readable, boundary: string, onDisposition: (value: string) => void): void {
  const delimiter = Buffer.from(`\r\n--${boundary}`)
  // The last bytes of the previous chunk, where a delimiter may begin. The
  // body starts with a delimiter without the CRLF before it.
  let tail: Buffer = Buffer.from('\r\n')
  /** The header section being collected, or null while in content. */
  let header: Buffer | null = null

  const collect = (data: Buffer): void => {
    let rest = data
    while (rest.length > 0) {
      if (header === null) {
        // A delimiter across the previous chunk's end and this one's start.
        const seam = Buffer.concat([tail, rest.subarray(0, delimiter.length - 1)])
        const inSeam = seam.indexOf(delimiter)
        const inRest = inSeam === -1 ? rest.indexOf(delimiter) : -1
        if (inSeam === -1 && inRest === -1) {
          const keep = delimiter.length - 1
          tail = Buffer.from(rest.length >= keep ? rest.subarray(rest.length - keep) : Buffer.concat([tail, rest]).subarray(-keep))
          return
        }
        rest = inSeam !== -1 ? rest.subarray(inSeam + delimiter.length - tail.length) : rest.subarray(inRest + delimiter.length)
        tail = Buffer.alloc(0)
        header = Buffer.alloc(0)
        continue
      }
      const joined: Buffer = Buffer.concat([header, rest])
      const end = joined.indexOf('\r\n\r\n')
      if (end === -1) {
        header = joined.length > MAX_HEADER_BYTES ? null : joined
        return
      }
      const disposition = end > MAX_HEADER_BYTES ? null : /\r\ncontent-disposition[ \t]*:[ \t]*([^\r\n]*)/i.exec(joined.subarray(0, end).toString('latin1'))
      if (disposition != null) onDisposition(disposition[1] as string)
      rest = joined.subarray(end + 4)
      header = null
    }
  }
  body.on('data', collect)
}
