#!/usr/bin/env bash
# Same seed -> same curves: runs a fixed set of simulations with one quarry binary into DIR, and,
# given a second DIR, compares every curves.csv (and stream.csv / queries order) with the first,
# timing columns aside. Used to show that a restructuring changes no figure:
#   bench/session_parity.sh run  OLD_BINARY /tmp/parity-old
#   bench/session_parity.sh run  target/release/quarry /tmp/parity-new
#   bench/session_parity.sh diff /tmp/parity-old /tmp/parity-new
set -euo pipefail
cmd=$1
if [ "$cmd" = run ]; then
  Q=$2; OUT=$3; mkdir -p "$OUT"
  SH=$(cd "$(dirname "$0")/../.." && pwd)/shared
  run() { local name=$1; shift; rm -rf "$OUT/$name"; "$Q" simulate -q "$@" --out "$OUT/$name" >/dev/null 2>"$OUT/$name.err" || { echo "$name failed: $(tail -1 "$OUT/$name.err")"; }; }
  # P1 (BENCHMARKS.md): digits and breast cancer
  run p1-digits --data data/digits-8x8.csv --label-column digit --test-fraction 0.3 --strategy random,least-confidence,margin,entropy --initial 10 --batch 10 --budget 300 --seeds 5
  run p1-bc --data data/breast-cancer.csv --label-column diagnosis --test-fraction 0.3 --strategy random,least-confidence,margin,entropy --initial 10 --batch 10 --budget 150 --seeds 5
  # every strategy family that runs on logistic regression
  run all --data data/digits-8x8.csv --label-column digit --strategy qbc-vote-entropy,qbc-kl,density-entropy,suggestive-annotation,coreset,badge,diverse-mini-batch,margin-then-coreset,class-balanced,expected-gradient-length,variance-reduction,loss-prediction,vaal --budget 120 --seeds 2
  run eer --data data/digits-8x8.csv --label-column digit --strategy expected-error-reduction --candidates 60 --budget 60 --seeds 2
  # stream policies, stopping rules, evaluation schedule, warm-up, kmeans++ cold start
  run stream --data data/digits-8x8.csv --label-column digit --strategy stream-paced,stream-variable-uncertainty,stream-fixed-uncertainty,stream-random,margin --budget 300 --seeds 3
  run stream-eval --data data/digits-8x8.csv --label-column digit --strategy stream-paced,margin --budget 200 --seeds 2 --eval-every 50
  run stop --data data/digits-8x8.csv --label-column digit --strategy margin,entropy,random --budget 600 --seeds 3 --stop stabilizing-predictions:0.97,batch-accuracy:1
  run stop-unc --data data/breast-cancer.csv --label-column diagnosis --strategy margin --budget 200 --seeds 3 --stop max-uncertainty:0.2
  run eval-at --data data/digits-8x8.csv --label-column digit --strategy margin,random --budget 200 --seeds 2 --eval-at 50,100,150 --warmup 30 --cold-start kmeans-pp
  run ovr --data data/digits-8x8.csv --label-column digit --strategy margin,random --budget 100 --seeds 2 --positive-class 3
  # networks: MLP refit with dropout (Bayesian strategies), online with replay from zero labels
  run mlp --data data/digits-8x8.csv --label-column digit --model mlp --dropout 0.2 --epochs 5 --strategy bald,batchbald,margin --budget 60 --seeds 2
  run online --data data/digits-8x8.csv --label-column digit --model mlp --train online --initial 0 --replay 10 --strategy margin,random --budget 100 --seeds 2
  if [ -d "$SH/data/fashion-mnist" ] && [ -f "$SH/models/efficientnet-lite0.safetensors" ]; then
    python3 "$SH/checks/make_image_folder.py" "$SH/data/fashion-mnist/t10k-images-idx3-ubyte.gz" "$OUT/imgs" 3 40 >/dev/null
    run aift --data "$OUT/imgs" --model efficientnet-lite0 --weights "$SH/models/efficientnet-lite0.safetensors" --resolution 32 --patches 4 --strategy aift,random,margin --initial 6 --batch 6 --budget 42 --seeds 2 --train-patches
  fi
  "$Q" synthesize -q --problem circle --strategy synthesis-boundary,synthesis-random --initial 10 --batch 5 --budget 50 --seeds 2 --out "$OUT/synth" >/dev/null 2>&1 \
    || "$Q" synthesize --problem circle --strategy synthesis-boundary,synthesis-random --initial 10 --batch 5 --budget 50 --seeds 2 --out "$OUT/synth" >/dev/null 2>&1 || echo "synth failed"
elif [ "$cmd" = diff ]; then
  A=$2; B=$3; bad=0
  for f in "$A"/*/curves.csv; do
    name=$(basename "$(dirname "$f")")
    python3 - "$f" "$B/$name/curves.csv" <<'PY' || bad=1
import csv, sys
def rows(p):
    try: return [tuple((k, v) for k, v in r.items() if "second" not in k and "time" not in k) for r in csv.DictReader(open(p))]
    except FileNotFoundError: return None
a, b = rows(sys.argv[1]), rows(sys.argv[2])
name = sys.argv[1].split("/")[-2]
if a == b: print(f"same      {name}: {len(a)} rows")
else:
    print(f"DIFFERENT {name}: {0 if a is None else len(a)} vs {0 if b is None else len(b)} rows")
    if a and b:
        for x, y in zip(a, b):
            if x != y: print("  ", dict(x), "\n  ", dict(y)); break
    sys.exit(1)
PY
  done
  exit $bad
fi
