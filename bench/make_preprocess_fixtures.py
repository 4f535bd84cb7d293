"""Writes test/fixtures/preprocess/: small fixture images and what the Pillow-based reference preprocessors make of
them, for test/lib/models/preprocess-parity.test.ts. Needs Pillow and NumPy only:

    python3 bench/make_preprocess_fixtures.py          # (re)writes the fixtures
    python3 bench/make_preprocess_fixtures.py --check  # also checks the references against open_clip and transformers
                                                       # where installed (not needed to write the fixtures)

References, one per processor family (the rule preprocess.ts reads from preprocessor_config.json):
  openai_clip   OpenAI CLIP's clip.load() transform, which open_clip's eval transform repeats (the scorers DataComp
                and friends use): Image.open (no EXIF transpose) -> Resize(n, BICUBIC) on the image in its own mode
                (Pillow resizes RGBA premultiplied, and "P"/"1" with NEAREST) -> CenterCrop(n), offsets
                int(round((H - n) / 2)) -> convert("RGB") -> ToTensor (float32 u8 / 255) -> Normalize (float32).
  transformers  transformers' slow image processors (BlipImageProcessor, ViTImageProcessor, ...) on what a pipeline's
                load_image gives them: ImageOps.exif_transpose -> convert("RGB") (alpha dropped, not composited)
                -> PIL resize of the uint8 RGB image -> center_crop, offsets (H - n) // 2 -> rescale (float64 multiply,
                cast to float32) -> normalize (float32).
Each reference is stored as the uint8 HWC image right before the float conversion (lossless: the tensor is a
per-channel function of each uint8) in an 8-bit RGB PNG (lossless, half the size of a gzipped .npy; the manifest
keeps the SHA-256 of the raw bytes), and normalise.<processor>.npy holds that function as float32 [3, 256].
"""
import hashlib
import io
import json
import os
import sys

import numpy as np
import PIL
from PIL import Image, ImageOps

SCRIPT_VERSION = 1
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "preprocess")

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# preprocessor_config.json of each processor, as the public exports ship them (openai/clip-vit-base-patch32,
# Salesforce/blip-image-captioning-base, facebook/dinov2-base: a transformers processor with a center crop,
# google/vit-base-patch16-224 / nlpconnect/vit-gpt2-image-captioning).
PROCESSORS = {
    "openai_clip": {
        "reference": "openai_clip",
        "config": {
            "image_processor_type": "CLIPImageProcessor",
            "do_resize": True,
            "size": {"shortest_edge": 224},
            "resample": 3,
            "do_center_crop": True,
            "crop_size": {"height": 224, "width": 224},
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": CLIP_MEAN,
            "image_std": CLIP_STD,
            "do_convert_rgb": True,
        },
    },
    "blip": {
        "reference": "transformers",
        "config": {
            "image_processor_type": "BlipImageProcessor",
            "do_resize": True,
            "size": {"height": 384, "width": 384},
            "resample": 3,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": CLIP_MEAN,
            "image_std": CLIP_STD,
            "do_convert_rgb": True,
        },
    },
    "bit": {
        "reference": "transformers",
        "config": {
            "image_processor_type": "BitImageProcessor",
            "do_resize": True,
            "size": {"shortest_edge": 256},
            "resample": 3,
            "do_center_crop": True,
            "crop_size": {"height": 224, "width": 224},
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": [0.485, 0.456, 0.406],
            "image_std": [0.229, 0.224, 0.225],
            "do_convert_rgb": True,
        },
    },
    "vit": {
        "reference": "transformers",
        "config": {
            "image_processor_type": "ViTImageProcessor",
            "do_resize": True,
            "size": {"height": 224, "width": 224},
            "resample": 2,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.5, 0.5, 0.5],
        },
    },
}


# ---------------------------------------------------------------------------------------------------- fixture images


def scene(w: int, h: int, seed: int) -> np.ndarray:
    """A deterministic photo-like RGB uint8 image: smooth gradients, hard-edged shapes, a fine stripe texture
    (aliasing shows there) and mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / w, y / h
    img = np.stack(
        [
            128 + 90 * np.sin(2 * np.pi * (u * (1 + seed % 3) + 0.3 * v)),
            128 + 90 * np.cos(2 * np.pi * (v * (2 + seed % 2) - 0.2 * u)),
            60 + 150 * u * v,
        ],
        axis=-1,
    )
    for _ in range(4):  # rectangles and discs in flat colours
        cx, cy, r = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.06, 0.2)
        colour = rng.integers(0, 256, 3)
        if rng.random() < 0.5:
            mask = (np.abs(u - cx) < r) & (np.abs(v - cy) < r * w / h)
        else:
            mask = (u - cx) ** 2 + ((v - cy) * h / w) ** 2 < r * r
        img[mask] = colour
    stripes = (u > 0.6) & (u < 0.8) & (v > 0.1) & (v < 0.35)
    img[stripes] = np.where((x[stripes, None] // 2) % 2 == 0, 230, 25)
    noisy = (u < 0.3) & (v > 0.6)  # sensor-like noise in one corner only: keeps the reference files small
    img[noisy] += rng.normal(0, 3, (int(noisy.sum()), 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png16(rgb16: np.ndarray) -> bytes:
    """16-bit RGB PNG, written by hand (Pillow cannot write 16-bit RGB)."""
    import struct
    import zlib

    h, w, _ = rgb16.shape
    rows = rgb16.astype(">u2").reshape(h, -1).view(np.uint8)
    sub = rows.copy()
    sub[:, 6:] -= rows[:, :-6]  # PNG filter 1 (Sub): each byte minus the same byte of the previous pixel
    raw = b"".join(b"\x01" + sub[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def make_fixtures() -> list:
    """(file name, bytes, what it exercises)."""
    out = []

    def add(name: str, data: bytes, note: str) -> None:
        out.append((name, data, note))

    add("small-64x48.png", encode(Image.fromarray(scene(64, 48, 1)), "PNG"), "tiny image, enlarged ~4.7x")
    add("photo-640x480.jpg", encode(Image.fromarray(scene(640, 480, 2)), "JPEG", quality=90), "typical web JPEG")
    add("large-1280x960.jpg", encode(Image.fromarray(scene(1280, 960, 3)), "JPEG", quality=85), "large JPEG, shrunk ~4.3x")
    add("odd-305x300.png", encode(Image.fromarray(scene(305, 300, 4)), "PNG"), "CLIP resize to 227x224: crop left round(1.5)=2 vs floor 1")
    add("exact-224x227.png", encode(Image.fromarray(scene(224, 227, 5)), "PNG"), "no CLIP resize; crop top round(1.5)=2 vs floor 1")
    add("panorama-1000x120.jpg", encode(Image.fromarray(scene(1000, 120, 6)), "JPEG", quality=90), "extreme aspect ratio 8.3:1")
    add("tall-150x701.jpg", encode(Image.fromarray(scene(150, 701, 7)), "JPEG", quality=90), "tall, CLIP 224x1046: crop top round(411)")
    grey = Image.fromarray(scene(333, 250, 8)).convert("L")
    add("grey-333x250.jpg", encode(grey, "JPEG", quality=90), "greyscale JPEG (mode L)")

    rgba = scene(480, 400, 9)
    yy, xx = np.mgrid[0:400, 0:480]
    alpha = np.clip(xx * 255 // 400, 0, 255).astype(np.uint8)  # horizontal ramp 0..255
    alpha[(yy > 120) & (yy < 240) & (xx > 40) & (xx < 240)] = 0  # a fully transparent hole over coloured pixels
    add("rgba-480x400.png", encode(Image.fromarray(np.dstack([rgba, alpha]), "RGBA"), "PNG"), "alpha ramp and a transparent hole")

    pal = Image.fromarray(scene(400, 300, 10)).quantize(colors=48, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    add("palette-400x300.png", encode(pal, "PNG", transparency=0), "palette PNG (mode P) with a transparent index")

    cmyk = Image.fromarray(scene(300, 240, 11)).convert("CMYK")
    c = np.asarray(cmyk).copy()
    c[..., 3] = np.clip(c[..., :3].min(axis=-1), 0, 255)  # some black generation, so K is not all zero
    c[..., :3] -= c[..., 3:4]
    add("cmyk-300x240.jpg", encode(Image.fromarray(c, "CMYK"), "JPEG", quality=92), "CMYK JPEG (Adobe, inverted)")

    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    add("exif6-320x240.jpg", encode(Image.fromarray(scene(320, 240, 12)), "JPEG", quality=90, exif=exif.tobytes()), "EXIF orientation 6")

    rgb16 = scene(300, 240, 13).astype(np.uint16) * 256 + np.uint16(0xA5)  # low bytes that rounding would notice
    add("rgb16-300x240.png", png16(rgb16), "16-bit RGB PNG")
    return out


# ---------------------------------------------------------------------------------------------------- references


def tv_center_crop(im: Image.Image, h: int, w: int) -> Image.Image:
    """torchvision.transforms.functional.center_crop on a PIL image (zero padding when smaller)."""
    iw, ih = im.size
    if w > iw or h > ih:
        pad_l, pad_t = (w - iw) // 2 if w > iw else 0, (h - ih) // 2 if h > ih else 0
        pad_r, pad_b = (w - iw + 1) // 2 if w > iw else 0, (h - ih + 1) // 2 if h > ih else 0
        padded = Image.new(im.mode, (iw + pad_l + pad_r, ih + pad_t + pad_b), 0)
        padded.paste(im, (pad_l, pad_t))
        im, (iw, ih) = padded, padded.size
    top, left = int(round((ih - h) / 2.0)), int(round((iw - w) / 2.0))
    return im.crop((left, top, left + w, top + h))


def hf_center_crop(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """transformers.image_transforms.center_crop on HWC (offsets floor((H - h) / 2), zero padding)."""
    ih, iw = a.shape[:2]
    ph, pw = max(h, ih), max(w, iw)
    padded = np.zeros((ph, pw, a.shape[2]), a.dtype)
    t0, l0 = -(-(ph - ih) // 2), -(-(pw - iw) // 2)  # ceil
    padded[t0 : t0 + ih, l0 : l0 + iw] = a
    top, left = (ih - h) // 2 + t0, (iw - w) // 2 + l0
    return padded[top : top + h, left : left + w]


def shortest_edge(w: int, h: int, n: int) -> tuple:
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(n * long / short)
    return (n, new_long) if w <= h else (new_long, n)


def reference_uint8(im: Image.Image, proc: dict) -> np.ndarray:
    cfg, kind = proc["config"], proc["reference"]
    size, resample = cfg["size"], cfg["resample"]
    if kind == "openai_clip":
        if im.size != shortest_edge(*im.size, size["shortest_edge"]):
            im = im.resize(shortest_edge(*im.size, size["shortest_edge"]), resample)  # in the image's own mode
        im = tv_center_crop(im, cfg["crop_size"]["height"], cfg["crop_size"]["width"])
        return np.asarray(im.convert("RGB"))
    im = ImageOps.exif_transpose(im).convert("RGB")  # transformers.image_utils.load_image
    target = shortest_edge(*im.size, size["shortest_edge"]) if "shortest_edge" in size else (size["width"], size["height"])
    a = np.asarray(im.resize(target, resample))  # PIL's resize returns a copy when the size is unchanged
    if cfg.get("do_center_crop"):
        a = hf_center_crop(a, cfg["crop_size"]["height"], cfg["crop_size"]["width"])
    return a


def normalise_table(proc: dict) -> np.ndarray:
    """float32 [3, 256]: the reference tensor value of each uint8 level, per channel, in the reference's arithmetic."""
    cfg = proc["config"]
    levels = np.arange(256, dtype=np.uint8)[:, None].repeat(3, axis=1)  # [256, 3] like HWC pixels
    mean, std = np.array(cfg["image_mean"], np.float32), np.array(cfg["image_std"], np.float32)
    if proc["reference"] == "openai_clip":
        x = levels.astype(np.float32) / np.float32(255)  # ToTensor: float32 division
    else:
        x = (levels.astype(np.float64) * cfg["rescale_factor"]).astype(np.float32)  # rescale: float64, then cast
    return ((x - mean) / std).astype(np.float32).T.copy()


def png8(a: np.ndarray) -> bytes:
    back = encode(Image.fromarray(a, "RGB"), "PNG", optimize=True)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(back))), a)
    return back


# ---------------------------------------------------------------------------------------------------- checks


def check_with_torch(files: list) -> None:
    """The references against the real transforms, when installed: open_clip's eval transform (= OpenAI CLIP's)."""
    try:
        import torch
        from open_clip.transform import image_transform
    except ImportError as e:
        print(f"--check: open_clip skipped ({e})")
        return
    transform = image_transform(224, is_train=False)
    table = torch.from_numpy(normalise_table(PROCESSORS["openai_clip"]))
    for name, data in files:
        want = transform(Image.open(io.BytesIO(data)))
        u8 = torch.from_numpy(reference_uint8(Image.open(io.BytesIO(data)), PROCESSORS["openai_clip"]).copy())
        got = torch.stack([table[c][u8[..., c].long()] for c in range(3)])
        assert got.shape == want.shape and torch.equal(got, want), f"{name}: differs from open_clip by {(got - want).abs().max()}"
    print(f"--check: openai_clip references equal open_clip's eval transform bit for bit on {len(files)} images")


def check_with_transformers(files: list) -> None:
    """The transformers references against transformers' own (slow) processors on load_image's output."""
    try:
        import transformers
        from transformers.image_utils import load_image
    except ImportError as e:
        print(f"--check: transformers skipped ({e})")
        return
    checked = []
    for pname, proc in PROCESSORS.items():
        if proc["reference"] != "transformers":
            continue
        cfg = dict(proc["config"])
        processor = getattr(transformers, cfg.pop("image_processor_type"))(**cfg)
        table = normalise_table(proc)
        for name, _ in files:
            want = processor(images=load_image(os.path.join(OUT, name)), return_tensors="np")["pixel_values"][0]
            u8 = reference_uint8(Image.open(os.path.join(OUT, name)), proc)
            got = np.stack([table[c][u8[..., c]] for c in range(3)])
            assert got.shape == want.shape and np.array_equal(got, want), f"{pname} {name}: differs by {np.abs(got - want).max()}"
        checked.append(pname)
    print(f"--check: {', '.join(checked)} references equal transformers {transformers.__version__} bit for bit on {len(files)} images")


def main() -> None:
    if int(PIL.__version__.split(".")[0]) < 13:
        # Pillow 13 changed the pass order of some resizes (vertical first when the height shrinks much more than
        # the width); lib/models/resample.ts follows 13, so older references would not match it exactly.
        sys.exit(f"Pillow >= 13 needed, found {PIL.__version__}")
    os.makedirs(OUT, exist_ok=True)
    fixtures = make_fixtures()
    manifest = {
        "script": "bench/make_preprocess_fixtures.py",
        "script_version": SCRIPT_VERSION,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "processors": {},
        "fixtures": [],
    }
    for pname, proc in PROCESSORS.items():
        table_file = f"normalise.{pname}.npy"
        with open(os.path.join(OUT, table_file), "wb") as f:
            np.save(f, normalise_table(proc), allow_pickle=False)
        manifest["processors"][pname] = {**proc, "normalise_table": table_file}
    for name, data, note in fixtures:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        entry = {"file": name, "note": note, "pil_mode": im.mode, "size": list(im.size), "orientation": im.getexif().get(0x0112, 1), "outputs": {}}
        for pname, proc in PROCESSORS.items():
            u8 = reference_uint8(Image.open(io.BytesIO(data)), proc)
            assert u8.dtype == np.uint8 and u8.ndim == 3 and u8.shape[2] == 3, (name, pname, u8.shape)
            u8 = np.ascontiguousarray(u8)
            out_file = f"{os.path.splitext(name)[0]}.{pname}.png"
            with open(os.path.join(OUT, out_file), "wb") as f:
                f.write(png8(u8))
            sha = hashlib.sha256(u8.tobytes()).hexdigest()
            entry["outputs"][pname] = {"file": out_file, "shape": list(u8.shape), "sha256": sha}
        manifest["fixtures"].append(entry)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(fixtures)} fixtures x {len(PROCESSORS)} processors to {os.path.relpath(OUT)} ({total / 1e6:.2f} MB)")
    if "--check" in sys.argv:
        check_with_torch([(n, d) for n, d, _ in fixtures])
        check_with_transformers([(n, d) for n, d, _ in fixtures])


if __name__ == "__main__":
    main()
