#!/bin/bash
# What CURVE costs: `multiraft bench` (its own local cluster, 16 regions,
# fsync on) plain and --secure, alternating, puts and gets at 256 and 1,024
# requests in flight, twice. One line per run: rep workload in-flight mode
# ops/s p99-ms.
#     bash bench/curve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MULTIRAFT=${MULTIRAFT:-.venv/bin/multiraft}
for rep in 1 2; do
 for wl in put get; do
  for c in 256 1024; do
   for mode in plain secure; do
     flag=""; [ $mode = secure ] && flag="--secure"
     r=$("$MULTIRAFT" bench --workload $wl --clients $c --duration 10 $flag --json 2>/dev/null | tail -1)
     echo "$rep $wl $c $mode $(echo "$r" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["ops_per_sec"]), d["latency_ms"]["p99"])')"
   done
  done
 done
done
