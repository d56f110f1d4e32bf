// The load generator's process: `node load-process.js '<json LoadConfig | LatencyConfig>'`
// prints one JSON line (lib/json.ts): a LoadResult, or LatencyStats[].
import { toJson } from './json.js'
import { runLatency, runLoad } from './load.js'
import type { LatencyConfig, LoadConfig } from './load.js'

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig | LatencyConfig
const output = config.mode === 'latency' ? await runLatency(config) : await runLoad(config)
process.stdout.write(`${toJson(output)}\n`)
process.exit(0)
