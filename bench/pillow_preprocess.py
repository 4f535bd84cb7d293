"""Reference for bench/preprocess.ts: decode + OpenAI CLIP preprocessing with Pillow + NumPy, on the same files and
into the same tensors as ours (float32 [3, 224, 224], C-contiguous), with the reference transform of
make_preprocess_fixtures.py (which --check proves equal to open_clip's).

    python3 bench/pillow_preprocess.py DIR [--processes N] [--dump K OUT]

Prints JSON: single process (wall and CPU time), then a multiprocessing pool of N processes (default: all cores)
whose workers return only a checksum, so no tensor crosses a pipe (generous to Pillow). --dump writes the first K
tensors as OUT/<file>.npy for the TS side to compare.
"""
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
MEAN = np.array(CLIP["config"]["image_mean"], dtype=np.float32)
STD = np.array(CLIP["config"]["image_std"], dtype=np.float32)


def preprocess(path: str) -> np.ndarray:
    u8 = reference_uint8(Image.open(path), CLIP)
    x = (u8.astype(np.float32) / np.float32(255) - MEAN) / STD  # ToTensor + Normalize, float32
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def checksum(path: str) -> float:
    return float(preprocess(path)[0, 0, 0])


def main() -> None:
    folder = sys.argv[1]
    args = sys.argv[2:]
    processes = int(args[args.index("--processes") + 1]) if "--processes" in args else os.cpu_count() or 1
    files = sorted((os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".jpg")), key=lambda f: int(os.path.basename(f)[:-4]))
    if "--dump" in args:
        k, out = int(args[args.index("--dump") + 1]), args[args.index("--dump") + 2]
        for f in files[:k]:
            np.save(os.path.join(out, os.path.basename(f) + ".npy"), preprocess(f))

    for f in files[:20]:  # warm-up
        preprocess(f)
    t0, c0 = time.perf_counter(), time.process_time()
    for f in files:
        preprocess(f)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0

    with Pool(processes) as pool:
        pool.map(checksum, files[: 4 * processes])  # workers started and warm
        t1 = time.perf_counter()
        for _ in pool.imap_unordered(checksum, files, chunksize=4):
            pass
        pool_wall = time.perf_counter() - t1

    print(
        json.dumps(
            {
                "images": len(files),
                "single_images_per_s": len(files) / wall,
                "single_images_per_cpu_s": len(files) / cpu,
                "processes": processes,
                "pool_images_per_s": len(files) / pool_wall,
            }
        )
    )


if __name__ == "__main__":
    main()
