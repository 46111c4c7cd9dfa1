"""Every recipe runs end to end with ``--tiny`` on generated faces and writes a loadable ferhub model repo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ferhub import hub
from ferhub.data import transform_task, write_class_folders
from ferhub.labels import FER7
from ferhub.training import RECIPES_DIR, get_args_parser, load_recipe, main

RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.py") if not p.stem.startswith("_"))


def test_every_seed_system_has_a_recipe_with_a_citation() -> None:
    assert RECIPES == [
        "ferhub_best",
        "seed000_zhai",
        "seed001_wang",
        "seed002_kaskun",
        "seed003_xiang",
        "seed004_chen",
    ]
    for name in RECIPES:
        cfg, variants = load_recipe(name)
        assert len(cfg.citation) > 40 and cfg.description, name
        for variant in variants:
            load_recipe(name, variant)  # every variant resolves to valid settings
    # the papers' settings, spot-checked
    assert load_recipe("seed003_xiang")[0].kfold == 2 and load_recipe("seed004_chen")[0].kfold == 5
    assert load_recipe("seed003_xiang")[0].loss_args["label_smoothing"] == 0.3
    assert load_recipe("seed000_zhai")[0].loss == "softmax_mse"
    assert load_recipe("seed001_wang")[0].loss == "weighted_ce"
    best = load_recipe("ferhub_best")[0]
    assert (best.optimizer, best.nesterov, best.schedule, best.tta) == ("sgd", True, "plateau", True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def seven_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, targets, labels = transform_task(6, size=24, num_classes=7, seed=2)
    return write_class_folders(images, targets, labels, tmp_path_factory.mktemp("recipes") / "data")


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_runs_tiny_and_writes_a_model_repo(recipe: str, seven_classes: Path, tmp_path: Path) -> None:
    cfg = load_recipe(recipe)[0]
    out = tmp_path / recipe
    argv = ["--recipe", recipe, "--data", str(seven_classes), "--precropped", "--tiny", "--epochs", "1"]
    summary = main(get_args_parser().parse_args([*argv, "--output-dir", str(out), "--no-progress"]))
    repo = out / "model"
    assert sorted(p.name for p in repo.iterdir()) == [
        "README.md",
        "card.json",
        "config.json",
        "eval_results.json",
        "model.safetensors",
    ]
    model = hub.load(str(repo))
    assert model.config.architecture == cfg.tiny_model and model.config.labels == FER7
    assert "pretrained" not in model.config.model_args  # the repo's weights are the model; nothing to fetch
    x = torch.zeros(2, model.config.channels, model.config.input_size, model.config.input_size)
    assert model(x).shape == (2, 7)
    results = json.loads((repo / "eval_results.json").read_text())["results"]
    (entry,) = results.values()
    assert entry["labels"] == list(FER7) and entry["tta"] is cfg.tta
    assert np.sum(entry["confusion_matrix"]) == entry["num_images"] > 0
    card = (repo / "README.md").read_text()
    assert f"recipe-{recipe}" in card and cfg.citation[:30] in card
    if cfg.kfold:
        acc = summary["kfold"]["accuracy"]
        assert len(acc["values"]) == cfg.kfold and "±" in acc["text"]
        assert all(
            (out / f"fold{i + 1}" / "checkpoints" / "best.safetensors").is_file() for i in range(cfg.kfold)
        )
        assert f"{cfg.kfold}-fold validation accuracy: " in card
        assert (
            entry["dataset"]["split"].startswith(f"kfold{cfg.kfold}-fold")
            and entry["kfold"]["k"] == cfg.kfold
        )
        assert entry["kfold"]["accuracy"]["values"] == acc["values"]
