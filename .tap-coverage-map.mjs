// Coverage is measured on the product, not on the test helpers.
export default () => ['app.ts', 'server.ts', 'config.ts', 'plugins/**/*.ts', 'routes/**/*.ts']
