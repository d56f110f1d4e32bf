import t from 'tap'
import { NameIndex } from '../../../../plugins/storage/disk/name-index.js'

/** A directory of entries standing for names (the entry is the name, upper-cased), and a count of the records read. */
function directory (): { nameOf: (entry: string) => Promise<string | null>, reads: () => number, unnamed: Set<string> } {
  let reads = 0
  const unnamed = new Set<string>()
  return {
    nameOf: async (entry) => {
      reads++
      return unnamed.has(entry) ? null : entry.toUpperCase()
    },
    reads: () => reads,
    unnamed
  }
}

t.test('names come sorted in code point order, a page after a cursor at a time', async (t) => {
  const index = new NameIndex(100)
  const { nameOf } = directory()
  const names = await index.of('alice', ['b', 'a/b', 'ab', 'a', 'é', 'a/', '\u{1F600}', '\u{E000}'], nameOf)
  t.same(names.after(null, 100), ['A', 'A/', 'A/B', 'AB', 'B', 'É', '\u{E000}', '\u{1F600}'], 'code point order: U+E000 before U+1F600')
  t.same(names.after(null, 2), ['A', 'A/'])
  t.same(names.after('A', 2), ['A/', 'A/B'], 'strictly after the cursor, prefixes included')
  t.same(names.after('AA', 10), ['AB', 'B', 'É', '\u{E000}', '\u{1F600}'], 'a cursor that is no name')
  t.same(names.after('\u{1F600}', 10), [])
  t.same(names.after('0', 1), ['A'])
})

t.test('the directory is the truth: every listing follows it, reading only new entries', async (t) => {
  const index = new NameIndex(100)
  const dir = directory()
  await index.of('alice', ['a', 'c'], dir.nameOf)
  t.equal(dir.reads(), 2)
  const names = await index.of('alice', ['a', 'b'], dir.nameOf)
  t.same(names.after(null, 10), ['A', 'B'], 'an entry gone is dropped, a new one read')
  t.equal(dir.reads(), 3, 'only the new entry was read')
  await index.of('alice', ['a', 'b'], dir.nameOf)
  t.equal(dir.reads(), 3, 'nothing new, nothing read')

  // An entry without a record yet (a commit placing its first version) is read again next time.
  dir.unnamed.add('d')
  t.same((await index.of('alice', ['a', 'b', 'd'], dir.nameOf)).after(null, 10), ['A', 'B'])
  dir.unnamed.delete('d')
  t.same((await index.of('alice', ['a', 'b', 'd'], dir.nameOf)).after(null, 10), ['A', 'B', 'D'])
})

t.test('listings of one owner at once follow the directory one after the other', async (t) => {
  const index = new NameIndex(100)
  let release: () => void = () => {}
  const slow = async (entry: string): Promise<string> => {
    await new Promise<void>((resolve) => { release = resolve })
    return entry
  }
  const first = index.of('alice', ['x'], slow)
  const second = index.of('alice', ['x', 'y'], async (entry) => entry)
  await new Promise((resolve) => setImmediate(resolve))
  release()
  const [one, two] = await Promise.all([first, second])
  t.equal(one, two, 'one set of names per owner')
  t.same(two.after(null, 10), ['x', 'y'], 'the later listing sees the later directory')
})

t.test('memory: the owners listed least recently are dropped past the limit, the last one always kept', async (t) => {
  const index = new NameIndex(6)
  const dir = directory()
  await index.of('alice', ['a', 'b'], dir.nameOf)
  await index.of('bob', ['c'], dir.nameOf)
  t.equal(dir.reads(), 3)
  await index.of('carol', ['d', 'e', 'f'], dir.nameOf)
  await index.of('bob', ['c'], dir.nameOf)
  t.equal(dir.reads(), 6, 'bob was kept: his name was not read again')
  await index.of('alice', ['a', 'b'], dir.nameOf)
  t.equal(dir.reads(), 8, 'alice was dropped and read again')
  const huge = Array.from({ length: 20 }, (_, i) => `n${i}`)
  t.equal((await index.of('dave', huge, dir.nameOf)).size, 20, 'the owner listing now is kept, however many names')
})
