"""The pickled PyTorch model of the PyPI package ``PyEmotion`` (MIT) -> a ferhub model repo.

``PyEmotion/model/main_model.pkl`` is a ``torch.save`` pickle (legacy format) of
``{"network": state_dict, "optimizer": ..., "accuracy": ..., "epochs": ...}``. A pickle can run arbitrary code
when loaded, so ferhub never loads it in its own process:

1. :func:`scan_torch_pickle` reads the pickle opcodes statically (``pickletools``; nothing is executed) and
   refuses the file unless every import it names is in :data:`ALLOWED_GLOBALS` (plain containers, tensor
   storages and PyTorch's tensor rebuild function);
2. a throwaway subprocess (``python -I``: no user site, no ``PYTHONPATH``, run in an empty temporary folder)
   loads it with ``torch.load(weights_only=True)`` and writes the network's tensors as safetensors plus a JSON
   description (:data:`_WORKER`);
3. this process reads only those two files, checks the tensors against :mod:`ferhub.models.pyemotion_net` and
   saves the ferhub repo. The card says which of these happened.
"""

from __future__ import annotations

import io
import json
import os
import pickletools
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferhub.convert._fetch import SourcePackage, extract_member, fetch, read_member, sha256_file
from ferhub.errors import ConversionError
from ferhub.models.pyemotion_net import PYEMOTION_LABELS

if TYPE_CHECKING:
    from torch import nn

SOURCE = SourcePackage(
    "pypi", "PyEmotion", "1.0.0", sha256="a916d66b40d95e63ad898bac290818b15d8da8ba521f80131d35e6c2aa2fa2a0"
)
PKL_MEMBER = "PyEmotion/model/main_model.pkl"
LICENSE_MEMBER = "PyEmotion-1.0.0.dist-info/LICENSE.txt"
MODEL_NAME = "pyemotion"
ARCHITECTURE = "pyemotion_net"
WORKER_TIMEOUT_S = 300

# What a torch.save of tensors in plain containers may import; anything else is refused unread.
ALLOWED_GLOBALS = frozenset(
    {
        "collections OrderedDict",
        "torch._utils _rebuild_tensor_v2",
        "torch._utils _rebuild_parameter",
        *(
            f"torch {t}Storage"
            for t in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")
        ),
        "torch UntypedStorage",
        *(
            f"torch {t}"
            for t in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool")
        ),
    }
)


class PickleRefusedError(ConversionError):
    """A pickle that imports something outside :data:`ALLOWED_GLOBALS`, or that cannot be scanned."""


class PyEmotionConversionError(ConversionError):
    """The converted tensors do not fit ferhub's ``pyemotion_net``, or the worker failed."""


def _globals_of(stream: io.BytesIO) -> set[str]:
    found: set[str] = set()
    strings: list[str] = []  # STACK_GLOBAL takes module and name from the two strings pushed before it
    for op, arg, _pos in pickletools.genops(stream):
        if op.name in ("GLOBAL", "INST"):
            found.add(str(arg))
        elif op.name == "STACK_GLOBAL":
            if len(strings) < 2:
                raise PickleRefusedError("STACK_GLOBAL without two preceding strings; refusing to guess")
            found.add(f"{strings[-2]} {strings[-1]}")
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(str(arg))
        elif op.name == "REDUCE" and not found:
            raise PickleRefusedError("a REDUCE before any import; refusing to guess what it calls")
        if op.name == "STOP":
            break
    return found


def scan_torch_pickle(data: bytes) -> set[str]:
    """Every ``module name`` a ``torch.save`` file imports, read from its opcodes without unpickling.

    Handles the zip format (``*/data.pkl``) and the legacy format (four pickles, then raw storages).
    Raises :class:`PickleRefusedError` naming the imports outside :data:`ALLOWED_GLOBALS`.
    """
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = [n for n in z.namelist() if n.endswith("data.pkl")]
                if len(names) != 1:
                    raise PickleRefusedError(
                        f"torch zip checkpoint with data.pkl files {names}; expected one"
                    )
                found = _globals_of(io.BytesIO(z.read(names[0])))
        else:
            stream = io.BytesIO(data)
            found = set()
            for _ in range(5):  # magic number, protocol, sys info, the object, the storage keys
                found |= _globals_of(stream)
    except (ValueError, EOFError) as e:
        if isinstance(e, PickleRefusedError):
            raise
        raise PickleRefusedError(f"not a readable torch pickle ({e})") from e
    refused = sorted(found - ALLOWED_GLOBALS)
    if refused:
        raise PickleRefusedError(
            f"the pickle imports {refused}, which can run arbitrary code when loaded; ferhub refuses to"
            " convert it. Convert it yourself in a disposable environment you trust, saving the state dict"
            " as safetensors"
        )
    return found


# Runs in the throwaway subprocess; argv: checkpoint path, output folder, key holding the state dict.
_WORKER = """
import json, sys
import torch
from safetensors.torch import save_file
src, out, key = sys.argv[1:4]
obj = torch.load(src, map_location="cpu", weights_only=True)
state = obj[key] if key else obj
tensors = {k: v.detach().contiguous() for k, v in state.items()}
save_file(tensors, out + "/network.safetensors")
scalars = {}
if isinstance(obj, dict):
    scalars = {k: v for k, v in obj.items() if isinstance(v, (int, float, str, bool))}
desc = {
    "top_level_keys": sorted(obj) if isinstance(obj, dict) else None,
    "state_key": key,
    "scalars": scalars,
    "tensors": {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in tensors.items()},
    "torch_version": torch.__version__,
    "loader": "torch.load(map_location='cpu', weights_only=True)",
}
with open(out + "/description.json", "w") as f:
    json.dump(desc, f, indent=2)
"""


def convert_pickle_in_subprocess(
    pkl: str | Path, out_dir: str | Path, state_key: str = "network"
) -> dict[str, Any]:
    """Scan ``pkl`` statically, then load it in a throwaway ``python -I`` subprocess that writes
    ``network.safetensors`` and ``description.json`` into ``out_dir``; return the description."""
    pkl, out_dir = Path(pkl).resolve(), Path(out_dir).resolve()
    globals_found = scan_torch_pickle(pkl.read_bytes())
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    with tempfile.TemporaryDirectory(prefix="ferhub-unpickle-") as cwd:
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-c", _WORKER, str(pkl), str(out_dir), state_key],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=WORKER_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise PyEmotionConversionError(f"the conversion subprocess took over {WORKER_TIMEOUT_S} s") from e
    if proc.returncode != 0:
        raise PyEmotionConversionError(
            f"the conversion subprocess refused or failed on {pkl.name} (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-1500:]}"
        )
    desc = json.loads((out_dir / "description.json").read_text())
    desc["pickle_globals"] = sorted(globals_found)
    return desc


def model_from_safetensors(path: str | Path) -> nn.Module:
    """Build ``pyemotion_net`` with PyEmotion's labels and load the converted tensors strictly."""
    from safetensors.torch import load_file

    from ferhub.models import create_model

    tensors = load_file(str(path))
    model = create_model(ARCHITECTURE, labels=PYEMOTION_LABELS)
    expected = model.state_dict()
    problems = sorted(set(expected) ^ set(tensors)) + sorted(
        k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape
    )
    if problems:
        raise PyEmotionConversionError(f"PyEmotion's tensors do not fit pyemotion_net: {problems[:8]}")
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def convert(
    out_dir: str | Path, *, archive: str | Path | None = None, workdir: str | Path | None = None
) -> Path:
    """Write the ferhub repo for PyEmotion to ``out_dir``, fetching the pinned wheel unless ``archive`` is
    given."""
    from ferhub import hub

    with tempfile.TemporaryDirectory(prefix="ferhub-pyemotion-") as tmp:
        wheel = Path(archive) if archive is not None else fetch(SOURCE, workdir or tmp)
        if sha256_file(wheel) != SOURCE.sha256:
            raise PyEmotionConversionError(f"{wheel} is not the pinned {SOURCE.spec} wheel (sha256 differs)")
        pkl = extract_member(wheel, PKL_MEMBER, Path(tmp) / "x")
        desc = convert_pickle_in_subprocess(pkl, Path(tmp) / "converted")
        model = model_from_safetensors(Path(tmp) / "converted" / "network.safetensors")
        license_text = read_member(wheel, LICENSE_MEMBER).decode("utf-8")
        context = card_context(license_text, pkl_sha256=sha256_file(pkl), description=desc)
        return hub.save(model, out_dir, card_context=context)


def card_context(license_text: str, *, pkl_sha256: str, description: dict[str, Any]) -> dict[str, Any]:
    """The model card's provenance, licence, data, preprocessing and limitations for PyEmotion (prose in
    ``ferhub/templates/zoo/pyemotion.md``; ``description`` is what the isolated pickle load reported)."""
    from ferhub.convert import _cards

    scalars = description.get("scalars", {})
    return {
        "model_name": MODEL_NAME,
        "repo_id": f"ferhub/{MODEL_NAME}",
        "license": "mit",
        "license_text": license_text.strip(),
        "tags": ["emotion-recognition", "converted-from-pytorch-pickle", "ferhub-zoo"],
        **_cards.zoo_card(
            MODEL_NAME,
            SOURCE,
            archive=f"PyEmotion-{SOURCE.version}-py3-none-any.whl",
            file=PKL_MEMBER,
            file_sha256=pkl_sha256,
            accuracy=float(scalars["accuracy"]) if "accuracy" in scalars else None,
            epochs=scalars.get("epochs", "?"),
            top_level_keys=description.get("top_level_keys"),
            pickle_globals=description.get("pickle_globals", []),
            torch_version=description.get("torch_version"),
        ),
    }
