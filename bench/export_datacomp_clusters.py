#!/usr/bin/env python3
"""Convert DataComp's published image-based-filter assets (torch .pt) to plain .npy for lib/clusters.

Optional tooling only: nothing in recaption's code or tests needs Python. Requires numpy and torch.

Assets (mlfoundations/datacomp, baselines/utils.py; release sagadre/datacomp_baseline_assets v0.1.0-alpha):
  {small,medium,large,xlarge}_centroids_l14.pt   torch.save of a numpy float32 array [100000, 768]
  in1k_clip_vit_l14_{0..4}.pt                    dicts with "image_features": tensor [N_i, 768] (ImageNet-1k
                                                 train, OpenAI CLIP ViT-L/14), concatenated in order 0..4

Usage:
  python3 export_datacomp_clusters.py --centroids medium_centroids_l14.pt --out-centroids centroids.npy \
      --in1k in1k_clip_vit_l14_{0,1,2,3,4}.pt --out-in1k in1k_l14.npy [--in1k-dtype f2] \
      [--out-target target.npy]

--out-target also writes DataComp's target set computed exactly as baselines/apply_filter.py does
(argmax of the raw inner product with the centroids as stored, batches of 1024, np.unique), as a sorted
int64 .npy: `readTargetList` reads it, and it is a parity reference for `targetClusters`.
"""
import argparse

import numpy as np
import torch


def to_numpy(obj, key=None):
    if key is not None:
        obj = obj[key]
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(obj))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--centroids", required=True, help="<scale>_centroids_l14.pt")
    p.add_argument("--out-centroids", required=True, help="output .npy, float32 [K, D]")
    p.add_argument("--in1k", nargs="*", default=[], help="in1k_clip_vit_l14_{0..4}.pt, in order")
    p.add_argument("--out-in1k", help="output .npy [N, D] of the concatenated ImageNet-1k features")
    p.add_argument("--in1k-dtype", choices=["f4", "f2"], default="f4", help="f2 halves the file (~2 GB instead of ~4 GB)")
    p.add_argument("--out-target", help="output .npy int64: sorted unique nearest-centroid ids of the in1k features")
    p.add_argument("--batch-size", type=int, default=1024)
    a = p.parse_args()

    # weights_only=False: the centroid file is a pickled numpy array, not a tensor state dict.
    centroids = to_numpy(torch.load(a.centroids, map_location="cpu", weights_only=False)).astype(np.float32)
    assert centroids.ndim == 2, centroids.shape
    np.save(a.out_centroids, centroids)
    print(f"{a.out_centroids}: {centroids.shape} float32, centroid norms "
          f"{np.linalg.norm(centroids, axis=1).min():.4f}..{np.linalg.norm(centroids, axis=1).max():.4f}")

    if not a.in1k:
        return
    feats = np.concatenate([to_numpy(torch.load(f, map_location="cpu"), "image_features") for f in a.in1k])
    if a.out_in1k:
        np.save(a.out_in1k, feats.astype(np.float16 if a.in1k_dtype == "f2" else np.float32))
        print(f"{a.out_in1k}: {feats.shape} {a.in1k_dtype}")
    if a.out_target:
        ids = []
        for i in range(0, len(feats), a.batch_size):
            ids.append(np.argmax(feats[i:i + a.batch_size].astype(np.float32) @ centroids.T, axis=1))
        target = np.unique(np.concatenate(ids)).astype(np.int64)
        np.save(a.out_target, target)
        print(f"{a.out_target}: {len(target)} target centroids of {len(centroids)}")


if __name__ == "__main__":
    main()
