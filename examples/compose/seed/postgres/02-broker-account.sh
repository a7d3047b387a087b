#!/bin/bash
# demo-pg: the broker's own upstream account, least privilege (docs/operations.md): it reads and writes
# the app's tables, nothing else. Its password comes from JIT_UPSTREAM_PASSWORD (docker-compose.yml).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v pw="$JIT_UPSTREAM_PASSWORD" <<'SQL'
CREATE ROLE jit_broker LOGIN PASSWORD :'pw';
GRANT CONNECT ON DATABASE app TO jit_broker;
GRANT USAGE ON SCHEMA public TO jit_broker;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO jit_broker;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO jit_broker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO jit_broker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO jit_broker;
SQL
