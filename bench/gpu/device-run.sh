#!/usr/bin/env bash
# On the GPU machine: unpack the kit made by make-kit.sh (all parts copied into KIT), export the real-size
# random-weight models, and run benchmarks (b), (c) and (c′) on onnxruntime-node's CUDA EP (fp32 and fp16) and the
# PyTorch fp16 reference on the same GPU. Results go to RESULTS as JSON.
#   bench/gpu/device-run.sh KIT RESULTS [--setup-only]
set -euo pipefail
kit=$(realpath "$1"); res=$(realpath -m "$2"); root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$res"
zstd_bin="$kit/zstd"; "$zstd_bin" --version >/dev/null 2>&1 || zstd_bin=""
unz() { if [ -n "$zstd_bin" ]; then "$zstd_bin" -d -q -f "$1" -o "$2"; else python3 -c 'import sys,zstandard;zstandard.ZstdDecompressor().copy_stream(open(sys.argv[1],"rb"),open(sys.argv[2],"wb"))' "$1" "$2"; fi; }
if [ ! -x "$kit/node" ]; then unz "$kit/node.zst" "$kit/node"; chmod +x "$kit/node"; fi
if [ ! -d "$kit/node_modules" ]; then unz "$kit/nm.tar.zst" "$kit/nm.tar"; tar -C "$kit" -xf "$kit/nm.tar"; fi
ep="$kit/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
if [ ! -f "$ep/libonnxruntime_providers_cuda.so" ]; then
  cat "$kit"/cuda.? > "$kit/cuda.zst"; unz "$kit/cuda.zst" "$ep/libonnxruntime_providers_cuda.so"
  cp "$kit/libonnxruntime_providers_shared.so" "$ep/"
fi
# CUDA 13 runtime, cuBLAS, cuRAND, cuDNN 9: the nvidia-* wheels next to PyTorch.
site=$(python3 -c 'import site;print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH="$(ls -d "$site"/nvidia/*/lib "$site"/nvidia/cu13/lib 2>/dev/null | tr '\n' ':')${LD_LIBRARY_PATH:-}"
[ "${3:-}" = "--setup-only" ] && exit 0
models=${MODELS:-/root/bench-models}
[ -d "$models/vit-gpt2" ] || python3 "$root/bench/export_real_size.py" --out "$models" --fp16 > "$res/export.log" 2>&1
node="$kit/node"
for dtype in fp16 fp32; do
  "$node" "$kit/bench.js" --only b,c --clip "$models/clip-vit-b32" --captioner "$models/vit-gpt2" --device cuda:0 --dtype "$dtype" --json "$res/ours_cuda_$dtype.json" 2>&1 | tee "$res/ours_cuda_$dtype.log"
done
# (d)/(e) the annotate stage (prep threads feeding the GPU) vs bare session.run of the same models on ready tensors,
# and its thread's busy ms per image by prep thread count. Goal: stage ≥ 0.7× bare on the GPU. libuv's pool, where sharp
# decodes, sized to the cores as bin/recaption.js does for the product.
for dtype in fp16 fp32; do
  UV_THREADPOOL_SIZE=$(nproc) "$node" "$kit/bench.js" --only d --clip "$models/clip-vit-b32" --captioner "$models/vit-gpt2" --images 1024 --caption-images 64 --prep-pools 0,1,2,4,8,15 --runs 2 --device cuda:0 --dtype "$dtype" --json "$res/ours_cuda_d_$dtype.json" 2>&1 | tee "$res/ours_cuda_d_$dtype.log"
done
# (c′) the decode loop inside ONNX Runtime (Loop graph) vs the JS loop, same exports, 16 images × 16 tokens.
for dtype in fp16 fp32; do
  "$node" "$kit/bench.js" --only c2 --gen-models "$models/vit-gpt2" --caption-batch 16 --tokens 16 --device cuda:0 --dtype "$dtype" --json "$res/ours_cuda_c2_$dtype.json" 2>&1 | tee "$res/ours_cuda_c2_$dtype.log"
done
python3 "$root/bench/torch_reference.py" --device cuda --dtype fp16 --json "$res/torch_cuda_fp16.json" > "$res/torch_cuda_fp16.log" 2>&1
# (c′) against PyTorch fp16 generate (cache, batch 16; it includes the encoder, like our end-to-end figure). Goal ≥ 1.
python3 - "$res" <<'PY' | tee "$res/c2_vs_torch.txt"
import json, sys, os
res = sys.argv[1]
torch = json.load(open(os.path.join(res, 'torch_cuda_fp16.json')))['c']['cache_batch_tps']
for dtype in ('fp16', 'fp32'):
    f = os.path.join(res, f'ours_cuda_c2_{dtype}.json')
    if not os.path.exists(f):
        continue
    row = json.load(open(f))['c2'][0]['rows'][0]
    g, j = row['graph_e2e_tps'], row['js_e2e_tps']
    print(f"(c′) {dtype}: graph {g and round(g, 1)} tokens/s, JS loop {round(j, 1)}, PyTorch fp16 generate {round(torch, 1)}; "
          f"graph/torch {g and round(g / torch, 2)}, graph/JS {g and round(g / j, 2)}, tokens identical: {row['tokens_identical']}")
PY
