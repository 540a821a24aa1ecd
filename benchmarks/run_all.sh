#!/bin/bash
# Runs the benchmarks one after another (never in parallel: they time the same CPU cores) and
# keeps each one's output in benchmarks/results/NAME.txt.  Usage: bash benchmarks/run_all.sh [NAME ...]
# NAME: ann latency index coldstart (default: all four, in that order).
set -u
cd "$(dirname "$0")/.."
. .venv/bin/activate
mkdir -p benchmarks/results
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(ann latency index coldstart)
for name in "${names[@]}"; do
    echo "=== $name: start $(date -u +%H:%M:%S)"
    python "benchmarks/bench_$name.py" > "benchmarks/results/$name.txt" 2>&1
    echo "=== $name: exit $? at $(date -u +%H:%M:%S)"
done
