// The header grammar (plugins/upfront/lib/http.ts, `upfront/http`): a table
// per export, each row a value and what the reader makes of it.
import t from 'tap'
import {
  acceptsMediaType,
  attachment,
  compileMediaTypes,
  contentLength,
  contentMd5,
  digestFields,
  entityTags,
  httpDate,
  isMediaRange,
  isMediaType,
  mediaTypeOf,
  mediaTypeParameter,
  multipartBoundary,
  parseRange,
  sha256Field,
  strongMatch,
  weakMatch,
  wellFormedFilename
} from 'upfront/http'
import type { RangeRequest } from 'upfront/http'

t.test('contentLength', async (t) => {
  const cases: Array<[{ 'content-length'?: string }, number | null]> = [
    [{}, null],
    [{ 'content-length': undefined }, null],
    [{ 'content-length': '0' }, 0],
    [{ 'content-length': '1024' }, 1024],
    [{ 'content-length': '10995116277760' }, 10995116277760]
  ]
  for (const [headers, expected] of cases) t.equal(contentLength(headers), expected, JSON.stringify(headers))
})

t.test('isMediaType and isMediaRange', async (t) => {
  // [value, a media type, a media range]
  const cases: Array<[string, boolean, boolean]> = [
    ['image/png', true, true],
    ['IMAGE/PNG', true, true],
    ['application/vnd.api+json', true, true],
    ["a!#$%&'*+.^_`|~-/b", true, true],
    // `*` is a tchar (RFC 9110 §5.6.2), but type/* is a range, never a type.
    ['image/*', false, true],
    ['IMAGE/*', false, true],
    ['*/*', false, true],
    ['image', false, false],
    ['image/', false, false],
    ['/png', false, false],
    ['*', false, false],
    ['image/png; charset=x', false, false],
    ['image/*; q=1', false, false],
    ['text /plain', false, false],
    [' image/png', false, false],
    ['image/* ', false, false],
    ['image/png/x', false, false],
    ['', false, false]
  ]
  for (const [value, type, range] of cases) {
    t.equal(isMediaType(value), type, `isMediaType(${JSON.stringify(value)})`)
    t.equal(isMediaRange(value), range, `isMediaRange(${JSON.stringify(value)})`)
  }
})

t.test('mediaTypeOf', async (t) => {
  const cases: Array<[string, string]> = [
    ['image/png', 'image/png'],
    ['Image/PNG; charset=binary', 'image/png'],
    [' text/plain ;charset=utf-8', 'text/plain'],
    ['multipart/form-data; boundary=x', 'multipart/form-data'],
    ['nonsense', 'nonsense'],
    ['', '']
  ]
  for (const [contentType, expected] of cases) t.equal(mediaTypeOf(contentType), expected, contentType)
})

t.test('compileMediaTypes and acceptsMediaType', async (t) => {
  t.ok(acceptsMediaType(compileMediaTypes(['*/*']), 'text/plain; charset=utf-8'), '*/* takes any type')
  t.notOk(acceptsMediaType(compileMediaTypes(['*/*']), undefined), 'but not none')
  const matcher = compileMediaTypes(['image/*', 'Application/PDF'])
  t.same([...matcher.exact], ['application/pdf'], 'types, lower-cased')
  t.same(matcher.families, ['image/'], 'type/* families, as prefixes')
  t.equal(matcher.description, 'image/*, Application/PDF', 'the list as configured')
  const cases: Array<[string | undefined, boolean]> = [
    ['image/png', true],
    ['IMAGE/Svg+XML; charset=utf-8', true],
    ['application/pdf', true],
    ['application/pdf; x=y', true],
    ['image/', false],
    ['image', false],
    ['imagex/png', false],
    ['application/pdfx', false],
    ['text/html', false],
    [undefined, false]
  ]
  for (const [contentType, expected] of cases) t.equal(acceptsMediaType(matcher, contentType), expected, String(contentType))
})

t.test('mediaTypeParameter', async (t) => {
  const cases: Array<[string | undefined, string, string | null]> = [
    ['text/plain; charset=utf-8', 'charset', 'utf-8'],
    ['text/plain; CHARSET=utf-8', 'charset', 'utf-8'],
    ['text/plain; charset=utf-8', 'Charset', 'utf-8'],
    ['text/plain;charset="utf-8"', 'charset', 'utf-8'],
    ['a/b; x="a\\"b"', 'x', 'a"b'],
    ['a/b; x="a\\\\b"', 'x', 'a\\b'],
    ['a/b; x = 1 ; y=2', 'y', '2'],
    ['a/b; x=1; x=2', 'x', '1'],
    ['a/b; y="x=1"; x=2', 'x', '2'],
    ['a/b; xx=1', 'x', null],
    ['a/b; x=', 'x', null],
    ['a/b; x="unterminated', 'x', null],
    ['a/b', 'x', null],
    [undefined, 'x', null]
  ]
  for (const [contentType, name, expected] of cases) t.equal(mediaTypeParameter(contentType, name), expected, `${String(contentType)} ${name}`)
})

t.test('multipartBoundary', async (t) => {
  const cases: Array<[string | undefined, string | null]> = [
    ['multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW', '----WebKitFormBoundary7MA4YWxkTrZu0gW'],
    ['multipart/form-data;boundary=abc', 'abc'],
    ['multipart/form-data; charset=utf-8; BOUNDARY = abc', 'abc'],
    ['multipart/form-data; boundary="with space:and?/=" ; x=y', 'with space:and?/='],
    ['multipart/form-data; boundary="a\\"b"', null],
    ['multipart/form-data; boundary="a\\bc"', 'abc'],
    ['multipart/form-data; boundary=' + 'x'.repeat(70), 'x'.repeat(70)],
    ['multipart/form-data; boundary=' + 'x'.repeat(71), null],
    ['multipart/form-data; boundary=""', null],
    ['multipart/form-data; boundary="ends with space "', null],
    ['multipart/form-data; boundary=a;b', 'a'],
    ['multipart/form-data; boundary=', null],
    ['multipart/form-data; xboundary=abc', null],
    ['multipart/form-data; boundary=abc; boundary=def', 'abc'],
    ['multipart/form-data', null],
    [undefined, null]
  ]
  for (const [contentType, expected] of cases) t.equal(multipartBoundary(contentType), expected, String(contentType))
})

t.test('entityTags', async (t) => {
  const cases: Array<[string, string[] | null]> = [
    ['*', ['*']],
    [' * ', ['*']],
    ['"abc"', ['"abc"']],
    ['W/"abc"', ['W/"abc"']],
    ['""', ['""']],
    ['"a", W/"b" ,"c"', ['"a"', 'W/"b"', '"c"']],
    ['"a",', ['"a"']],
    // Empty list elements are ignored (RFC 9110 §5.6.1.2).
    ['"a", , "b"', ['"a"', '"b"']],
    [', "a"', ['"a"']],
    [',', null],
    ['"é"', ['"é"']],
    ['', null],
    ['abc', null],
    ['W/abc', null],
    ['w/"a"', null],
    ['"a', null],
    ['"a b"', null],
    ['"a" "b"', null],
    ['"a"b"', null],
    ['*, "a"', null]
  ]
  for (const [value, expected] of cases) t.same(entityTags(value), expected, JSON.stringify(value))
})

t.test('weakMatch and strongMatch', async (t) => {
  // [tags, current entity tag, weak comparison, strong comparison]
  const cases: Array<[string[], string, boolean, boolean]> = [
    [['"a"'], '"a"', true, true],
    [['W/"a"'], '"a"', true, false],
    [['"a"'], 'W/"a"', true, false],
    [['W/"a"'], 'W/"a"', true, false],
    [['"b"'], '"a"', false, false],
    [['"b"', '"a"'], '"a"', true, true],
    [['"b"', 'W/"a"'], '"a"', true, false],
    [['*'], '"a"', true, true],
    [['*'], 'W/"a"', true, true],
    [[], '"a"', false, false]
  ]
  for (const [tags, etag, weak, strong] of cases) {
    t.equal(weakMatch(tags, etag), weak, `weak: ${tags.join(', ')} ~ ${etag}`)
    t.equal(strongMatch(tags, etag), strong, `strong: ${tags.join(', ')} ~ ${etag}`)
  }
})

t.test('httpDate', async (t) => {
  const cases: Array<[string, number | null]> = [
    ['Sun, 06 Nov 1994 08:49:37 GMT', 784111777],
    ['Sunday, 06-Nov-94 08:49:37 GMT', 784111777],
    // asctime has no zone: it is UTC, whatever the machine's.
    ['Sun Nov  6 08:49:37 1994', 784111777],
    ['Thu, 31 Feb 1994 08:49:37 GMT', null],
    ['Sun, 06 Nov 1994 24:49:37 GMT', null],
    ['2024-01-01T00:00:00', null],
    ['Sun, 06 Nov 1994 08:49:37 CET', null],
    ['Thu, 01 Jan 1970 00:00:00 GMT', 0],
    [new Date(1_700_000_000_999).toUTCString(), 1_700_000_000],
    ['not a date', null],
    ['', null]
  ]
  for (const [value, expected] of cases) t.equal(httpDate(value), expected, value)
})

t.test('parseRange', async (t) => {
  const none: RangeRequest = { kind: 'none' }
  const unsatisfiable: RangeRequest = { kind: 'unsatisfiable' }
  const range = (start: number, end: number): RangeRequest => ({ kind: 'range', range: { start, end } })
  const cases: Array<[string | undefined, number, RangeRequest]> = [
    [undefined, 20, none],
    ['bytes=0-4', 20, range(0, 4)],
    ['bytes=15-', 20, range(15, 19)],
    ['bytes=-3', 20, range(17, 19)],
    ['bytes=-100', 20, range(0, 19)],
    ['bytes=18-100', 20, range(18, 19)],
    ['bytes=19-19', 20, range(19, 19)],
    ['BYTES=0-0', 20, range(0, 0)],
    ['bytes= 0-4 ', 20, range(0, 4)],
    ['bytes=5-2', 20, none],
    ['bytes=0-1,4-5', 20, none],
    ['items=0-1', 20, none],
    ['bytes=-', 20, none],
    ['bytes=abc', 20, none],
    ['bytes=20-', 20, unsatisfiable],
    ['bytes=-0', 20, unsatisfiable],
    ['bytes=-1', 0, unsatisfiable],
    ['bytes=0-', 0, unsatisfiable],
    ['bytes=0-0', 0, unsatisfiable]
  ]
  for (const [value, size, expected] of cases) t.same(parseRange(value, size), expected, `${String(value)} of ${size} bytes`)
})

t.test('digestFields', async (t) => {
  const cases: Array<[string, Record<string, string> | null]> = [
    ['sha-256=:AAAA:', { 'sha-256': '000000' }],
    ['SHA-256=:AAAA:, sha-512=:AQ==:', { 'sha-256': '000000', 'sha-512': '01' }],
    [' sha-256 = :AAAA: ', { 'sha-256': '000000' }],
    ['sha-256=::', { 'sha-256': '' }],
    ['sha-256=AAAA', null],
    ['sha-256=:AA AA:', null],
    ['sha-256=:AAAA:,', null],
    ['sha-256', null],
    ['', null]
  ]
  for (const [value, expected] of cases) {
    const fields = digestFields(value)
    t.same(fields === null ? null : Object.fromEntries([...fields].map(([algorithm, digest]) => [algorithm, digest.toString('hex')])), expected, JSON.stringify(value))
  }
})

t.test('contentMd5', async (t) => {
  const sixteen = Buffer.alloc(16, 1)
  const cases: Array<[string, Buffer | null]> = [
    ['AQEBAQEBAQEBAQEBAQEBAQ==', sixteen],
    [' AQEBAQEBAQEBAQEBAQEBAQ== ', sixteen],
    ['AQEBAQEBAQEBAQEBAQEBAQ', null],
    ['AQEBAQEBAQEBAQEBAQEB', null],
    ['AQEBAQEBAQEBAQEBAQEBAQE=', null],
    ['01010101010101010101010101010101', null],
    ['short', null]
  ]
  for (const [value, expected] of cases) t.same(contentMd5(value), expected, value)
})

t.test('sha256Field', async (t) => {
  t.equal(sha256Field('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'), 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:', 'the SHA-256 of nothing')
  t.equal(sha256Field('00'.repeat(32)), `sha-256=:${'A'.repeat(43)}=:`)
})

t.test('attachment', async (t) => {
  const cases: Array<[string, string]> = [
    ['hello.txt', 'attachment; filename="hello.txt"; filename*=UTF-8\'\'hello.txt'],
    ['docs/hello.txt', 'attachment; filename="hello.txt"; filename*=UTF-8\'\'hello.txt'],
    ['été/日本語 ファイル.txt', 'attachment; filename="___ ____.txt"; filename*=UTF-8\'\'%E6%97%A5%E6%9C%AC%E8%AA%9E%20%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB.txt'],
    ['a "quoted" 100%.txt', 'attachment; filename="a _quoted_ 100_.txt"; filename*=UTF-8\'\'a%20%22quoted%22%20100%25.txt'],
    ['it\'s (1)*.txt', 'attachment; filename="it\'s (1)*.txt"; filename*=UTF-8\'\'it%27s%20%281%29%2A.txt'],
    ['back\\slash', 'attachment; filename="back_slash"; filename*=UTF-8\'\'back%5Cslash'],
    ['tab\there', 'attachment; filename="tab_here"; filename*=UTF-8\'\'tab%09here'],
    ['e\u0301.png', 'attachment; filename="e_.png"; filename*=UTF-8\'\'e%CC%81.png']
  ]
  for (const [name, expected] of cases) t.equal(attachment(name), expected, JSON.stringify(name))
})

t.test('wellFormedFilename', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['form-data; name="f"; filename="a.txt"', true],
    ['form-data; name="f"; FILENAME = "a.txt"', true],
    ['form-data; name="f"; filename=a.txt', true],
    ['form-data; name="f"; filename="e\\"f.txt"', true],
    ['form-data; name="f"; filename="e%22f.txt"', true],
    ['form-data; name="f"; filename="a.txt" ; x=y', true],
    ['form-data; name="f"', true],
    ['form-data; name="f"; filename*=UTF-8\'\'a.txt', true],
    ['form-data; name="f"; filename="e"f.txt"', false],
    ['form-data; name="f"; filename="unterminated', false],
    ['form-data; name="f"; filename=a b', false],
    ['form-data; name="f"; filename=', false]
  ]
  for (const [disposition, expected] of cases) t.equal(wellFormedFilename(disposition), expected, disposition)
})
