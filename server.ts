import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { InvalidConfigError, loadConfig, startupWarnings } from './config.js'
import type { Config } from './config.js'
import { StorageStartError } from './errors.js'
import type { Storage } from './plugins/storage/index.js'
import { openStorage } from './plugins/storage/open.js'

/** Ends the start with a message for the operator, naming the setting to change. */
function refuseToStart (message: string): never {
  process.stderr.write(`${message}\n`)
  process.exit(1)
}

let config: Config
try {
  config = loadConfig()
} catch (error) {
  // loadConfig reports every bad value as InvalidConfigError; anything else is a bug.
  /* c8 ignore next */
  if (!(error instanceof InvalidConfigError)) throw error
  refuseToStart(error.message)
}

let storage: Storage
try {
  storage = await openStorage(config.storage)
} catch (error) {
  // openStorage names the setting to change; anything else is a bug.
  /* c8 ignore next */
  if (!(error instanceof StorageStartError)) throw error
  refuseToStart(error.message)
}

const app = await buildApp({ config, storage })
// Among them, once, the development token when no authentication is
// configured: on stderr when the log level would hide a warning.
const quiet = ['error', 'fatal', 'silent'].includes(config.logLevel)
for (const warning of startupWarnings(config)) {
  if (quiet) process.stderr.write(`${warning}\n`)
  else app.log.warn(warning)
}

// SIGTERM or SIGINT: readiness fails at once; after SHUTDOWN_DELAY_MS (0
// by default) no new connection or request is taken, and uploads in flight
// get SHUTDOWN_GRACE_MS to finish; those still running then get a 503 and
// their data is removed. The process exits 0 once done, or is stopped 15 s
// after the grace if something hangs.
closeWithGrace({ delay: config.shutdownDelayMs + config.shutdownGraceMs + 15_000 }, async ({ signal, err }) => {
  // Only after an uncaught exception or unhandled rejection.
  /* c8 ignore next */
  if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
  app.log.info({ signal, inFlight: app.lifecycle.inFlight, delayMs: config.shutdownDelayMs, graceMs: config.shutdownGraceMs },
    `shutting down: not ready; taking no new connections in ${config.shutdownDelayMs} ms`)
  const report = await app.lifecycle.shutdown()
  app.log.info({ shutdown: report }, `shut down: ${report.finished} of ${report.inFlight} requests in flight finished, ${report.cut} cut after the grace`)
})

try {
  await app.listen({ port: config.port, host: config.host })
} catch (error) {
  await app.close()
  // A system error: it has a code.
  const { code } = error as NodeJS.ErrnoException
  const where = `${config.host}:${config.port}`
  if (code === 'EADDRINUSE') refuseToStart(`PORT: ${where} is already in use; stop what listens there or choose another PORT`)
  refuseToStart(`HOST, PORT: cannot listen on ${where} (${String(code)}); ` +
    'set HOST to 127.0.0.1, 0.0.0.0 or an address of this machine, and PORT to a free port (above 1023 without privileges)')
}
