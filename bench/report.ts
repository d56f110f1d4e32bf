// Re-renders the tables of a saved results file, and can put the README's
// part of them into a README:
//
//   node dist/bench/report.js dist/bench-results/plugin.json [--write-readme README.md]
//
// Without --write-readme it prints what the suite printed. With it, it
// replaces what stands between `<!-- bench:plugin -->` and
// `<!-- /bench:plugin -->` (or `bench:service`, `bench:s3`, `bench:replicas`
// for those suites' files) in that file, and changes nothing else.
import { readFileSync, writeFileSync } from 'node:fs'
import { log } from './lib/proc.js'
import { loadResults, replaceSection, reportText } from './lib/report.js'
import type { Rendered } from './lib/report.js'
import type { PluginResults } from './plugin/figures.js'
import { renderPlugin } from './plugin/report.js'
import type { ServiceResults } from './service/figures.js'
import { renderReplicas } from './service/replicas-report.js'
import type { ReplicaResults } from './service/replicas-report.js'
import { renderService } from './service/report.js'
import { renderS3 } from './service/s3-report.js'
import type { S3Results } from './service/s3-report.js'

const args = process.argv.slice(2)
const readmeAt = args.indexOf('--write-readme')
const readmePath = readmeAt === -1 ? undefined : args[readmeAt + 1]
const file = args.find((arg, i) => !arg.startsWith('--') && (readmeAt === -1 || i !== readmeAt + 1))
if (file === undefined || (readmeAt !== -1 && readmePath === undefined)) {
  log('usage: node dist/bench/report.js <results.json> [--write-readme <README.md>]')
  process.exit(2)
}

try {
  const results = loadResults<PluginResults | ServiceResults | S3Results | ReplicaResults>(file)
  let rendered: Rendered
  if (results.suite === 'plugin') rendered = renderPlugin(results)
  else if (results.suite === 'service') rendered = renderService(results)
  else if (results.suite === 's3') rendered = renderS3(results)
  else if (results.suite === 'replicas') rendered = renderReplicas(results)
  else throw new Error(`${file} holds no suite's results`)
  if (readmePath === undefined) {
    process.stdout.write(reportText(rendered))
  } else {
    writeFileSync(readmePath, replaceSection(readFileSync(readmePath, 'utf8'), results.suite, rendered.readme))
    log(`${readmePath}: bench:${results.suite} section replaced from ${file}`)
  }
} catch (error) {
  log(`report: ${(error as Error).message}`)
  process.exitCode = 1
}
