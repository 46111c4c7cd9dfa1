"""Hostile model repos: each malformed, oversized or poisoned repo is refused at load with a short message
that says what to fix, in bounded time and memory (the cases run in a memory-limited child, see hostile.py).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

from hostile import suite

EXPECTED_ERRORS = ("ModelLoadError", "ConfigError", "ModelTooLargeError")
LOAD_ERROR = "ModelLoadError"


# -- cases (run in the child) -------------------------------------------------------------------------------
def _repo(tmp: Path, bundled: str = "fer-mini-xception", **config: Any) -> Path:
    """A copy of a bundled repo with ``config`` merged into its config.json."""
    from ferhub import hub

    folder = tmp / "repo"
    shutil.copytree(hub.resolve(f"ferhub/{bundled}"), folder)
    data = json.loads((folder / "config.json").read_text())
    data.update(config)
    (folder / "config.json").write_text(json.dumps(data))
    return folder


def _load(folder: Path) -> Any:
    from ferhub import hub

    return hub.load(folder)


def warm_up(tmp: Path) -> None:
    """Import and load once, so that the cases measure the attack, not torch's first import."""
    tmp.mkdir(parents=True)
    _load(_repo(tmp))


def case_input_size_6000(tmp: Path) -> Any:
    return _load(_repo(tmp, input_size=6000))


def case_input_size_as_string(tmp: Path) -> Any:
    return _load(_repo(tmp, input_size="64"))


def case_pyemotion_hidden_1e9(tmp: Path) -> Any:
    return _load(_repo(tmp, architecture="pyemotion_net", input_size=48, model_args={"hidden": 1e9}))


def case_pyemotion_hidden_int_1e9(tmp: Path) -> Any:
    return _load(_repo(tmp, architecture="pyemotion_net", input_size=48, model_args={"hidden": 10**9}))


def case_wide_first_layer(tmp: Path) -> Any:
    # few weights (20000x3x3x3) but a 20000-channel 224x224 activation: refused before that layer runs
    return _load(
        _repo(
            tmp,
            architecture="faceapi_expression_net",
            channels=3,
            mean=[0.5] * 3,
            std=[0.5] * 3,
            input_size=1024,
            model_args={"widths": [20000, 8, 8, 8]},
        )
    )


def case_input_size_wrong_for_network(tmp: Path) -> Any:
    return _load(_repo(tmp, architecture="pyemotion_net", input_size=400, model_args={}))


def case_channels_wrong_for_network(tmp: Path) -> Any:
    return _load(_repo(tmp, channels=3, mean=[0.5] * 3, std=[0.5] * 3))


def case_negative_width(tmp: Path) -> Any:
    return _load(_repo(tmp, architecture="pyemotion_net", input_size=48, model_args={"nl": -3}))


def case_nan_mean(tmp: Path) -> Any:
    folder = _repo(tmp)
    text = (folder / "config.json").read_text().replace('"mean": [0.5]', '"mean": [NaN]')
    (folder / "config.json").write_text(text)
    return _load(folder)


def case_infinite_std(tmp: Path) -> Any:
    folder = _repo(tmp)
    text = (folder / "config.json").read_text().replace('"std": [0.5]', '"std": [Infinity]')
    (folder / "config.json").write_text(text)
    return _load(folder)


def case_zero_std(tmp: Path) -> Any:
    return _load(_repo(tmp, std=[0.0]))


def _poison_weights(tmp: Path, value: float) -> Path:
    from safetensors.torch import load_file, save_file

    folder = _repo(tmp)
    tensors = load_file(folder / "model.safetensors")
    name = next(n for n, t in tensors.items() if t.is_floating_point())
    tensors[name].view(-1)[0] = value
    save_file(tensors, folder / "model.safetensors")
    return folder


def case_nan_weights(tmp: Path) -> Any:
    return _load(_poison_weights(tmp, float("nan")))


def case_infinite_weights(tmp: Path) -> Any:
    return _load(_poison_weights(tmp, float("-inf")))


def _ensemble(tmp: Path, name: str, members: list[str]) -> Path:
    folder = tmp / name
    shutil.copytree(_repo(tmp / f"_{name}", "zoo-ensemble"), folder)
    data = json.loads((folder / "config.json").read_text())
    data["model_args"] = {"members": members, "weights": [1.0] * len(members)}
    (folder / "config.json").write_text(json.dumps(data))
    return folder


def case_ensemble_lists_itself(tmp: Path) -> Any:
    return _load(_ensemble(tmp, "self", [str(tmp / "self")]))


def case_ensemble_cycle(tmp: Path) -> Any:
    _ensemble(tmp, "b", [str(tmp / "a")])
    return _load(_ensemble(tmp, "a", [str(tmp / "b")]))


def case_model_args_string(tmp: Path) -> Any:
    return _load(_repo(tmp, model_args="in_chans=1"))


def case_model_args_unknown_key(tmp: Path) -> Any:
    return _load(_repo(tmp, model_args={"x" * 100_000: 1}))


def case_format_version_string(tmp: Path) -> Any:
    return _load(_repo(tmp, format_version="1"))


def case_format_version_future(tmp: Path) -> Any:
    return _load(_repo(tmp, format_version=99))


def case_crop_square_string(tmp: Path) -> Any:
    return _load(_repo(tmp, crop_square="no"))


def case_100k_labels(tmp: Path) -> Any:
    return _load(_repo(tmp, labels=["happy"] * 100_000))


def case_huge_label_name(tmp: Path) -> Any:
    return _load(_repo(tmp, labels=["h" * 1_000_000]))


def case_unknown_architecture_long_name(tmp: Path) -> Any:
    return _load(_repo(tmp, architecture="net" * 50_000))


def case_unknown_keys_many(tmp: Path) -> Any:
    return _load(_repo(tmp, **{f"key{i}": i for i in range(20_000)}))


def prepare_config_50mb(tmp: Path) -> None:
    folder = _repo(tmp)
    with open(folder / "config.json", "a") as f:
        f.write(" " * (50 << 20))


def case_config_50mb(tmp: Path) -> Any:
    return _load(tmp / "repo")


def case_config_deeply_nested(tmp: Path) -> Any:
    folder = _repo(tmp)
    (folder / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    return _load(folder)


def case_config_binary_garbage(tmp: Path) -> Any:
    folder = _repo(tmp)
    (folder / "config.json").write_bytes(bytes(range(256)) * 64)
    return _load(folder)


def case_config_is_a_folder(tmp: Path) -> Any:
    folder = _repo(tmp)
    (folder / "config.json").unlink()
    (folder / "config.json").mkdir()
    return _load(folder)


def case_safetensors_huge_header(tmp: Path) -> Any:
    # the first 8 bytes give the JSON header's length: claim 2**62 bytes
    folder = _repo(tmp)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    return _load(folder)


def case_safetensors_truncated(tmp: Path) -> Any:
    folder = _repo(tmp)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 3])
    return _load(folder)


def case_pickle_only(tmp: Path) -> Any:
    folder = _repo(tmp)
    (folder / "model.safetensors").unlink()
    # a pickle that would run a shell command if unpickled: it must never be read
    (folder / "pytorch_model.bin").write_bytes(
        b"cos\nsystem\n(S'touch " + str(tmp / "pwned").encode() + b"'\ntR."
    )
    try:
        return _load(folder)
    finally:
        assert not (tmp / "pwned").exists()


# -- tests --------------------------------------------------------------------------------------------------
# kind -> (error class, patterns the message must hold)
EXPECT: dict[str, tuple[str, tuple[str, ...]]] = {
    "input_size_6000": (LOAD_ERROR, (r"input_size must be an integer from 8 to 1024", "6000")),
    "input_size_as_string": (LOAD_ERROR, (r"input_size must be an integer",)),
    "pyemotion_hidden_1e9": (LOAD_ERROR, (r"model_args\['hidden'\] must be int",)),
    "pyemotion_hidden_int_1e9": (
        LOAD_ERROR,
        (r"weights alone would need about [\d,]+ MB", "FERHUB_MAX_MODEL_MB"),
    ),
    "wide_first_layer": (LOAD_ERROR, (r"would need about [\d,]+ MB", "FERHUB_MAX_MODEL_MB")),
    "input_size_wrong_for_network": (LOAD_ERROR, (r"cannot take a 1-channel 400x400 input", "Fix")),
    "channels_wrong_for_network": (LOAD_ERROR, (r"cannot take a 3-channel 64x64 input",)),
    "negative_width": (LOAD_ERROR, (r"cannot build 'pyemotion_net'", "negative")),
    "nan_mean": (LOAD_ERROR, ("NaN", "finite")),
    "infinite_std": (LOAD_ERROR, ("Infinity", "finite")),
    "zero_std": (LOAD_ERROR, (r"std must be in \[1e-6, 1000\]",)),
    "nan_weights": (LOAD_ERROR, (r"model\.safetensors holds NaN or infinite values", "re-save")),
    "infinite_weights": (LOAD_ERROR, (r"NaN or infinite values",)),
    "ensemble_lists_itself": (LOAD_ERROR, (r"lists itself among its members",)),
    "ensemble_cycle": (LOAD_ERROR, (r"lists itself among its members",)),
    "model_args_string": (LOAD_ERROR, (r"model_args must be an object",)),
    "model_args_unknown_key": (LOAD_ERROR, (r"not accepted by 'mini_xception'", "in_chans")),
    "format_version_string": (LOAD_ERROR, (r"format_version must be the integer 1, got a string",)),
    "format_version_future": (LOAD_ERROR, (r"newer than this ferhub understands", "upgrade")),
    "crop_square_string": (LOAD_ERROR, (r"crop_square must be true or false, got 'no'",)),
    "100k_labels": (LOAD_ERROR, (r"labels lists 100,000 names",)),
    "huge_label_name": (LOAD_ERROR, (r"short label names",)),
    "unknown_architecture_long_name": (LOAD_ERROR, (r"architecture must be a registered architecture name",)),
    "unknown_keys_many": (LOAD_ERROR, (r"unknown keys .*\(\+19995 more\)",)),
    "config_50mb": (LOAD_ERROR, (r"is 50\.0 MB; a ferhub config\.json is a few KB",)),
    "config_deeply_nested": (LOAD_ERROR, (r"not valid JSON",)),
    "config_binary_garbage": (LOAD_ERROR, (r"not valid JSON",)),
    "config_is_a_folder": (LOAD_ERROR, (r"config\.json",)),
    "safetensors_huge_header": (LOAD_ERROR, (r"not a readable safetensors file",)),
    "safetensors_truncated": (LOAD_ERROR, (r"not a readable safetensors file",)),
    "pickle_only": (LOAD_ERROR, (r"pickle format ferhub never loads",)),
}
KINDS, results, test_every_case_has_an_expectation, test_hostile_model_repo_is_refused_clearly = suite(
    __name__, EXPECT
)
