// JSON that keeps NaN and ±Infinity (written as the strings "NaN",
// "Infinity", "-Infinity"): a median of no runs stays "n/a" after a round
// trip through a results file or a child's stdout, instead of turning into
// null, which arithmetic would read as 0.
const special: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY }

export function toJson (value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => typeof v === 'number' && !Number.isFinite(v) ? String(v) : v, indent)
}

export function fromJson<T> (text: string): T {
  return JSON.parse(text, (_key, v: unknown) => typeof v === 'string' && v in special ? special[v] : v) as T
}
