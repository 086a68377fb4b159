#!/usr/bin/env bash
# Memory of `cloudgov import samples` on a large file: peak RSS whatever the file size, all or
# nothing. A benchmark that prints figures; it does not fail on them.
#
# 1. Writes a samples CSV of SIZE_GB (default 2) gigabytes: 100 VMs of 60-s samples with
#    network rates, back from today (about 75 bytes a line).
# 2. Imports it into a fresh SQLite database (or PostgreSQL with DB=postgres) with the release
#    binary under /usr/bin/time -v: rows, seconds, rows/s, peak RSS (maximum resident set).
# 3. Imports the same file with one bad line appended, into another fresh database: the error
#    must name that last line, and the database must hold no sample afterwards.
#
# Usage:  benches/import_memory.sh
# Knobs:  SIZE_GB=2   DIR=/tmp (where the CSV and databases go; needs about 3x SIZE_GB free)
#         DB=sqlite|postgres  PG=postgres://postgres@127.0.0.1:5432 (databases cloudgov_import_*)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
SIZE_GB=${SIZE_GB:-2}
DIR=${DIR:-/tmp}
DB=${DB:-sqlite}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
work=$(mktemp -d "$DIR/cloudgov-import.XXXXXX")
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --bin cloudgov
bin=${CARGO_TARGET_DIR:-target}/release/cloudgov

db_url() { # a fresh database named $1
  if [ "$DB" = postgres ]; then
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS cloudgov_import_$1 WITH (FORCE)" \
      -c "CREATE DATABASE cloudgov_import_$1" >/dev/null
    echo "$PG/cloudgov_import_$1"
  else
    echo "sqlite://$work/$1.db"
  fi
}

inventory=$work/inventory.toml
{
  printf '[[department]]\nid = "d"\nname = "D"\n\n[[project]]\nid = "p"\nname = "P"\ndepartment = "d"\n\n'
  for v in $(seq -w 0 99); do
    printf '[[vm]]\nid = "vm-%s"\nproject = "p"\nvcpus = 4\nmemory_gib = 8\ndisk_gib = 100\ndelivered_on = 2025-01-06\n\n' "$v"
  done
} >"$inventory"

csv=$work/samples.csv
echo "== writing $SIZE_GB GB of samples to $csv"
python3 - "$csv" "$SIZE_GB" <<'PY'
import sys, datetime, random
path, size = sys.argv[1], float(sys.argv[2]) * 1e9
random.seed(7)
tz = datetime.timezone(datetime.timedelta(hours=8))
now = int(datetime.datetime.now(tz).timestamp()) // 60 * 60 - 3600
with open(path, "w", buffering=1 << 20) as f:
    f.write("vm,ts,cpu_pct,mem_pct,disk_pct,net_rx_bps,net_tx_bps\n")
    written, minute = 0, 0
    while written < size:
        ts = datetime.datetime.fromtimestamp(now - minute * 60, tz).isoformat()
        lines = []
        for v in range(100):
            lines.append(f"vm-{v:02d},{ts},{random.randint(0, 9999) / 100},{random.randint(2000, 6000) / 100},"
                         f"{random.randint(3000, 3100) / 100},{random.randint(0, 5000000)},{random.randint(0, 900000)}\n")
        chunk = "".join(lines)
        f.write(chunk)
        written += len(chunk)
        minute += 1
print(f"   {minute * 100} rows, {minute / 1440:.0f} days back")
PY
ls -l "$csv" | awk '{printf "   %.2f GB\n", $5 / 1e9}'

run() { # name, file
  local url; url=$(db_url "$1")
  "$bin" --db "$url" import inventory "$inventory" >/dev/null
  local log=$work/$1.time
  set +e
  /usr/bin/time -v "$bin" --db "$url" import samples --allow-history "$2" >"$work/$1.out" 2>"$log"
  local status=$?
  set -e
  local rss secs
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$log")
  echo "   exit $status in ${secs} s, peak RSS ${rss} MiB: $(cat "$work/$1.out")$(grep -v '^\s' "$log" | grep -v 'Command being timed' | head -2)"
  local stored
  stored=$("$bin" --db "$url" samples export vm-00 --format csv | tail -n +2 | wc -l)
  echo "   samples of vm-00 stored afterwards: $stored"
}

echo "== import of the whole file ($DB)"
run whole "$csv"
echo "== the same file with a bad last line"
lines=$(( $(wc -l <"$csv") + 1 ))
echo "vm-00,2020-01-01T00:00:00+08:00,101,1,1,," >>"$csv"
echo "   (the bad line is line $lines)"
run bad "$csv"
echo "rerun: SIZE_GB=$SIZE_GB DB=$DB benches/import_memory.sh"
