#!/usr/bin/env bash
# Footprint of cloudgov-agent next to Prometheus node_exporter on this machine.
#
# Runs both side by side for the same time at the same collection interval, all on loopback:
#   - cloudgov-agent (release-agent profile) posts its reports to a tiny local sink (python3),
#     which answers every POST /api/v1/ingest with 200 {"accepted":N,"duplicates":0};
#   - node_exporter (Debian package prometheus-node-exporter) is scraped with curl.
# Reports for each process: peak RSS (VmHWM), CPU time in the measured window (utime+stime from
# /proc/PID/stat; the agent's figure includes its waited-for children, cutime+cstime, which must
# be 0 since the agent starts no process), the number of collections in the window (agent:
# reports received by the sink; node_exporter: scrapes), CPU per collection, and whether the
# targets of issue 20 are met: agent/node_exporter at most 0.30 for CPU per collection and at
# most 0.20 for peak RSS.
#
# Usage:  benches/agent_footprint.sh
# Knobs (environment):
#   INTERVAL=1        seconds between collections / scrapes (integer, >= 1)
#   DURATION=60       length of the measured window in seconds (integer, multiple of INTERVAL)
#   SCRAPE_GZIP=1     scrape with "Accept-Encoding: gzip" as Prometheus does (0: uncompressed)
#   CARGO_JOBS=1      parallel jobs for building the agent
#   NODE_EXPORTER=/usr/bin/prometheus-node-exporter   binary to compare with
# Installs prometheus-node-exporter with apt-get if the binary is missing (needs root). The
# package may start its own service on :9100; this script runs its own instance on a free
# loopback port and leaves any service alone.
set -euo pipefail
export LC_ALL=C

INTERVAL=${INTERVAL:-1}
DURATION=${DURATION:-60}
CARGO_JOBS=${CARGO_JOBS:-1}
SCRAPE_GZIP=${SCRAPE_GZIP:-1}
NODE_EXPORTER=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}

die() { echo "agent_footprint: $*" >&2; exit 1; }

[[ $INTERVAL =~ ^[0-9]+$ && $INTERVAL -ge 1 && $INTERVAL -le 3600 ]] || die "INTERVAL must be 1..3600 s"
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge $INTERVAL && $DURATION -le 86400 ]] ||
    die "DURATION must be INTERVAL..86400 s"
[[ $CARGO_JOBS =~ ^[0-9]+$ && $CARGO_JOBS -ge 1 ]] || die "CARGO_JOBS must be a positive integer"
[[ $SCRAPE_GZIP == [01] ]] || die "SCRAPE_GZIP must be 0 or 1"
# Prometheus asks for gzip, so by default node_exporter compresses every answer as it would in
# production; curl stores the compressed bytes without unpacking them.
SCRAPE_HEADERS=()
[[ $SCRAPE_GZIP == 1 ]] && SCRAPE_HEADERS=(-H 'Accept-Encoding: gzip')
ROUNDS=$((DURATION / INTERVAL))
DURATION=$((ROUNDS * INTERVAL))

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
AGENT_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release-agent/cloudgov-agent
CLK_TCK=$(getconf CLK_TCK)

for tool in curl python3 cargo awk; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# --- node_exporter -------------------------------------------------------------------------
if [[ ! -x $NODE_EXPORTER ]]; then
    [[ $(id -u) -eq 0 ]] || die "$NODE_EXPORTER missing; run: apt-get install -y prometheus-node-exporter"
    echo "installing prometheus-node-exporter ..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus-node-exporter >&2
    [[ -x $NODE_EXPORTER ]] || die "$NODE_EXPORTER still missing after apt-get"
fi
NE_VERSION=$("$NODE_EXPORTER" --version 2>&1 | awk 'NR == 1 { print $3; exit }')

# --- agent ---------------------------------------------------------------------------------
echo "building cloudgov-agent (profile release-agent, -j $CARGO_JOBS) ..." >&2
(cd "$ROOT" && cargo build -p cloudgov-agent --profile release-agent -j "$CARGO_JOBS" >&2)
[[ -x $AGENT_BIN ]] || die "$AGENT_BIN not found after the build"

# --- processes and cleanup -----------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/agent_footprint.XXXXXX")
PIDS=()
cleanup() {
    local i
    # Newest first: the agent stops before the sink it may still be posting to.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null || true
    done
    for i in "${PIDS[@]}"; do
        wait "$i" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $2 tenths of a second until an HTTP server answers at $1 (any status).
wait_http() {
    local i
    for ((i = 0; i < $2; i++)); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}

# "self children" CPU of a process in clock ticks: utime+stime and cutime+cstime.
cpu_ticks() {
    local stat f
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) } # the command name may contain spaces; fields start after ") "
    read -r -a f <<<"$stat"
    echo "$((f[11] + f[12])) $((f[13] + f[14]))"
}

# A field of /proc/PID/status in kB.
status_kb() {
    awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

# "posts reports" received by the sink so far.
sink_counts() {
    awk '{ p++; r += $2 } END { printf "%d %d\n", p, r }' "$WORK/sink.log"
}

alive() {
    kill -0 "$1" 2>/dev/null || die "$2 exited early; its log: $(tail -n 5 "$WORK/$2.log" 2>/dev/null)"
}

# Sleeps until the epoch time $1 (fractional seconds); returns at once if it has passed.
sleep_until() {
    local rest
    rest=$(awk -v d="$1" -v n="$EPOCHREALTIME" 'BEGIN { r = d - n; printf "%.3f", (r > 0 ? r : 0) }')
    sleep "$rest"
}

# Sink: one line "<time> <reports>" per POST.
cat >"$WORK/sink.py" <<'EOF'
import json, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as with a real daemon

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            n = len(json.loads(body)["reports"]) if self.path == "/api/v1/ingest" else -1
        except (ValueError, KeyError, TypeError):
            n = -1
        out = json.dumps({"accepted": max(n, 0), "duplicates": 0}).encode()
        self.send_response(200 if n >= 0 else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
        if n >= 0:
            with open(sys.argv[2], "a") as log:
                log.write(f"{time.time():.3f} {n}\n")

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
EOF
: >"$WORK/sink.log"
SINK_PORT=$(free_port)
python3 "$WORK/sink.py" "$SINK_PORT" "$WORK/sink.log" >"$WORK/sink.stderr" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$SINK_PORT/" 50 || die "the sink did not start"

NE_PORT=$(free_port)
"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$NE_PORT" --log.level=warn \
    >"$WORK/node_exporter.log" 2>&1 &
NE_PID=$!
PIDS+=("$NE_PID")
wait_http "http://127.0.0.1:$NE_PORT/" 100 || die "node_exporter did not start"

mkdir "$WORK/spool" # for agents that spool to disk; unknown variables are ignored
CLOUDGOV_AGENT_SERVER="http://127.0.0.1:$SINK_PORT" CLOUDGOV_AGENT_TOKEN=x \
    CLOUDGOV_AGENT_INTERVAL_SECS="$INTERVAL" CLOUDGOV_AGENT_SPOOL_DIR="$WORK/spool" \
    "$AGENT_BIN" >"$WORK/cloudgov-agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")

# Warm-up: the agent's first report has arrived and node_exporter has served one scrape, so the
# window measures steady state rather than start-up.
for ((i = 0; i < 10 * (INTERVAL + 10); i++)); do
    read -r _ reports < <(sink_counts)
    [[ $reports -ge 1 ]] && break
    alive "$AGENT_PID" cloudgov-agent
    sleep 0.1
done
[[ $reports -ge 1 ]] || die "no report from the agent within $((INTERVAL + 10)) s"
curl -sf -o /dev/null --max-time 10 "${SCRAPE_HEADERS[@]}" "http://127.0.0.1:$NE_PORT/metrics" || die "warm-up scrape failed"

# --- measured window -----------------------------------------------------------------------
echo "measuring for $DURATION s (interval $INTERVAL s) ..." >&2
T0=$EPOCHREALTIME
read -r A0 AC0 < <(cpu_ticks "$AGENT_PID")
read -r N0 _ < <(cpu_ticks "$NE_PID")
read -r P0 R0 < <(sink_counts)
SCRAPES=0
FAILED=0
BYTES=0
for ((i = 0; i < ROUNDS; i++)); do
    sleep_until "$(awk -v t="$T0" -v k="$i" -v s="$INTERVAL" 'BEGIN { printf "%.6f", t + k * s }')"
    if size=$(curl -sf -o /dev/null -w '%{size_download}' --max-time "$INTERVAL" \
        "${SCRAPE_HEADERS[@]}" "http://127.0.0.1:$NE_PORT/metrics"); then
        SCRAPES=$((SCRAPES + 1))
        BYTES=$size
    else
        FAILED=$((FAILED + 1))
    fi
done
sleep_until "$(awk -v t="$T0" -v d="$DURATION" 'BEGIN { printf "%.6f", t + d }')"
alive "$AGENT_PID" cloudgov-agent
alive "$NE_PID" node_exporter
read -r A1 AC1 < <(cpu_ticks "$AGENT_PID")
read -r N1 _ < <(cpu_ticks "$NE_PID")
read -r P1 R1 < <(sink_counts)
A_HWM=$(status_kb "$AGENT_PID" VmHWM)
A_RSS=$(status_kb "$AGENT_PID" VmRSS)
N_HWM=$(status_kb "$NE_PID" VmHWM)
N_RSS=$(status_kb "$NE_PID" VmRSS)
WALL=$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

# --- report --------------------------------------------------------------------------------
awk -v tck="$CLK_TCK" \
    -v a_self=$((A1 - A0)) -v a_child=$((AC1 - AC0)) -v n_cpu=$((N1 - N0)) \
    -v a_n=$((R1 - R0)) -v a_posts=$((P1 - P0)) -v n_n="$SCRAPES" \
    -v a_hwm="$A_HWM" -v a_rss="$A_RSS" -v n_hwm="$N_HWM" -v n_rss="$N_RSS" '
function ms(t) { return t * 1000 / tck }
function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "n/a" }
function per(c, n) { return n > 0 ? c / n : 0 }
BEGIN {
    a_cpu = ms(a_self + a_child); n_ms = ms(n_cpu)
    printf "%-34s %16s %16s %10s\n", "", "cloudgov-agent", "node_exporter", "agent/ne"
    printf "%-34s %12.1f MiB %12.1f MiB %10s\n", "peak RSS (VmHWM)", a_hwm / 1024, n_hwm / 1024, ratio(a_hwm, n_hwm)
    printf "%-34s %12.1f MiB %12.1f MiB %10s\n", "RSS at the end (VmRSS)", a_rss / 1024, n_rss / 1024, ratio(a_rss, n_rss)
    printf "%-34s %16d %16d %10s\n", "collections in the window", a_n, n_n, ""
    printf "%-34s %13.0f ms %13.0f ms %10s\n", "CPU in the window", a_cpu, n_ms, ratio(a_cpu, n_ms)
    printf "%-34s %13.0f ms %16s %10s\n", "  of which child processes", ms(a_child), "-", ""
    printf "%-34s %13.2f ms %13.2f ms %10s\n", "CPU per collection", per(a_cpu, a_n), per(n_ms, n_n), ratio(per(a_cpu, a_n), per(n_ms, n_n))
    printf "\nagent POSTs in the window: %d; CPU time resolution: %.0f ms (CLK_TCK %d)\n", a_posts, 1000 / tck, tck
    cpu_ratio = per(n_ms, n_n) > 0 ? per(a_cpu, a_n) / per(n_ms, n_n) : 99
    rss_ratio = n_hwm > 0 ? a_hwm / n_hwm : 99
    printf "peak RSS in kB: agent %d, node_exporter %d\n", a_hwm, n_hwm
    printf "targets (issue 20): CPU per collection <= 0.30 x node_exporter: %.3f %s; peak RSS <= 0.20 x: %.3f %s\n", \
        cpu_ratio, (cpu_ratio <= 0.30 ? "met" : "NOT MET"), rss_ratio, (rss_ratio <= 0.20 ? "met" : "NOT MET")
    if (a_child > 0) printf "warning: the agent used %.0f ms in child processes; it should start none\n", ms(a_child)
}'
echo "node_exporter $NE_VERSION; wall time of the window ${WALL} s; failed scrapes: $FAILED; last scrape $BYTES bytes (gzip: $SCRAPE_GZIP)"
echo "agent binary: $(stat -c %s "$AGENT_BIN") bytes; node_exporter binary: $(stat -c %s "$NODE_EXPORTER") bytes"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rerun: INTERVAL=$INTERVAL DURATION=$DURATION SCRAPE_GZIP=$SCRAPE_GZIP CARGO_JOBS=$CARGO_JOBS benches/agent_footprint.sh"
