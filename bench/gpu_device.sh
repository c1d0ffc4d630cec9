#!/usr/bin/env bash
# Issue 26's GPU measurement in one go, for a session with a lent GPU machine (`run` tool):
#   bash bench/gpu_device.sh            # writes $OUT/benchmarks-gpu.json (or docs/ when $OUT is unset) and its log
# The order is bench/gpu.py's: (a) the bare loop, (a2) the trials' loop in-process (what the
# checkpoint makes it wait, and sweetspot's loop apart from Ray), (b) one trial, (c) 2 and 4 trials
# per GPU, (d) the checkpoint, on the 3,801-label EURLex-4K-shaped synthetic data. About 6 minutes on
# an H100; prepare the venv here first (the machine has no network: carry wheels, see docs/benchmarks.md).
set -euo pipefail
out="${OUT:-docs}"
export PYTHONPATH="$PWD" HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python bench/gpu.py --train-docs 1000 --epochs 2 --trials 1,2,4 --out "$out/benchmarks-gpu.json" 2>&1 | tee "$out/gpu.log" | tail -40
