import t from 'tap'
import { NameIndex } from '../../../../plugins/storage/disk/name-index.js'

/** A load that finishes when the test says so. */
function deferred (): { read: () => Promise<string[]>, finish: (names: string[]) => void, fail: (error: Error) => void, calls: () => number } {
  let calls = 0
  let finish: (names: string[]) => void = () => {}
  let fail: (error: Error) => void = () => {}
  const read = async (): Promise<string[]> => {
    calls++
    return await new Promise<string[]>((resolve, reject) => { finish = resolve; fail = reject })
  }
  return { read, finish: (names) => { finish(names) }, fail: (error) => { fail(error) }, calls: () => calls }
}

t.test('names come sorted, a page after a cursor at a time', async (t) => {
  const index = new NameIndex(4)
  const names = await index.of('alice', async () => ['b', 'a/b', 'ab', 'a', 'B', 'é', 'a/'])
  t.same(names.after(null, 100), ['B', 'a', 'a/', 'a/b', 'ab', 'b', 'é'], 'UTF-16 order, as < compares')
  t.same(names.after(null, 2), ['B', 'a'])
  t.same(names.after('a', 2), ['a/', 'a/b'], 'strictly after the cursor, prefixes included')
  t.same(names.after('a/b', 10), ['ab', 'b', 'é'])
  t.same(names.after('aa', 10), ['ab', 'b', 'é'], 'a cursor that is no name')
  t.same(names.after('é', 10), [])
  t.same(names.after('0', 1), ['B'])
})

t.test('commits and deletes keep the names of a listed owner', async (t) => {
  const index = new NameIndex(4)
  let reads = 0
  const names = await index.of('alice', async () => { reads++; return ['a', 'c'] })
  index.change('alice', 'b', true)
  index.change('alice', 'b', true)
  index.change('alice', 'c', false)
  index.change('alice', 'x', false)
  t.same(names.after(null, 10), ['a', 'b'], 'each name once; removing what is absent changes nothing')
  index.change('bob', 'z', true)
  t.same((await index.of('alice', async () => { reads++; return [] })).after(null, 10), ['a', 'b'], 'not read again')
  t.equal(reads, 1)
  t.same((await index.of('bob', async () => ['y'])).after(null, 10), ['y'], 'a change before the first listing is not kept: the load sees the disk')
})

t.test('changes made while loading are applied after, in order', async (t) => {
  const index = new NameIndex(4)
  const load = deferred()
  const listing = index.of('alice', load.read)
  const second = index.of('alice', load.read)
  index.change('alice', 'new', true)
  index.change('alice', 'gone', false)
  index.change('alice', 'again', false)
  index.change('alice', 'again', true)
  index.change('alice', 'brief', true)
  index.change('alice', 'brief', false)
  load.finish(['gone', 'kept', 'again'])
  const names = await listing
  t.equal(await second, names, 'one load for callers that came meanwhile')
  t.equal(load.calls(), 1)
  t.same(names.after(null, 10), ['again', 'kept', 'new'])
})

t.test('a failed load is tried again by the next listing', async (t) => {
  const index = new NameIndex(4)
  const load = deferred()
  const listing = index.of('alice', load.read)
  load.fail(Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }))
  await t.rejects(listing, { code: 'ENOTDIR' })
  index.change('alice', 'lost', true)
  const names = await index.of('alice', async () => ['fresh'])
  t.same(names.after(null, 10), ['fresh'], 'read again; nothing from before the failure')
})

t.test('past the most names it keeps, the owners listed least recently go', async (t) => {
  // 10 weighs an owner with 2 names as 3.
  const index = new NameIndex(10)
  const reads: string[] = []
  const of = async (owner: string, count = 2): Promise<void> => {
    await index.of(owner, async () => { reads.push(owner); return Array.from({ length: count }, (_, i) => `${owner}${i}`) })
  }
  await of('a')
  await of('b')
  await of('c')
  t.same(reads, ['a', 'b', 'c'], '9 kept')
  await of('a')
  await of('d')
  t.same(reads, ['a', 'b', 'c', 'd'], 'b went, listed least recently')
  await of('a')
  await of('c')
  t.same(reads, ['a', 'b', 'c', 'd'], 'a and c still there')
  await of('b')
  t.same(reads, ['a', 'b', 'c', 'd', 'b'])

  await of('huge', 50)
  t.same((await index.of('huge', async () => { reads.push('again'); return [] })).size, 50, 'an owner over the limit alone is kept while it is the last listed')
  await of('e')
  await of('huge', 50)
  t.equal(reads.at(-1), 'huge', 'and dropped by the next listing of another owner')
})
