#!/usr/bin/env python3
"""
Random-weight models at their real dimensions, in the folder layouts our loaders read, for the real-size
benchmarks (bench/README.md "Benchmarks"). Nothing is downloaded: models are built from configs, tokenizers are
synthesised at the real vocab sizes (they only have to map text to in-vocab ids and back).

  clip-vit-b32/  CLIP ViT-B/32: onnx/vision_model.onnx (pixel_values -> image_embeds),
                 onnx/text_model.onnx (input_ids, attention_mask -> text_embeds)
  vit-gpt2/      ViT-base/16 encoder + GPT-2 124M decoder with cross-attention, Optimum's names:
                 onnx/encoder_model.onnx, onnx/decoder_model_merged.onnx

    python3 bench/export_real_size.py --out .cache/bench-models [--fp16] [--only clip,captioner]

Not used by tests or CI. Works with torch 2.x + transformers 4.4x/5.x + onnx (TorchScript exporter, opset 17);
bench/torch_reference.py builds the same models from the same configs and seed.
"""
import argparse
import json
import os
import sys
import time

import torch
from torch import nn

OPSET = 17
SEED = 0

# --- configs (shared with torch_reference.py) ---------------------------------------------------------------

CLIP_TEXT = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
                 max_position_embeddings=77, hidden_act='quick_gelu', bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
CLIP_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, image_size=224,
                   patch_size=32, num_channels=3, hidden_act='quick_gelu')
VIT_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, image_size=224,
                patch_size=16, num_channels=3, qkv_bias=True)
GPT2_EOS = 50256
GPT2_124M = dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, add_cross_attention=True,
                 is_decoder=True, bos_token_id=GPT2_EOS, eos_token_id=GPT2_EOS, pad_token_id=GPT2_EOS,
                 decoder_start_token_id=GPT2_EOS)


def _eager(config):
    """Plain attention math: traces the same on every transformers version (SDPA/flex paths differ by release)."""
    for c in [config] + [getattr(config, k, None) for k in ('text_config', 'vision_config', 'encoder', 'decoder')]:
        if c is not None:
            try:
                c._attn_implementation = 'eager'
            except Exception:  # read-only on some releases; the model then picks its default
                pass
    return config


def build_clip(eager=True):
    from transformers import CLIPConfig, CLIPModel
    config = CLIPConfig(text_config=dict(CLIP_TEXT), vision_config=dict(CLIP_VISION), projection_dim=512)
    if eager:
        _eager(config)
    torch.manual_seed(SEED)
    return CLIPModel(config).eval()


def build_vit_gpt2(eager=True):
    from transformers import GPT2Config, ViTConfig, VisionEncoderDecoderConfig, VisionEncoderDecoderModel
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(ViTConfig(**VIT_BASE), GPT2Config(**GPT2_124M))
    for k in ('decoder_start_token_id', 'bos_token_id', 'eos_token_id', 'pad_token_id'):
        setattr(config, k, GPT2_EOS)
    if eager:
        _eager(config)
    torch.manual_seed(SEED)
    model = VisionEncoderDecoderModel(config=config).eval()
    gc = getattr(model, 'generation_config', None)
    if gc is not None:
        gc.decoder_start_token_id = gc.bos_token_id = gc.eos_token_id = gc.pad_token_id = GPT2_EOS
    return model


# --- tokenizers ---------------------------------------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's byte <-> printable-unicode alphabet (the same as lib/models/tiny/bpe.ts)."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = [], 0
    for b in range(256):
        if b in printable:
            table.append(chr(b))
        else:
            table.append(chr(256 + extra))
            extra += 1
    return table


def synthetic_merges(count, letters, finals):
    """
    `count` BPE merges that extend a token by one symbol on the right ("ab" + "c"), breadth first over
    `letters`, so every merge's parts already exist and every result is new. Real merges are learned from a
    corpus; for a benchmark only the vocab size and the per-text token counts matter.
    """
    merges, frontier = [], list(letters)
    while True:
        nxt = []
        for left in frontier:
            for right in finals:
                merges.append((left, right))
                if len(merges) == count:
                    return merges
                if right in letters:
                    nxt.append(left + right)
        frontier = nxt


def added(i, content):
    return dict(id=i, content=content, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)


CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"


def clip_tokenizer(vocab_size):
    """CLIP layout (same JSON as the tiny CLIP's): bytes, bytes+</w>, merges, <|startoftext|>, <|endoftext|> last."""
    chars = bytes_to_unicode()
    letters = [c for c in 'etaoinshrdlcumwfgypbvkjxqz0123456789']
    vocab = {}
    for t in chars + [c + '</w>' for c in chars]:
        vocab.setdefault(t, len(vocab))
    merges = synthetic_merges(vocab_size - len(vocab) - 2, letters, letters + [c + '</w>' for c in letters])
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    assert len(vocab) == vocab_size - 2, len(vocab)
    sot, eot = vocab_size - 2, vocab_size - 1
    vocab['<|startoftext|>'], vocab['<|endoftext|>'] = sot, eot
    tok = lambda name: {'SpecialToken': {'id': name, 'type_id': 0}}
    seq = lambda name: {'Sequence': {'id': name, 'type_id': 0}}
    return {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': [added(sot, '<|startoftext|>'), added(eot, '<|endoftext|>')],
        'normalizer': {'type': 'Sequence', 'normalizers': [{'type': 'NFC'}, {'type': 'Replace', 'pattern': {'Regex': '\\s+'}, 'content': ' '}, {'type': 'Lowercase'}]},
        'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
            {'type': 'Split', 'pattern': {'Regex': CLIP_SPLIT}, 'behavior': 'Removed', 'invert': True},
            {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False}]},
        'post_processor': {
            'type': 'TemplateProcessing',
            'single': [tok('<|startoftext|>'), seq('A'), tok('<|endoftext|>')],
            'pair': [tok('<|startoftext|>'), seq('A'), tok('<|endoftext|>'), tok('<|startoftext|>'), seq('B'), tok('<|endoftext|>')],
            'special_tokens': {n: {'id': n, 'ids': [i], 'tokens': [n]} for n, i in (('<|startoftext|>', sot), ('<|endoftext|>', eot))},
        },
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': True},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': '<|endoftext|>', 'continuing_subword_prefix': '',
                  'end_of_word_suffix': '</w>', 'fuse_unk': False, 'byte_fallback': False,
                  'vocab': vocab, 'merges': [f'{a} {b}' for a, b in merges]},
    }


def gpt2_tokenizer(vocab_size):
    """GPT-2 layout (same JSON as the tiny ViT-GPT2's): bytes, merges, <|endoftext|> last."""
    chars = bytes_to_unicode()
    space = chars[ord(' ')]  # 'Ġ'
    letters = [c for c in 'etaoinshrdlcumwfgypbvkjxqz']
    vocab = {}
    for t in chars:
        vocab.setdefault(t, len(vocab))
    merges = synthetic_merges(vocab_size - len(vocab) - 1, [space] + letters, letters)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    assert len(vocab) == vocab_size - 1, len(vocab)
    eos = vocab_size - 1
    vocab['<|endoftext|>'] = eos
    byte_level = lambda prefix, trim: {'type': 'ByteLevel', 'add_prefix_space': prefix, 'trim_offsets': trim, 'use_regex': True}
    return {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': [added(eos, '<|endoftext|>')],
        'normalizer': None,
        'pre_tokenizer': byte_level(False, True),
        'post_processor': byte_level(True, False),
        'decoder': byte_level(True, True),
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': '',
                  'end_of_word_suffix': '', 'fuse_unk': False, 'byte_fallback': False,
                  'vocab': vocab, 'merges': [f'{a} {b}' for a, b in merges]},
    }


def check_tokenizer(path, vocab_size):
    """Round trip through the `tokenizers` package when it is installed (ids in range, text back)."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return
    t = Tokenizer.from_file(path)
    ids = t.encode('a photo of the red cat sitting on 2 chairs').ids
    assert ids and max(ids) < vocab_size, ids
    assert 'cat' in t.decode(ids), t.decode(ids)


# --- torch wrappers with the exported signatures ------------------------------------------------------------

class ClipVision(nn.Module):
    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, pixel_values):
        pooled = self.clip.vision_model(pixel_values=pixel_values).pooler_output
        return self.clip.visual_projection(pooled)


class ClipText(nn.Module):
    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, input_ids, attention_mask):
        pooled = self.clip.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return self.clip.text_projection(pooled)


class VitEncoder(nn.Module):
    def __init__(self, ved):
        super().__init__()
        self.encoder = ved.encoder

    def forward(self, pixel_values):
        return self.encoder(pixel_values=pixel_values).last_hidden_state


class MergedGpt2Decoder(nn.Module):
    """
    GPT-2 with cross-attention as Optimum's decoder_model_merged: (input_ids, encoder_hidden_states,
    use_cache_branch, past_key_values.{i}.key/value) -> (logits, present.{i}.key/value), self-attention cache
    only (cross-attention K/V are recomputed from encoder_hidden_states every step, as in Optimum's GPT-2 export).

    The math is written out over the HF modules' own weights instead of calling GPT2LMHeadModel.forward, whose
    cache API changes between transformers releases and does not trace to plain tensors in/out. Optimum's merged
    graph is an If on use_cache_branch choosing between a no-past and a with-past subgraph; with an empty past
    (length 0) both compute the same thing, so this graph ignores the flag in its math. It must stay a graph
    input though (our runtime feeds it, Optimum's exports have it), hence the zero-weight use below.
    """

    def __init__(self, lm):
        super().__init__()
        self.t = lm.transformer
        self.lm_head = lm.lm_head
        cfg = lm.config
        self.heads, self.dim = cfg.n_head, cfg.n_embd
        self.head_dim = self.dim // self.heads
        assert not getattr(cfg, 'scale_attn_by_inverse_layer_idx', False) and not getattr(cfg, 'reorder_and_upcast_attn', False)

    def _split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def _attend(self, q, k, v, mask):
        att = torch.matmul(q, k.transpose(-1, -2)) * (self.head_dim ** -0.5)
        if mask is not None:
            att = att.masked_fill(~mask, torch.finfo(att.dtype).min)
        out = torch.matmul(torch.softmax(att, dim=-1), v)
        b, h, s, d = out.shape
        return out.transpose(1, 2).reshape(b, s, h * d)

    def forward(self, input_ids, encoder_hidden_states, use_cache_branch, *past):
        seq = input_ids.shape[1]
        past_len = past[0].shape[2]
        pos = torch.arange(seq, device=input_ids.device) + past_len
        h = self.t.wte(input_ids) + self.t.wpe(pos)[None]
        total = past_len + seq
        # query j (absolute position past_len + j) sees keys 0 .. past_len + j
        causal = (torch.arange(total, device=input_ids.device)[None, :] <= pos[:, None])[None, None]
        presents = []
        for i, blk in enumerate(self.t.h):
            q, k, v = blk.attn.c_attn(blk.ln_1(h)).split(self.dim, dim=2)
            k = torch.cat([past[2 * i], self._split(k)], dim=2)
            v = torch.cat([past[2 * i + 1], self._split(v)], dim=2)
            presents += [k, v]
            h = h + blk.attn.c_proj(self._attend(self._split(q), k, v, causal))
            x = blk.ln_cross_attn(h)
            ck, cv = blk.crossattention.c_attn(encoder_hidden_states).split(self.dim, dim=2)
            h = h + blk.crossattention.c_proj(self._attend(self._split(blk.crossattention.q_attn(x)), self._split(ck), self._split(cv), None))
            h = h + blk.mlp(blk.ln_2(h))
        logits = self.lm_head(self.t.ln_f(h))
        # Keeps use_cache_branch a graph input (see the class comment); adds 0.
        logits = logits + (use_cache_branch.to(logits.dtype) * 0).sum()
        return (logits, *presents)


def check_decoder(ved, wrapper, dtype):
    """The wrapper against HF's own forward, and step-by-step with the cache against the full sequence."""
    if dtype != torch.float32:
        return  # fp16 on CPU: HF's eager path may need ops CPU lacks; the fp32 check covers the math
    torch.manual_seed(1)
    enc = torch.randn(2, 197, 768)
    ids = torch.randint(0, 50257, (2, 5))
    L, H, D = len(wrapper.t.h), wrapper.heads, wrapper.head_dim
    empty = [torch.zeros(2, H, 0, D) for _ in range(2 * L)]
    with torch.no_grad():
        ref = ved.decoder(input_ids=ids, encoder_hidden_states=enc, use_cache=False).logits
        full = wrapper(ids, enc, torch.tensor([False]), *empty)[0]
        first = wrapper(ids[:, :3], enc, torch.tensor([False]), *empty)
        step = wrapper(ids[:, 3:], enc, torch.tensor([True]), *first[1:])[0]
    err = max((full - ref).abs().max().item(), (step - full[:, 3:]).abs().max().item())
    assert err < 1e-3, f'merged decoder wrapper differs from HF GPT-2 by {err}'


# --- export -------------------------------------------------------------------------------------------------

def ort_check(module, path, input_names, cases):
    """When python onnxruntime is installed (fp32 only: its CPU kernels lack many fp16 ops): the exported graph
    against the torch module on `cases` (argument tuples, e.g. an empty past as well as the traced one)."""
    try:
        import onnxruntime
    except ImportError:
        return
    sess = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    for args in cases:
        want = module(*args)
        want = want if isinstance(want, tuple) else (want,)
        got = sess.run(None, {n: a.numpy() for n, a in zip(input_names, args)})
        err = max(float((torch.from_numpy(g) - w).abs().max()) if w.numel() else 0.0 for g, w in zip(got, want))
        shapes = 'x'.join(str(d) for d in got[0].shape)
        assert err < 1e-3, f'{path}: onnxruntime differs from torch by {err}'
        print(f'    onnxruntime = torch on inputs -> {shapes} (max abs diff {err:.1e})', flush=True)


def export(module, args, path, input_names, output_names, dynamic_axes, cases=()):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    kw = dict(input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True)
    t0 = time.time()
    with torch.no_grad():
        try:
            torch.onnx.export(module, args, path, dynamo=False, **kw)
        except TypeError:  # releases before the `dynamo` keyword use the TorchScript exporter anyway
            torch.onnx.export(module, args, path, **kw)
    import onnx
    onnx.checker.check_model(path)  # by path: the file may exceed protobuf's in-memory limit
    print(f'  {os.path.relpath(path)}  {os.path.getsize(path) / 2**20:.0f} MiB  ({time.time() - t0:.0f} s)', flush=True)
    if next(module.parameters()).dtype == torch.float32:
        ort_check(module, path, input_names, [args, *cases])


def write_json(path, obj):
    with open(path, 'w', encoding='utf8') as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write('\n')


def config_dict(config):
    d = config.to_dict()
    for k in list(d):
        if k.startswith('_') or k in ('transformers_version',):
            d.pop(k)
    return d


def export_clip(out, dtypes):
    model = build_clip()
    folder = os.path.join(out, 'clip-vit-b32')
    os.makedirs(os.path.join(folder, 'onnx'), exist_ok=True)
    write_json(os.path.join(folder, 'config.json'), config_dict(model.config))
    write_json(os.path.join(folder, 'preprocessor_config.json'), {
        'image_processor_type': 'CLIPImageProcessor', 'do_resize': True, 'size': {'shortest_edge': 224}, 'resample': 3,
        'do_center_crop': True, 'crop_size': {'height': 224, 'width': 224}, 'do_rescale': True, 'rescale_factor': 1 / 255,
        'do_normalize': True, 'image_mean': [0.48145466, 0.4578275, 0.40821073], 'image_std': [0.26862954, 0.26130258, 0.27577711],
        'do_convert_rgb': True})
    special = {'bos_token': '<|startoftext|>', 'eos_token': '<|endoftext|>', 'pad_token': '<|endoftext|>', 'unk_token': '<|endoftext|>'}
    write_json(os.path.join(folder, 'tokenizer.json'), clip_tokenizer(CLIP_TEXT['vocab_size']))
    write_json(os.path.join(folder, 'tokenizer_config.json'), {'tokenizer_class': 'CLIPTokenizer', **special, 'model_max_length': 77, 'do_lower_case': True})
    write_json(os.path.join(folder, 'special_tokens_map.json'), special)
    check_tokenizer(os.path.join(folder, 'tokenizer.json'), CLIP_TEXT['vocab_size'])
    for dtype in dtypes:
        m = model.to(dtype)
        suffix = '_fp16' if dtype == torch.float16 else ''
        export(ClipVision(m), (torch.randn(2, 3, 224, 224, dtype=dtype),), os.path.join(folder, 'onnx', f'vision_model{suffix}.onnx'),
               ['pixel_values'], ['image_embeds'], {'pixel_values': {0: 'batch_size'}, 'image_embeds': {0: 'batch_size'}})
        ids = torch.tensor([[49406, 320, 1125, 539, 49407, 49407], [49406, 320, 1125, 539, 2368, 49407]])
        export(ClipText(m), (ids, torch.ones_like(ids)), os.path.join(folder, 'onnx', f'text_model{suffix}.onnx'),
               ['input_ids', 'attention_mask'], ['text_embeds'],
               {'input_ids': {0: 'batch_size', 1: 'sequence_length'}, 'attention_mask': {0: 'batch_size', 1: 'sequence_length'}, 'text_embeds': {0: 'batch_size'}})
    return folder


def export_vit_gpt2(out, dtypes):
    model = build_vit_gpt2()
    folder = os.path.join(out, 'vit-gpt2')
    os.makedirs(os.path.join(folder, 'onnx'), exist_ok=True)
    write_json(os.path.join(folder, 'config.json'), config_dict(model.config))
    write_json(os.path.join(folder, 'generation_config.json'), {k: GPT2_EOS for k in ('bos_token_id', 'eos_token_id', 'pad_token_id', 'decoder_start_token_id')})
    write_json(os.path.join(folder, 'preprocessor_config.json'), {
        'image_processor_type': 'ViTImageProcessor', 'do_resize': True, 'size': {'height': 224, 'width': 224}, 'resample': 2,
        'do_rescale': True, 'rescale_factor': 1 / 255, 'do_normalize': True, 'image_mean': [0.5, 0.5, 0.5], 'image_std': [0.5, 0.5, 0.5]})
    special = {'bos_token': '<|endoftext|>', 'eos_token': '<|endoftext|>', 'unk_token': '<|endoftext|>', 'pad_token': '<|endoftext|>'}
    write_json(os.path.join(folder, 'tokenizer.json'), gpt2_tokenizer(GPT2_124M['vocab_size']))
    write_json(os.path.join(folder, 'tokenizer_config.json'), {'tokenizer_class': 'GPT2Tokenizer', **special, 'add_prefix_space': False, 'model_max_length': 1024})
    write_json(os.path.join(folder, 'special_tokens_map.json'), special)
    check_tokenizer(os.path.join(folder, 'tokenizer.json'), GPT2_124M['vocab_size'])
    L, H, D = GPT2_124M['n_layer'], GPT2_124M['n_head'], GPT2_124M['n_embd'] // GPT2_124M['n_head']
    for dtype in dtypes:
        m = model.to(dtype)
        suffix = '_fp16' if dtype == torch.float16 else ''
        export(VitEncoder(m), (torch.randn(2, 3, 224, 224, dtype=dtype),), os.path.join(folder, 'onnx', f'encoder_model{suffix}.onnx'),
               ['pixel_values'], ['last_hidden_state'], {'pixel_values': {0: 'batch_size'}, 'last_hidden_state': {0: 'batch_size', 1: 'encoder_sequence_length'}})
        wrapper = MergedGpt2Decoder(m.decoder).eval()
        check_decoder(m, wrapper, dtype)
        past_names = [f'past_key_values.{i}.{p}' for i in range(L) for p in ('key', 'value')]
        present_names = [f'present.{i}.{p}' for i in range(L) for p in ('key', 'value')]
        axes = {'input_ids': {0: 'batch_size', 1: 'sequence_length'}, 'encoder_hidden_states': {0: 'batch_size', 1: 'encoder_sequence_length'},
                'logits': {0: 'batch_size', 1: 'sequence_length'}}
        axes.update({n: {0: 'batch_size', 2: 'past_sequence_length'} for n in past_names})
        axes.update({n: {0: 'batch_size', 2: 'past_sequence_length + sequence_length'} for n in present_names})
        # Traced with a non-empty past so no size is specialised to 0; runs with past length 0 on the first step.
        args = (torch.randint(0, 50257, (2, 1)), torch.randn(2, 197, 768, dtype=dtype), torch.tensor([True]),
                *[torch.randn(2, H, 3, D, dtype=dtype) for _ in range(2 * L)])
        first_step = (torch.full((3, 1), GPT2_EOS), torch.randn(3, 197, 768, dtype=dtype), torch.tensor([False]),
                      *[torch.zeros(3, H, 0, D, dtype=dtype) for _ in range(2 * L)])
        export(wrapper, args, os.path.join(folder, 'onnx', f'decoder_model_merged{suffix}.onnx'),
               ['input_ids', 'encoder_hidden_states', 'use_cache_branch', *past_names], ['logits', *present_names], axes, cases=[first_step])
    return folder


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '.cache', 'bench-models'))
    p.add_argument('--fp16', action='store_true', help='also write the onnx/*_fp16.onnx variants')
    p.add_argument('--only', default='clip,captioner', help='comma list: clip, captioner')
    a = p.parse_args()
    torch.set_grad_enabled(False)
    dtypes = [torch.float32] + ([torch.float16] if a.fp16 else [])
    only = set(a.only.split(','))
    print(f'torch {torch.__version__}, transformers {__import__("transformers").__version__}; writing {os.path.abspath(a.out)}', flush=True)
    if 'clip' in only:
        print(export_clip(a.out, dtypes), flush=True)
    if 'captioner' in only:
        print(export_vit_gpt2(a.out, dtypes), flush=True)


if __name__ == '__main__':
    sys.exit(main())
