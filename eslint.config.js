// ESLint with the Fastify organisation's own config.
import neostandard from 'neostandard'

export default neostandard({
  ts: true,
  ignores: ['**/dist/**', 'coverage/**', '.tap/**', 'node_modules/**']
})
