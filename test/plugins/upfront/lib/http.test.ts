import t from 'tap'
import { multipartBoundary as formBoundary } from 'upfront/http'

t.test('the boundary parameter of a multipart Content-Type', async (t) => {
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
  for (const [contentType, expected] of cases) t.equal(formBoundary(contentType), expected, String(contentType))
})
