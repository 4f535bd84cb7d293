"""Reference for bench/preprocess.ts: OpenAI CLIP preprocessing with Pillow + NumPy, single process.

Prints {"images_per_s": X}. Optional: the benchmark only runs it when python3 has PIL and numpy.
"""
import json
import os
import sys
import time

import numpy as np
from PIL import Image

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def preprocess(path: str) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = 224 / min(w, h)
    im = im.resize((max(224, round(w * s)), max(224, round(h * s))), Image.BICUBIC)
    w, h = im.size
    left, top = int(round((w - 224) / 2.0)), int(round((h - 224) / 2.0))
    im = im.crop((left, top, left + 224, top + 224))
    a = (np.asarray(im, dtype=np.float32) / 255.0 - MEAN) / STD
    return a.transpose(2, 0, 1)


def main() -> None:
    folder = sys.argv[1]
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".jpg"))
    for f in files[:20]:
        preprocess(f)
    t0 = time.perf_counter()
    for f in files:
        preprocess(f)
    print(json.dumps({"images_per_s": len(files) / (time.perf_counter() - t0)}))


if __name__ == "__main__":
    main()
