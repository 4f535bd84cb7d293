#!/usr/bin/env bash
# Packs what a bare GPU machine needs to run `npm run bench` (b, c) on onnxruntime-node's CUDA EP, for machines
# that can reach no registry: node, the bench bundled by esbuild, onnxruntime-node + sharp (linux-x64), and the
# CUDA provider libraries of the same ORT release taken from the onnxruntime-gpu 1.30.0 wheel (CUDA 13 build).
# The CUDA runtime, cuBLAS and cuDNN come from the GPU machine (e.g. PyTorch's nvidia-* wheels).
#   bench/gpu/make-kit.sh OUT_DIR WHEEL   (WHEEL: python3 -m pip download --no-deps onnxruntime-gpu==1.30.0)
# The kit is split into parts of at most 58 MB (transfer limits); bench/gpu/device-run.sh reassembles it.
set -euo pipefail
out=$(realpath -m "$1"); wheel=$(realpath "$2"); root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
unzip -q -o "$wheel" 'onnxruntime/capi/libonnxruntime_providers_cuda.so' 'onnxruntime/capi/libonnxruntime_providers_shared.so' -d "$tmp/w"
cp "$tmp/w/onnxruntime/capi/libonnxruntime_providers_shared.so" "$out/"
zstd -19 -T0 -q -f "$tmp/w/onnxruntime/capi/libonnxruntime_providers_cuda.so" -o "$tmp/cuda.zst"
split -b 58000000 -d -a 1 "$tmp/cuda.zst" "$out/cuda."
zstd -19 -T0 -q -f "$(command -v node)" -o "$out/node.zst"
mkdir -p "$tmp/nm/node_modules/onnxruntime-node/bin/napi-v6/linux"
for p in onnxruntime-common piscina sharp @img/colour @img/sharp-linux-x64 @img/sharp-libvips-linux-x64 detect-libc semver; do
  mkdir -p "$tmp/nm/node_modules/$(dirname "$p")"; cp -r "$root/node_modules/$p" "$tmp/nm/node_modules/$p"
done
cp -r "$root"/node_modules/onnxruntime-node/{package.json,dist,lib} "$tmp/nm/node_modules/onnxruntime-node/"
cp -r "$root/node_modules/onnxruntime-node/bin/napi-v6/linux/x64" "$tmp/nm/node_modules/onnxruntime-node/bin/napi-v6/linux/"
tar -C "$tmp/nm" -cf - node_modules | zstd -19 -T0 -q -o "$out/nm.tar.zst"
(cd "$root" && npx esbuild bench/run.ts --bundle --platform=node --target=node20 --external:onnxruntime-node --external:sharp --external:piscina --outfile="$out/bench.js" --log-level=warning)
# The annotate stage's prep threads load prep-worker.js next to the code that starts them: in the kit, this bundle
# (in the repo, lib/pipeline/prep-worker.js, which loads the TypeScript through tsx).
(cd "$root" && npx esbuild lib/pipeline/prep-worker.ts --bundle --platform=node --target=node20 --external:onnxruntime-node --external:sharp --external:piscina --outfile="$out/prep-worker.js" --log-level=warning)
(cd "$root" && npx esbuild bench/memory.ts --bundle --platform=node --target=node20 --external:onnxruntime-node --external:sharp --external:piscina --outfile="$out/memory.js" --log-level=warning)
cp "$(command -v zstd)" "$out/"
ls -la "$out"
