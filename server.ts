import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { InvalidConfigError, loadConfig, startupWarnings } from './config.js'
import type { Config } from './config.js'

let config: Config
try {
  config = loadConfig()
} catch (error) {
  // loadConfig reports every bad value as InvalidConfigError; anything else is a bug.
  /* c8 ignore next */
  if (!(error instanceof InvalidConfigError)) throw error
  process.stderr.write(`${error.message}\n`)
  process.exit(1)
}

const app = await buildApp({ config })
// Among them, once, the development token when no authentication is configured.
for (const warning of startupWarnings(config)) app.log.warn(warning)

closeWithGrace({ delay: 10_000 }, async ({ err }) => {
  // Only after an uncaught exception or unhandled rejection.
  /* c8 ignore next */
  if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
  await app.close()
})

await app.listen({ port: config.port, host: config.host })
