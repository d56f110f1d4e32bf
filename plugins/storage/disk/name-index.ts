// The names of the owners that listed their files lately, sorted, kept in
// memory so that a page of a listing costs the records of that page, not a
// read of every record the owner has. Never the truth: on every listing the
// owner's directory is read again (one system call, cheap even for 10,000
// names) and the cache follows it: names whose directory appeared are read
// from their records, names whose directory went are dropped. A name's
// directory is named by the name's hash, so what a directory stands for
// never changes.
import { compareNames } from '../names.js'

/** Index of the first name in `sorted` that comes after `name`. */
function upperBound (sorted: readonly string[], name: string): number {
  let low = 0
  let high = sorted.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (compareNames(sorted[middle] as string, name) <= 0) low = middle + 1
    else high = middle
  }
  return low
}

/** Directory entries resolved at once. */
const RESOLVED_AT_ONCE = 32

export class OwnerNames {
  /** Name of each directory entry; null for an entry that holds no record (yet). */
  readonly #byEntry = new Map<string, string | null>()
  #sorted: string[] = []
  /** The update in progress: listings of one owner at once update its names one after the other. */
  #following: Promise<number> = Promise.resolve(0)

  /** Names held. */
  get size (): number {
    return this.#sorted.length
  }

  /** Up to `count` names after `after` (from the first when null), in code point order. */
  after (after: string | null, count: number): string[] {
    const start = after === null ? 0 : upperBound(this.#sorted, after)
    return this.#sorted.slice(start, start + count)
  }

  /** Brings the names in line with the directory's `entries`; `nameOf` reads the name of an entry. Returns the change in names held. */
  async follow (entries: readonly string[], nameOf: (entry: string) => Promise<string | null>): Promise<number> {
    const following = this.#following.then(async () => await this.#follow(entries, nameOf), async () => await this.#follow(entries, nameOf))
    this.#following = following
    return await following
  }

  async #follow (entries: readonly string[], nameOf: (entry: string) => Promise<string | null>): Promise<number> {
    const present = new Set(entries)
    let changed = false
    for (const entry of this.#byEntry.keys()) {
      if (!present.has(entry)) {
        this.#byEntry.delete(entry)
        changed = true
      }
    }
    // Entries without a name yet are read again: a commit may have placed their first record since.
    const unknown = entries.filter((entry) => (this.#byEntry.get(entry) ?? null) === null)
    for (let i = 0; i < unknown.length; i += RESOLVED_AT_ONCE) {
      const batch = unknown.slice(i, i + RESOLVED_AT_ONCE)
      const names = await Promise.all(batch.map(nameOf))
      batch.forEach((entry, at) => {
        const name = names[at] ?? null
        if (name !== null) changed = true
        this.#byEntry.set(entry, name)
      })
    }
    if (!changed) return 0
    const before = this.#sorted.length
    this.#sorted = [...this.#byEntry.values()].filter((name): name is string => name !== null).sort(compareNames)
    return this.#sorted.length - before
  }
}

/** The sorted names of the owners that listed their files lately, at most about `maxNames` in all. */
export class NameIndex {
  readonly #owners = new Map<string, OwnerNames>()
  readonly #maxNames: number
  /** Names held, plus one per owner. */
  #total = 0

  /**
   * Keeps about `maxNames` names (an owner counts one more), dropping the
   * owners listed least recently; the owner listed last is always kept,
   * however many names it has.
   */
  constructor (maxNames: number) {
    this.#maxNames = maxNames
  }

  /** The names of `owner`, brought in line with its directory's `entries`. */
  async of (owner: string, entries: readonly string[], nameOf: (entry: string) => Promise<string | null>): Promise<OwnerNames> {
    let names = this.#owners.get(owner)
    if (names === undefined) {
      names = new OwnerNames()
      this.#total += 1
    } else {
      // Most recently listed last.
      this.#owners.delete(owner)
    }
    this.#owners.set(owner, names)
    this.#total += await names.follow(entries, nameOf)
    this.#trim(owner)
    return names
  }

  /** Drops the owners listed least recently until the total is within the limit, `keep` aside. */
  #trim (keep: string): void {
    for (const [owner, names] of this.#owners) {
      if (this.#total <= this.#maxNames) break
      if (owner === keep) continue
      this.#owners.delete(owner)
      this.#total -= names.size + 1
    }
  }
}
