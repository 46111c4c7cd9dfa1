"""Every recipe runs end to end with ``--tiny`` on generated faces and writes a loadable ferhub model repo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tasks import transform_task

from ferhub import hub
from ferhub.commands.train import get_args_parser, main
from ferhub.data import write_class_folders
from ferhub.labels import FER7
from ferhub.training import list_recipes, load_recipe

RECIPES = list_recipes()


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
    assert load_recipe("seed003_xiang", "multiscale_mixup_ls")[0].loss_args["label_smoothing"] == 0.3
    assert load_recipe("seed000_zhai")[0].loss == "softmax_mse"
    assert load_recipe("seed001_wang")[0].loss == "weighted_ce"
    for name in RECIPES:  # every variant says what it is (the --list-variants line)
        assert all(v.get("description") for v in load_recipe(name)[1].values()), name
    best = load_recipe("ferhub_best")[0]
    assert (best.optimizer, best.nesterov, best.schedule, best.tta) == ("sgd", True, "plateau", "tencrop")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def seven_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, targets, labels = transform_task(6, size=24, num_classes=7, seed=2)
    return write_class_folders(images, targets, labels, tmp_path_factory.mktemp("recipes") / "data")


@pytest.mark.parametrize(
    # seed 003 builds an InceptionResnetV1: tens of seconds even tiny
    "recipe",
    [pytest.param(r, marks=pytest.mark.slow) if r == "seed003_xiang" else r for r in RECIPES],
)
def test_recipe_runs_tiny_and_writes_a_model_repo(
    recipe: str, seven_classes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = load_recipe(recipe)[0]
    out = tmp_path / recipe
    argv = ["--recipe", recipe, "--data", str(seven_classes), "--precropped", "--tiny", "--epochs", "1"]
    summary = main(get_args_parser().parse_args([*argv, "--output-dir", str(out), "--no-progress"]))
    printed = capsys.readouterr().out
    # the log says how many crops train, select and report, not the total as if all trained
    assert "data: 42 crops of " in printed
    if cfg.kfold:
        assert f"fold 1/{cfg.kfold}: training on " in printed
    else:
        assert "training on 28 crops, selecting on 7, reporting on 7" in printed
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
    assert entry["labels"] == list(FER7) and entry["tta"] is (cfg.tta is not None)
    assert entry["tta_method"] == cfg.tta
    repeats = min(cfg.repeats, 2)  # every held-out image is in the matrix once per repeat
    assert np.sum(entry["confusion_matrix"]) == entry["num_images"] * repeats > 0
    card = (repo / "README.md").read_text()
    assert f"recipe-{recipe}" in card and cfg.citation[:30] in card
    protocol = entry["protocol"]
    assert protocol["selection"] == cfg.selection and protocol["repeats"] == min(cfg.repeats, 2)
    if cfg.kfold:
        acc = protocol["folds"]["accuracy"]
        assert len(acc["values"]) == cfg.kfold * protocol["repeats"] and "±" in acc["text"]
        root = out if cfg.repeats == 1 else out / "repeat1"
        assert all(
            (root / f"fold{i + 1}" / "checkpoints" / "best.safetensors").is_file() for i in range(cfg.kfold)
        )
        folds = f"{cfg.kfold}-fold" if repeats == 1 else f"{cfg.kfold}-fold x {repeats} repeats,"
        assert f"{folds} mean ± std, accuracy: " in card
        assert entry["dataset"]["split"] == f"kfold{cfg.kfold}" and protocol["kfold"] == cfg.kfold
        assert summary["protocol"]["folds"]["accuracy"]["values"] == acc["values"]
        assert entry["num_images"] == 42  # the images reported on (each once per repeat)
        # the card counts what each fold trained on and what reported, not the 42 as if all trained
        assert f"images in each of the {cfg.kfold} folds; " in card
        once = "each once" if repeats == 1 else f"each once in each of the {repeats} repeats"
        assert f"; results reported on all 42 images, {once} (the held-out folds of " in card
    else:
        assert entry["dataset"]["split"] == "heldout" and entry["num_images"] == 7
        assert "(42 images). Trained on 28 images; the epoch chosen on 7 images (an inner " in card
        assert "; results reported on 7 images (a stratified " in card
    if protocol["repeats"] > 1:  # seed 003's 3 runs: mean ± std over the repeats in the card and the results
        assert len(protocol["repeat_results"]["accuracy"]["values"]) == protocol["repeats"]
        assert f"{protocol['repeats']} repeats, mean ± std, accuracy: " in card
        assert f"Mean ± std over {protocol['repeats']} repeats: accuracy " in card


@pytest.mark.slow
def test_recipes_ship_in_the_wheel_and_resolve_outside_the_checkout(tmp_path: Path) -> None:
    """``pip wheel --no-deps . -w DIR`` packs the recipes; installed from that wheel, ``--recipe NAME`` works
    from a folder that is not the checkout."""
    repo = Path(__file__).resolve().parent.parent
    src = tmp_path / "src"  # a copy, so the build writes nothing into the checkout
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(repo / "ferhub", src / "ferhub", symlinks=True, ignore=ignore)
    shutil.copytree(repo / "model_cards", src / "model_cards")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # no build isolation: the test extra installs setuptools, and tests never reach the network
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp_path / "dist")],
        check=True,
        cwd=src,
    )
    (wheel,) = (tmp_path / "dist").glob("ferhub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"ferhub/recipes/{r}.py" for r in RECIPES} <= names
    # the zoo's model-card prose is package data too (the converters render it)
    zoo_prose = {p.relative_to(repo).as_posix() for p in (repo / "ferhub" / "templates" / "zoo").glob("*.md")}
    assert "ferhub/templates/zoo/fer-mini-xception.md" in zoo_prose and zoo_prose <= names
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import sys, ferhub; from ferhub.cli import main; print(ferhub.__file__); "
        "sys.exit(main(['train', '--recipe', 'seed002_kaskun', '--variant', 'fcn', '--print-recipe']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )
    where, _, printed = out.stdout.partition("\n")
    assert Path(where).is_relative_to(tmp_path / "site")  # the installed wheel ran, not the checkout
    settings = json.loads(printed)
    assert settings["recipe"] == "seed002_kaskun:fcn" and settings["model"] == "fcn"
