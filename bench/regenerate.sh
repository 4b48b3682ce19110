#!/usr/bin/env bash
# Rebuild every committed report under docs/results from the committed runs, without a model:
#   bash bench/regenerate.sh            (about 15 minutes on 2 cores)
# Each step is the command the report or README beside it names; merged runs are rebuilt in runs/ first.
set -euo pipefail
cd "$(dirname "$0")/.."
# The committed figures were computed with OpenBLAS's Haswell kernels; on a CPU where it picks its AVX-512 ones, the
# logistic fits differ in the last bits (an ECE's 16th digit, a ΔIBC of ±1e-16 changing sign) and so do the files.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
A=${AUTOMIX:-.venv/bin/automix-local}
P=${PYTHON:-.venv/bin/python}
R=docs/results

$A eval report $R/squad300-logprob/run --costs 1,50 --seeds 10 --train-size 50,100,150 --out $R/squad300-logprob
$A eval report $R/squad60-both/run --costs 1,50 --seeds 10 --train-size 30 --out $R/squad60-both
$A eval report $R/fairytale200-logprob/run --costs 1,50 --seeds 10 --train-size 50,100 --out $R/fairytale200-logprob
$A eval report $R/squad300-shared/run --costs 1,50 --seeds 10 --train-size 50,100,150 --out $R/squad300-shared
$A eval report $R/fairytale200-shared/run --costs 1,50 --seeds 10 --train-size 50,100 --out $R/fairytale200-shared

# merged500-logprob (its README)
mkdir -p runs/merged-squad300-fairytale200
cp $R/squad300-logprob/run/run.json runs/merged-squad300-fairytale200/
$P -c 'import json; p="runs/merged-squad300-fairytale200/run.json"; m=json.load(open(p)); f=json.load(open("docs/results/fairytale200-logprob/run/run.json")); m["data_files"]=[{"path": x["data"], "sha256": x["data_sha256"]} for x in (m, f)]; json.dump(m, open(p, "w"), indent=2)'
cat $R/squad300-logprob/run/items.jsonl $R/fairytale200-logprob/run/items.jsonl > runs/merged-squad300-fairytale200/items.jsonl
$A eval report runs/merged-squad300-fairytale200 --costs 1,50 --seeds 10 --train-size 50,100,200 --out $R/merged500-logprob

# merged500-shared (its README), with both data files named for the grounding features
mkdir -p runs/merged-shared500
cp $R/squad300-shared/run/run.json runs/merged-shared500/
$P -c 'import json; p="runs/merged-shared500/run.json"; m=json.load(open(p)); f=json.load(open("docs/results/fairytale200-shared/run/run.json")); m["data_files"]=[{"path": x["data"], "sha256": x["data_sha256"]} for x in (m, f)]; json.dump(m, open(p, "w"), indent=2)'
cat $R/squad300-shared/run/items.jsonl $R/fairytale200-shared/run/items.jsonl > runs/merged-shared500/items.jsonl
$A eval report runs/merged-shared500 --costs 1,50 --seeds 10 --train-size 50,100,200 --out $R/merged500-shared

# variants: the same 200 questions in three layouts (docs/results/variants/README.md)
$P bench/merge_tiers.py --out runs/squad100-examples-2tier $R/variants/squad100-examples $R/variants/squad100-examples-large
$P bench/merge_tiers.py --out runs/fairytale100-examples-2tier $R/variants/fairytale100-examples $R/variants/fairytale100-examples-large
mkdir -p runs/examples200 && cp runs/squad100-examples-2tier/run.json runs/examples200/
cat runs/{squad100,fairytale100}-examples-2tier/items.jsonl > runs/examples200/items.jsonl
for r in paper:merged-squad300-fairytale200 shared:merged-shared500; do
  mkdir -p runs/${r%%:*}200 && cp runs/${r#*:}/run.json runs/${r%%:*}200/
  $P -c "import json,sys; ids={json.loads(l)['id'] for l in open('runs/examples200/items.jsonl')}; sys.stdout.writelines(l for l in open('runs/${r#*:}/items.jsonl') if json.loads(l)['id'] in ids)" > runs/${r%%:*}200/items.jsonl
done
for r in examples200 paper200 shared200; do
  $A eval report runs/$r --costs 1,50 --seeds 10 --train-size 100 --out $R/variants/same200-$r
done

# the runs recorded with every signal (issue 13): their reports, the signals held out, the merged run and the
# shipped default router (docs/results/merged500-signals/README.md; bench/probe.py's probe300.md is not rebuilt here)
$A eval report $R/squad300-signals/run --costs 1,50 --seeds 10 --train-size 50,100,150 --out $R/squad300-signals
$A eval report $R/fairytale200-signals/run --costs 1,50 --seeds 10 --train-size 50,100 --out $R/fairytale200-signals
$P bench/signals.py $R/squad300-signals/run $R/fairytale200-signals/run --seeds 20 --out $R/signals.md
mkdir -p runs/merged-signals500
cp $R/squad300-signals/run/run.json runs/merged-signals500/
$P -c 'import json; p="runs/merged-signals500/run.json"; m=json.load(open(p)); f=json.load(open("docs/results/fairytale200-signals/run/run.json")); m["data_files"]=[{"path": x["data"], "sha256": x["data_sha256"]} for x in (m, f)]; json.dump(m, open(p, "w"), indent=2)'
cat $R/squad300-signals/run/items.jsonl $R/fairytale200-signals/run/items.jsonl > runs/merged-signals500/items.jsonl
$A eval report runs/merged-signals500 --costs 1,50 --seeds 10 --train-size 50,100,200 --out $R/merged500-signals
# the shipped default (issue 22): the trust router, and how it does held out
$A calibrate runs/merged-signals500 --router trust --out automix_local/data/router-default.json
$P bench/trust_default.py $R/squad300-signals/run $R/fairytale200-signals/run --seeds 10 --train-size 200 \
    --out $R/trust_default.md
