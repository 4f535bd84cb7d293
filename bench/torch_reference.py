#!/usr/bin/env python3
"""
PyTorch reference for benchmarks (b) and (c) at real model sizes: the same random-weight CLIP ViT-B/32 and
ViT-GPT2 that export_real_size.py exports (same configs, same seed), run by PyTorch + transformers — fp16 on a
GPU, fp32 on a CPU. Prints JSON.

  (b) CLIP embedding throughput on ready tensors: image batches, text batches, and the scoring unit of
      benchmark (b) — one image + two captions per sample.
  (c) caption tokens/s with HF generate (sampling, top-k 50, temperature 0.75, min_new_tokens = max_new_tokens
      so every row generates the same count), batch B and batch 1, use_cache True and False.

    python3 bench/torch_reference.py --device cuda            # fp16, batch 64 / 16, 16 tokens
    python3 bench/torch_reference.py --device cpu --images 8 --caption-batch 4 --tokens 8 --runs 1

Note: transformers' GPT-2 caches cross-attention keys/values; Optimum's ONNX layout that our runtime reads
(past_key_values.{i}.key/value, self-attention only) recomputes them from encoder_hidden_states every step.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_real_size import GPT2_124M, build_clip, build_vit_gpt2  # noqa: E402


def timed(fn, device, runs):
    """Median seconds of `runs` calls after one warm-up call."""
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_clip(device, dtype, a):
    model = build_clip(eager=False).to(device=device, dtype=dtype)
    n, b, L = a.images, a.batch, a.text_len
    g = torch.Generator().manual_seed(1)
    pixels = [torch.randn(min(b, n - i), 3, 224, 224, generator=g).to(device=device, dtype=dtype) for i in range(0, n, b)]
    # Token ids inside the vocab, <|startoftext|> first and <|endoftext|> last, as the tokenizer makes them.
    def ids(rows):
        x = torch.randint(0, 49406, (rows, L), generator=g)
        x[:, 0], x[:, -1] = 49406, 49407
        return x.to(device)
    texts = [(ids(p.shape[0]), ids(p.shape[0])) for p in pixels]
    ones = [torch.ones_like(r) for r, _ in texts]

    def images():
        for p in pixels:
            model.visual_projection(model.vision_model(pixel_values=p).pooler_output)

    def captions():
        for (raw, syn), m in zip(texts, ones):
            for t in (raw, syn):
                model.text_projection(model.text_model(input_ids=t, attention_mask=m).pooler_output)

    def scoring():  # the unit of benchmark (b): image + raw + synthetic caption, then the two cosines
        for p, (raw, syn), m in zip(pixels, texts, ones):
            img = torch.nn.functional.normalize(model.visual_projection(model.vision_model(pixel_values=p).pooler_output), dim=-1)
            for t in (raw, syn):
                txt = torch.nn.functional.normalize(model.text_projection(model.text_model(input_ids=t, attention_mask=m).pooler_output), dim=-1)
                (img * txt).sum(-1).float().cpu()

    with torch.inference_mode():
        t_img, t_txt, t_score = (timed(f, device, a.runs) for f in (images, captions, scoring))
    del model
    return {'images': n, 'batch': b, 'text_len': L, 'image_ips': n / t_img, 'text_per_s': 2 * n / t_txt, 'scoring_ips': n / t_score}


def bench_caption(device, dtype, a):
    model = build_vit_gpt2(eager=False).to(device=device, dtype=dtype)
    B, T = a.caption_batch, a.tokens
    g = torch.Generator().manual_seed(2)
    pixels = torch.randn(B, 3, 224, 224, generator=g).to(device=device, dtype=dtype)
    eos = GPT2_124M['eos_token_id']
    kw = dict(do_sample=True, top_k=50, temperature=0.75, min_new_tokens=T, max_new_tokens=T, num_beams=1,
              decoder_start_token_id=eos, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)

    def gen(px, cache):
        torch.manual_seed(3)
        out = model.generate(pixel_values=px, use_cache=cache, **kw)
        assert out.shape[1] == T + 1, f'generated {out.shape[1] - 1} tokens, expected {T}'

    res = {'batch': B, 'tokens': T}
    with torch.inference_mode():
        for cache in ([True, False] if not a.no_nocache else [True]):
            name = 'cache' if cache else 'nocache'
            t_batch = timed(lambda: gen(pixels, cache), device, a.runs)
            t_one = timed(lambda: [gen(pixels[i:i + 1], cache) for i in range(B)], device, a.runs)
            res[f'{name}_batch_tps'] = B * T / t_batch
            res[f'{name}_b1_tps'] = B * T / t_one
            res[f'batch_over_b1_{name}'] = t_one / t_batch
    if 'nocache_batch_tps' in res:
        res['cache_over_nocache_batch'] = res['cache_batch_tps'] / res['nocache_batch_tps']
        res['cache_over_nocache_b1'] = res['cache_b1_tps'] / res['nocache_b1_tps']
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--dtype', choices=['fp16', 'fp32'], help='default: fp16 on cuda, fp32 on cpu')
    p.add_argument('--only', default='b,c')
    p.add_argument('--images', type=int, default=256, help='(b) images')
    p.add_argument('--batch', type=int, default=64, help='(b) batch size')
    p.add_argument('--text-len', type=int, default=32, help='(b) padded caption length in tokens')
    p.add_argument('--caption-batch', type=int, default=16, help='(c) the big batch, against batch 1')
    p.add_argument('--tokens', type=int, default=16, help='(c) tokens per caption')
    p.add_argument('--runs', type=int, default=5, help='timed runs after a warm-up (median)')
    p.add_argument('--no-nocache', action='store_true', help='(c) skip use_cache=False')
    p.add_argument('--json', help='also write the JSON here')
    a = p.parse_args()
    device = torch.device(a.device)
    dtype = {'fp16': torch.float16, 'fp32': torch.float32}[a.dtype or ('fp16' if device.type == 'cuda' else 'fp32')]
    import transformers
    out = {'device': str(device), 'gpu': torch.cuda.get_device_name(device) if device.type == 'cuda' else None,
           'dtype': str(dtype).replace('torch.', ''), 'torch': torch.__version__, 'transformers': transformers.__version__,
           'threads': torch.get_num_threads()}
    only = set(a.only.split(','))
    if 'b' in only:
        out['b'] = bench_clip(device, dtype, a)
    if 'c' in only:
        out['c'] = bench_caption(device, dtype, a)
    text = json.dumps(out, indent=2)
    print(text)
    if a.json:
        with open(a.json, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()
