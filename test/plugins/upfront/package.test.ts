// The plugin as a user gets it: `npm pack` of plugins/upfront, installed
// into a fresh project with nothing of the service, its README example
// type-checked under each moduleResolution and run, its exports pinned.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const root = new URL('../../../', import.meta.url).pathname
const pluginDir = join(root, 'plugins/upfront')

/** The versions the repository itself uses, so that npm finds them in its cache. */
function versionOf (name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
}

const MAIN_EXPORTS = [
  'AlreadyRegisteredError', 'BodyTooLargeError', 'ExpectationFailedError', 'InvalidOptionError', 'REFUSAL_REASONS',
  'RefusedBeforeBodyError', 'StreamTooLargeError', 'UnsupportedMediaTypeError', 'default', 'module.exports',
  'unsupportedExpectation', 'upfront'
]
const HTTP_EXPORTS = [
  'acceptsMediaType', 'attachment', 'compileMediaTypes', 'contentLength', 'contentMd5', 'digestFields', 'entityTags',
  'httpDate', 'isMediaRange', 'isMediaType', 'mediaTypeOf', 'mediaTypeParameter', 'multipartBoundary', 'parseRange',
  'sha256Field', 'strongMatch', 'weakMatch', 'wellFormedFilename'
]

t.setTimeout(240_000)

t.test('the packed plugin installs alone, type-checks under node16, nodenext and bundler, and runs its README example', { timeout: 240_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'upfront-pack-'))
  t.teardown(() => { rmSync(work, { recursive: true, force: true }) })

  // Built on pack (prepack).
  const { stdout: packed } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: pluginDir })
  const [tarball] = JSON.parse(packed) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = (tarball?.files ?? []).map((file) => file.path).sort()
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts') && files.includes('dist/lib/http.js'), 'the build is in the tarball')
  t.same(files.filter((file) => !file.startsWith('dist/')), ['README.md', 'package.json'], 'nothing but the build, the README and package.json')
  t.notOk(files.some((file) => file.endsWith('.ts') && !file.endsWith('.d.ts')), 'no sources')

  const project = join(work, 'app')
  await run('mkdir', ['-p', project])
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, tarball?.filename as string),
    `fastify@${versionOf('fastify')}`, `typescript@${versionOf('typescript')}`, `@types/node@${versionOf('@types/node')}`], { cwd: project })
  const installed = JSON.parse(readFileSync(join(project, 'node_modules/upfront/package.json'), 'utf8')) as { dependencies: Record<string, string> }
  t.same(Object.keys(installed.dependencies).sort(), ['@fastify/error', 'fastify-plugin'])
  for (const service of ['fast-jwt', '@fastify/multipart', '@fastify/cors', 'env-schema', 'get-jwks', 'close-with-grace']) {
    t.notOk(existsSync(join(project, 'node_modules', service)), `${service} is not installed`)
  }

  // The README example, as a user would paste it.
  writeFileSync(join(project, 'example.ts'), readFileSync(join(root, 'test/readme/plugin-usage.ts')))
  const resolutions = { node16: 'node16', nodenext: 'nodenext', bundler: 'esnext' } as const
  for (const [resolution, module] of Object.entries(resolutions)) {
    writeFileSync(join(project, `tsconfig.${resolution}.json`), JSON.stringify({
      compilerOptions: { strict: true, skipLibCheck: false, target: 'es2022', module, moduleResolution: resolution, types: ['node'], outDir: `out-${resolution}` },
      files: ['example.ts']
    }))
    const checked = await run('npx', ['tsc', '-p', `tsconfig.${resolution}.json`], { cwd: project }).then(() => 'ok', (error: { stdout: string }) => error.stdout)
    t.equal(checked, 'ok', `types check with moduleResolution ${resolution}, skipLibCheck off`)
  }

  writeFileSync(join(project, 'run.mjs'), `
    const { default: app } = await import('./out-nodenext/example.js')
    const token = { authorization: 'Bearer let-me-in' }
    const answers = []
    for (const [headers, size] of [[{}, 10], [token, 10], [token, 2 * 1024 * 1024]]) {
      const reply = await app.inject({ method: 'PUT', url: '/avatars/ann', headers: { 'content-type': 'image/png', ...headers }, payload: Buffer.alloc(size) })
      answers.push([reply.statusCode, reply.json().code ?? reply.json().size])
    }
    console.log(JSON.stringify(answers))
    await app.close()
  `)
  const { stdout } = await run('node', ['run.mjs'], { cwd: project })
  t.same(JSON.parse(stdout), [[401, 'NO_TOKEN'], [200, 10], [413, 'UPFRONT_BODY_TOO_LARGE']], 'the example runs from the installed package')

  const { stdout: exported } = await run('node', ['--input-type=module', '-e',
    "const m = await import('upfront'); const h = await import('upfront/http'); console.log(JSON.stringify({ main: Object.keys(m).sort(), http: Object.keys(h).sort() }))"], { cwd: project })
  t.same(JSON.parse(exported), { main: MAIN_EXPORTS, http: HTTP_EXPORTS }, 'what the package exports, pinned')

  const { stdout: required } = await run('node', ['-e',
    "const up = require('upfront'); console.log(JSON.stringify([typeof up, up.default === up, up.upfront === up, up[Symbol.for('plugin-meta')].name]))"], { cwd: project })
  t.same(JSON.parse(required), ['function', true, true, 'upfront'], 'require() returns the plugin (Node >= 20.19)')
})
