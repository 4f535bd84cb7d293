"""Reference for bench/preprocess.ts: decode + preprocessing with Pillow + NumPy, on the same files and into the same
tensors as ours (float32 [3, 224, 224], C-contiguous), with the reference transforms of make_preprocess_fixtures.py
(which --check proves equal to open_clip's and transformers'): OpenAI CLIP's, and the captioner's (ViT-GPT2's
ViTImageProcessor: 224 x 224 bilinear, mean = std = 0.5). "two" makes both tensors from one decode per image.

    python3 bench/pillow_preprocess.py DIR --serve            # rounds on request, for interleaving (below)
    python3 bench/pillow_preprocess.py DIR --pool N           # wall clock of N processes, both tensors
    python3 bench/pillow_preprocess.py DIR --dump K OUT       # first K images' tensors as OUT/<i>.<clip|vit>.npy

--serve reads one word a line on stdin: "one" (CLIP tensor only) or "two" (both tensors from one decode) runs a round
over every image and prints {"images", "cpu_s", "wall_s"} (process CPU time: time.process_time, every thread);
"quit" ends. The caller times its own rounds between ours, so a busy machine's drift lands on both sides.
--pool: a multiprocessing pool whose workers return only a checksum, so no tensor crosses a pipe (generous to
Pillow); prints {"processes", "images_per_s"}.
"""
import io
import json
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_preprocess_fixtures import PROCESSORS, reference_uint8  # noqa: E402

CLIP = PROCESSORS["openai_clip"]
VIT = PROCESSORS["vit"]


def constants(proc: dict):
    cfg = proc["config"]
    return np.array(cfg["image_mean"], dtype=np.float32), np.array(cfg["image_std"], dtype=np.float32)


CLIP_MEAN, CLIP_STD = constants(CLIP)
VIT_MEAN, VIT_STD = constants(VIT)


def clip_tensor(im: Image.Image) -> np.ndarray:
    u8 = reference_uint8(im, CLIP)
    x = (u8.astype(np.float32) / np.float32(255) - CLIP_MEAN) / CLIP_STD  # ToTensor + Normalize, float32
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def vit_tensor(im: Image.Image) -> np.ndarray:
    u8 = reference_uint8(im, VIT)
    x = (u8.astype(np.float64) * VIT["config"]["rescale_factor"]).astype(np.float32)  # transformers' rescale
    x = (x - VIT_MEAN) / VIT_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()  # the one decode both tensors are made from
    return im


def one(data: bytes):
    return (clip_tensor(decode(data)),)


def two(data: bytes):
    im = decode(data)
    return clip_tensor(im), vit_tensor(im)


def checksum(path: str) -> float:
    with open(path, "rb") as f:
        return float(sum(t[0, 0, 0] for t in two(f.read())))


def main() -> None:
    folder = sys.argv[1]
    args = sys.argv[2:]
    files = sorted((os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".jpg")), key=lambda f: int(os.path.basename(f)[:-4]))
    if "--dump" in args:
        k, out = int(args[args.index("--dump") + 1]), args[args.index("--dump") + 2]
        for i, f in enumerate(files[:k]):
            with open(f, "rb") as fh:
                c, v = two(fh.read())
            np.save(os.path.join(out, f"{i}.clip.npy"), c)
            np.save(os.path.join(out, f"{i}.vit.npy"), v)
    if "--pool" in args:
        processes = int(args[args.index("--pool") + 1])
        with Pool(processes) as pool:
            pool.map(checksum, files[: 4 * processes])  # workers started and warm
            t0 = time.perf_counter()
            for _ in pool.imap_unordered(checksum, files, chunksize=4):
                pass
            wall = time.perf_counter() - t0
        print(json.dumps({"processes": processes, "images_per_s": len(files) / wall}), flush=True)
    if "--serve" in args:
        images = []
        for f in files:
            with open(f, "rb") as fh:
                images.append(fh.read())
        for data in images[:10]:  # warm-up
            two(data)
        for line in sys.stdin:
            word = line.strip()
            if word == "quit":
                break
            fn = {"one": one, "two": two}[word]
            t0, c0 = time.perf_counter(), time.process_time()
            for data in images:
                fn(data)
            print(json.dumps({"images": len(images), "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0}), flush=True)


if __name__ == "__main__":
    main()
