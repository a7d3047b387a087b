#!/usr/bin/env bash
# Throughput of the broker's MySQL relay: point selects directly against MySQL/MariaDB, through the broker
# (TLS and plaintext, recording on) and through HAProxy in TCP mode (a plain relay: what any proxy costs) when it
# is installed, in the same run, with each proxy's CPU (user+sys from /proc/PID/stat over the run) per statement:
#   - mysql2 load (bench/mysql-load.ts): CLIENTS connections, random ids, text (COM_QUERY) and prepared
#     (COM_STMT_EXECUTE) statements, for DURATION seconds each;
#   - mysqlslap: the same point select as text, CLIENTS concurrent clients, SLAP_QUERIES statements in all.
# Prints figures and the ratios to direct; asserts nothing about speed.
#
# usage: bash bench/mysql.sh     (from the repo root)
#
# Options, all through the environment:
#   DURATION=10  CLIENTS=8  ROWS=10000  SLAP_QUERIES=40000  MODES="text prepared"
#   UPSTREAM_HOST=127.0.0.1 UPSTREAM_PORT=3306 UPSTREAM_DB=test UPSTREAM_USER=root UPSTREAM_PASSWORD=
#   BROKER_PORT=26033 BROKER_HTTP_PORT=28081 HAPROXY_PORT=26034
#   HAPROXY=haproxy       the binary; set HAPROXY= (empty) to skip the haproxy rows (apt-get install haproxy)
#   NODE_OPTIONS_BROKER=  extra node flags for the broker (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof")
#   KEEP_TMP=0            1: keep the temp dir (config, broker log, the SQLite store)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

DURATION=${DURATION:-10}
DURATION=${DURATION%s}
CLIENTS=${CLIENTS:-8}
ROWS=${ROWS:-10000}
SLAP_QUERIES=${SLAP_QUERIES:-40000}
MODES=${MODES:-text prepared}
UPSTREAM_HOST=${UPSTREAM_HOST:-127.0.0.1}
UPSTREAM_PORT=${UPSTREAM_PORT:-3306}
UPSTREAM_DB=${UPSTREAM_DB:-test}
UPSTREAM_USER=${UPSTREAM_USER:-root}
UPSTREAM_PASSWORD=${UPSTREAM_PASSWORD:-}
BROKER_PORT=${BROKER_PORT:-26033}
BROKER_HTTP_PORT=${BROKER_HTTP_PORT:-28081}
HAPROXY_PORT=${HAPROXY_PORT:-26034}
HAPROXY=${HAPROXY-haproxy}
NODE_OPTIONS_BROKER=${NODE_OPTIONS_BROKER:-}
KEEP_TMP=${KEEP_TMP:-0}
TABLE=jit_bench_point

for v in DURATION CLIENTS ROWS SLAP_QUERIES; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a whole number, got '${!v}'" >&2; exit 2; }
done
for m in $MODES; do
  case $m in text | prepared) ;; *) echo "bench: MODES takes text, prepared; got '$m'" >&2; exit 2 ;; esac
done
for bin in node mariadb mysqlslap curl; do
  command -v "$bin" >/dev/null || { echo "bench: '$bin' is not installed" >&2; exit 2; }
done

if [[ -n $HAPROXY ]] && ! command -v "$HAPROXY" >/dev/null; then
  echo "bench: $HAPROXY is not installed: the haproxy rows are skipped (apt-get install haproxy)" >&2
  HAPROXY=
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/jit-bench-mysql.XXXXXX")
BROKER_PID=
HAPROXY_PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $HAPROXY_PID ]] && kill -0 "$HAPROXY_PID" 2>/dev/null; then
    kill -TERM "$HAPROXY_PID" 2>/dev/null || true
    wait "$HAPROXY_PID" 2>/dev/null || true
  fi
  if [[ -n $BROKER_PID ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  direct_sql "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>&1 || true
  if [[ $KEEP_TMP == 1 ]]; then echo "bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DIRECT_ARGS=(-h "$UPSTREAM_HOST" -P "$UPSTREAM_PORT" -u "$UPSTREAM_USER")
[[ -n $UPSTREAM_PASSWORD ]] && DIRECT_ARGS+=("-p$UPSTREAM_PASSWORD")
direct_sql() { mariadb "${DIRECT_ARGS[@]}" "$UPSTREAM_DB" -e "$1"; }

# ---- the table: ROWS rows, directly ----
echo "bench: creating $TABLE ($ROWS rows) in $UPSTREAM_HOST:$UPSTREAM_PORT/$UPSTREAM_DB" >&2
direct_sql "DROP TABLE IF EXISTS $TABLE; CREATE TABLE $TABLE (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL)"
node -e '
  const [rows, table] = [Number(process.argv[1]), process.argv[2]];
  for (let i = 1; i <= rows; i += 1000) {
    const vals = [];
    for (let j = i; j < Math.min(rows + 1, i + 1000); j++) vals.push(`(${j}, "value ${j}")`);
    console.log(`INSERT INTO ${table} VALUES ${vals.join(",")};`);
  }' "$ROWS" "$TABLE" | mariadb "${DIRECT_ARGS[@]}" "$UPSTREAM_DB"

# ---- the broker: its own config, data dir and store in the temp dir ----
CFG=$TMP/jit.yaml
URL_PASS=${UPSTREAM_PASSWORD:+:$(node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' "$UPSTREAM_PASSWORD")}
cat >"$CFG" <<EOF
data_dir: $TMP/data
store: sqlite:$TMP/data/jit.db
listen: { postgres: null, mysql: 127.0.0.1:$BROKER_PORT, http: 127.0.0.1:$BROKER_HTTP_PORT }
# TLS with the generated self-signed certificate; plaintext is also accepted from loopback.
tls: { plaintext: loopback }
targets:
  app: { engine: mysql, upstream: "mysql://$UPSTREAM_USER$URL_PASS@$UPSTREAM_HOST:$UPSTREAM_PORT/$UPSTREAM_DB" }
rules:
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
EOF
echo "bench: starting the broker on 127.0.0.1:$BROKER_PORT, logs in $TMP/broker.log" >&2
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
  ((i >= 300)) && { echo "bench: the broker is not ready after 30 s" >&2; tail -n 30 "$TMP/broker.log" >&2; exit 1; }
  sleep 0.1
done
TOKEN=$(node "$REPO/bin/jit.js" --config "$CFG" token --build bench --ttl 1h)

# ---- HAProxy: TCP mode, one frontend straight to the upstream (no TLS, no parsing) ----
PATHS=(direct broker-tls broker-plain)
if [[ -n $HAPROXY ]]; then
  cat >"$TMP/haproxy.cfg" <<EOF
global
  maxconn 1000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend bench
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend upstream
backend upstream
  server db $UPSTREAM_HOST:$UPSTREAM_PORT
EOF
  echo "bench: starting $HAPROXY (tcp mode) on 127.0.0.1:$HAPROXY_PORT" >&2
  "$HAPROXY" -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  for ((i = 0; ; i++)); do
    kill -0 "$HAPROXY_PID" 2>/dev/null || { HAPROXY_PID=; echo "bench: haproxy exited:" >&2; tail "$TMP/haproxy.log" >&2; exit 1; }
    mariadb "${DIRECT_ARGS[@]}" -h 127.0.0.1 -P "$HAPROXY_PORT" -e 'SELECT 1' >/dev/null 2>&1 && break
    ((i >= 100)) && { echo "bench: haproxy is not ready after 10 s" >&2; tail "$TMP/haproxy.log" >&2; exit 1; }
    sleep 0.1
  done
  PATHS+=(haproxy)
fi
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # PID → user+sys clock ticks it has used, or empty
  if [[ -n $1 && -r /proc/$1/stat ]]; then awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; fi
}
proxy_of() { case $1 in broker-*) echo "$BROKER_PID" ;; haproxy) echo "$HAPROXY_PID" ;; esac; }
# us_per STATEMENTS BEFORE AFTER → the proxy's CPU per statement in µs, or -
us_per() { awk -v n="$1" -v b="$2" -v a="$3" -v hz="$CLK_TCK" 'BEGIN { if (b != "" && a != "" && n > 0) printf "%.1f", (a - b) * 1e6 / hz / n; else printf "-" }'; }

# ---- the runs ----
declare -A QPS=() CPU=()
LOAD=(node --import tsx "$REPO/bench/mysql-load.ts" --clients "$CLIENTS" --seconds "$DURATION" --rows "$ROWS" --table "$TABLE")
load_args() { # path → connection flags for mysql-load.ts
  case $1 in
    direct) echo "--host $UPSTREAM_HOST --port $UPSTREAM_PORT --user $UPSTREAM_USER --database $UPSTREAM_DB${UPSTREAM_PASSWORD:+ --password $UPSTREAM_PASSWORD}" ;;
    broker-tls) echo "--port $BROKER_PORT --user ci --database app --password $TOKEN --tls" ;;
    broker-plain) echo "--port $BROKER_PORT --user ci --database app --password $TOKEN --cleartext" ;;
    haproxy) echo "--host 127.0.0.1 --port $HAPROXY_PORT --user $UPSTREAM_USER --database $UPSTREAM_DB${UPSTREAM_PASSWORD:+ --password $UPSTREAM_PASSWORD}" ;;
  esac
}
for mode in $MODES; do
  for path in "${PATHS[@]}"; do
    echo "bench: mysql2 $mode via $path: $CLIENTS connections, ${DURATION}s" >&2
    pid=$(proxy_of "$path")
    before=$(cpu_ticks "$pid")
    # shellcheck disable=SC2046 # load_args is a list of flags
    out=$("${LOAD[@]}" --mode "$mode" $(load_args "$path"))
    after=$(cpu_ticks "$pid")
    QPS["mysql2 $mode $path"]=$(node -e 'const r = JSON.parse(process.argv[1]); if (r.errors) console.error(`bench: ${r.errors} errors`); process.stdout.write(`${r.qps} ${r.p50ms} ${r.p99ms}`)' "$out")
    CPU["mysql2 $mode $path"]=$(us_per "$(node -e 'process.stdout.write(String(JSON.parse(process.argv[1]).queries))' "$out")" "$before" "$after")
  done
done
SLAP_QUERY="SELECT v FROM $TABLE WHERE id = 4242"
for path in "${PATHS[@]}"; do
  case $path in
    direct) args=("${DIRECT_ARGS[@]}" --create-schema="$UPSTREAM_DB") ;;
    haproxy) args=("${DIRECT_ARGS[@]}" -h 127.0.0.1 -P "$HAPROXY_PORT" --create-schema="$UPSTREAM_DB") ;;
    broker-tls) args=(-h 127.0.0.1 -P "$BROKER_PORT" -u ci "-p$TOKEN" --create-schema=app) ;;
    broker-plain) args=(-h 127.0.0.1 -P "$BROKER_PORT" -u ci "-p$TOKEN" --create-schema=app --skip-ssl) ;;
  esac
  echo "bench: mysqlslap via $path: $CLIENTS clients, $SLAP_QUERIES queries" >&2
  pid=$(proxy_of "$path")
  before=$(cpu_ticks "$pid")
  secs=$(mysqlslap "${args[@]}" --concurrency="$CLIENTS" --iterations=1 --number-of-queries="$SLAP_QUERIES" --query="$SLAP_QUERY" |
    awk '/Average number of seconds/ { print $(NF-1) }')
  CPU["mysqlslap text $path"]=$(us_per "$SLAP_QUERIES" "$before" "$(cpu_ticks "$pid")")
  QPS["mysqlslap text $path"]="$(node -e 'process.stdout.write(String(Math.round(Number(process.argv[1]) / Number(process.argv[2]))))' "$SLAP_QUERIES" "$secs") - -"
done

# ---- the report ----
echo
echo "point select  clients=$CLIENTS rows=$ROWS duration=${DURATION}s slap_queries=$SLAP_QUERIES  ($(nproc) CPUs; the load, the server and the broker share them)"
echo
printf '%-10s %-9s %-13s %10s %10s %9s %9s %14s\n' TOOL MODE PATH QPS 'vs direct' 'p50 ms' 'p99 ms' 'proxy µs/stmt'
printf '%-10s %-9s %-13s %10s %10s %9s %9s %14s\n' ---------- --------- ------------- ---------- ---------- --------- --------- --------------
for tool_mode in "mysqlslap text" $(for m in $MODES; do echo "mysql2|$m"; done); do
  read -r tool mode <<<"${tool_mode//|/ }"
  read -r base _ <<<"${QPS["$tool $mode direct"]}"
  for path in "${PATHS[@]}"; do
    read -r qps p50 p99 <<<"${QPS["$tool $mode $path"]}"
    ratio=$(node -e 'process.stdout.write((Number(process.argv[1]) / Number(process.argv[2])).toFixed(2))' "$qps" "$base")
    printf '%-10s %-9s %-13s %10s %10s %9s %9s %14s\n' "$tool" "$mode" "$path" "$qps" "$ratio" "$p50" "$p99" "${CPU["$tool $mode $path"]:--}"
  done
done
echo
node -e '
  const Database = require("better-sqlite3");
  const db = new Database(process.argv[1], { readonly: true });
  const n = db.prepare("SELECT COUNT(*) AS n FROM statements").get().n;
  console.log(`broker recorded ${n} statements`);' "$TMP/data/jit.db" 2>/dev/null || true
