// From figure data to markdown: number formats, tables, the machine line,
// results files (dist/bench-results/<name>.json) and the README sections
// between `<!-- bench:<name> -->` and `<!-- /bench:<name> -->`.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Machine } from './cpu.js'
import { fromJson, toJson } from './json.js'
import { repoRoot } from './proc.js'

/** What a suite prints: the README's tables, and the full account of the run. */
export interface Rendered {
  title: string
  readme: string
  details: string
}

/** The whole report, as a suite prints it: the README's part, then the details. */
export function reportText (rendered: Rendered): string {
  return `\n## ${rendered.title}\n\n${rendered.readme}\n\n### Details\n\n${rendered.details}\n`
}

export const f0 = (n: number): string => Number.isFinite(n) ? (Math.round(n) || 0).toLocaleString('en-US') : 'n/a' // no "-0"
export const f1 = (n: number): string => Number.isFinite(n) ? n.toFixed(1) : 'n/a'
export const f2 = (n: number): string => Number.isFinite(n) ? n.toFixed(2) : 'n/a'
export const pct = (share: number): string => Number.isFinite(share) ? `${(share * 100).toFixed(0)}%` : 'n/a'
export const pcts = (shares: readonly number[], separator = ' / '): string => shares.map(pct).join(separator)
/** "(0.93–0.98)" for more than one value, else nothing. */
export const range = (values: readonly number[]): string =>
  values.length > 1 ? ` (${f2(Math.min(...values))}–${f2(Math.max(...values))})` : ''
export const verdict = (met: boolean): string => met ? 'met' : '**missed**'

/** 1 GiB, 64 MiB, 64 KiB, 512 B: the largest binary unit that divides the size. */
export function sizeName (bytes: number): string {
  for (const [unit, size] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`
  }
  return `${bytes} B`
}

/** A markdown table. */
export function table (header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** Where the figures come from. */
export function machineLine (m: Machine, command: string, extra: string, quick: boolean): string {
  return `Measured ${m.date.slice(0, 10)} with \`${command}\`: Node ${m.node}${extra}, ${m.cpus} CPUs (${m.cpuModel}), ${m.os}.` +
    (quick ? ' **A quick run (`--quick`): fewer and shorter runs than the full one.**' : '')
}

/** The results file of a suite: `plugin`, `service`, or `<suite>-quick` for a quick run. */
export function resultsPath (name: string): string {
  return join(repoRoot, 'dist', 'bench-results', `${name}.json`)
}

export function saveResults (path: string, data: unknown): void {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, `${toJson(data, 2)}\n`)
}

export function loadResults<T> (path: string): T {
  return fromJson<T>(readFileSync(path, 'utf8'))
}

/** Replaces what stands between a section's two marker lines; throws when they are missing. */
export function replaceSection (text: string, name: string, content: string): string {
  const open = `<!-- bench:${name} -->`
  const close = `<!-- /bench:${name} -->`
  const start = text.indexOf(open)
  const end = text.indexOf(close, start)
  if (start === -1 || end === -1) throw new Error(`no ${open} … ${close} markers in it`)
  return `${text.slice(0, start + open.length)}\n${content.trim()}\n${text.slice(end)}`
}
