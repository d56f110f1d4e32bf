// Requests and bodies as they cross the wire, built once for every test.

/**
 * The head of a request: its request line, its Host line, then `lines`,
 * without the blank line that ends a head (`exchange` adds it; a raw socket
 * write adds `\r\n\r\n`). HTTP/1.1 and `Host: x` unless told otherwise.
 */
export function requestHead (method: string, target: string, lines: readonly string[] = [], { version = 'HTTP/1.1', host = 'x' } = {}): string {
  return [`${method} ${target} ${version}`, `Host: ${host}`, ...lines].join('\r\n')
}

/** A part of a multipart/form-data body: a field, or a file when it has a file name. */
export interface FormPart {
  name: string
  filename?: string
  type?: string
  data: Buffer
}

/** A multipart/form-data body (RFC 7578) of `parts`, delimited by `boundary`. */
export function multipartForm (parts: readonly FormPart[], boundary = 'upfront-boundary'): Buffer {
  const chunks: Buffer[] = []
  for (const part of parts) {
    const disposition = part.filename === undefined
      ? `form-data; name="${part.name}"`
      : `form-data; name="${part.name}"; filename="${part.filename}"`
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${part.type === undefined ? '' : `Content-Type: ${part.type}\r\n`}\r\n`), part.data, Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(chunks)
}
