// What the plugin suite's processes share: the app's constants, and the
// messages between the orchestrator (plugin/servers.ts) and a server
// (plugin/server.ts) over the IPC channel.

export type Variant = 'plugin' | 'stock'
/** In the order each figure measures them. */
export const variants: readonly Variant[] = ['stock', 'plugin']

export const TOKEN = 'Bearer bench-token'
/** Limit of the upload routes (`bodyLimit`, which the plugin takes as its `maxBytes`). */
export const UPLOAD_LIMIT = 8 * 1024 * 1024
/** Limit of `/small`, the route of the time-to-413 measurement. */
export const SMALL_LIMIT = 512
export const UPLOAD_TYPE = 'application/octet-stream'

export type ParentMessage =
  | { type: 'track', on: boolean }
  | { type: 'conn', id: number, port: number, timeoutMs: number }
  | { type: 'probe', id: number }

export type ServerMessage =
  | { type: 'ready', port: number, fastify: string, node: string }
  | { type: 'conn', id: number, bytesRead: number, closed: boolean }
  /** `upfront`: the plugin's counters (`app.upfront.stats`), null for stock. */
  | { type: 'probe', id: number, connections: number, cpuMicros: number, rss: number, upfront: unknown }
