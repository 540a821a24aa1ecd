#!/usr/bin/env bash
# Ship a trained MPNet LoRA run as the packaged reader and refit what sits on top of it, on dev only.
#   bash scripts/ship_reader.sh RUN_DIR [INT8_SAMPLE]
# RUN_DIR is a `rag train-reader --encoder mpnet --lora-rank R --export RUN_DIR/export` output.
# 1. copies the fp16 adapter into rag/models/reader_mpnet/;
# 2. measures the activation maxima int8 smoothing needs on training questions (rag.train.calibrate_int8),
#    then fp32 against int8 (and bf16, on a CPU that computes it natively) on INT8_SAMPLE (default 400)
#    SQuAD dev questions (gold paragraph): a cheaper precision is kept (inference.json) only where it
#    loses at most 0.005 F1 and is faster; int8 for CPUs without native bf16, bf16 for those with;
#    one refused on the sample by at most 0.01 is measured again, with fp32, on all dev questions
#    (python -m rag.train.precision);
# 3. calibrates the mpnet reader and picks its threshold on the gold dev split: the best dev F1
#    among thresholds that abstain on at least MIN_NOANS (default 0.85) of dev's unanswerable
#    questions (MIN_NOANS= for the plain best-F1 threshold), at each k of KS (default 5,8,10,12
#    passages read) and each reading context of CONTEXTS (default 0,300,450 characters read on each
#    side of a passage, rag.windows) and each layout of those windows in WINDOWS (default
#    merged,separate), keeping, among the settings that read at most MAX_READ_CHARS characters per
#    dev question (default 5200: the 400 ms p50 target, 1.034x the 387 ms that one padded batch took
#    at 4,488 characters on the AMX machine, over the cost per character of the length-grouped
#    forward, measured with benchmarks/bench_length_groups.py at 450 and 600 characters of context:
#    5,250-5,360 characters, rounded down; it was 4600 for one padded batch; separate windows at
#    k 10 won dev in the fourteenth session but read 2.4x as long), the one that reads the fewest
#    characters within one question's worth of the best dev F1; every setting keeps its own
#    calibration and threshold for callers who read that way;
# 4. refits the fused reader's weights on MPNet's spans (SQuAD dev articles + gold dev split),
#    then its k, calibration and threshold by the same rules.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: bash scripts/ship_reader.sh RUN_DIR [INT8_SAMPLE]}
SAMPLE=${2:-400}
PY=.venv/bin/python
POOL=${POOL:-../shared/data/squad-pool.json.gz}
MIN_NOANS=${MIN_NOANS-0.85}
KS=${KS:-5,8,10,12}
CONTEXTS=${CONTEXTS:-0,300,450}
WINDOWS=${WINDOWS:-merged,separate}
MAX_READ_CHARS=${MAX_READ_CHARS:-5200}
FLOOR=(); [ -n "$MIN_NOANS" ] && FLOOR=(--min-noans "$MIN_NOANS")
DST=rag/models/reader_mpnet
[ -f "$RUN/export/adapter.safetensors" ] || { echo "no exported adapter in $RUN/export: train with --export $RUN/export" >&2; exit 1; }
mkdir -p "$DST"
cp "$RUN/export/adapter.safetensors" "$RUN/export/adapter.json" "$DST/"
# the export's log holds every stage of a warm-started run; older exports have none: the run's own log
if [ -f "$RUN/export/train_log.jsonl" ]; then cp "$RUN/export/train_log.jsonl" "$DST/train_log.jsonl"
else cp "$RUN/train_log.jsonl" "$DST/train_log.jsonl"; fi
echo "== int8 smoothing: activation maxima on training questions" >&2
$PY -m rag.train.calibrate_int8 "$DST" --squad "$POOL"
echo "== fp32 vs int8 (vs bf16 where native) on $SAMPLE SQuAD dev questions" >&2
$PY -m rag.train.precision "$DST" --squad "$POOL" --sample "$SAMPLE"
echo "== calibration and threshold of mpnet (gold dev)" >&2
$PY -m rag.train.tuning mpnet "${FLOOR[@]}" --k "$KS" --context "$CONTEXTS" --windows "$WINDOWS" \
    --max-read-chars "$MAX_READ_CHARS" --out rag/models/mpnet_settings.json
echo "== the fused reader refit on MPNet's spans" >&2
$PY -m rag.train.fusion --squad "$POOL" --questions "${FUSED_QUESTIONS:-150}" --reader fused "${FLOOR[@]}" \
    --out rag/models/fused_settings.json
echo "== the fused reader's k, calibration and threshold (gold dev; its weights are kept)" >&2
$PY -m rag.train.tuning fused "${FLOOR[@]}" --k "$KS" --out rag/models/fused_settings.json
echo "shipped: $DST (see its MODEL_CARD.md); next: python -m rag.eval.reader_table" >&2
