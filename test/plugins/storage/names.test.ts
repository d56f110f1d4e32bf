// The rules for file names (plugins/storage/names.ts), which every backend
// and every route follows: each rule, the first broken one named.
import t from 'tap'
import { checkName, isValidName, MAX_NAME_BYTES, MAX_SEGMENT_BYTES } from '../../../plugins/storage/names.js'

t.test('the limits', async (t) => {
  t.equal(MAX_NAME_BYTES, 1024, 'S3\'s key limit')
  t.equal(MAX_SEGMENT_BYTES, 255, 'a common file name limit')
})

t.test('names that follow the rules are returned as they are', async (t) => {
  const accepted = [
    'a',
    'docs/hello.txt',
    'a/b/c',
    'été/日本語 ファイル.txt',
    'e\u0301motion 🎉.png',
    'spaces and "quotes" and %2e%2e',
    '.hidden/..dots../a..',
    'after C1: \u00a0',
    'x'.repeat(255),
    'é'.repeat(127) + 'x',
    Array(5).fill('x'.repeat(204)).join('/'),
    Array(5).fill('é'.repeat(102)).join('/')
  ]
  for (const name of accepted) {
    t.equal(checkName(name), name, JSON.stringify(name.slice(0, 40)))
    t.equal(isValidName(name), true)
  }
  t.equal(Buffer.byteLength(accepted.at(-1) as string), 1024, 'exactly the longest name')
})

t.test('a name that breaks a rule is refused, with the first rule it breaks', async (t) => {
  const empty = 'the name has an empty segment (a leading, trailing or doubled "/")'
  const dots = 'the name has a "." or ".." segment'
  const control = 'the name contains a control character or a backslash'
  const longName = 'the name is longer than 1024 bytes'
  const longSegment = 'a segment of the name is longer than 255 bytes'
  const refused: Array<[string, string]> = [
    ['', 'the name is empty'],
    ['a\ud800b', 'the name is not valid UTF-8'],
    ['\udc00', 'the name is not valid UTF-8'],
    ['x'.repeat(1025), longName],
    [Array(5).fill('x'.repeat(205)).join('/'), longName],
    ['é'.repeat(513), longName],
    ['a\u0000b', control],
    ['a\nb', control],
    ['a\u001fb', control],
    ['a\u007fb', control],
    ['a\u0080b', control],
    ['a\u009fb', control],
    ['a\\b', control],
    ['a/../b\\', control],
    ['/a', empty],
    ['a/', empty],
    ['a//b', empty],
    ['/', empty],
    ['.', dots],
    ['..', dots],
    ['../a', dots],
    ['a/./b', dots],
    ['a/..', dots],
    ['x'.repeat(256), longSegment],
    ['é'.repeat(128), longSegment],
    [`ok/${'x'.repeat(256)}/ok`, longSegment]
  ]
  for (const [name, problem] of refused) {
    const what = JSON.stringify(name.slice(0, 40))
    t.throws(() => checkName(name), {
      code: 'UPFRONT_INVALID_NAME',
      statusCode: 400,
      message: `Invalid file name: ${problem}; use one or more "/"-separated segments of UTF-8 text, without control characters or backslashes`
    }, what)
    t.equal(isValidName(name), false, what)
  }
})
