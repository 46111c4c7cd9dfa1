"""Reproduction fixture for ferhub's facemood model: upstream's Keras model classifies fixed inputs.

Run once in a throwaway venv with TensorFlow (never ferhub's own environment):
    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu h5py pillow scikit-image
    matplotlib pip download --no-deps facemood==1.0.1 -d /tmp/facemood /tmp/tfenv/bin/python
    scripts/make_facemood_fixture.py /tmp/facemood/facemood-1.0.1-py3-none-any.whl \
        tests/fixtures/facemood.npz
The wheel's model file is read straight from the archive; the package itself is never installed or imported.
Writes ``inputs`` (uint8 N,170,170,3 RGB), ``probabilities`` (float32 N,7 in facemood's order Angry, Disgust,
Fear, Happy, Sad, Surprise, Neutral) and ``versions``.
"""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from fixture_inputs import face_inputs

MEMBER = "facemood/model__version1.0.0__.h5"


def main() -> None:
    wheel, out = sys.argv[1:3]
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        h5 = Path(tmp) / "model.h5"
        h5.write_bytes(zipfile.ZipFile(wheel).read(MEMBER))
        model = keras.models.load_model(h5, compile=False)
    inputs = face_inputs(170)
    # Upstream's process_image: np.array(PIL image) / 255.0, float64 cast to the model's float32.
    probs = model.predict(inputs / 255.0, verbose=0).astype(np.float32)
    versions = f"tensorflow {tf.__version__} keras {keras.__version__} facemood 1.0.1"
    np.savez_compressed(
        out, inputs=inputs, probabilities=probs, versions=np.frombuffer(versions.encode(), np.uint8)
    )
    print(f"wrote {out}: {len(inputs)} inputs; {versions}")
    print(probs.round(3))


if __name__ == "__main__":
    main()
