// The Expect field (plugins/upfront/lib/expectation.ts): the first
// expectation this server cannot meet, or null when all are 100-continue.
import t from 'tap'
import { unsupportedExpectation } from 'upfront'

t.test('unsupportedExpectation', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['100-continue', null],
    ['100-Continue,100-continue', null],
    [' , 100-continue', null],
    ['a-pony', 'a-pony'],
    ['', ''],
    [' ,, ', '']
  ]
  for (const [value, expected] of cases) t.equal(unsupportedExpectation(value), expected, JSON.stringify(value))
})
