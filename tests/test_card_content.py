"""What a model card says: an ensemble's card describes its members' own crops and licences and what the
module takes, a card with no provenance has no empty *Provenance* section to point to, accuracy-like figures
are in one unit (percent) throughout, and every zoo card carries the ``ferhub-zoo`` tag."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard

from ferhub import hub, zoo
from ferhub.hub.card import _no_face_note, card_text, format_metric
from ferhub.metrics import kfold_summary
from ferhub.models import create_model
from ferhub.models.ensemble import make_ensemble
from ferhub.training import load_recipe
from ferhub.training.protocol import protocol_notes
from ferhub.training.results import recipe_markdown

MEMBERS = ["ferhub/fer-mini-xception", "ferhub/facemood"]


def _row(card: str, name: str) -> str:
    return next(line for line in card.splitlines() if line.startswith(f"| {name} |"))


@pytest.fixture(scope="module")
def ensemble_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ensemble saved with no card context: what ``hub.save(make_ensemble(...))`` gives a user."""
    return hub.save(make_ensemble(MEMBERS), tmp_path_factory.mktemp("ens") / "ens")


# ---------------------------------------------------------------------------------------------------------
# ensembles
# ---------------------------------------------------------------------------------------------------------
def test_ensemble_card_gives_each_members_crop_not_its_own_config(ensemble_repo: Path) -> None:
    card = (ensemble_repo / "README.md").read_text()
    assert _row(card, "Input") == (
        "| Input | each member's own face crop, framed and normalised as its `config.json` says: "
        "`ferhub/fer-mini-xception` 64×64 grayscale; `ferhub/facemood` 170×170 RGB |"
    )
    # the single-model steps (the ensemble's own 112 px framing, "7 logits") are not the ensemble's
    assert "Resize the crop to" not in card and "logits" not in card
    assert (
        "| `ferhub/fer-mini-xception` | 1 | 64×64 grayscale | square box, 5% margin | bilinear resize; mean"
        " [0.5], std [0.5] | angry, disgust, fear, happy, sad, surprise, neutral | mit |" in card
    )
    assert "| `ferhub/facemood` | 1 | 170×170 RGB | square box, 25% margin |" in card
    assert "takes one batch per member" in card and "model.member_inputs(image, faces)" in card
    assert "returns log-probabilities:\n`exp` of its output is what the predictor gives" in card
    # and that is what the module does: one batch per member, log-probabilities out
    model = hub.load(ensemble_repo)
    configs = [m.config for m in model.members]
    inputs = [torch.rand(2, c.channels, c.input_size, c.input_size) for c in configs]
    with torch.inference_mode():
        out = model(*inputs)
    np.testing.assert_allclose(out.exp().sum(dim=1).numpy(), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="one batch per member"):
        model(torch.rand(1, 3, model.config.input_size, model.config.input_size))


def test_ensemble_card_gives_its_members_licences_and_provenance(ensemble_repo: Path) -> None:
    card = (ensemble_repo / "README.md").read_text()
    assert _row(card, "Licence") == (
        "| Licence | its members' licences (this repo holds no weights): `ferhub/fer-mini-xception` mit, "
        "`ferhub/facemood` apache-2.0 |"
    )
    provenance = card.split("## Provenance, licence and attribution\n", 1)[1]
    members = "`ferhub/fer-mini-xception` mit, `ferhub/facemood` apache-2.0"
    assert f"({members}); see each member's card." in provenance
    training = card.split("## Training\n", 1)[1].split("\n## ", 1)[0]
    assert "Not trained: an ensemble of the members listed under *Labels and preprocessing*" in training
    assert "Not recorded" not in training


def test_ensemble_card_of_a_member_not_on_this_machine_points_to_its_card(
    ensemble_repo: Path, tmp_path: Path
) -> None:
    """A member whose repo is not here (a Hub id never downloaded) is listed, with its card to see; the Hub is
    not asked (the fixture's HF_HOME is empty and offline)."""
    folder = shutil.copytree(ensemble_repo, tmp_path / "ens")
    config = json.loads((folder / "config.json").read_text())
    config["model_args"] = {"members": [MEMBERS[0], "someone/not-here"], "weights": [2.0, 1.0]}
    (folder / "config.json").write_text(json.dumps(config))
    card = card_text(folder)
    assert "`ferhub/fer-mini-xception` 64×64 grayscale; `someone/not-here` (see its card) |" in card
    assert "`someone/not-here` not stated (see its card) |" in _row(card, "Licence")
    assert (
        "| `someone/not-here` | 1 | see its card | see its card | see its card | see its card | not stated |"
        in card
    )
    assert "| `ferhub/fer-mini-xception` | 2 |" in card


def test_zoo_ensemble_card_is_what_write_ensemble_writes(tmp_path: Path) -> None:
    """The bundled zoo ensemble is ``write_ensemble``'s output (nobody edited one side only), and its card no
    longer says the module takes one RGB crop (``model(x)`` raises: it takes one batch per member)."""
    bundled = zoo.bundled_folder(zoo.ENSEMBLE_NAME)
    fresh = zoo.write_ensemble(tmp_path / "zoo-ensemble")
    for name in ("config.json", "card.json", "README.md"):
        assert (fresh / name).read_text() == (bundled / name).read_text(), name
    card = (bundled / "README.md").read_text()
    assert "`model(x)` on RGB crops" not in card and "model(*model.member_inputs(image, faces))" in card
    assert "| `ferhub/facemood` | 1 | 170×170 RGB |" in card
    assert _row(card, "Licence").startswith("| Licence | mit for this repo (its config and card); the")
    assert "`ferhub/facemood` apache-2.0" in _row(card, "Licence")


# ---------------------------------------------------------------------------------------------------------
# provenance
# ---------------------------------------------------------------------------------------------------------
def test_a_card_with_no_provenance_has_no_empty_section_to_point_to(tmp_path: Path) -> None:
    card = (hub.save(create_model("test_tiny"), tmp_path / "m") / "README.md").read_text()
    assert "## Provenance" not in card and "see *Provenance* below" not in card
    assert "Not recorded for this model.\n" in card
    assert _row(card, "Licence") == "| Licence | not stated |"
    # with something to show, the section and the pointer to it are there
    card = (
        hub.save(create_model("test_tiny"), tmp_path / "p", card_context={"provenance": "Made by me."})
        / "README.md"
    ).read_text()
    assert "Not recorded for this model; see *Provenance* below." in card
    assert re.search(r"## Provenance, licence and attribution\n\nMade by me\.\n", card)


# ---------------------------------------------------------------------------------------------------------
# units
# ---------------------------------------------------------------------------------------------------------
def test_accuracy_like_figures_are_percent_throughout_the_card() -> None:
    """seed 004's headline (the accuracy averaged over epochs) and the k-fold mean ± std are in percent,
    as the Evaluation table's accuracy is; the stored values stay fractions."""
    assert format_metric("accuracy", 0.35) == "35.00%"
    assert format_metric("accuracy_epoch_mean", 0.36667) == "36.67%"
    cfg = load_recipe("seed004_chen")[0]
    folds = kfold_summary([{"accuracy": a, "mean_class_recall": a - 0.1, "macro_f1": a / 2} for a in
                           (0.30, 0.35, 0.40, 0.36, 0.34)])  # fmt: skip
    protocol = {"selection": "epoch_mean", "selected_on": None, "reported_on": "the held-out folds",
                "folds": folds, "epoch_mean": {"accuracy": 0.36667}}  # fmt: skip
    notes = protocol_notes(cfg, protocol)
    assert "Mean ± std over 5 folds: accuracy 35.00% ± 3.61%, mean class recall 25.00% ± 3.61%." in notes
    text = recipe_markdown(cfg, "d", protocol)
    assert "- 5-fold mean ± std, accuracy: 35.00% ± 3.61%" in text
    assert "- 5-fold mean ± std, macro f1: 17.50% ± 1.80%" in text
    assert "held-out accuracy averaged over the 20 epochs: 36.67%" in text
    assert folds["accuracy"]["mean"] == pytest.approx(0.35)  # the protocol record is unchanged
    assert not re.search(r"0\.\d{4} ±", " ".join(notes) + text)


# ---------------------------------------------------------------------------------------------------------
# zoo tags
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", hub.list_bundled())
def test_every_zoo_card_carries_the_zoo_tag(name: str) -> None:
    """A Hub search for ``ferhub-zoo`` finds every zoo model, the default one included."""
    assert "ferhub-zoo" in ModelCard.load(hub.resolve(name) / "README.md").data.tags


@pytest.mark.parametrize(
    "policy, how",
    [("wrong", "counted as wrong"), ("mine", "mine"), (["fallback"], "not stated"), ({"a": 1}, "not stated")],
)
def test_the_no_face_note_takes_any_policy(policy: object, how: str) -> None:
    """An unhashable policy (another tool's entry) was a dict key: a TypeError, `ferhub evaluate` exit 4."""
    assert _no_face_note({"count": 3, "policy": policy}) == f"No face was found in 3 images ({how})."
