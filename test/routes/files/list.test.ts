// GET /files (routes/files/list.ts): the caller's files, a page at a time,
// in name order; a bad limit or cursor refused.
import t from 'tap'
import { getFile, putFile, startService } from '../../helpers/service.js'
import { json } from '../../helpers/wire.js'

t.test('listing is paginated and in name order', async (t) => {
  const { port } = await startService(t)
  const names = ['b', 'a/1', 'a/2', 'c', 'd.txt']
  for (const name of names) await putFile(port, `/files/${name}`, Buffer.from(name))
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const query: string = cursor === null ? '?limit=2' : `?limit=2&cursor=${encodeURIComponent(cursor)}`
    const page = json(await getFile(port, `/files${query}`)) as { files: Array<{ name: string }>, nextCursor: string | null }
    seen.push(...page.files.map((file) => file.name))
    cursor = page.nextCursor
    pages++
  } while (cursor !== null && pages < 10)
  t.same(seen, [...names].sort())
  t.equal(pages, 3)
  for (const limit of ['0', '1001', 'x', '1.5']) {
    const bad = await getFile(port, `/files?limit=${limit}`)
    t.equal(bad.status, 400, limit)
    t.match(json(bad), { code: 'UPFRONT_INVALID_QUERY' })
  }
  // Base64url that decodes to no valid name, text that is not base64url at all, a cursor with bytes that are not UTF-8.
  for (const cursor of ['zzzz', 'not*base64', Buffer.from('a/../b').toString('base64url'), Buffer.from([0xff, 0xfe]).toString('base64url')]) {
    const bad = await getFile(port, `/files?cursor=${encodeURIComponent(cursor)}`)
    t.equal(bad.status, 400, cursor)
    t.match(json(bad), { code: 'UPFRONT_INVALID_QUERY', message: 'Invalid query: cursor must be the nextCursor of a previous page, as it was given' }, cursor)
  }
})
