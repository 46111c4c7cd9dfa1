"""Reproduction fixture for ferhub's PyEmotion model: upstream's own network code and pickle, run in PyTorch.

Run once in a throwaway venv (never ferhub's own environment: this unpickles the upstream file the way
PyEmotion does, which can run code; the venv is thrown away afterwards):
    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy pillow scikit-image matplotlib
    pip download --no-deps PyEmotion==1.0.0 -d /tmp/pyemotion
    /tmp/torchenv/bin/python scripts/make_pyemotion_fixture.py /tmp/pyemotion/PyEmotion-1.0.0-py3-none-any.whl
    \
        tests/fixtures/pyemotion.npz
``PyEmotion/networks.py`` and ``PyEmotion/model/main_model.pkl`` are read from the wheel into a temporary
folder (the package is not installed: its ``__init__`` imports cv2, facenet_pytorch and art, none needed
here). The inputs are already 48x48 gray, so upstream's ``Resize((48, 48))`` is the identity and its transform
reduces to ``ToTensor`` + ``Normalize(0.5, 0.5)``, applied here without torchvision. Writes ``inputs`` (uint8
N,48,48), ``logits`` (the last linear layer, before the sigmoid), ``outputs`` (float32 N,7: upstream's sigmoid
scores in its order Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral) and
``versions``.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from fixture_inputs import face_inputs


def main() -> None:
    wheel, out = sys.argv[1:3]
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        z = zipfile.ZipFile(wheel)
        (Path(tmp) / "networks.py").write_bytes(z.read("PyEmotion/networks.py"))
        (Path(tmp) / "main_model.pkl").write_bytes(z.read("PyEmotion/model/main_model.pkl"))
        spec = importlib.util.spec_from_file_location("pyemotion_networks", Path(tmp) / "networks.py")
        networks = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(networks)
        net = networks.NetworkV2(in_c=1, nl=32, out_f=7)
        # As upstream's DetectFace does (a full unpickle, acceptable only in this throwaway environment).
        model_dict = torch.load(Path(tmp) / "main_model.pkl", map_location="cpu", weights_only=False)
        net.load_state_dict(model_dict["network"])
        net.eval()
    inputs = face_inputs(48, channels=1)[..., 0]
    x = (torch.from_numpy(inputs).float().div(255).unsqueeze(1) - 0.5) / 0.5
    captured = {}
    # The last Linear's output, before upstream's Sigmoid: saturated scores (0 or 1) hide errors, logits do
    # not.
    net.linear[2].register_forward_hook(lambda _m, _i, o: captured.update(logits=o))
    with torch.no_grad():
        outputs = net(x).numpy().astype(np.float32)
    logits = captured["logits"].numpy().astype(np.float32)
    versions = f"torch {torch.__version__} PyEmotion 1.0.0 (networks.NetworkV2, model/main_model.pkl)"
    np.savez_compressed(
        out,
        inputs=inputs,
        outputs=outputs,
        logits=logits,
        versions=np.frombuffer(versions.encode(), np.uint8),
    )
    print(f"wrote {out}: {len(inputs)} inputs; {versions}; checkpoint keys {sorted(model_dict)}")
    print("checkpoint accuracy", model_dict.get("accuracy"), "epochs", model_dict.get("epochs"))
    print(outputs.round(3))


if __name__ == "__main__":
    main()
