"""``ferhub train --init``: the run starts from the ``--init`` weights, never from a recipe's pretrained file,
which ``--init`` replaces (a missing one is no reason to refuse the run)."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest
import torch

from ferhub import hub
from ferhub.errors import PretrainedWeightsError
from ferhub.models import create_model
from ferhub.training import load_recipe

fit = importlib.import_module("ferhub.training.fit")  # the module (ferhub.training.fit is also its function)


def test_init_replaces_the_pretrained_weights_a_recipe_asks_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ferhub train --init base/model` with the default recipe (ResNet18, `pretrained=true`) and no ImageNet
    file was refused before the data, with advice to train "from a random start"; --init is the start, and
    `load_init` replaces every weight but the new classifier."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no ImageNet file there
    cfg = load_recipe("ferhub_best")[0]
    assert cfg.model == "resnet18" and cfg.model_args.get("pretrained") is True
    with pytest.raises(PretrainedWeightsError):  # without --init the file is needed, and said so
        fit.check_model_builds(cfg)
    torch.manual_seed(1)
    base = hub.save(create_model("resnet18", ("angry", "happy")), tmp_path / "base")
    started = dataclasses.replace(cfg, init=str(base))
    fit.check_model_builds(started)  # before the data: nothing to refuse
    model = fit.build_model(started, ("angry", "happy", "sad"))
    assert fit.model_args(started) == {**cfg.model_args, "pretrained": False}
    assert fit.model_args(cfg) == cfg.model_args  # the recipe's own setting is left as it is
    weights = hub.load(base).state_dict()
    own = model.state_dict()
    backbone = [k for k in own if not k.startswith("net.fc.")]  # every tensor but the new classifier's
    assert len(backbone) > 100 and all(torch.equal(own[k], weights[k]) for k in backbone)
    assert torch.equal(own["net.fc.1.weight"][:2], weights["net.fc.1.weight"])  # angry, happy: their rows
