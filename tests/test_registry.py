"""The model registry: strictness, and every registered architecture forwards."""

from __future__ import annotations

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
    x = torch.randn(1, cfg.channels, cfg.input_size, cfg.input_size)  # batch 1: full-size nets are costly
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (1, len(FER7))
    assert torch.isfinite(y).all()


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
    with pytest.raises(ConfigError, match="mean/std"):
        ModelConfig(architecture="x", labels=FER7, channels=3, mean=(0.5,), std=(0.5,))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelConfig.load(tmp_path)
