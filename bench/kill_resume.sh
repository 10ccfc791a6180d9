#!/usr/bin/env bash
# A run killed with SIGKILL at random moments and then finished gives the same curves.csv as an
# uninterrupted run, timing columns aside (issue "One loop for every driver", section 3).
#   bench/kill_resume.sh [QUARRY_BINARY] [KILLS]     (default target/release/quarry, 20 kills)
# Prints "same after N kills" and exits 0, or shows the first differing row and exits 1.
set -uo pipefail
Q=${1:-target/release/quarry}; KILLS=${2:-20}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
args=(simulate --data data/digits-8x8.csv --label-column digit --test-fraction 0.3 --strategy margin,entropy
      --initial 10 --batch 10 --budget 400 --seeds 10 -q)
"$Q" "${args[@]}" --out "$tmp/clean" >/dev/null 2>&1 || { echo "the uninterrupted run failed"; exit 1; }
for k in $(seq "$KILLS"); do
  "$Q" "${args[@]}" --out "$tmp/killed" >/dev/null 2>&1 & pid=$!
  sleep "0.$((RANDOM % 9 + 1))"; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
done
"$Q" "${args[@]}" --out "$tmp/killed" >/dev/null 2>&1 || { echo "the run after $KILLS kills failed"; exit 1; }
python3 - "$tmp/clean/curves.csv" "$tmp/killed/curves.csv" "$KILLS" <<'PY'
import csv, sys
def rows(p):
    return sorted(tuple((k, v) for k, v in r.items() if "second" not in k) for r in csv.DictReader(open(p)))
a, b = rows(sys.argv[1]), rows(sys.argv[2])
if a == b and a:
    print(f"same after {sys.argv[3]} kills: {len(a)} rows of curves.csv equal but for timings"); sys.exit(0)
for x, y in zip(a, b):
    if x != y: print("differs:", dict(x), "vs", dict(y)); break
print(f"{len(a)} vs {len(b)} rows"); sys.exit(1)
PY
