"""Inputs for the zoo's reproduction fixtures: two real faces (from images that ship in scikit-image and
matplotlib), their mirror images, and two seeded block-noise images, as uint8 ``(N, size, size, channels)``.

Used by ``scripts/make_*_fixture.*``: ``python scripts/fixture_inputs.py --size 112 --out inputs.npy`` writes
them for the Node script; the Python fixture scripts import :func:`face_inputs`. Real faces exercise the
networks in the regime they were trained for; noise exercises every weight with unusual activations.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

# Face boxes (x1, y1, x2, y2) found once with facenet-pytorch's MTCNN, squared and padded 10 % per side.
_FACES = {"astronaut": (181.1, 62.2, 267.7, 172.1), "grace_hopper": (174.4, 119.6, 355.6, 340.5)}


def _load(name: str) -> Image.Image:
    if name == "astronaut":
        import skimage.data

        return Image.fromarray(skimage.data.astronaut())
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


def _square_crop(image: Image.Image, box: tuple[float, float, float, float], size: int) -> Image.Image:
    x1, y1, x2, y2 = box
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) / 2 * 1.2
    return image.crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half))).resize(
        (size, size), Image.BILINEAR
    )


def face_inputs(size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Six uint8 images ``(6, size, size, channels)``: 2 faces, their mirrors, 2 noise images."""
    faces = [_square_crop(_load(n), box, size) for n, box in _FACES.items()]
    faces += [f.transpose(Image.FLIP_LEFT_RIGHT) for f in faces]
    if channels == 1:
        faces = [f.convert("L") for f in faces]
    arr = np.stack([np.asarray(f, dtype=np.uint8).reshape(size, size, channels) for f in faces])
    # Noise in 4x4 blocks: as hard on the weights as pixel noise, but it compresses, so fixtures stay small.
    blocks = np.random.default_rng(seed).integers(0, 256, (2, -(-size // 4), -(-size // 4), channels))
    noise = blocks.repeat(4, axis=1).repeat(4, axis=2)[:, :size, :size].astype(np.uint8)
    return np.concatenate([arr, noise])


def main() -> None:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--channels", type=int, default=3, choices=(1, 3))
    p.add_argument("--out", required=True, help=".npy file to write")
    args = p.parse_args()
    np.save(args.out, face_inputs(args.size, args.channels))


if __name__ == "__main__":
    main()
