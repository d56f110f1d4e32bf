// Statistics over runs and samples.

export function median (values: readonly number[]): number {
  return percentile(values, 50)
}

/** Nearest-rank percentile; NaN for no values. */
export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

/** The item whose `key` is the median (the lower one for an even count), or undefined for none. */
export function medianBy<T> (items: readonly T[], key: (item: T) => number): T | undefined {
  const sorted = [...items].sort((a, b) => key(a) - key(b))
  return sorted[Math.floor((sorted.length - 1) / 2)]
}

/** Adds one to `record[key]`. */
export function count (record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1
}
