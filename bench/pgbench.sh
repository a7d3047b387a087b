#!/usr/bin/env bash
# Throughput of the broker's PostgreSQL relay, measured with pgbench -S (read-only, one statement per
# transaction) directly against PostgreSQL, through the broker (TLS and plaintext, recording on) and
# through pgbouncer (plaintext and TLS) when it is installed, with each proxy's CPU (user+sys from /proc/PID/stat
# over the run) per transaction. Prints figures; asserts nothing about speed.
#
# usage: bash bench/pgbench.sh            (from the repo root; `npm run bench` does the same)
#
# Options, all through the environment:
#   DURATION=10s          seconds per run (pgbench -T; a trailing "s" is accepted)
#   CLIENTS=8 JOBS=2      pgbench -c / -j
#   SCALE=1               pgbench -i -s (the pgbench_* tables in the upstream database are recreated!)
#   MODE="simple prepared"  pgbench -M values to run, space separated (simple, extended, prepared)
#   PGBOUNCER_POOL_MODE=session   session: pgbouncer in session mode for every -M (like the broker, one
#                         server connection per client); auto: transaction mode for simple/extended and
#                         session mode for prepared (pgbouncer 1.18 cannot keep prepared statements
#                         across transactions)
#   UPSTREAM_HOST=127.0.0.1 UPSTREAM_PORT=5432 UPSTREAM_DB=test UPSTREAM_USER=postgres   (trust auth)
#   BROKER_PORT=26432 BROKER_HTTP_PORT=28080 PGBOUNCER_PORT=26433
#   PGBOUNCER=pgbouncer   the binary; set PGBOUNCER= (empty) to skip the pgbouncer rows
#   FLOOR=1 FLOOR_PORT=26434  0: skip the node-floor rows (bench/node-floor.mjs: a Node relay with no
#                         broker code, TLS terminated by node:tls and bytes piped: what the runtime costs)
#   NODE_OPTIONS_BROKER=  extra node flags for the broker (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof")
#   KEEP_TMP=0            1: keep the temp dir (config, broker and pgbouncer logs, the SQLite store)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

DURATION=${DURATION:-10s}
DURATION=${DURATION%s}
CLIENTS=${CLIENTS:-8}
JOBS=${JOBS:-2}
SCALE=${SCALE:-1}
MODE=${MODE:-simple prepared}
PGBOUNCER_POOL_MODE=${PGBOUNCER_POOL_MODE:-session}
UPSTREAM_HOST=${UPSTREAM_HOST:-127.0.0.1}
UPSTREAM_PORT=${UPSTREAM_PORT:-5432}
UPSTREAM_DB=${UPSTREAM_DB:-test}
UPSTREAM_USER=${UPSTREAM_USER:-postgres}
BROKER_PORT=${BROKER_PORT:-26432}
BROKER_HTTP_PORT=${BROKER_HTTP_PORT:-28080}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-26433}
PGBOUNCER=${PGBOUNCER-pgbouncer}
FLOOR=${FLOOR:-1}
FLOOR_PORT=${FLOOR_PORT:-26434}
NODE_OPTIONS_BROKER=${NODE_OPTIONS_BROKER:-}
KEEP_TMP=${KEEP_TMP:-0}

for v in DURATION CLIENTS JOBS SCALE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a whole number, got '${!v}'" >&2; exit 2; }
done
for m in $MODE; do
  case $m in simple | extended | prepared) ;; *) echo "bench: MODE takes simple, extended, prepared; got '$m'" >&2; exit 2 ;; esac
done
case $PGBOUNCER_POOL_MODE in session | auto) ;; *) echo "bench: PGBOUNCER_POOL_MODE is session or auto" >&2; exit 2 ;; esac
for bin in node pgbench psql curl; do
  command -v "$bin" >/dev/null || { echo "bench: '$bin' is not installed" >&2; exit 2; }
done
if [[ -n $PGBOUNCER ]] && ! command -v "$PGBOUNCER" >/dev/null; then
  echo "bench: $PGBOUNCER is not installed: the pgbouncer rows are skipped (apt-get install pgbouncer)" >&2
  PGBOUNCER=
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/jit-bench.XXXXXX")
PGB_DIR=
BROKER_PID=
PGB_PID=
FLOOR_PID=
RUN_PID=

stop_pid() { # pid: SIGTERM, then SIGKILL after 10 s
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $RUN_PID ]] && stop_pid "$RUN_PID"
  [[ -n $PGB_PID ]] && stop_pid "$PGB_PID"
  [[ -n $FLOOR_PID ]] && stop_pid "$FLOOR_PID"
  [[ -n $BROKER_PID ]] && stop_pid "$BROKER_PID"
  if [[ $KEEP_TMP == 1 ]]; then
    echo "bench: kept $TMP${PGB_DIR:+ and $PGB_DIR}" >&2
  else
    rm -rf "$TMP" ${PGB_DIR:+"$PGB_DIR"}
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the broker: its own config, data dir and store in the temp dir ----
CFG=$TMP/jit.yaml
cat >"$CFG" <<EOF
data_dir: $TMP/data
store: sqlite:$TMP/data/jit.db
listen: { postgres: 127.0.0.1:$BROKER_PORT, mysql: null, http: 127.0.0.1:$BROKER_HTTP_PORT }
# TLS with the generated self-signed certificate; plaintext is also accepted from loopback.
tls: { plaintext: loopback }
targets:
  app: { engine: postgres, upstream: "postgres://$UPSTREAM_USER@$UPSTREAM_HOST:$UPSTREAM_PORT/$UPSTREAM_DB" }
rules:
  - { id: pgbench-setup, tables: ["pgbench_*"], kinds: [ddl, destructive, write, read], action: allow }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
EOF

jit() { node "$REPO/bin/jit.js" --config "$CFG" "$@"; }

echo "bench: starting the broker on 127.0.0.1:$BROKER_PORT (http $BROKER_HTTP_PORT), logs in $TMP/broker.log" >&2
# shellcheck disable=SC2086 # NODE_OPTIONS_BROKER is a list of flags
node $NODE_OPTIONS_BROKER "$REPO/bin/jit.js" --config "$CFG" start >"$TMP/broker.log" 2>&1 &
BROKER_PID=$!
for ((i = 0; ; i++)); do
  if ! kill -0 "$BROKER_PID" 2>/dev/null; then
    BROKER_PID=
    echo "bench: the broker exited during startup:" >&2
    tail -n 30 "$TMP/broker.log" >&2
    exit 1
  fi
  curl -fsS -o /dev/null "http://127.0.0.1:$BROKER_HTTP_PORT/readyz" 2>/dev/null && break
  if ((i >= 300)); then
    echo "bench: the broker is not ready after 30 s:" >&2
    tail -n 30 "$TMP/broker.log" >&2
    exit 1
  fi
  sleep 0.1
done
TOKEN=$(jit token --build bench --ttl 1h)

# ---- pgbouncer: own ini, loopback only, trust auth to the upstream ----
if [[ -n $PGBOUNCER ]]; then
  PGB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/jit-bench-pgbouncer.XXXXXX")
  PGB_AS=()
  if [[ $(id -u) == 0 ]]; then PGB_AS=(-u postgres); fi # pgbouncer refuses to run as root
  # The broker's self-signed certificate serves pgbouncer's TLS clients too: same key, same ciphers.
  cp "$TMP/data/broker.crt" "$TMP/data/broker.key" "$PGB_DIR/"
  echo "\"$UPSTREAM_USER\" \"\"" >"$PGB_DIR/userlist.txt"
  cat >"$PGB_DIR/pgbouncer.ini" <<EOF
[databases]
; session pooling: one server connection per client for the whole connection, as the broker does
bench_session = host=$UPSTREAM_HOST port=$UPSTREAM_PORT dbname=$UPSTREAM_DB user=$UPSTREAM_USER pool_mode=session
; transaction pooling: used for simple/extended when PGBOUNCER_POOL_MODE=auto
bench_tx = host=$UPSTREAM_HOST port=$UPSTREAM_PORT dbname=$UPSTREAM_DB user=$UPSTREAM_USER pool_mode=transaction

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGB_DIR/userlist.txt
default_pool_size = $((CLIENTS + 4))
max_client_conn = $((CLIENTS * 2 + 20))
ignore_startup_parameters = extra_float_digits
client_tls_sslmode = allow
client_tls_cert_file = $PGB_DIR/broker.crt
client_tls_key_file = $PGB_DIR/broker.key
logfile = $PGB_DIR/pgbouncer.log
pidfile = $PGB_DIR/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
  if [[ ${#PGB_AS[@]} -gt 0 ]]; then chown -R postgres "$PGB_DIR"; fi
  chmod 600 "$PGB_DIR/broker.key"
  echo "bench: starting $PGBOUNCER on 127.0.0.1:$PGBOUNCER_PORT (pool mode: $PGBOUNCER_POOL_MODE)" >&2
  "$PGBOUNCER" "${PGB_AS[@]}" "$PGB_DIR/pgbouncer.ini" >"$TMP/pgbouncer.out" 2>&1 &
  PGB_PID=$!
  for ((i = 0; ; i++)); do
    if ! kill -0 "$PGB_PID" 2>/dev/null; then
      PGB_PID=
      echo "bench: pgbouncer exited during startup:" >&2
      cat "$TMP/pgbouncer.out" "$PGB_DIR/pgbouncer.log" 2>/dev/null | tail -n 30 >&2
      exit 1
    fi
    PGSSLMODE=disable psql -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U "$UPSTREAM_USER" -d bench_session -Atqc 'select 1' >/dev/null 2>&1 && break
    if ((i >= 100)); then
      echo "bench: pgbouncer is not ready after 10 s:" >&2
      tail -n 30 "$PGB_DIR/pgbouncer.log" >&2
      exit 1
    fi
    sleep 0.1
  done
fi

# ---- the floor: a Node relay with no broker code (same certificate), trust auth to the upstream ----
if [[ $FLOOR == 1 ]]; then
  node "$REPO/bench/node-floor.mjs" "$FLOOR_PORT" "$UPSTREAM_HOST" "$UPSTREAM_PORT" "$TMP/data/broker.crt" "$TMP/data/broker.key" >"$TMP/floor.log" 2>&1 &
  FLOOR_PID=$!
  for ((i = 0; ; i++)); do
    PGSSLMODE=disable psql -h 127.0.0.1 -p "$FLOOR_PORT" -U "$UPSTREAM_USER" -d "$UPSTREAM_DB" -Atqc 'select 1' >/dev/null 2>&1 && break
    if ((i >= 100)) || ! kill -0 "$FLOOR_PID" 2>/dev/null; then
      echo "bench: the node-floor relay did not start:" >&2
      tail -n 30 "$TMP/floor.log" >&2
      exit 1
    fi
    sleep 0.1
  done
fi

# ---- pgbench tables, directly ----
echo "bench: pgbench -i -s $SCALE on $UPSTREAM_HOST:$UPSTREAM_PORT/$UPSTREAM_DB (recreates the pgbench_* tables)" >&2
if ! PGSSLMODE=disable PGPASSWORD= pgbench -i -q -s "$SCALE" -h "$UPSTREAM_HOST" -p "$UPSTREAM_PORT" -U "$UPSTREAM_USER" "$UPSTREAM_DB" >"$TMP/init.log" 2>&1; then
  echo "bench: pgbench -i failed:" >&2
  cat "$TMP/init.log" >&2
  exit 1
fi

# ---- the runs ----
declare -A TPS=() TXNS=() CPU=()
CLK_TCK=$(getconf CLK_TCK)
# cpu_ticks PID → user+sys clock ticks the process has used (fields 14 and 15 of /proc/PID/stat), or empty
cpu_ticks() {
  if [[ -n $1 && -r /proc/$1/stat ]]; then awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; fi
}
FAILED=0
PATHS=()

# run_one MODE PATH SSLMODE HOST PORT USER DB PASSWORD [PROXY_PID]: the proxy's CPU over the run is recorded too
run_one() {
  local mode=$1 path=$2 ssl=$3 host=$4 port=$5 user=$6 db=$7 pass=$8 proxy=${9:-} out ok=0 before after
  before=$(cpu_ticks "$proxy")
  echo "bench: -M $mode via $path: pgbench -S -c $CLIENTS -j $JOBS -T $DURATION" >&2
  # In the background and waited for, so a signal to this script runs the cleanup at once.
  PGSSLMODE=$ssl PGPASSWORD=$pass PGAPPNAME="bench-$mode" pgbench -n -S -M "$mode" -c "$CLIENTS" -j "$JOBS" -T "$DURATION" \
    -h "$host" -p "$port" -U "$user" "$db" >"$TMP/pgbench.out" 2>&1 &
  RUN_PID=$!
  wait "$RUN_PID" && ok=1
  RUN_PID=
  after=$(cpu_ticks "$proxy")
  out=$(<"$TMP/pgbench.out")
  if ((ok)); then
    TPS[$mode/$path]=$(awk '/^tps = / { print $3; exit }' <<<"$out")
    TXNS[$mode/$path]=$(awk -F': ' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' <<<"$out")
    # The proxy's CPU (user+sys) per transaction, in µs: steadier than TPS on a shared machine.
    if [[ -n $before && -n $after && ${TXNS[$mode/$path]:-0} -gt 0 ]]; then
      CPU[$mode/$path]=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v n="${TXNS[$mode/$path]}" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
    fi
  else
    FAILED=1
    TPS[$mode/$path]=FAIL
    echo "bench: pgbench -M $mode via $path failed:" >&2
    tail -n 15 <<<"$out" >&2
  fi
  [[ -n ${TPS[$mode/$path]} ]] || TPS[$mode/$path]=FAIL
}

PATHS=(direct broker-tls broker-plain)
[[ -n $PGBOUNCER ]] && PATHS+=(pgbouncer-plain pgbouncer-tls)
[[ $FLOOR == 1 ]] && PATHS+=(node-floor-plain node-floor-tls)

for mode in $MODE; do
  pgb_db=bench_session
  [[ $PGBOUNCER_POOL_MODE == auto && $mode != prepared ]] && pgb_db=bench_tx
  run_one "$mode" direct disable "$UPSTREAM_HOST" "$UPSTREAM_PORT" "$UPSTREAM_USER" "$UPSTREAM_DB" ""
  run_one "$mode" broker-tls require 127.0.0.1 "$BROKER_PORT" bench app "$TOKEN" "$BROKER_PID"
  run_one "$mode" broker-plain disable 127.0.0.1 "$BROKER_PORT" bench app "$TOKEN" "$BROKER_PID"
  if [[ -n $PGBOUNCER ]]; then
    run_one "$mode" pgbouncer-plain disable 127.0.0.1 "$PGBOUNCER_PORT" "$UPSTREAM_USER" "$pgb_db" "" "$PGB_PID"
    run_one "$mode" pgbouncer-tls require 127.0.0.1 "$PGBOUNCER_PORT" "$UPSTREAM_USER" "$pgb_db" "" "$PGB_PID"
  fi
  if [[ $FLOOR == 1 ]]; then
    run_one "$mode" node-floor-plain disable 127.0.0.1 "$FLOOR_PORT" "$UPSTREAM_USER" "$UPSTREAM_DB" "" "$FLOOR_PID"
    run_one "$mode" node-floor-tls require 127.0.0.1 "$FLOOR_PORT" "$UPSTREAM_USER" "$UPSTREAM_DB" "" "$FLOOR_PID"
  fi
done

# ---- what the broker recorded ----
SESSIONS_JSON=$(jit sessions --build bench --json --limit 1000000)
read -r REC_TOTAL REC_TLS REC_PLAIN NSESS < <(node -e '
  const rows = JSON.parse(require("fs").readFileSync(0, "utf8"));
  let all = 0, tls = 0, plain = 0;
  for (const s of rows) { all += s.statementCount; if (s.tls) tls += s.statementCount; else plain += s.statementCount; }
  console.log(all, tls, plain, rows.length);
' <<<"$SESSIONS_JSON")
# The journal's own counts, which the broker logs as it stops ("audit journal closed").
stop_pid "$BROKER_PID"
BROKER_PID=
JOURNAL=$(node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
  const s = lines.map((l) => { try { return JSON.parse(l); } catch { return null; } }).find((j) => j && j.msg === "audit journal closed");
  const n = Number(process.argv[2]) || 1;
  console.log(s ? `journal: ${s.records} records, ${s.bytes} bytes in ${s.writes} writes: ${(s.records / n).toFixed(2)} records, ${(s.bytes / n).toFixed(0)} bytes and ${(s.writes / n).toFixed(2)} writes per statement recorded` : "journal: no counts (the broker did not log them as it stopped)");
' "$TMP/broker.log" "$REC_TOTAL")

# ---- the table ----
ratio() { # a b → a/b with two decimals, or "-"
  awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else printf "-" }'
}
fmt_tps() { awk -v t="$1" 'BEGIN { if (t ~ /^[0-9.]+$/) printf "%.0f", t; else printf "%s", t }'; }

echo
echo "pgbench -S  clients=$CLIENTS jobs=$JOBS duration=${DURATION}s scale=$SCALE  ($(nproc) CPUs; pgbench, PostgreSQL, the broker and pgbouncer share them)"
if [[ -n $PGBOUNCER ]]; then
  echo "pgbouncer $("$PGBOUNCER" --version | head -n 1 | awk '{ print $2 }'), pool mode: $([[ $PGBOUNCER_POOL_MODE == auto ]] && echo 'transaction for simple/extended, session for prepared' || echo 'session for every mode')"
fi
echo "vs pgbouncer compares like with like: TLS rows with pgbouncer-tls, plaintext rows with pgbouncer-plain"
echo
printf '%-9s %-16s %10s %10s %14s %14s\n' MODE PATH TPS "vs direct" "vs pgbouncer" "proxy µs/tx"
printf '%-9s %-16s %10s %10s %14s %14s\n' --------- ---------------- ---------- ---------- -------------- --------------
for mode in $MODE; do
  direct=${TPS[$mode/direct]}
  for path in "${PATHS[@]}"; do
    t=${TPS[$mode/$path]:-}
    case $path in *tls) ref=${TPS[$mode/pgbouncer-tls]:-} ;; *) ref=${TPS[$mode/pgbouncer-plain]:-} ;; esac
    printf '%-9s %-16s %10s %10s %14s %14s\n' "$mode" "$path" "$(fmt_tps "$t")" "$(ratio "$t" "$direct")" "$(ratio "$t" "$ref")" "${CPU[$mode/$path]:--}"
  done
done

THROUGH_BROKER=0
for mode in $MODE; do
  for path in broker-tls broker-plain; do THROUGH_BROKER=$((THROUGH_BROKER + ${TXNS[$mode/$path]:-0})); done
done
echo
echo "broker recorded $REC_TOTAL statements in $NSESS sessions (TLS $REC_TLS, plaintext $REC_PLAIN);" \
  "pgbench ran $THROUGH_BROKER transactions through it (one statement each, plus pgbench's own setup queries)"
echo "$JOURNAL"

exit "$FAILED"
