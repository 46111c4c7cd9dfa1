"""The model registry: strictness, and every registered architecture forwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ferhub.config import ConfigError, ModelConfig
from ferhub.labels import (
    FER7,
    FER8,
    UnknownLabelError,
    canonical,
    canonical_labels,
    dataset_labels,
    index_map,
)
from ferhub.models import UnknownModelError, create_model, list_models, register_model


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_forwards(name: str) -> None:
    model = create_model(name).eval()
    cfg = model.config
    # batch 1: full-size nets are costly; an ensemble takes one batch per member, shaped as each is fed
    configs = [m.config for m in model.members] if name == "ensemble" else [cfg]
    xs = [torch.randn(1, c.channels, c.input_size, c.input_size) for c in configs]
    with torch.inference_mode():
        y = model(*xs)
    assert y.shape == (1, len(FER7))
    assert torch.isfinite(y).all()
    if name != "ensemble":  # presets skip the load-time size probe (_registry._is_preset): measured here
        from ferhub.models import _limits

        budget = _limits.DEFAULT_MAX_MODEL_MB * 2**20 - _limits.tensor_bytes(model)
        assert _limits.activation_bytes(model, cfg, budget) <= budget


def test_create_model_for_eight_classes() -> None:
    model = create_model("test_tiny", labels=FER8)
    assert model.config.num_classes == 8
    assert model(torch.randn(1, 1, 16, 16)).shape == (1, 8)


def test_unknown_model_lists_what_exists() -> None:
    with pytest.raises(UnknownModelError, match="mini_xception"):
        create_model("no_such_net")


def test_duplicate_registration_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_model
        def mini_xception(num_classes: int = 7) -> torch.nn.Module:  # same name as the real one
            return torch.nn.Identity()


def test_create_and_register_model_refuse_what_model_config_would_not_take() -> None:
    """Each was a bare TypeError from the dataclass, or named a label's first letter: every refusal is a
    FerhubError naming what was given (README, "Use")."""
    with pytest.raises(ConfigError, match="labels must be a list of label names, got a string 'happy'"):
        create_model("test_tiny", labels="happy")
    known = (
        "known: align, channels, crop_margin, crop_square, format_version, "
        "input_size, interpolation, mean, std"
    )
    with pytest.raises(ConfigError, match=rf"config_overrides has unknown keys \['inputsize'\]; {known}$"):
        create_model("test_tiny", config_overrides={"inputsize": 32})
    for own in ("labels", "architecture", "model_args"):  # set by create_model itself
        with pytest.raises(ConfigError, match=rf"unknown keys \['{own}'\]; {known} \(architecture, labels"):
            create_model("test_tiny", config_overrides={own: None})
    with pytest.raises(ConfigError, match="config_overrides must be an object of ModelConfig fields"):
        create_model("test_tiny", config_overrides=[("input_size", 32)])  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=rf"register_model\(typo_net\): .* unknown keys \['inputsize'\]; {known}"
    ):

        @register_model(inputsize=48)
        def typo_net(num_classes: int = 7) -> torch.nn.Module:
            return torch.nn.Identity()

    assert "typo_net" not in list_models()
    # any sequence of names or numbers, a numpy array included
    config = create_model(
        "test_tiny", labels=np.array(["happy", "sad"]), config_overrides={"mean": np.array([0.4])}
    ).config
    assert config.labels == ("happy", "sad") and config.mean == (0.4,) and type(config.mean[0]) is float
    assert (
        ModelConfig("test_tiny", ["happy"], channels=3, mean=range(3), std=np.full(3, 0.25)).std
        == (0.25,) * 3
    )
    with pytest.raises(ConfigError, match=r"mean needs 3 number\(s\), one per channel, got \[0.5\]"):
        ModelConfig("test_tiny", ["happy"], channels=3, mean=np.array([0.5]))


def test_list_models_pattern() -> None:
    assert list_models("mini_*") == ["mini_xception"]
    assert "test_tiny" in list_models("test_*")


def test_labels_and_aliases() -> None:
    assert canonical("Happiness") == "happy"
    assert canonical("surprised") == "surprise"
    assert canonical("ANGER") == "angry"
    assert dataset_labels("RAF-DB")[0] == "surprise"
    assert index_map(["happiness", "contempt"], FER7) == [3, None]
    with pytest.raises(UnknownLabelError, match="known names"):
        canonical("bored")
    with pytest.raises(UnknownLabelError, match="twice"):
        canonical_labels(["happy", "happiness"])


def test_config_round_trip_and_strictness(tmp_path) -> None:
    cfg = create_model("mini_xception").config
    cfg.save(tmp_path)
    assert ModelConfig.load(tmp_path) == cfg
    bad = cfg.to_dict() | {"colour": "blue"}
    with pytest.raises(ConfigError, match="unknown keys"):
        ModelConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="mean needs 3 number"):
        ModelConfig(architecture="x", labels=FER7, channels=3, mean=(0.5,), std=(0.5,))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelConfig.load(tmp_path)


@pytest.mark.parametrize("key", list(create_model("test_tiny").config.to_dict()))
def test_config_missing_any_key_save_writes_is_refused(tmp_path, key: str) -> None:
    """A config.json without one of the keys save writes (input_size, mean, crop_margin, ...) is refused,
    naming the file: a field default standing in for it would change the model's preprocessing silently."""
    import json

    data = create_model("test_tiny", config_overrides={"input_size": 16}).config.to_dict()
    del data[key]
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as e:
        ModelConfig.load(tmp_path)
    assert str(e.value) == f"{tmp_path / 'config.json'}: missing required keys [{key!r}]"


def test_memory_limit_refuses_before_allocating_and_can_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from ferhub.models import _limits

    monkeypatch.setenv("FERHUB_MAX_MODEL_MB", "1")
    with pytest.raises(
        _limits.ModelTooLargeError, match=r"weights alone would need about 10 MB.*FERHUB_MAX_MODEL_MB"
    ):
        create_model("pyemotion_net")  # 2.75 M parameters
    with pytest.raises(_limits.ModelTooLargeError, match=r"input_size 256 .* over the 1 MB limit"):
        create_model("test_tiny", config_overrides={"input_size": 256})
    monkeypatch.setenv("FERHUB_MAX_MODEL_MB", "64")
    assert create_model("test_tiny", config_overrides={"input_size": 256}).config.input_size == 256
    monkeypatch.setenv("FERHUB_MAX_MODEL_MB", "lots")
    with pytest.raises(ConfigError, match="FERHUB_MAX_MODEL_MB='lots' must be a positive number"):
        create_model("pyemotion_net")


@pytest.mark.parametrize(
    ("model_args", "expected"),
    [
        ({"hidden": 1e9}, r"model_args\['hidden'\] must be int"),
        ({"hidden": True}, r"model_args\['hidden'\] must be int"),
        ({"nl": "32"}, r"model_args\['nl'\] must be int"),
        ({"depth": 3}, r"model_args 'depth' not accepted by 'pyemotion_net'.*nl, hidden"),
        ({"nl": -1}, r"cannot build 'pyemotion_net'.*negative"),
    ],
)
def test_model_args_are_checked_against_the_builder(model_args: dict, expected: str) -> None:
    from ferhub.models._registry import ModelArgsError

    with pytest.raises(ModelArgsError, match=expected):
        create_model("pyemotion_net", **model_args)


def test_sequence_model_args_are_checked_per_item() -> None:
    from ferhub.models._registry import ModelArgsError

    assert create_model("test_facemood_cnn", widths=[4, 8]).config.model_args == {"widths": [4, 8]}
    with pytest.raises(ModelArgsError, match=r"model_args\['widths'\] must be tuple\[int, \.\.\.\]"):
        create_model("test_facemood_cnn", widths=[4, "8"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"format_version": "1"}, "format_version must be the integer 1, got a string '1'"),
        ({"format_version": True}, "format_version must be the integer 1"),
        ({"crop_square": "no"}, "crop_square must be true or false, got 'no'"),
        ({"align": 1}, "align must be true, false or"),
        ({"model_args": "x"}, "model_args must be an object"),
        ({"model_args": {"a": float("nan")}}, r"model_args\['a'\] is nan; give a finite number"),
        ({"model_args": {"a": [[[[[[1]]]]]]}}, "nests deeper than 4 levels"),
        ({"model_args": {"a": list(range(1000))}}, "has 1,000 items; at most 256"),
        ({"labels": "happy"}, "labels must be a list of label names, got a string"),
        ({"labels": ["happy"] * 100_000}, "labels lists 100,000 names"),
        ({"labels": []}, "labels lists 0 names"),
        ({"mean": [float("nan")]}, "mean must hold finite numbers"),
        ({"std": [float("inf")]}, "std must hold finite numbers"),
        ({"std": [1e-9]}, r"std must be in \[1e-6, 1000\]"),
        ({"input_size": 64.0}, "input_size must be an integer from 8 to 1024"),
        ({"input_size": 6000}, "input_size must be an integer from 8 to 1024"),
        ({"crop_margin": float("nan")}, r"crop_margin must be a number in \[0, 2\]"),
        ({"interpolation": "lanczos" * 1000}, "interpolation must be bilinear"),
        ({"architecture": 7}, "architecture must be a registered architecture name"),
        ({"channels": True}, "channels must be 1"),
    ],
)
def test_config_values_are_validated_with_short_messages(change: dict, expected: str) -> None:
    data = create_model("mini_xception").config.to_dict() | change
    with pytest.raises(ConfigError, match=expected) as e:
        ModelConfig.from_dict(data)
    assert len(str(e.value)) < 400


def test_config_file_with_nan_or_huge_is_refused(tmp_path) -> None:
    cfg = create_model("mini_xception").config
    cfg.save(tmp_path)
    text = (tmp_path / "config.json").read_text()
    (tmp_path / "config.json").write_text(text.replace('"crop_margin": 0.1', '"crop_margin": NaN'))
    with pytest.raises(ConfigError, match="holds NaN, which is not a JSON number"):
        ModelConfig.load(tmp_path)
    (tmp_path / "config.json").write_text(text + " " * (2 << 20))
    with pytest.raises(ConfigError, match=r"is 2\.0 MB; a ferhub config\.json is a few KB"):
        ModelConfig.load(tmp_path)


def test_config_save_is_strict_json(tmp_path) -> None:
    import json

    cfg = create_model("mini_xception").config
    json.loads(cfg.save(tmp_path).read_text(), parse_constant=lambda c: pytest.fail(f"{c} in config.json"))
