// Servers on free ports of 127.0.0.1, closed when their test ends.
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'

/** The port a listening TCP server (net, http, https, http2) is bound to. */
export function portOf (server: Server): number {
  return (server.address() as AddressInfo).port
}

/** Starts a Fastify app on a free port, closed when the test ends; its port. */
export async function listen (t: Test, app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return portOf(app.server)
}

/** Starts a Node server (net, http) on a free port, closed when the test ends; its port. */
export async function listenServer (t: Test, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return portOf(server)
}

/** A port that was free a moment ago, for a program that binds it itself (a proxy). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = portOf(server)
  await new Promise((resolve) => server.close(resolve))
  return port
}
