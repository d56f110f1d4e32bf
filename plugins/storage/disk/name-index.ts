// The names of each owner's files, sorted, kept in memory once the owner
// lists them: a page of a listing then costs a binary search and the
// records of that page, not a read of every record the owner has.
//
// An owner's names are loaded from disk on its first listing; the commits
// and deletes of this process keep them up to date from then on (a storage
// directory belongs to one process). Changes made while the names are being
// loaded are applied once they are in, in order: each one states the
// outcome for its name, so whichever of the two saw the disk last is right.

/** Index of the first name in `sorted` that is not before `name`. */
function lowerBound (sorted: readonly string[], name: string): number {
  let low = 0
  let high = sorted.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if ((sorted[middle] as string) < name) low = middle + 1
    else high = middle
  }
  return low
}

interface Change {
  present: boolean
  name: string
}

export class OwnerNames {
  #sorted: string[] = []
  /** Told of every change in the number of names held, while the index counts this owner. */
  onResize: ((delta: number) => void) | null = null
  /** Settles when the names are loaded; null before the first load and after a failed one. */
  #loaded: Promise<void> | null = null
  /** Changes seen while loading; null otherwise. */
  #pending: Change[] | null = null

  async load (read: () => Promise<string[]>): Promise<void> {
    this.#loaded ??= this.#load(read)
    await this.#loaded
  }

  async #load (read: () => Promise<string[]>): Promise<void> {
    this.#pending = []
    try {
      // Sorted by UTF-16 code units, the order in which `<` compares strings.
      this.#sorted = (await read()).sort()
      this.onResize?.(this.#sorted.length)
      for (const change of this.#pending) this.#apply(change)
    } catch (error) {
      this.#loaded = null
      throw error
    } finally {
      this.#pending = null
    }
  }

  /** Records that `name` now exists (`present`) or no longer does. */
  change (change: Change): void {
    if (this.#pending !== null) this.#pending.push(change)
    else if (this.#loaded !== null) this.#apply(change)
  }

  /** Names held. */
  get size (): number {
    return this.#sorted.length
  }

  /** Up to `count` names after `after` (from the first when null). */
  after (after: string | null, count: number): string[] {
    // The first name past `after` is the first one not before `after` + U+0000.
    const start = after === null ? 0 : lowerBound(this.#sorted, after + '\0')
    return this.#sorted.slice(start, start + count)
  }

  #apply ({ present, name }: Change): void {
    const at = lowerBound(this.#sorted, name)
    const found = this.#sorted[at] === name
    if (present && !found) {
      this.#sorted.splice(at, 0, name)
      this.onResize?.(1)
    }
    if (!present && found) {
      this.#sorted.splice(at, 1)
      this.onResize?.(-1)
    }
  }
}

/** The sorted names of the owners that listed their files lately. */
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

  /** The names of `owner`, loaded with `read` (every name it has, in any order) unless they are in memory. */
  async of (owner: string, read: () => Promise<string[]>): Promise<OwnerNames> {
    let names = this.#owners.get(owner)
    if (names === undefined) {
      names = new OwnerNames()
      names.onResize = (delta) => { this.#total += delta }
      this.#total += 1
    } else {
      // Most recently listed last.
      this.#owners.delete(owner)
    }
    this.#owners.set(owner, names)
    await names.load(read)
    this.#trim(owner)
    return names
  }

  /** Tells the index that `owner` now has a file named `name` (`present`), or no longer has one. */
  change (owner: string, name: string, present: boolean): void {
    this.#owners.get(owner)?.change({ present, name })
  }

  /** Drops the owners listed least recently until the total is within the limit, `keep` aside. */
  #trim (keep: string): void {
    for (const [owner, names] of this.#owners) {
      if (this.#total <= this.#maxNames) break
      if (owner === keep) continue
      this.#owners.delete(owner)
      names.onResize = null
      this.#total -= names.size + 1
    }
  }
}
