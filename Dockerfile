# The upload service: Node 24 LTS, production dependencies only, run by an
# unprivileged user.
#
# node:24-bookworm-slim rather than node:24-alpine: Debian 12 and glibc, the
# same C library as CI and the machines the test suite runs on (Debian 12),
# so the image runs what was tested. Alpine's musl has its own DNS
# resolver, allocator and default thread stack size, and Node lists its musl
# builds as "Experimental" in its supported platforms. The slim variant
# drops the compilers and documentation of the full image; the service has
# no native addon to build.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# The manifests first, so that the dependency layer is rebuilt only when
# they change. The workspace's package.json must be there for `npm ci` to
# link node_modules/upfront -> plugins/upfront.
COPY package.json package-lock.json ./
COPY plugins/upfront/package.json plugins/upfront/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY *.ts ./
COPY plugins ./plugins
COPY routes ./routes
# Builds the plugin package (plugins/upfront/dist) then the service (dist/),
# then drops the devDependencies; the workspace link stays, as the service
# depends on "upfront".
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/data
WORKDIR /app
# Owned by root and read-only to the user that runs the service.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/plugins/upfront/package.json ./plugins/upfront/
COPY --from=build /app/plugins/upfront/dist ./plugins/upfront/dist
# For STORAGE=disk (mount a volume there); STORAGE=s3 writes nothing locally.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
# Liveness, not readiness: /healthz answers while the process serves, also
# while storage is down and while it drains after SIGTERM. /readyz (503 when
# storage does not answer or the process is shutting down) is for the load
# balancer, which stops sending new requests on it (deploy/haproxy.cfg). A
# container marked unhealthy gets restarted by orchestrators; restarting
# replicas because the storage is down, or because they are draining, would
# only make things worse. Follows HOST and PORT as the service does.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const { HOST = '', PORT = '3000' } = process.env; const host = ['', '0.0.0.0', '::'].includes(HOST) ? '127.0.0.1' : HOST.includes(':') ? '[' + HOST + ']' : HOST; fetch('http://' + host + ':' + PORT + '/healthz', { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# On SIGTERM the service serves on for SHUTDOWN_DELAY_MS (default 0) with
# readiness failing, then drains uploads in flight for SHUTDOWN_GRACE_MS
# (default 30 s): give it both and 15 s more (docker stop -t, compose's
# stop_grace_period, Kubernetes' terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
# A larger initial old space: without it, V8 runs a full collection every
# ~30 MB of a large upload (external memory pressure from socket buffers).
CMD ["node", "--initial-old-space-size=128", "dist/server.js"]
