#!/usr/bin/env python3
"""Export BLIP-2 (OPT) to recaption's prefix-LM ONNX layout (docs/models/blip2.md).

Optional tooling only: nothing in recaption's code or tests needs Python. Requires torch, transformers, onnx
(onnxruntime optional, for --verify). BLIP-2 has no Optimum/transformers.js exporter, so this wraps
Blip2ForConditionalGeneration into the three graphs the loader (lib/models/families/prefix-lm.ts) expects:

  onnx/vision_encoder.onnx        pixel_values [B,3,224,224] -> image_features [B, num_query_tokens, D]
                                  (vision_model -> qformer(query_tokens) -> language_projection)
  onnx/embed_tokens.onnx          input_ids [B,S] -> inputs_embeds [B,S,D]   (language_model input embedding)
  onnx/decoder_model_merged.onnx  inputs_embeds [B,S,D], attention_mask [B,P+S], past_key_values.{i}.key/value
                                  [B,H,P,hd] -> logits [B,S,V], present.{i}.key/value [B,H,P+S,hd]
                                  (one graph for the prefill, P = 0, and for cached steps)

plus config.json, generation_config.json (eos = OPT's newline token, as BLIP-2 decodes), preprocessor_config.json
and the tokenizer files. With --fp16 the files are written as <name>_fp16.onnx (load with dtype "fp16").

Usage:
  python3 export_blip2_opt.py --model Salesforce/blip2-opt-2.7b --out models/blip2-opt-2.7b [--fp16 --device cuda]
  python3 export_blip2_opt.py --random-tiny --out /tmp/blip2-tiny      # tiny random Blip2Config, no download
Add --verify to compare each graph with PyTorch in onnxruntime (prefill and one cached step).
"""
import argparse
import json
import os
import tempfile

import torch
from torch import nn

import transformers
from transformers import Blip2Config, Blip2ForConditionalGeneration

OPSET = 17
NEWLINE = "\u010a"  # byte-level BPE token of "\n": OPT id 50118, BLIP-2's caption end


class VisionEncoder(nn.Module):
    """pixel_values -> LM-ready query embeddings, as Blip2ForConditionalGeneration.generate computes them."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, pixel_values):
        image_embeds = self.m.vision_model(pixel_values=pixel_values, return_dict=True).last_hidden_state
        image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        queries = self.m.query_tokens.expand(image_embeds.shape[0], -1, -1)
        q = self.m.qformer(query_embeds=queries, encoder_hidden_states=image_embeds, encoder_attention_mask=image_mask, return_dict=True).last_hidden_state
        return self.m.language_projection(q)


class EmbedTokens(nn.Module):
    def __init__(self, lm):
        super().__init__()
        self.embed = lm.get_input_embeddings()

    def forward(self, input_ids):
        return self.embed(input_ids)


def to_cache(pairs):
    """Legacy ((k, v), ...) tuples in whatever form this transformers version's OPT takes."""
    try:
        from transformers.cache_utils import DynamicCache

        return DynamicCache.from_legacy_cache(pairs)
    except (ImportError, AttributeError):
        return pairs


def from_cache(cache):
    if hasattr(cache, "to_legacy_cache"):
        return cache.to_legacy_cache()
    return cache


class Decoder(nn.Module):
    """OPT with inputs_embeds and an explicit KV cache; positions come from the attention mask (OPT's cumsum)."""

    def __init__(self, lm, layers):
        super().__init__()
        self.lm = lm
        self.layers = layers

    def forward(self, inputs_embeds, attention_mask, *past):
        pairs = tuple((past[2 * i], past[2 * i + 1]) for i in range(self.layers))
        out = self.lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, past_key_values=to_cache(pairs), use_cache=True, return_dict=True)
        presents = from_cache(out.past_key_values)
        return (out.logits, *[t for kv in presents for t in kv])


def tiny_tokenizer(out_dir):
    """A small OPT-style byte-level BPE (</s> prepended like OPT's), trained in memory: no download."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    corpus = ["a photo of a dog on a couch", "two cats laying on a couch", "a man riding a wave on a surfboard", "a plate of food on a table", "a red bus driving down a street"] * 20
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=2, special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    bpe.post_processor = processors.TemplateProcessing(single="</s> $A", pair="</s> $A </s> $B", special_tokens=[("</s>", bpe.token_to_id("</s>"))])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="</s>", eos_token="</s>", unk_token="</s>", pad_token="<pad>")
    tok.save_pretrained(out_dir)
    return tok


def tiny_model(vocab_size, bos, eos, pad):
    config = Blip2Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=224, patch_size=32),
        qformer_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, encoder_hidden_size=32, vocab_size=64),
        text_config=dict(model_type="opt", vocab_size=vocab_size, hidden_size=64, word_embed_proj_dim=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=128, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad),
        num_query_tokens=8,
    )
    torch.manual_seed(0)
    return Blip2ForConditionalGeneration(config).eval()


def write_preprocessor(out_dir, size):
    # BlipImageProcessor as Blip2Processor saves it: exact resize to 224x224, bicubic, OpenAI CLIP mean/std.
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump({
            "image_processor_type": "BlipImageProcessor", "processor_class": "Blip2Processor",
            "do_resize": True, "size": {"height": size, "width": size}, "resample": 3,
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
            "do_convert_rgb": True,
        }, f, indent=2)


def export(module, args, path, input_names, output_names, dynamic_axes):
    """torch.onnx.export (TorchScript exporter); weights go to one external-data file next to the graph when the
    model passes protobuf's 2 GB limit (OPT-2.7b's decoder is ~10.6 GB in fp32)."""
    import onnx

    os.makedirs(os.path.dirname(path), exist_ok=True)
    # A fresh wrapper is in training mode, and torch.onnx.export restores that mode recursively after exporting,
    # which would switch the wrapped model's dropout on for everything after: keep it all in eval mode.
    module.eval()
    # The raw export goes next to the output: for OPT-2.7b it is ~10 GB of external tensors, too big for /tmp.
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as tmp:
        raw = os.path.join(tmp, "model.onnx")
        with torch.no_grad():
            kwargs = dict(input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True)
            if "dynamo" in torch.onnx.export.__code__.co_varnames:
                kwargs["dynamo"] = False
            torch.onnx.export(module, args, raw, **kwargs)
        model = onnx.load(raw, load_external_data=True)
        big = sum(t.ByteSize() for t in model.graph.initializer) > 1_800_000_000
        data_name = os.path.basename(path) + "_data"
        for stale in (path, os.path.join(os.path.dirname(path), data_name)):
            if os.path.exists(stale):
                os.remove(stale)
        onnx.save_model(model, path, save_as_external_data=big, all_tensors_to_one_file=True, location=data_name, size_threshold=1024)
    size = os.path.getsize(path) + (os.path.getsize(os.path.join(os.path.dirname(path), data_name)) if big else 0)
    print(f"{path}: {size / 1e6:.1f} MB{' (+ external data)' if big else ''}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="Salesforce/blip2-opt-2.7b", help="hub id or local folder of a Blip2ForConditionalGeneration with an OPT LM")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--random-tiny", action="store_true", help="export a tiny random-weight Blip2Config instead (tests the recipe; no download)")
    p.add_argument("--fp16", action="store_true", help="export in float16 (files named *_fp16.onnx); needs --device cuda for a sane export")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--verify", action="store_true", help="compare the ONNX graphs with PyTorch in onnxruntime")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    dtype = torch.float16 if a.fp16 else torch.float32

    if a.random_tiny:
        tok = tiny_tokenizer(a.out)
        model = tiny_model(len(tok), tok.convert_tokens_to_ids("</s>"), tok.convert_tokens_to_ids(NEWLINE), tok.convert_tokens_to_ids("<pad>"))
        image_size = 224
    else:
        from transformers import Blip2Processor

        processor = Blip2Processor.from_pretrained(a.model)
        processor.tokenizer.save_pretrained(a.out)
        # Eager attention: the SDPA mask shortcuts are decided in Python at trace time and would be baked in.
        model = Blip2ForConditionalGeneration.from_pretrained(a.model, torch_dtype=dtype, attn_implementation="eager").eval()
        image_size = model.config.vision_config.image_size
    model = model.to(device=a.device, dtype=dtype)
    write_preprocessor(a.out, image_size)

    text = model.config.text_config
    model.config.save_pretrained(a.out)  # config.json: model_type "blip-2", num_query_tokens, text_config
    with open(os.path.join(a.out, "generation_config.json"), "w") as f:
        # What language_model.generate uses: OPT's text_config ids, eos = "\n" (50118 for OPT).
        json.dump({"bos_token_id": text.bos_token_id, "eos_token_id": text.eos_token_id, "pad_token_id": text.pad_token_id, "transformers_version": transformers.__version__}, f, indent=2)

    lm = model.language_model
    layers, heads = text.num_hidden_layers, text.num_attention_heads
    head_dim = text.hidden_size // heads
    suffix = "_fp16" if a.fp16 else ""
    onnx_dir = os.path.join(a.out, "onnx")
    dev = a.device

    pixels = torch.randn(2, 3, image_size, image_size, device=dev, dtype=dtype)
    export(VisionEncoder(model), (pixels,), os.path.join(onnx_dir, f"vision_encoder{suffix}.onnx"), ["pixel_values"], ["image_features"],
           {"pixel_values": {0: "batch_size"}, "image_features": {0: "batch_size"}})
    ids = torch.tensor([[2, 100, 101], [2, 102, 103]], device=dev)
    export(EmbedTokens(lm), (ids,), os.path.join(onnx_dir, f"embed_tokens{suffix}.onnx"), ["input_ids"], ["inputs_embeds"],
           {"input_ids": {0: "batch_size", 1: "sequence_length"}, "inputs_embeds": {0: "batch_size", 1: "sequence_length"}})

    # Traced with a non-empty past and 2 new positions, so no size-1 / size-0 special case is baked in.
    past_len, seq = 3, 2
    past = [torch.randn(2, heads, past_len, head_dim, device=dev, dtype=dtype) for _ in range(2 * layers)]
    embeds = torch.randn(2, seq, text.word_embed_proj_dim or text.hidden_size, device=dev, dtype=dtype)
    mask = torch.ones(2, past_len + seq, dtype=torch.long, device=dev)
    kv_names = [f"past_key_values.{i}.{p}" for i in range(layers) for p in ("key", "value")]
    present_names = [f"present.{i}.{p}" for i in range(layers) for p in ("key", "value")]
    axes = {"inputs_embeds": {0: "batch_size", 1: "sequence_length"}, "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length"}, "logits": {0: "batch_size", 1: "sequence_length"}}
    axes.update({n: {0: "batch_size", 2: "past_sequence_length"} for n in kv_names})
    axes.update({n: {0: "batch_size", 2: "past_sequence_length + sequence_length"} for n in present_names})
    export(Decoder(lm, layers), (embeds, mask, *past), os.path.join(onnx_dir, f"decoder_model_merged{suffix}.onnx"),
           ["inputs_embeds", "attention_mask", *kv_names], ["logits", *present_names], axes)

    if a.verify:
        verify(model, a.out, suffix, image_size, layers, heads, head_dim, dtype, dev)


def verify(model, out, suffix, image_size, layers, heads, head_dim, dtype, dev):
    """Prefill over [image features, BOS] with an empty past, then one cached step: ONNX vs PyTorch."""
    import numpy as np
    import onnxruntime as ort

    def sess(name):
        return ort.InferenceSession(os.path.join(out, "onnx", f"{name}{suffix}.onnx"), providers=["CPUExecutionProvider"])

    lm = model.language_model
    pixels = torch.randn(2, 3, image_size, image_size, device=dev, dtype=dtype)
    bos = torch.full((2, 1), model.config.text_config.bos_token_id, device=dev)
    with torch.no_grad():
        ref_img = VisionEncoder(model)(pixels)
        prefix = torch.cat([ref_img, lm.get_input_embeddings()(bos)], dim=1)
        mask = torch.ones(prefix.shape[:2], dtype=torch.long, device=dev)
        ref = lm(inputs_embeds=prefix, attention_mask=mask, use_cache=True, return_dict=True)
        nxt = lm.get_input_embeddings()(torch.full((2, 1), 7, device=dev))
        mask2 = torch.ones(2, prefix.shape[1] + 1, dtype=torch.long, device=dev)
        ref2 = lm(inputs_embeds=nxt, attention_mask=mask2, past_key_values=ref.past_key_values, use_cache=True, return_dict=True)

    np_dtype = np.float16 if dtype == torch.float16 else np.float32
    img = sess("vision_encoder").run(["image_features"], {"pixel_values": pixels.cpu().numpy()})[0]
    emb = sess("embed_tokens").run(["inputs_embeds"], {"input_ids": bos.cpu().numpy()})[0]
    dec = sess("decoder_model_merged")
    feeds = {"inputs_embeds": np.concatenate([img, emb], axis=1), "attention_mask": mask.cpu().numpy()}
    feeds.update({f"past_key_values.{i}.{p}": np.zeros((2, heads, 0, head_dim), dtype=np_dtype) for i in range(layers) for p in ("key", "value")})
    outs = dec.run(None, feeds)
    names = [o.name for o in dec.get_outputs()]
    first = dict(zip(names, outs))
    feeds2 = {"inputs_embeds": nxt.cpu().numpy(), "attention_mask": mask2.cpu().numpy()}
    feeds2.update({f"past_key_values.{i}.{p}": first[f"present.{i}.{p}"] for i in range(layers) for p in ("key", "value")})
    second = dict(zip(names, dec.run(None, feeds2)))

    def diff(a, b):
        return float(np.abs(a.astype(np.float32) - b.float().cpu().numpy()).max())

    print(f"verify: image_features max|diff| {diff(img, ref_img):.2e}, prefill logits {diff(first['logits'], ref.logits):.2e}, "
          f"cached-step logits {diff(second['logits'], ref2.logits):.2e}, present.0.key {second['present.0.key'].shape}")


if __name__ == "__main__":
    main()
