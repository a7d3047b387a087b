# jit-broker: the broker and the `jit` command, compiled (npm run build → dist/) in the first stage; the
# runtime image holds the build, the migrations and the production dependencies only. `docker compose up`
# runs two replicas of this image (see docker-compose.yml and the README's "Deploy" section).

# --- build: install every dependency (better-sqlite3 compiles natively when no prebuilt binary fits),
# compile (npm ci runs `prepare`, which is `npm run build`), then drop the dev dependencies
FROM node:20-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The commit /healthz, /metrics and `jit --version` report: the build context has no .git.
ARG JIT_COMMIT=
ENV JIT_COMMIT=$JIT_COMMIT
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY bin ./bin
COPY broker ./broker
COPY bot ./bot
RUN npm ci --no-audit --no-fund \
  && npm prune --omit=dev --no-audit --no-fund \
  && npm cache clean --force

# --- runtime: only what runs
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY migrations ./migrations
# data_dir (issuer key, generated TLS certificate) and the audit journal's folder belong to the `node`
# user (uid 1000) the broker runs as; a volume mounted on them starts with this ownership.
RUN mkdir -p /etc/jit-broker /var/lib/jit-broker /var/lib/jit-journal \
  && chown node:node /var/lib/jit-broker /var/lib/jit-journal \
  && chmod 0700 /var/lib/jit-broker /var/lib/jit-journal
USER node
# PostgreSQL wire protocol, MySQL wire protocol, HTTP (health, JWKS, token exchange, admin API).
EXPOSE 6432 6033 8080
# Ready once the store answers and the database listeners run (node:20-slim has no curl: Node's fetch).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.JIT_READYZ_URL || 'http://127.0.0.1:8080/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/jit.js"]
CMD ["start", "--config", "/etc/jit-broker/jit.yaml"]
