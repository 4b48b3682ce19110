#!/usr/bin/env bash
# bench/gpu_check.sh — does automix-local run on this machine's GPU? (issue 24 §1)
#
# On a machine with an NVIDIA GPU, from a checkout, with no network: builds llama-cpp-python with CUDA for the
# present GPU only, then runs `doctor`, `ask`, `eval run` on 20 items with n_gpu_layers = -1 and 0 (the ratio
# of seconds), `serve` with one request, and prints llama.cpp's offload lines. Under 10 minutes on a 16-core
# machine (the CUDA build is ~5.5 min of it). Results go to $OUT (default ./gpu_check_out): report.md, and
# the raw files behind it.
#
#   bash bench/gpu_check.sh                      # everything
#   WHEELHOUSE=wheels bash bench/gpu_check.sh    # install from a folder of wheels + the llama-cpp-python sdist
#   SKIP_BUILD=1 bash bench/gpu_check.sh         # use the llama-cpp-python already in $VENV (e.g. a CPU check)
#
# Variables: VENV (default .venv: the checkout's venv, with the package installed), MODEL (a GGUF; default the
# test model that `make test-model` pulls), DATA (a JSONL in the shared schema; default SQuAD 2.0 dev from
# ../shared/data, else bench/data/followups.jsonl), OUT, WHEELHOUSE, SKIP_BUILD, PORT (default 8765).
# Why each step: the import-order crash of issue 24 happened at the first model load, GPU offload or not, so
# every step loads a model through the package's own entry points (the CLI, serve), never a bare script.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-.venv}
PY=$VENV/bin/python
CLI=$VENV/bin/automix-local
OUT=${OUT:-gpu_check_out}
PORT=${PORT:-8765}
TEST_HOME=${AUTOMIX_TEST_HOME:-$ROOT/.cache/test-home}
MODEL=${MODEL:-$TEST_HOME/data/models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-}
if [ -z "$DATA" ]; then
  if [ -f ../shared/data/squad_v2_dev_public.jsonl ]; then DATA=../shared/data/squad_v2_dev_public.jsonl
  else DATA=bench/data/followups.jsonl; fi
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
REPORT=$OUT/report.md
export AUTOMIX_LOCAL_HOME=$OUT/home OMP_WAIT_POLICY=PASSIVE
say() { echo "== $*" | tee -a "$OUT/steps.log" >&2; }
seconds() { "$PY" -c 'import time; print(f"{time.time():.3f}")'; }

[ -f "$MODEL" ] || { echo "gpu_check: no model at $MODEL (set MODEL=path/to.gguf, or run make test-model)"; exit 2; }
[ -x "$PY" ] || { echo "gpu_check: no venv at $VENV (run make install, or set VENV)"; exit 2; }
: > "$OUT/steps.log"

# ---------------------------------------------------------------- 1. the CUDA build, for this GPU only
if [ "${SKIP_BUILD:-0}" != "1" ]; then
  say "building llama-cpp-python 0.3.36 with CUDA for the present GPU (CMAKE_CUDA_ARCHITECTURES=native)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.csv"
  src=(llama-cpp-python==0.3.36)
  pipopts=(--no-deps --force-reinstall --no-cache-dir --no-binary llama-cpp-python)
  if [ -n "${WHEELHOUSE:-}" ]; then pipopts+=(--no-index --find-links "$WHEELHOUSE"); fi
  t0=$(seconds)
  CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=native -DLLAVA_BUILD=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$PY" -m pip install "${pipopts[@]}" "${src[@]}" > "$OUT/build.log" 2>&1 \
    || { tail -30 "$OUT/build.log"; echo "gpu_check: the CUDA build failed (the log: $OUT/build.log)"; exit 1; }
  t1=$(seconds)
  build_s=$("$PY" -c "print(round($t1 - $t0))")
else
  build_s="skipped"
fi

# ---------------------------------------------------------------- 2. doctor: the build as the package sees it
say "doctor"
"$CLI" doctor --json > "$OUT/doctor.json" || true

# ---------------------------------------------------------------- configs: one tier, all layers on the GPU or none
for layers in -1 0; do
  name=$([ "$layers" = "-1" ] && echo gpu || echo cpu)
  cat > "$OUT/$name.toml" <<EOF
[[tiers]]
name = "small"
path = "$MODEL"
n_ctx = 2048
n_gpu_layers = $layers
max_tokens = 24
[[tiers]]
name = "large"
path = "$MODEL"
n_ctx = 2048
n_gpu_layers = $layers
max_tokens = 24
cost = 3.0
[cascade]
router = "threshold"
verifier = "logprob"
EOF
done
CTX=automix_local/data/sample.md

# ---------------------------------------------------------------- 3. the offload lines llama.cpp prints
say "offload lines (n_gpu_layers = -1)"
"$PY" - "$MODEL" > "$OUT/offload.log" 2>&1 <<'EOF' || true
import sys
import automix_local  # the package's import order: llama.cpp before numpy
import llama_cpp
llm = llama_cpp.Llama(sys.argv[1], n_gpu_layers=-1, n_ctx=512, verbose=True)
print("loaded; gpu offload supported:", llama_cpp.llama_supports_gpu_offload())
EOF
{ grep -Ei "offload|using device|CUDA0" "$OUT/offload.log" | head -20
  grep -o "assigned to device [A-Za-z0-9_]*" "$OUT/offload.log" | sort | uniq -c | sed 's/^ */layers /'
} > "$OUT/offload_lines.txt" || true

# ---------------------------------------------------------------- 4. ask, and 5. eval run on 20 items, GPU vs CPU
declare -A ASK EVAL
for name in gpu cpu; do
  say "ask ($name)"
  t0=$(seconds)
  "$CLI" --config "$OUT/$name.toml" ask --no-save --json --context "$CTX" "What is this document about?" \
    > "$OUT/ask_$name.json" 2> "$OUT/ask_$name.err" || { cat "$OUT/ask_$name.err"; echo "gpu_check: ask ($name) failed"; exit 1; }
  t1=$(seconds)
  ASK[$name]=$("$PY" -c "print(round($t1 - $t0, 2))")
  say "eval run, 20 items ($name)"
  rm -rf "$OUT/eval_$name"
  t0=$(seconds)
  "$CLI" --config "$OUT/$name.toml" eval run --data "$DATA" --out "$OUT/eval_$name" --limit 20 --seed 0 --verifiers logprob \
    > "$OUT/eval_$name.log" 2>&1 || { tail -20 "$OUT/eval_$name.log"; echo "gpu_check: eval run ($name) failed"; exit 1; }
  t1=$(seconds)
  EVAL[$name]=$("$PY" -c "print(round($t1 - $t0, 2))")
done

# ---------------------------------------------------------------- 6. serve, one request
say "serve, one request (GPU config)"
"$CLI" --config "$OUT/gpu.toml" serve --port "$PORT" > "$OUT/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
serve_ok=no
for _ in $(seq 1 120); do
  if "$PY" - "$PORT" > "$OUT/serve_reply.json" 2>/dev/null <<'EOF'
import json, sys, httpx
port = sys.argv[1]
r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=120, json={
    "model": "automix", "messages": [{"role": "system", "content": "The office moved to Lyon in 2021."},
                                     {"role": "user", "content": "Where did the office move?"}]})
r.raise_for_status()
print(json.dumps(r.json()))
EOF
  then serve_ok=yes; break; fi
  sleep 1
done
kill $SERVE 2>/dev/null || true
wait $SERVE 2>/dev/null || true

# ---------------------------------------------------------------- the report
"$PY" - "$OUT" "$build_s" "${ASK[gpu]}" "${ASK[cpu]}" "${EVAL[gpu]}" "${EVAL[cpu]}" "$serve_ok" "$MODEL" "$DATA" <<'EOF'
import json, sys
from pathlib import Path
out, build, ask_gpu, ask_cpu, eval_gpu, eval_cpu, serve_ok, model, data = sys.argv[1:]
out = Path(out)
doctor = json.loads((out / "doctor.json").read_text() or "{}") if (out / "doctor.json").stat().st_size else {}
lc = doctor.get("llama_cpp") or {}
devices = ", ".join(f"{d.get('name')} ({d.get('type')})" for d in lc.get("devices") or []) or "–"
reply = ""
try:
    reply = json.loads((out / "serve_reply.json").read_text())["choices"][0]["message"]["content"]
except Exception:
    pass
lines = [
    "# gpu_check",
    "",
    f"`bash bench/gpu_check.sh` — model `{Path(model).name}`, data `{Path(data).name}` (20 items, seed 0).",
    "",
    "| what | result |",
    "| --- | --- |",
    f"| GPU | {(out / 'nvidia-smi.csv').read_text().splitlines()[-1] if (out / 'nvidia-smi.csv').exists() else '–'} |",
    f"| CUDA build of llama-cpp-python 0.3.36 | {build if build == 'skipped' else build + ' s'} |",
    f"| llama-cpp-python loads | {lc.get('loads')} · GPU backend {lc.get('gpu_backend')} · offload {lc.get('gpu_offload')} |",
    f"| devices | {devices} |",
    f"| ask, n_gpu_layers = -1 / 0 | {ask_gpu} s / {ask_cpu} s |",
    f"| eval run, 20 items, n_gpu_layers = -1 / 0 | {eval_gpu} s / {eval_cpu} s (ratio {float(eval_gpu) / float(eval_cpu):.2f}) |",
    f"| serve, one request | {'answered: ' + repr(reply[:60]) if serve_ok == 'yes' else 'FAILED (serve.log)'} |",
    "",
    "Offload lines (llama.cpp, n_gpu_layers = -1):",
    "",
    "```",
    (out / "offload_lines.txt").read_text().strip() if (out / "offload_lines.txt").exists() else "",
    "```",
]
(out / "report.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
[ "$serve_ok" = yes ] || exit 1
