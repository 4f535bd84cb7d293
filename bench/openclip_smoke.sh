#!/usr/bin/env bash
# Optional cross-check (not run by tests or CI): OpenCLIP trains one epoch on a run's output shards with
# --dataset-type webdataset. Needs Python with torch + open_clip_torch; open_clip_train's loader needs
# webdataset <= 0.2.86 (newer 0.2.x yields end-of-shard markers its group_by_keys does not expect).
#   bench/openclip_smoke.sh recaption-demo/out/demo/shards 40
set -euo pipefail
shards=${1:?usage: openclip_smoke.sh SHARD_DIR [NUM_SAMPLES]}
n=${2:-40}
venv=${VENV:-/tmp/recaption-openclip}
[ -x "$venv/bin/python" ] || { python3 -m venv --system-site-packages "$venv"; "$venv/bin/pip" install --quiet torch open_clip_torch 'webdataset==0.2.86'; }
first=$(ls "$shards" | grep -E '^[0-9]+\.tar$' | sort | head -1); last=$(ls "$shards" | grep -E '^[0-9]+\.tar$' | sort | tail -1)
"$venv/bin/python" -m open_clip_train.main --train-data "$shards/{${first%.tar}..${last%.tar}}.tar" --dataset-type webdataset \
  --train-num-samples "$n" --batch-size 4 --epochs 1 --model ViT-B-32 --workers 1 --lr 1e-5 --warmup 1 \
  --logs "${TMPDIR:-/tmp}/recaption-openclip-logs" --name "smoke-$$" --save-frequency 0 --log-every-n-steps 2 --precision fp32
