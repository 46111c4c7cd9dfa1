"""The model repo: save/load round trips, strict loading, Hub ids (intercepted), offline failures, push,
cards."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import torch
from hubrepo import HubListing
from safetensors.torch import load_file, save_file
from torch import nn

import ferhub
import ferhub.hub as hub
from ferhub.config import ModelConfig
from ferhub.labels import FER7, FER8
from ferhub.models import create_model, list_models
from ferhub.models._registry import _REGISTRY, ModelEntry

CARD_CONTEXT = {
    "model_name": "fer-test",
    "repo_id": "ferhub-test/fer-test",
    "license": "mit",
    "license_text": "MIT License\n\nCopyright (c) 2018 Example Author",
    "base_model": "someone/base-net",
    "datasets": ["someone/fer-data"],
    "tags": ["mini-xception"],
    "recipe": "Adam, lr 1e-3, 30 epochs, flip augmentation.",
    "training_command": "ferhub train --recipe recipes/mini.py --data someone/fer-data",
    "provenance": "Converted from an upstream Keras file.",
    "attribution": "Weights by Example Author.",
    "upstream_claims": ["Upstream reports 66% accuracy on the FER2013 test set."],
}


def eval_results(labels: tuple[str, ...] = FER7, *, accuracy: float = 0.625) -> dict[str, Any]:
    k = len(labels)
    cm = [[(20 if i == j else (i + 2 * j) % 5) for j in range(k)] for i in range(k)]
    return {
        "format_version": 1,
        "results": {
            "someone/fer-data/default/test": {
                "dataset": {
                    "id": "someone/fer-data",
                    "config": "default",
                    "split": "test",
                    "name": "FER data",
                },
                "metrics": {
                    "accuracy": accuracy,
                    "mean_class_recall": 0.5,
                    "macro_f1": 0.4875,
                    "nll": 1.25,
                    "accuracy_ci95": [0.6, 0.65],
                },
                "labels": list(labels),
                "confusion_matrix": cm,
                "per_class": {
                    lab: {"precision": 0.5, "recall": 0.25 + i / 100, "f1": 0.3, "support": sum(cm[i])}
                    for i, lab in enumerate(labels)
                },
                "tta": False,
                "num_images": sum(map(sum, cm)),
                "no_face": {"count": 3, "policy": "fallback"},
                "notes": ["contempt images were left out"],
            },
            "folder:lab-photos/all": {
                "dataset": {"id": "folder:lab-photos", "split": "all"},
                "metrics": {"accuracy": 0.75, "calibration": {"ece": 0.1}},
                "tta": True,
                "tta_method": "flip",
            },
        },
    }


def trained(name: str, labels: tuple[str, ...] = FER7, seed: int = 0) -> nn.Module:
    """A registry model whose every weight and buffer differs from a fresh build, so a lost tensor shows."""
    model = create_model(name, labels)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.mul_(1 + torch.rand(t.shape, generator=g))  # stays positive
            elif t.is_floating_point():
                t.add_(0.05 * torch.randn(t.shape, generator=g))  # small: deep nets stay finite
            else:
                t.fill_(7)
    return model.eval()


def sample(model: nn.Module, n: int = 3) -> torch.Tensor:
    c = model.config
    return torch.randn(n, c.channels, c.input_size, c.input_size, generator=torch.Generator().manual_seed(1))


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    hub.clear_cache()
    monkeypatch.setattr(hub._remote, "_PROBE_CACHE", {})


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Path:
    return hub.save(trained("test_tiny"), tmp_path / "tiny", card_context=CARD_CONTEXT)


# ---------------------------------------------------------------------------------------------------------
# save -> load
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["test_tiny", pytest.param("mini_xception", marks=pytest.mark.slow)])
def test_save_load_round_trip(tmp_path: Path, name: str) -> None:
    model = trained(name)
    folder = hub.save(model, tmp_path / "repo", eval_results=eval_results(), card_context=CARD_CONTEXT)
    assert folder == tmp_path / "repo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no temporary folder left behind
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "card.json",
        "config.json",
        "eval_results.json",
        "model.safetensors",
    ]
    assert json.loads((folder / "config.json").read_text()) == model.config.to_dict()
    assert json.loads((folder / "eval_results.json").read_text()) == eval_results()
    assert json.loads((folder / "card.json").read_text()) == CARD_CONTEXT
    stored = load_file(folder / "model.safetensors")
    assert stored.keys() == model.state_dict().keys()

    loaded = hub.load(str(folder))
    assert not loaded.training
    assert loaded.config == model.config
    assert loaded.name_or_path == str(folder) and loaded.repo_path == folder.resolve()
    x = sample(model)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
        assert not torch.equal(
            create_model(name).eval()(x), model(x)
        )  # the weights really came from the file


@pytest.mark.parametrize(
    # the InceptionResnetV1 family is big even as a test variant
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n == "test_irv1" else n for n in list_models("test_*")],
)
def test_every_family_round_trips(tmp_path: Path, name: str) -> None:
    """Registry-driven: each family's tiny variant saves and loads back to identical outputs."""
    model = trained(name)
    loaded = hub.load(hub.save(model, tmp_path / "repo"))
    assert type(loaded) is type(model) and loaded.config == model.config
    expected, got = model.state_dict(), loaded.state_dict()
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in expected)
    x = sample(model, 1)
    with torch.no_grad():
        out = model(x)
        assert torch.isfinite(out).all() and torch.equal(loaded(x), out)


def test_save_without_eval_results_writes_four_files(tmp_path: Path) -> None:
    folder = hub.save(trained("test_tiny"), tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "card.json",
        "config.json",
        "model.safetensors",
    ]
    assert json.loads((folder / "card.json").read_text()) == {"model_name": "m"}


def test_a_saved_repo_is_readable_by_others_as_the_umask_allows(tmp_path: Path) -> None:
    """A model folder another user (or a server under another uid) can load: the umask's modes, not the
    private 0700 / 0600 of a temporary folder and of the weights' writer."""
    old = os.umask(0o022)
    try:
        folder = hub.save(trained("test_tiny"), tmp_path / "m")
        hub.save(trained("test_tiny", seed=1), folder)  # saved again in place: the same modes
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == dict.fromkeys(
        ["README.md", "card.json", "config.json", "model.safetensors"], 0o644
    )


def test_resave_replaces_repo_files_and_keeps_others(tmp_path: Path) -> None:
    folder = hub.save(trained("test_tiny", seed=1), tmp_path / "m", eval_results=eval_results())
    (folder / "train.log").write_text("epoch 1\n")
    first = hub.load(folder)
    second_model = trained("test_tiny", seed=2)
    hub.save(second_model, folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "card.json",
        "config.json",
        "model.safetensors",
        "train.log",
    ]  # the old eval results described other weights: gone
    second = hub.load(folder)
    assert second is not first  # the cache notices the re-save
    x = sample(second_model)
    with torch.no_grad():
        assert torch.equal(second(x), second_model(x))
    assert hub.load(folder) is second  # and caches the new one


def test_a_folder_saved_again_in_place_keeps_one_model_in_the_cache(tmp_path: Path) -> None:
    """A training loop that saves its checkpoint folder in place and loads it after each epoch kept every
    epoch's model in load()'s cache, unreachable (its key has the old files' fingerprint): one model leaked
    per re-save. The folder's superseded entries go when the new one is stored."""
    import gc
    import weakref

    from ferhub.hub import _repo

    folder = hub.save(trained("test_tiny", seed=1), tmp_path / "ckpt")
    other = hub.load(hub.save(trained("test_tiny", seed=3), tmp_path / "other"))
    first = weakref.ref(hub.load(folder))
    for seed in (2, 4):
        hub.save(trained("test_tiny", seed=seed), folder)
        latest = hub.load(folder)
    gc.collect()
    assert first() is None  # nothing holds the first epoch's model any more
    folder_keys = [k for k in _repo._MODEL_CACHE if k[:2] == ("folder", str(folder))]
    assert len(folder_keys) == 1 and _repo._MODEL_CACHE[folder_keys[0]] is latest
    assert [k for k in _repo._KEY_LOCKS if k[:2] == ("folder", str(folder))] == folder_keys
    assert hub.load(folder) is latest and hub.load(tmp_path / "other") is other  # others stay cached


def test_an_ensemble_whose_member_folder_is_saved_again_is_read_again(tmp_path: Path) -> None:
    """An ensemble of local folders came back from load()'s cache with its old member after that member's
    folder was saved again in place (its key covered only the ensemble's own config.json), and the stale
    ensemble stayed cached for good. Members' files are part of its key, also through an ensemble of
    ensembles; the entries they supersede are dropped, as a folder's own are."""
    import gc
    import weakref

    from ferhub.hub import _repo
    from ferhub.models.ensemble import make_ensemble

    member = hub.save(trained("test_tiny", seed=1), tmp_path / "member")
    ensemble = hub.save(make_ensemble([member, "fer-mini-xception"]), tmp_path / "ens")
    outer = hub.save(make_ensemble([ensemble]), tmp_path / "outer")
    first = hub.load(ensemble)
    first_outer = weakref.ref(hub.load(outer))
    assert hub.load(ensemble) is first and hub.load(outer) is first_outer()  # cached while nothing changes
    old = weakref.ref(first)
    del first
    resaved = trained("test_tiny", seed=2)
    hub.save(resaved, member)
    new_member = hub.load(member)  # storing it drops every ensemble cached with its old files
    gc.collect()
    assert old() is None and first_outer() is None
    bundled = str(hub.resolve("fer-mini-xception"))
    assert sorted(k[1] for k in _repo._MODEL_CACHE) == sorted([str(member), bundled])  # no ensemble
    x = sample(resaved)
    with torch.no_grad():
        for model in (hub.load(ensemble), hub.load(outer).members[0]):
            assert model.members[0] is new_member and torch.equal(model.members[0](x), resaved(x))
    assert hub.load(outer).members[0] is hub.load(ensemble)
    assert sorted(k[1] for k in _repo._KEY_LOCKS) == sorted([str(member), str(ensemble), str(outer), bundled])


def test_loading_an_ensemble_on_a_device_leaves_its_members_cached_elsewhere_where_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load(ensemble, device="cuda") built the ensemble from its members' CPU cache entries and then moved it,
    so the members every CPU load() had handed out (and every CPU ensemble holding them) went to the GPU with
    it. Members load for the ensemble's device, each (member, device) its own cache entry. "meta" stands for a
    GPU here: it is a device every torch has, on which a moved parameter shows."""
    from ferhub.hub import _repo
    from ferhub.models.ensemble import make_ensemble

    real_device_name = _repo.device_name
    monkeypatch.setattr(_repo, "device_name", lambda d: "meta" if d == "meta" else real_device_name(d))
    resaved = trained("test_tiny", seed=1)
    member = hub.save(resaved, tmp_path / "member")
    ensemble = hub.save(
        make_ensemble([member, hub.save(trained("test_tiny", seed=2), tmp_path / "b")]), tmp_path / "e"
    )
    outer = hub.save(make_ensemble([ensemble]), tmp_path / "outer")
    on_cpu, ensemble_on_cpu = hub.load(member), hub.load(outer)

    on_meta = hub.load(outer, device="meta")
    assert on_meta.members[0] is hub.load(ensemble, device="meta")
    assert on_meta.members[0].members[0] is hub.load(member, device="meta") is not on_cpu
    assert {p.device.type for p in on_meta.parameters()} == {"meta"}
    assert hub.load(member) is on_cpu and hub.load(outer) is ensemble_on_cpu
    assert {p.device.type for p in ensemble_on_cpu.parameters()} == {"cpu"}
    x = sample(resaved)
    with torch.no_grad():
        assert torch.equal(on_cpu(x), resaved(x))
        assert torch.equal(ensemble_on_cpu.members[0].members[0](x), resaved(x))


def test_crash_before_install_keeps_old_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = trained("test_tiny", seed=1)
    folder = hub.save(old, tmp_path / "m")

    def boom(folder: Path) -> str:
        raise RuntimeError("simulated crash while rendering")

    monkeypatch.setattr(hub.card, "render_card", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        hub.save(trained("test_tiny", seed=2), folder)
    with pytest.raises(RuntimeError, match="simulated crash"):
        hub.save(trained("test_tiny", seed=2), tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no half-written folder, no temp folder
    x = sample(old)
    with torch.no_grad():
        assert torch.equal(hub.load(folder)(x), old(x))


def test_crash_while_installing_leaves_a_folder_that_does_not_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = hub.save(trained("test_tiny", seed=1), tmp_path / "m")
    real_replace = os.replace
    calls = []

    def flaky_replace(src: Any, dst: Any) -> None:
        if Path(dst).parent == folder:  # a move into the repo (not a write inside the temporary folder)
            calls.append(Path(dst).name)
            if len(calls) == 2:  # after the new weights went in, before config.json is back
                raise OSError("simulated crash while moving files")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="simulated crash"):
        hub.save(trained("test_tiny", seed=2), folder)
    monkeypatch.setattr(os, "replace", real_replace)
    assert calls[0] == "model.safetensors"
    with pytest.raises(hub.ModelLoadError, match=r"config\.json not found"):
        hub.load(folder)


def test_tied_weights_are_stored_once_and_restored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Tied(nn.Module):
        def __init__(self, num_classes: int = 7) -> None:
            super().__init__()
            self.embed = nn.Linear(4, 4, bias=False)
            self.head = nn.Linear(4, 4, bias=False)
            self.head.weight = self.embed.weight  # tied
            self.out = nn.Linear(4, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.head(self.embed(x.flatten(1)[:, :4])))

    monkeypatch.setitem(_REGISTRY, "test_hub_tied", ModelEntry("test_hub_tied", Tied, {"input_size": 8}))
    model = trained("test_hub_tied")
    folder = hub.save(model, tmp_path / "tied")
    assert sorted(load_file(folder / "model.safetensors")) == ["embed.weight", "out.bias", "out.weight"]
    loaded = hub.load(folder)
    assert loaded.head.weight is loaded.embed.weight
    x = sample(model)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_ensemble_has_no_weights_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    member_folder = hub.save(trained("test_tiny"), tmp_path / "member")

    class Ensemble(nn.Module):
        def __init__(self, num_classes: int = 7, members: tuple[str, ...] = ()) -> None:
            super().__init__()
            self.members = nn.ModuleList(hub.load(m) for m in members)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([m(x) for m in self.members]).mean(0)

    monkeypatch.setitem(_REGISTRY, "ensemble", ModelEntry("ensemble", Ensemble, {"input_size": 16}))
    model = create_model("ensemble", members=[str(member_folder)])
    folder = hub.save(model, tmp_path / "ens")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "card.json", "config.json"]
    loaded = hub.load(folder)
    x = sample(model)
    with torch.no_grad():
        assert torch.equal(loaded(x), hub.load(member_folder)(x))
    assert "none of its own" in (folder / "README.md").read_text()


def test_a_full_disk_during_save_names_the_repos_file_not_the_hidden_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """save stages the repo in a hidden ``.NAME.tmp-<uuid>`` folder: a full disk named that folder's file
    (one the user never sees); it names the repo's own, and the stage is removed, the old repo kept."""
    import safetensors.torch

    from ferhub.cli import describe

    folder = hub.save(trained("test_tiny", seed=1), tmp_path / "m")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def full_disk(*args: Any, **kwargs: Any) -> None:  # what safetensors raises: no OSError, an OS code
        raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(OSError) as e:
        hub.save(trained("test_tiny", seed=2), folder)
    assert e.value.filename == str(folder / "model.safetensors")
    code, line = describe(e.value)
    assert code == 1 and line.startswith(f"the disk is full: {folder / 'model.safetensors'}"), line
    assert ".tmp-" not in line
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no stage left
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_save_unwraps_data_parallel(tmp_path: Path) -> None:
    model = trained("test_tiny")
    folder = hub.save(nn.DataParallel(model), tmp_path / "m")
    assert load_file(folder / "model.safetensors").keys() == model.state_dict().keys()
    x = sample(model)
    with torch.no_grad():
        assert torch.equal(hub.load(folder)(x), model(x))


def test_load_does_not_fetch_pretrained_backbone_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[bool] = []

    def backbone_net(num_classes: int = 7, pretrained: bool = False) -> nn.Module:
        if torch.empty(0).device.type != "meta":  # not ferhub's size count, which builds on the meta device
            builds.append(pretrained)  # a real family would load ImageNet weights here
        return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))

    monkeypatch.setitem(
        _REGISTRY, "test_hub_backbone", ModelEntry("test_hub_backbone", backbone_net, {"input_size": 8})
    )
    model = create_model("test_hub_backbone", pretrained=True).eval()
    folder = hub.save(model, tmp_path / "m")
    loaded = hub.load(folder)
    assert builds == [True, False]  # training started from pretrained weights; loading takes the repo's
    assert loaded.config.model_args == {"pretrained": True}  # the recorded recipe is kept
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_save_refuses_a_model_without_config(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"model\.config"):
        hub.save(nn.Linear(2, 2), tmp_path / "m")
    with pytest.raises(ValueError, match=r"unknown card_context keys \['licence'\]"):
        hub.save(trained("test_tiny"), tmp_path / "m", card_context={"licence": "mit"})
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------------------------------------------------
# strict loading
# ---------------------------------------------------------------------------------------------------------
def rewrite_weights(folder: Path, edit: Any) -> None:
    tensors = load_file(folder / "model.safetensors")
    edit(tensors)
    save_file(tensors, str(folder / "model.safetensors"))


def edit_config(folder: Path, **changes: Any) -> None:
    data = json.loads((folder / "config.json").read_text())
    data.update(changes)
    (folder / "config.json").write_text(json.dumps(data))


def test_missing_weight_is_named(tiny_repo: Path) -> None:
    rewrite_weights(tiny_repo, lambda t: t.pop("classifier.weight"))
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load(tiny_repo)
    msg = str(e.value)
    assert "model.safetensors" in msg and "missing weights: classifier.weight" in msg
    assert "'test_tiny'" in msg and "ferhub.hub.save" in msg


def test_unexpected_weight_is_named(tiny_repo: Path) -> None:
    rewrite_weights(tiny_repo, lambda t: t.update({"extra.weight": torch.zeros(2)}))
    with pytest.raises(hub.ModelLoadError, match=r"unexpected weights: extra\.weight"):
        hub.load(tiny_repo)


def test_wrong_shape_is_named(tiny_repo: Path) -> None:
    edit_config(tiny_repo, labels=list(FER8))  # config says 8 classes, weights have 7
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load(tiny_repo)
    msg = str(e.value)
    assert "wrong shapes (file vs model): classifier.bias (7,) vs (8,)" in msg
    assert "8 labels" in msg and "config.json" in msg


def test_unknown_architecture(tiny_repo: Path) -> None:
    edit_config(tiny_repo, architecture="no_such_net")
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load(tiny_repo)
    msg = str(e.value)
    assert "config.json" in msg and "unknown architecture 'no_such_net'" in msg
    assert "mini_xception" in msg and "register" in msg


def test_bad_model_args(tiny_repo: Path) -> None:
    edit_config(tiny_repo, model_args={"depth": 3})
    with pytest.raises(hub.ModelLoadError, match=r"config\.json.*model_args must be keyword arguments"):
        hub.load(tiny_repo)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not valid JSON"),
        # every key save writes is required, preprocessing included: none is guessed
        ('{"architecture": "test_tiny"}', r"missing required keys \['labels', 'model_args', 'input_size', "),
        ({"channels": 2}, "channels must be 1"),
        ({"labels": ["joyish"]}, "joyish"),
    ],
)
def test_bad_config(tiny_repo: Path, content: str | dict[str, Any], expected: str) -> None:
    if isinstance(content, dict):  # the saved config with these values changed
        content = json.dumps(json.loads((tiny_repo / "config.json").read_text()) | content)
    (tiny_repo / "config.json").write_text(content)
    with pytest.raises(hub.ModelLoadError, match=expected) as e:
        hub.load(tiny_repo)
    assert str(tiny_repo / "config.json") in str(e.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_safetensors(tiny_repo: Path, damage: str) -> None:
    path = tiny_repo / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(b"this is not a safetensors file" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load(tiny_repo)
    assert f"{path} is not a readable safetensors file" in str(e.value)
    assert "re-save" in str(e.value)


def test_pickle_checkpoint_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = trained("test_tiny")
    folder = tmp_path / "foreign"
    folder.mkdir()
    model.config.save(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")

    def no_unpickling(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("load() must never unpickle")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load(folder)
    msg = str(e.value)
    assert "model.safetensors not found" in msg and "pytorch_model.bin" in msg
    assert "import_torch_checkpoint" in msg
    with pytest.raises(hub.ModelLoadError, match="import_torch_checkpoint"):
        hub.load(folder / "pytorch_model.bin")


def test_import_torch_checkpoint(tmp_path: Path) -> None:
    model = trained("test_tiny")
    wrapped = {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "ckpt.pth")
    imported = hub.import_torch_checkpoint(tmp_path / "ckpt.pth", model.config)
    x = sample(model)
    with torch.no_grad():
        assert torch.equal(imported(x), model(x))
    folder = hub.save(imported, tmp_path / "converted")
    assert "model.safetensors" in {p.name for p in folder.iterdir()}

    torch.save({"weights": model.state_dict(), "obj": Path("x")}, tmp_path / "evil.pt")
    with pytest.raises(hub.ModelLoadError, match="not a plain state dict of tensors"):
        hub.import_torch_checkpoint(tmp_path / "evil.pt", model.config)
    torch.save({k: v for k, v in model.state_dict().items() if k != "classifier.bias"}, tmp_path / "part.pt")
    with pytest.raises(hub.ModelLoadError, match=r"missing weights: classifier\.bias"):
        hub.import_torch_checkpoint(tmp_path / "part.pt", model.config)


def test_unknown_reference_messages(tmp_path: Path) -> None:
    with pytest.raises(hub.ModelLoadError, match=r"model folder \./nowhere does not exist"):
        hub.load("./nowhere")
    with pytest.raises(hub.ModelLoadError, match=r"not a model folder, a bundled model .*'org/name'"):
        hub.load("no-such-bundled-model")
    with pytest.raises(hub.ModelLoadError, match="names revision 'v1' but revision='v2'"):
        hub.load("org/name@v1", revision="v2")


# ---------------------------------------------------------------------------------------------------------
# bundled models
# ---------------------------------------------------------------------------------------------------------
def test_bundled_names_resolve_without_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_repo: Path
) -> None:
    bundled = tmp_path / "bundled"
    shutil.copytree(tiny_repo, bundled / "fer-tiny")
    (bundled / "not-a-model").mkdir()
    monkeypatch.setattr(hub._layout, "BUNDLED_DIR", bundled)

    def no_hub(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a bundled model must not touch the Hub")

    monkeypatch.setattr("huggingface_hub.snapshot_download", no_hub)
    assert hub.list_bundled() == ["ferhub/fer-tiny"]
    assert hub.resolve("fer-tiny") == hub.resolve("ferhub/fer-tiny") == bundled / "fer-tiny"
    assert hub.load("ferhub/fer-tiny").config.architecture == "test_tiny"
    assert hub.load("fer-tiny") is hub.load("ferhub/fer-tiny")  # one folder, one cached model


def test_default_model_is_bundled() -> None:
    assert hub.DEFAULT_MODEL == "ferhub/fer-mini-xception"
    assert hub.DEFAULT_MODEL in hub.list_bundled()
    assert hub.resolve("fer-mini-xception") == Path(ferhub.__file__).parent / "bundled" / "fer-mini-xception"


def test_load_on_an_unusable_device_is_a_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked as the Predictor checks its device, before anything is read: ferhub's DeviceError, not
    torch's AssertionError ("Torch not compiled with CUDA enabled") or RuntimeError."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device, message in [
        ("cuda", r"torch sees no CUDA GPU; .* device='cpu' from Python"),
        ("gpu", "unknown device 'gpu': use auto, cpu, cuda or cuda:N"),
        ("xpu", "device 'xpu' is not one ferhub runs on"),
    ]:
        with pytest.raises(ferhub.DeviceError, match=message):
            ferhub.load(hub.DEFAULT_MODEL, device=device)
    assert ferhub.load(hub.DEFAULT_MODEL, device=torch.device("cpu")) is ferhub.load(hub.DEFAULT_MODEL)


@pytest.mark.parametrize("name", hub.list_bundled())
def test_bundled_models_load_and_their_cards_are_current(name: str, tmp_path: Path) -> None:
    folder = hub.resolve(name)
    model = hub.load(name)
    assert model.config == ModelConfig.load(folder) and not model.training
    copy = shutil.copytree(folder, tmp_path / folder.name)
    assert hub.render_card(copy) == (folder / "README.md").read_text(), (
        f"{folder}/README.md is stale: re-render it with ferhub.hub.render_card"
    )
    weights = [] if model.config.architecture == "ensemble" else ["model.safetensors"]
    assert hub.check_repo(folder) == ["config.json", *weights, "README.md", "card.json"]


# ---------------------------------------------------------------------------------------------------------
# Hub ids
# ---------------------------------------------------------------------------------------------------------
class FakeSnapshot:
    """Stands in for huggingface_hub.snapshot_download: records each call, returns a prepared folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.calls: list[tuple[tuple, dict]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append((args, kwargs))
        return str(self.folder)


def expected_snapshot_call(repo_id: str, revision: str | None, local_only: bool) -> tuple[tuple, dict]:
    from ferhub import __version__

    return (
        (repo_id,),
        {
            "revision": revision,
            "allow_patterns": [
                "config.json",
                "model.safetensors",
                "README.md",
                "card.json",
                "eval_results.json",
            ],
            "local_files_only": local_only,
            "library_name": "ferhub",
            "library_version": __version__,
        },
    )


def test_hub_id_offline_goes_to_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = trained("test_tiny")
    folder = hub.save(model, tmp_path / "snapshot")
    fake = FakeSnapshot(folder)
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake)
    loaded = hub.load("org/name")
    v2 = hub.load("org/name@v2")
    assert hub.load("org/name", revision="v2") is v2  # cached per (id, revision, device)
    assert hub.load("org/name") is loaded
    assert fake.calls == [
        expected_snapshot_call("org/name", None, True),
        expected_snapshot_call("org/name", "v2", True),
    ]
    assert loaded.name_or_path == "org/name" and v2.name_or_path == "org/name@v2"
    x = sample(model)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_hub_id_online_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants as constants

    folder = hub.save(trained("test_tiny"), tmp_path / "snapshot")
    fake = FakeSnapshot(folder)
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    probed = []
    monkeypatch.setattr(hub._remote, "hub_unreachable", lambda endpoint: probed.append(endpoint))  # reachable
    hub.load("org/name@main")
    assert probed == [constants.ENDPOINT]
    assert fake.calls == [expected_snapshot_call("org/name", "main", False)]


@pytest.fixture
def snapshot_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every snapshot_download call (the real one still runs).

    ``local_files_only=True`` means huggingface_hub reads its cache and sends no request, so it cannot spend
    its ~23 s of retries on a dead network; how long that takes is bench/ material, not a unit test's.
    """
    import huggingface_hub

    real = huggingface_hub.snapshot_download
    calls: list[dict[str, Any]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", spy)
    return calls


def test_uncached_id_offline_fails_fast_with_a_fix(
    snapshot_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    probed: list[str] = []
    monkeypatch.setattr(hub._remote, "hub_unreachable", lambda endpoint: probed.append(endpoint))
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load("org/not-cached")
    assert [c["local_files_only"] for c in snapshot_calls] == [True] and not probed  # no request, no probe
    msg = str(e.value)
    assert "'org/not-cached' is not in the local cache" in msg and "HF_HUB_OFFLINE=1" in msg
    assert "unset HF_HUB_OFFLINE" in msg and "hf download org/not-cached --local-dir DIR" in msg
    with pytest.raises(hub.ModelLoadError) as e:  # a revision: the download command fetches that one
        hub.load("org/not-cached@v1")
    assert "hf download org/not-cached --revision v1 --local-dir DIR" in str(e.value)
    with pytest.raises(hub.ModelLoadError) as e:  # a bundled name at a revision: the fix is to drop it
        hub.load(f"{hub.DEFAULT_MODEL}@main")
    assert str(e.value).endswith(f": `{hub.DEFAULT_MODEL}` without `@main`.")


def test_unreachable_hub_fails_fast(
    monkeypatch: pytest.MonkeyPatch, snapshot_calls: list[dict[str, Any]]
) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with socket.socket() as s:  # a port that was just free: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load("org/not-cached@v1")
    assert [c["local_files_only"] for c in snapshot_calls] == [True]  # the probe failed: no request sent
    msg = str(e.value)
    assert f"and the Hub cannot be reached (127.0.0.1:{port}: " in msg and "load it once to cache it" in msg


def test_hanging_network_is_cut_short(
    monkeypatch: pytest.MonkeyPatch, snapshot_calls: list[dict[str, Any]]
) -> None:
    import huggingface_hub.constants as constants

    release = threading.Event()

    def hang(*args: Any, **kwargs: Any) -> None:  # a resolver or firewall that never answers
        release.wait(30)
        raise OSError("released")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "create_connection", hang)
    try:
        with pytest.raises(hub.ModelLoadError, match=r"no answer within 1 s"):  # the probe gave up at 1 s
            hub.load("org/not-cached")
        assert [c["local_files_only"] for c in snapshot_calls] == [True]
    finally:
        release.set()


def write_hf_cache(cache: Path, repo_id: str, folder: Path, refs: dict[str, str]) -> Path:
    """Lay ``folder`` out exactly as huggingface_hub caches a download: blobs, snapshot symlinks, refs,
    tree."""
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    root = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (root / "blobs").mkdir()
    files = {}
    for p in sorted(folder.iterdir()):
        data = p.read_bytes()
        blob = hashlib.sha256(data).hexdigest()
        (root / "blobs" / blob).write_bytes(data)
        (snapshot / p.name).symlink_to(Path("..", "..", "blobs", blob))
        files[p.name] = {"size": len(data), "blob_id": hashlib.sha1(data).hexdigest()}
    (root / "refs").mkdir()
    for ref in refs:
        (root / "refs" / ref).write_text(commit)
    (root / "trees").mkdir()
    (root / "trees" / f"{commit}.json").write_text(json.dumps({"format_version": 1, "files": files}))
    return snapshot


def test_repo_in_the_real_hf_cache_loads_offline(
    tmp_path: Path, isolated_hf: Path, snapshot_calls: list[dict[str, Any]]
) -> None:
    import huggingface_hub

    model = trained("test_tiny")
    folder = hub.save(model, tmp_path / "m", eval_results=eval_results())
    snapshot = write_hf_cache(isolated_hf / "hub", "org/cached", folder, {"main": "", "v1": ""})
    info = huggingface_hub.scan_cache_dir(isolated_hf / "hub")  # huggingface_hub accepts the layout
    (repo,) = info.repos
    assert repo.repo_id == "org/cached" and set(repo.refs) == {"main", "v1"}
    x = sample(model)
    for ref in ("org/cached", "org/cached@v1", f"org/cached@{snapshot.name}"):
        loaded = hub.load(ref)
        assert snapshot_calls[-1]["local_files_only"] is True
        assert loaded.repo_path == snapshot
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))
    assert hub.read_eval_results(snapshot) == eval_results()


def test_incomplete_cached_snapshot_is_reported(tmp_path: Path, isolated_hf: Path) -> None:
    folder = hub.save(trained("test_tiny"), tmp_path / "m")
    snapshot = write_hf_cache(isolated_hf / "hub", "org/partial", folder, {"main": ""})
    (snapshot / "model.safetensors").unlink()  # an interrupted download
    with pytest.raises(hub.ModelLoadError, match="not in the local cache"):
        hub.load("org/partial")


def git_oid(data: bytes) -> str:
    """The id git (and the Hub, as a regular file's ETag) gives a file's bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """A Hub on the loopback interface speaking the few routes snapshot_download uses (info, tree,
    resolve) and the refs listing; ``failing[repo] = 503`` makes a repo answer that status to everything,
    ``gated`` repos refuse their files as the Hub does to an account not granted access."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.failing: dict[str, int] = {}
        self.gated: set[str] = set()
        hub_ = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                hub_.requests.append((self.command, path))
                parts = path.strip("/").split("/")
                api = parts[:2] == ["api", "models"]
                repo_id = "/".join(parts[2:4] if api else parts[:2])
                repo = hub_.repos.get(repo_id)
                if repo_id in hub_.failing:
                    return self.reply(hub_.failing[repo_id], b'{"error": "Internal Error"}')
                if repo is None:
                    return self.reply(
                        404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}
                    )
                if api and parts[4] == "refs":
                    listing = {
                        key: [
                            {"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c}
                            for n, c in repo.get(field, {}).items()
                        ]
                        for key, field, kind in (("branches", "refs", "heads"), ("tags", "tags", "tags"))
                    }
                    body = {**listing, "converts": [], "pullRequests": []}
                    return self.reply(200, json.dumps(body).encode())
                if parts[2:3] == ["resolve"] and repo_id in hub_.gated:
                    return self.reply(
                        403, b'{"error": "Access to model is restricted"}', {"X-Error-Code": "GatedRepo"}
                    )
                if api and parts[4] == "revision":
                    sha = repo["refs"].get("/".join(parts[5:]))
                    if sha is None:
                        return self.reply(
                            404, b'{"error": "Invalid rev id"}', {"X-Error-Code": "RevisionNotFound"}
                        )
                    return self.reply(200, json.dumps({"id": "/".join(parts[2:4]), "sha": sha}).encode())
                if api and parts[4] == "tree":
                    files = repo["files"].items()
                    tree = [{"type": "file", "path": f, "size": len(d), "oid": git_oid(d)} for f, d in files]
                    return self.reply(200, json.dumps(tree).encode())
                if parts[2:3] == ["resolve"] and "/".join(parts[4:]) in repo["files"]:
                    data = repo["files"]["/".join(parts[4:])]
                    return self.reply(
                        200,
                        data,
                        {"X-Repo-Commit": repo["commit"], "ETag": f'"{git_oid(data)}"'},
                    )
                return self.reply(404)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, repo_id: str, folder: Path, refs: list[str], extra: dict[str, bytes]) -> str:
        files = {p.name: p.read_bytes() for p in folder.iterdir()} | extra
        commit = hashlib.sha1(repo_id.encode()).hexdigest()
        self.repos[repo_id] = {"commit": commit, "refs": dict.fromkeys(refs, commit), "files": files}
        return commit

    def downloads(self) -> set[str]:
        return {
            path.rsplit("/", 1)[1]
            for method, path in self.requests
            if method == "GET" and "/resolve/" in path
        }


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    import huggingface_hub.constants as constants

    fake = FakeHub()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", fake.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", fake.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_download_from_a_hub_then_load_offline(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshot_calls: list[dict[str, Any]]
) -> None:
    import huggingface_hub.constants as constants

    model = trained("test_tiny")
    folder = hub.save(model, tmp_path / "m", eval_results=eval_results())
    commit = fake_hub.add(
        "org/real", folder, ["main", "v1"], {"pytorch_model.bin": b"pickle", "notes.txt": b"x"}
    )
    x = sample(model)
    loaded = hub.load("org/real@v1")  # real snapshot_download, over HTTP
    assert fake_hub.downloads() == set(hub.REPO_FILES)  # only the repo files: never the pickle
    assert loaded.repo_path.parts[-2:] == ("snapshots", commit)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))

    fake_hub.server.shutdown()  # the Hub goes away: the cached copy still loads ...
    fake_hub.server.server_close()
    hub.clear_cache()
    monkeypatch.setattr(hub._remote, "_PROBE_CACHE", {})  # forget that the Hub answered a moment ago
    assert torch.equal(hub.load("org/real@v1")(x), loaded(x))
    assert snapshot_calls[-1]["local_files_only"] is True  # the probe saw the Hub gone: cache only
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # ... also in offline mode
    hub.clear_cache()
    assert torch.equal(hub.load("org/real@v1")(x), loaded(x))
    with pytest.raises(hub.ModelLoadError, match="not in the local cache"):  # a revision never fetched
        hub.load("org/real")


def test_hub_errors_are_explained(fake_hub: FakeHub, tiny_repo: Path) -> None:
    fake_hub.add("org/real", tiny_repo, ["main"], {})
    with pytest.raises(
        hub.ModelLoadError, match=r"'org/missing' was not found or you have no access.*HF_TOKEN"
    ):
        hub.load("org/missing")
    with pytest.raises(hub.ModelLoadError, match="revision 'v9' of Hub model 'org/real' does not exist"):
        hub.load("org/real@v9")


# ---------------------------------------------------------------------------------------------------------
# push
# ---------------------------------------------------------------------------------------------------------
class HubRecorder:
    """Replaces the HfApi methods push uses; records (method, token, args, kwargs) and the files committed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import huggingface_hub.constants as constants
        from huggingface_hub import HfApi
        from huggingface_hub.utils import filter_repo_objects
        from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

        self.calls: list[tuple[str, Any, tuple, dict]] = []
        self.committed: list[set[str]] = []
        self.cards: list[tuple[str, dict[str, Any]]] = []  # README.md and card.json as committed
        recorder = self

        def create_repo(self: HfApi, *args: Any, **kwargs: Any) -> str:
            recorder.calls.append(("create_repo", self.token, args, kwargs))
            return f"https://huggingface.co/{args[0]}"

        def create_branch(self: HfApi, *args: Any, **kwargs: Any) -> None:
            recorder.calls.append(("create_branch", self.token, args, kwargs))

        def upload_folder(self: HfApi, *args: Any, **kwargs: Any) -> Any:
            recorder.calls.append(("upload_folder", self.token, args, kwargs))
            # the files huggingface_hub would put in the commit, selected by its own pattern filter
            root = Path(kwargs["folder_path"])
            paths = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
            chosen = list(
                filter_repo_objects(
                    paths, allow_patterns=kwargs["allow_patterns"], ignore_patterns=DEFAULT_IGNORE_PATTERNS
                )
            )
            recorder.committed.append(set(chosen))
            context = json.loads((root / "card.json").read_text()) if "card.json" in chosen else {}
            recorder.cards.append(((root / "README.md").read_text(), context))
            return type("CommitInfo", (), {"commit_url": "https://huggingface.co/org/name/commit/abc123"})()

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hub._remote, "hub_unreachable", lambda endpoint: None)
        for name, fn in [
            ("create_repo", create_repo),
            ("create_branch", create_branch),
            ("upload_folder", upload_folder),
        ]:
            monkeypatch.setattr(HfApi, name, fn)


def test_push_one_commit_of_exactly_the_repo_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    context = {**CARD_CONTEXT, "repo_id": "org/name", "revision": "v1"}  # the card names where it goes
    folder = hub.save(trained("test_tiny"), tmp_path / "m", eval_results=eval_results(), card_context=context)
    (folder / "train.log").write_text("not for the Hub")
    torch.save({}, folder / "last.pt")
    rec = HubRecorder(monkeypatch)
    url = hub.push(
        folder, "org/name", token="hf_test", private=True, revision="v1", commit_message="First model"
    )
    assert url == "https://huggingface.co/org/name/commit/abc123"
    assert [(c[0], c[1], c[2]) for c in rec.calls] == [
        ("create_repo", "hf_test", ("org/name",)),
        ("create_branch", "hf_test", ("org/name",)),
        ("upload_folder", "hf_test", ()),
    ]
    assert rec.calls[0][3] == {"repo_type": "model", "private": True, "exist_ok": True}
    assert rec.calls[1][3] == {"branch": "v1", "repo_type": "model", "exist_ok": True}
    files = ["config.json", "model.safetensors", "README.md", "card.json", "eval_results.json"]
    assert rec.calls[2][3] == {
        "repo_id": "org/name",
        "repo_type": "model",
        "folder_path": str(folder),
        "revision": "v1",
        "commit_message": "First model",
        "allow_patterns": files,
        "delete_patterns": ["model.onnx", "model.int8.onnx", "member-*.onnx"],  # no graphs: any on the Hub go
    }
    assert rec.committed == [set(files)]


def test_push_to_main_deletes_stale_repo_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = hub.save(trained("test_tiny"), tmp_path / "m")
    rec = HubRecorder(monkeypatch)
    hub.push(folder, "org/name")
    assert [c[0] for c in rec.calls] == ["create_repo", "upload_folder"]
    assert rec.calls[0][1] is None and rec.calls[0][3]["private"] is False
    assert rec.calls[1][3]["revision"] is None
    assert rec.calls[1][3]["delete_patterns"] == ["eval_results.json", *GRAPHS]
    assert rec.committed == [{"config.json", "model.safetensors", "README.md", "card.json"}]


GRAPHS = ["model.onnx", "model.int8.onnx", "member-*.onnx"]


def test_push_names_the_repo_in_a_card_that_names_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trained model's card told its Hub visitors to replace `path/to/model` (it had no Hub id when it was
    written): pushed, the card and card.json name the repo pushed to; the local folder is left as it was."""
    folder = hub.save(trained("test_tiny"), tmp_path / "m", eval_results=eval_results())
    assert "path/to/model" in (folder / "README.md").read_text()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    rec = HubRecorder(monkeypatch)
    hub.push(folder, "org/name")
    card, context = rec.cards[0]
    assert 'ferhub.load("org/name")' in card and "path/to/model" not in card and "model-index" in card
    assert context["repo_id"] == "org/name" and context["model_name"] == "m"
    assert rec.committed == [
        {"config.json", "model.safetensors", "README.md", "card.json", "eval_results.json"}
    ]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    named = hub.save(trained("test_tiny"), tmp_path / "named", card_context=CARD_CONTEXT)
    hub.push(named, "ferhub-test/fer-test")
    assert rec.calls[-1][3]["folder_path"] == str(named)  # a card naming the repo pushed to: as it is
    assert 'ferhub.load("ferhub-test/fer-test")' in rec.cards[-1][0]


@pytest.mark.slow
def test_push_carries_exported_graphs_and_refuses_stale_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ferhub push` of an exported folder left model.onnx behind; a graph of other weights must not go up."""
    from ferhub import export
    from ferhub.hub._repo import load_folder

    out = tmp_path / "exported"
    export.export_onnx(hub.save(trained("test_tiny"), tmp_path / "m", card_context=CARD_CONTEXT), out)
    model = load_folder(out)
    export._quantize(model, out / "model.onnx", out / "model.int8.onnx", export._random_batch(model, 8))
    rec = HubRecorder(monkeypatch)
    hub.push(out, "org/name")
    repo = {"config.json", "model.safetensors", "README.md", "card.json"}
    assert rec.committed[-1] == repo | {"model.onnx", "model.int8.onnx"}
    assert rec.calls[-1][3]["delete_patterns"] == ["eval_results.json", *GRAPHS]
    # retrained after the export: the graphs no longer match the weights beside them
    rewrite_weights(out, lambda t: t.update({k: v + 0.5 for k, v in t.items() if v.is_floating_point()}))
    with pytest.raises(hub.ModelLoadError, match=r"model\.onnx does not match the folder's weights"):
        hub.push(out, "org/name")
    export._write_graph(load_folder(out), out / "model.onnx")  # fp32 re-exported, the int8 not
    with pytest.raises(
        hub.ModelLoadError, match=r"model\.int8\.onnx was not quantised from a model\.onnx beside"
    ):
        hub.push(out, "org/name")
    (out / "model.int8.onnx").rename(out / "member-0.onnx")
    with pytest.raises(
        hub.ModelLoadError, match=r"member-0\.onnx is not a graph of this model \(test_tiny\)"
    ):
        hub.push(out, "org/name")
    (out / "member-0.onnx").unlink()
    hub.push(out, "org/name")
    assert rec.committed[-1] == repo | {"model.onnx"} and len(rec.committed) == 2


def test_push_verifies_the_folder_first(tiny_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = HubRecorder(monkeypatch)
    rewrite_weights(tiny_repo, lambda t: t.pop("classifier.bias"))
    with pytest.raises(hub.ModelLoadError, match="missing weights"):
        hub.push(tiny_repo, "org/name")
    (tiny_repo / "model.safetensors").unlink()
    (tiny_repo / "config.json").unlink()
    with pytest.raises(hub.ModelLoadError, match="not a ferhub model repo"):
        hub.push(tiny_repo, "org/name")
    with pytest.raises(ValueError, match="'org/name'"):
        hub.push(tiny_repo, "just-a-name")
    assert rec.calls == []


def test_push_fails_at_once_without_a_hub(tiny_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    rec = HubRecorder(monkeypatch)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(hub.HubConnectionError, match=r"offline mode is on.*unset HF_HUB_OFFLINE"):
        hub.push(tiny_repo, "org/name")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(
        hub._remote,
        "hub_unreachable",
        lambda endpoint: "the Hub cannot be reached (huggingface.co:443: refused)",
    )
    with pytest.raises(
        hub.HubConnectionError,
        match=r"cannot push: the Hub cannot be reached \(huggingface\.co:443: refused\).*push again",
    ):
        hub.push(tiny_repo, "org/name")
    assert rec.calls == []


def test_push_requires_a_card(tiny_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = HubRecorder(monkeypatch)
    (tiny_repo / "README.md").unlink()
    with pytest.raises(
        hub.ModelLoadError, match=r"README\.md is missing; write it with ferhub\.hub\.render_card"
    ):
        hub.push(tiny_repo, "org/name")
    assert rec.calls == []


def test_push_command(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from ferhub.cli import main

    rec = HubRecorder(monkeypatch)
    args = [str(tiny_repo), "org/name", "--private", "--revision", "dev", "--message", "Retrained"]
    assert main(["push", *args]) == 0
    assert capsys.readouterr().out.strip() == "https://huggingface.co/org/name/commit/abc123"
    assert [c[0] for c in rec.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert rec.calls[0][3]["private"] is True
    assert rec.calls[2][3]["revision"] == "dev" and rec.calls[2][3]["commit_message"] == "Retrained"

    # a repo id that is no 'org/name' is the argument's fault: a usage error, said before any work
    assert main(["push", str(tiny_repo), "badid"]) == 2
    assert capsys.readouterr().err.strip() == "ferhub push: REPO_ID must look like 'org/name', got 'badid'"
    (tiny_repo / "config.json").write_text("{broken")
    assert main(["push", str(tiny_repo), "org/name"]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert len(rec.calls) == 3


# ---------------------------------------------------------------------------------------------------------
# model card and eval_results.json
# ---------------------------------------------------------------------------------------------------------
def model_index_entries(readme: Path) -> tuple[str, list[tuple]]:
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    card = ModelCard.load(readme)
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    return name, [
        (r.dataset_type, r.dataset_config, r.dataset_split, r.metric_type, r.metric_name, r.metric_value)
        for r in results
    ]


def test_card_front_matter_and_model_index(tmp_path: Path) -> None:
    from huggingface_hub import metadata_load

    folder = hub.save(
        trained("test_tiny"), tmp_path / "m", eval_results=eval_results(), card_context=CARD_CONTEXT
    )
    meta = metadata_load(folder / "README.md")
    assert meta["library_name"] == "ferhub"
    assert meta["pipeline_tag"] == "image-classification"
    assert meta["license"] == "mit"
    assert meta["base_model"] == "someone/base-net"
    assert meta["datasets"] == ["someone/fer-data"]
    assert meta["tags"] == [
        "ferhub",
        "facial-expression-recognition",
        "pytorch",
        "test_tiny",
        "mini-xception",
    ]
    name, entries = model_index_entries(folder / "README.md")
    assert name == "fer-test"
    data = "someone/fer-data", "default", "test"
    assert entries == [
        (*data, "accuracy", "Accuracy", 0.625),
        (*data, "recall", "Mean class recall", 0.5),
        (*data, "f1", "Macro F1", 0.4875),
        (*data, "nll", "Negative log-likelihood", 1.25),
        ("folder:lab-photos", None, "all", "accuracy", "Accuracy (TTA: flip)", 0.75),  # nested values skipped
    ]


def test_card_prose(tmp_path: Path) -> None:
    folder = hub.save(
        trained("test_tiny"), tmp_path / "m", eval_results=eval_results(), card_context=CARD_CONTEXT
    )
    text = (folder / "README.md").read_text()
    for expected in [
        "# fer-test",
        'ferhub.Predictor("ferhub-test/fer-test")',
        "## Intended use",
        "| 2 | fear |",  # labels in output order, from config.json
        "Resize the crop to 16×16 (bilinear) and convert it to grayscale",
        "subtract mean [0.5] and divide by std [0.5]",
        "margin of 10% of the box",
        "Adam, lr 1e-3, 30 epochs",
        "ferhub train --recipe recipes/mini.py --data someone/fer-data",
        "### FER data (default, split test)",
        "| Accuracy | 62.50% (95% CI 60.00%–65.00%) |",
        "No face was found in 3 images (classified on the whole image).",
        "- contempt images were left out",
        "with test-time augmentation (flip)",
        "| fear | 50.00% | 27.00% | 30.00% | 35 |",  # per-class row
        "| **angry** | 20 | 2 | 4 | 1 | 3 | 0 | 2 |",  # confusion matrix counts
        "Most frequent confusions: *disgust* taken for *sad*: 12.9% (4 of 31); *neutral* taken for *sad*",
        "with test-time augmentation",
        "Claims made upstream (not measured by ferhub)",
        "Upstream reports 66% accuracy on the FER2013 test set.",
        "## Limitations and bias",
        "Converted from an upstream Keras file.",
        "Weights by Example Author.",
        "Copyright (c) 2018 Example Author",
    ]:
        assert expected in text, expected


def test_card_confusions_are_shares_of_the_whole_class(tmp_path: Path) -> None:
    """With no face counted wrong, a class's images without a prediction have no cell in the matrix: "taken
    for" shares are of the class's support, as its recall is (they were of the row's cells: 3 of 4, 75%,
    where 3 of the class's 6 images is 50%)."""
    from ferhub.hub.card import _results_for_template

    entry = {
        "dataset": {"id": "lab", "name": "lab", "split": "test"},
        "labels": ["happy", "sad"],
        "confusion_matrix": [[1, 3], [0, 4]],
        "per_class": {"happy": {"recall": 1 / 6, "support": 6}, "sad": {"recall": 1.0, "support": 4}},
        "metrics": {"accuracy": 0.5},
    }
    (row,) = _results_for_template({"lab:default:test": entry})
    assert row["confusion_top"] == ["*happy* taken for *sad*: 50.0% (3 of 6)"]


def test_card_rerenders_from_the_folder_alone(tmp_path: Path) -> None:
    folder = hub.save(trained("test_tiny"), tmp_path / "m", card_context=CARD_CONTEXT)
    text = (folder / "README.md").read_text()
    assert "No evaluation has been recorded" in text and "model-index" not in text
    (folder / "eval_results.json").write_text(json.dumps(eval_results(accuracy=0.7)))  # the evaluator's write
    assert hub.render_card(folder) == (folder / "README.md").read_text()
    _, entries = model_index_entries(folder / "README.md")
    assert entries[0][-1] == 0.7
    assert "Upstream reports 66%" in (folder / "README.md").read_text()  # prose context kept in card.json


def test_the_card_template_ships_in_the_package() -> None:
    checkout, packaged = hub.TEMPLATE_PATHS
    assert checkout.parent.name == "model_cards" and packaged.parent.parent == Path(ferhub.__file__).parent
    assert packaged.read_text() == checkout.read_text()  # the package's copy is a symlink to model_cards/


def test_read_eval_results(tmp_path: Path) -> None:
    assert hub.read_eval_results(tmp_path) is None
    path = tmp_path / "eval_results.json"
    path.write_text(json.dumps(eval_results()))
    assert hub.read_eval_results(tmp_path) == eval_results()

    def error_for(data: Any) -> str:
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        with pytest.raises(hub.EvalResultsError) as e:
            hub.read_eval_results(tmp_path)
        assert str(path) in str(e.value)
        return str(e.value)

    assert "not valid JSON" in error_for("{")
    assert "newer than this ferhub reads (1); upgrade ferhub" in error_for(
        {"format_version": 2, "results": {}}
    )
    assert "format_version must be 1, got None" in error_for({"results": {}})
    # a bad entry is the readers' to leave out (ferhub.eval_results.usable), never the whole file's
    key = "someone/fer-data/default/test"
    for change, why in [
        (lambda e: e["dataset"].pop("id"), "dataset must be an object with a non-empty 'id'"),
        (lambda e: e["confusion_matrix"].pop(), "confusion_matrix must be a 7x7 list of counts"),
    ]:
        bad = eval_results()
        change(bad["results"][key])
        path.write_text(json.dumps(bad))
        assert hub.read_eval_results(tmp_path) == bad
        shown, ((left_out, problem),) = ferhub.eval_results.usable(bad)
        assert list(shown["results"]) == ["folder:lab-photos/all"] and left_out == key and why in problem
        with pytest.raises(hub.EvalResultsError, match=why):
            hub.save(trained("test_tiny"), tmp_path / "m", eval_results=bad)  # ferhub writes none such
    with pytest.raises(hub.EvalResultsError, match="format_version"):
        hub.save(trained("test_tiny"), tmp_path / "m", eval_results={"results": {}})


def test_card_context_types_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"card_context\['datasets'\] must be a string or a list of strings"):
        hub.save(trained("test_tiny"), tmp_path / "m", card_context={"datasets": [1]})
    with pytest.raises(ValueError, match=r"card_context\['recipe'\] must be a string"):
        hub.save(trained("test_tiny"), tmp_path / "m", card_context={"recipe": {"lr": 1}})


def test_model_config_round_trips_through_repo(tiny_repo: Path) -> None:
    assert ModelConfig.load(tiny_repo) == hub.load(tiny_repo).config


# ---------------------------------------------------------------------------------------------------------
# the model cache: one lock per model
# ---------------------------------------------------------------------------------------------------------
def test_a_slow_hub_load_does_not_hold_up_other_models(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, started = threading.Event(), threading.Event()
    downloads: list[str] = []

    def slow_download(repo_id: str, revision: str | None) -> Path:
        downloads.append(repo_id)
        started.set()
        assert release.wait(30), "the test never released the slow download"
        return tiny_repo

    monkeypatch.setattr(hub._repo, "_download", slow_download)
    slow: list[nn.Module] = []
    threads = [threading.Thread(target=lambda: slow.append(hub.load("org/slow"))) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        assert started.wait(30)
        other: list[nn.Module] = []
        fast = threading.Thread(target=lambda: other.append(hub.load("fer-mini-xception")))
        fast.start()
        fast.join(30)
        assert other and other[0].config.architecture == "mini_xception"  # loaded while org/slow waits
        assert not slow  # the slow one is still downloading
    finally:
        release.set()
        for t in threads:
            t.join(30)
    assert (
        len(slow) == 2 and slow[0] is slow[1] and downloads == ["org/slow"]
    )  # two first loads, one download


@pytest.mark.parametrize(
    ("citation", "fence"),
    [
        ("@article{a2017,\n  title={A},\n  year={2017}\n}", "```bibtex\n@article{a2017,"),
        ("Jane Doe, some-package 1.0 (PyPI), https://example.org", "```text\nJane Doe, some-package"),
    ],
)
def test_a_citation_is_fenced_as_bibtex_only_when_it_is_bibtex(
    tmp_path: Path, citation: str, fence: str
) -> None:
    """A plain-text reference sat in a ```bibtex block (shown as broken BibTeX on the Hub)."""
    folder = hub.save(
        trained("test_tiny"), tmp_path / "m", card_context={**CARD_CONTEXT, "citation": citation}
    )
    text = (folder / "README.md").read_text()
    assert f"Citation:\n\n{fence}" in text and text.count("```bibtex") == fence.startswith("```bibtex")


# ---------------------------------------------------------------------------------------------------------
# Hub references with a revision, ensembles of local folders, reproducible weights
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("revision", ["refs/pr/1", "feature/x"])
def test_a_revision_with_a_slash_is_a_hub_revision(
    revision: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`org/name@feature/x` was taken for a local path (three parts) and failed as a missing folder."""
    fake = FakeSnapshot(hub.save(trained("test_tiny"), tmp_path / "snapshot"))
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake)
    monkeypatch.chdir(tmp_path)
    assert hub.load(f"org/name@{revision}").repo_path == tmp_path / "snapshot"
    assert hub.resolve(f"org/name@{revision}", local=False) == tmp_path / "snapshot"  # a public app's rule
    assert fake.calls == [expected_snapshot_call("org/name", revision, True)] * 2
    with pytest.raises(hub.ModelLoadError, match=r"model folder \./org/name@x/y does not exist"):
        hub.load("./org/name@x/y")  # a path before '@' is still a path
    for bad in ("../../x", "x/../../y", "/x", "x//y", "a b"):  # never a path into the cache's refs/
        with pytest.raises(hub.ModelLoadError, match="is not a branch, tag or commit name"):
            hub.resolve(f"org/name@{bad}", local=False)
    local = hub.save(trained("test_tiny"), tmp_path / "org" / f"name@{revision}")  # a folder named so wins
    assert hub.load(f"org/name@{revision}").repo_path == local and len(fake.calls) == 2


def test_a_missing_folder_inside_a_folder_named_with_at_is_a_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`runs/lr@0.01/model` (not written yet, or mistyped) was read as the Hub id `runs/lr` at revision
    `0.01/model`: a request to the Hub and advice to log in, for a path on the user's own disk."""
    fake = FakeSnapshot(hub.save(trained("test_tiny"), tmp_path / "snapshot"))
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "lr@0.01").mkdir(parents=True)
    (tmp_path / "org").mkdir()  # a folder named like the org of a Hub id leaves the id a Hub id
    for missing in ("runs/lr@0.01/model", "runs/lr@0.01/model@v1", "runs/lr@0.01/seed1/model"):
        with pytest.raises(
            hub.ModelLoadError, match=f"model folder {missing} does not exist; check the path"
        ):
            hub.load(missing)
    assert fake.calls == []
    assert hub.load("org/name@v1").repo_path == tmp_path / "snapshot"
    assert fake.calls == [expected_snapshot_call("org/name", "v1", True)]
    saved = hub.save(trained("test_tiny"), tmp_path / "runs" / "lr@0.01" / "model")  # once written, it loads
    assert hub.load("runs/lr@0.01/model").repo_path == saved and len(fake.calls) == 1


def test_make_ensemble_records_a_local_member_by_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member given as `m1` was stored as `m1`: the ensemble loaded only from the folder it was made in."""
    from ferhub.models.ensemble import make_ensemble

    monkeypatch.chdir(tmp_path)
    hub.save(trained("test_tiny"), tmp_path / "m1")
    ensemble = hub.save(make_ensemble(["m1", "fer-mini-xception"]), tmp_path / "ens")
    members = json.loads((ensemble / "config.json").read_text())["model_args"]["members"]
    assert members == [str(tmp_path / "m1"), "fer-mini-xception"]  # bundled names and Hub ids as given
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    hub.clear_cache()
    loaded = hub.load(ensemble)
    assert [m.repo_path for m in loaded.members] == [tmp_path / "m1", hub.resolve("fer-mini-xception")]


def test_push_refuses_an_ensemble_with_a_local_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ensemble of local folders was pushed: on the Hub it named this machine's paths, loading nowhere."""
    from ferhub.models.ensemble import make_ensemble

    member = hub.save(trained("test_tiny"), tmp_path / "member")
    local = hub.save(make_ensemble([member, "ferhub/fer-mini-xception"]), tmp_path / "local")
    fake = FakeSnapshot(member)  # `org/member` on the Hub holds the same model
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake)
    shared = hub.save(make_ensemble(["org/member", "ferhub/fer-mini-xception"]), tmp_path / "shared")
    rec = HubRecorder(monkeypatch)
    with pytest.raises(hub.ModelLoadError) as e:
        hub.push(local, "org/ensemble")
    assert f"member {member} is a local folder" in str(e.value)
    assert f"push that member first (`ferhub push {member} org/name`), list its Hub id" in str(e.value)
    assert rec.calls == []  # refused before any upload
    (tmp_path / "moved").mkdir()
    member.rename(tmp_path / "moved" / "member")  # a member path that no longer exists is no Hub id either
    with pytest.raises(hub.ModelLoadError, match="is a local folder"):
        hub.check_repo(local)
    assert hub.check_repo(shared) == ["config.json", "README.md", "card.json"]
    hub.push(shared, "org/ensemble")
    assert [c[0] for c in rec.calls] == ["create_repo", "upload_folder"]


def test_an_ensemble_from_the_hub_never_loads_a_folder_of_this_machine(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Hub ensemble listing server paths loaded them, also in a public app (`local=False`), and its errors
    said whether each path existed and held a config.json: a visitor could read and probe the app's disk."""
    from ferhub.models.ensemble import make_ensemble

    member = hub.save(trained("test_tiny"), tmp_path / "member")
    local = hub.save(make_ensemble([member]), tmp_path / "local")
    config = json.loads((local / "config.json").read_text())
    paths = [str(member), str(tmp_path), "/nonexistent/x"]  # a ferhub folder, a folder, nothing
    for i, path in enumerate(paths):
        config["model_args"]["members"] = [path]
        fake_hub.add(f"evil/ens{i}", local, ["main"], {"config.json": json.dumps(config).encode()})
    messages = set()
    for i, path in enumerate(paths):
        for allow_local in (False, True):  # a Hub download refuses them whichever way it was named
            with pytest.raises(hub.ModelLoadError) as e:
                hub.load(f"evil/ens{i}", local=allow_local)
            msg = str(e.value)
            assert (
                f"Hub model 'evil/ens{i}' is an ensemble whose member {path!r} is not a bundled model or "
                in msg
            )
            messages.add(msg.replace(path, "PATH").replace(f"ens{i}", "ENS"))
    assert len(messages) == 1  # the same words whether the path exists here or not
    assert hub.load(local).members[0].repo_path == member  # a local ensemble still loads local members

    # a member named like a Hub id is the Hub's repo, even where the app's folder holds one so named
    monkeypatch.chdir(tmp_path)
    shadow = hub.save(trained("test_tiny", seed=1), tmp_path / "org" / "member")
    commit = fake_hub.add("org/member", member, ["main"], {})
    config["model_args"] = {"members": ["org/member", "fer-mini-xception"], "weights": [1.0, 1.0]}
    fake_hub.add("good/ens", local, ["main"], {"config.json": json.dumps(config).encode()})
    loaded = hub.load("good/ens", local=False)
    assert loaded.members[0].repo_path.parts[-2:] == ("snapshots", commit) != shadow.parts[-2:]
    assert loaded.members[1].repo_path == hub.resolve("fer-mini-xception")


def _header(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])


def test_weights_are_written_byte_for_byte_the_same(tmp_path: Path) -> None:
    """safetensors wrote `__metadata__` in hash-map order, different from save to save: the same model gave
    different bytes, so a re-push uploaded them again and each `zoo import` left another cache snapshot."""
    from ferhub.zoo import _hf_cache_install

    model = trained("test_tiny")
    folders = [hub.save(model, tmp_path / str(i), card_context={"model_name": "same"}) for i in range(5)]
    weights = {(f / "model.safetensors").read_bytes() for f in folders}
    assert len(weights) == 1
    header = _header(folders[0] / "model.safetensors")
    assert next(iter(header)) == "__metadata__"
    assert list(header["__metadata__"]) == ["architecture", "ferhub_version", "format"]
    x = sample(model)
    with torch.no_grad():
        assert torch.equal(hub.load(folders[0])(x), model(x))
    snapshots = {_hf_cache_install(f, "org/same") for f in folders[:2]}
    assert len(snapshots) == 1 and len(list(next(iter(snapshots)).parent.iterdir())) == 1


def test_weights_stream_to_disk_and_the_header_is_made_canonical_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The canonical file was built whole in memory (`safetensors.torch.save`): about twice the model's size
    at peak. save_file streams it; sorting the metadata keeps the header's length, so only the header is
    rewritten; were the length to change, the file is rewritten after it, a megabyte at a time."""
    import safetensors.torch

    from ferhub.hub import _weights

    def whole_file_in_memory(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("safetensors.torch.save builds the whole file in memory")

    monkeypatch.setattr(safetensors.torch, "save", whole_file_in_memory)
    model = trained("test_tiny")
    metadata = {"format": "pt", "architecture": "test_tiny", "ferhub_version": ferhub.__version__}
    streamed = tmp_path / "save_file.safetensors"
    save_file(_weights.tensors_for_saving(model), streamed, metadata=metadata)
    data = streamed.read_bytes()
    written = hub.save(model, tmp_path / "fast") / "model.safetensors"
    assert written.stat().st_size == len(data)  # the fast path: the header kept its length
    header, start = _weights.canonical_header(data)
    assert written.read_bytes() == header + data[start:]

    canonical = _weights.canonical_header

    def longer(data: bytes) -> tuple[bytes, int]:  # a header that no longer fits where save_file put it
        header, start = canonical(data)
        text = header[8:] + b" " * 8
        return len(text).to_bytes(8, "little") + text, start

    monkeypatch.setattr(_weights, "canonical_header", longer)
    slow = hub.save(model, tmp_path / "slow")
    assert (slow / "model.safetensors").read_bytes() == longer(data)[0] + data[start:]
    x = sample(model)
    with torch.no_grad():
        assert torch.equal(hub.load(slow)(x), model(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast", "save_file.safetensors", "slow"]
    assert sorted(p.name for p in slow.iterdir()) == sorted(p.name for p in (tmp_path / "fast").iterdir())


def test_bundled_weights_keep_their_shipped_bytes_and_load() -> None:
    """The canonical form is for new writes: the bundled files are the bytes committed, before and after they
    load (the old check, that their metadata said "pt", held for a file rewritten in the canonical form)."""
    import subprocess

    root = Path(ferhub.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip("ferhub is not run from its git checkout: no committed bytes to compare with")
    shipped = 0
    for name in hub.list_bundled():
        path = hub.resolve(name) / "model.safetensors"
        if not path.is_file():
            continue
        committed = subprocess.run(
            ["git", "rev-parse", f"HEAD:{path.relative_to(root).as_posix()}"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert git_oid(path.read_bytes()) == committed, f"{path} is not the file committed"
        hub.load(name)
        assert git_oid(path.read_bytes()) == committed, f"loading {name} changed {path}"
        shipped += 1
    assert shipped >= 4  # fer-mini-xception, human-emotion, faceapi-expression, facemood


# ---------------------------------------------------------------------------------------------------------
# Hub failures, gated repos, repos that are no ferhub repos, damaged cached copies: one line and its fix
# ---------------------------------------------------------------------------------------------------------
def test_a_hub_that_fails_is_one_line_with_its_fix(fake_hub: FakeHub, tiny_repo: Path) -> None:
    """The 503 text of huggingface_hub ran over five lines inside the message: the CLI printed the first, an
    unclosed parenthesis and no Fix."""
    fake_hub.add("org/down", tiny_repo, ["main"], {})
    fake_hub.failing["org/down"] = 503
    with pytest.raises(hub.HubConnectionError) as e:  # HubModelUnavailable: exit code 3 in the CLI
        hub.load("org/down")
    msg = str(e.value)
    assert "\n" not in msg
    assert (
        "the Hub failed to answer (HTTP 503 Service Unavailable: Internal Error). Fix: try again later" in msg
    )


def _http_error(status: int, text: str) -> Exception:
    """The error huggingface_hub raises for a Hub answer of ``status``."""
    import httpx2
    from huggingface_hub.utils import hf_raise_for_status

    request = httpx2.Request("POST", "https://huggingface.co/api/models/org/name/commit/main")
    try:
        hf_raise_for_status(httpx2.Response(status, json={"error": text}, request=request))
    except Exception as e:
        return e
    raise AssertionError(f"{status} raised nothing")


@pytest.mark.parametrize(
    ("status", "expected", "not_expected"),
    [
        (503, "the Hub failed while uploading to org/name (HTTP 503 Service Unavailable: down). Fix: try "
         "again later", "log in"),
        (403, "refused the upload to org/name (HTTP 403 Forbidden: down). Fix: log in with `hf auth login`",
         "try again"),
    ],
)  # fmt: skip
def test_push_says_a_hub_failure_is_the_hubs(
    status: int,
    expected: str,
    not_expected: str,
    tiny_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """`ferhub push` told the user to log in when the Hub answered 503, over several lines."""
    from huggingface_hub import HfApi

    from ferhub.cli import main

    HubRecorder(monkeypatch)

    def create_repo(self: HfApi, *args: Any, **kwargs: Any) -> None:
        raise _http_error(status, "down")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    assert main(["push", str(tiny_repo), "org/name"]) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ferhub push: ") and expected in line and not_expected not in line.lower()


def test_a_gated_repo_says_to_request_access(fake_hub: FakeHub, tiny_repo: Path) -> None:
    """A gated repo got "not found ... log in", also for a logged-in user who must request access."""
    fake_hub.add("org/gated", tiny_repo, ["main"], {})
    fake_hub.gated.add("org/gated")
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load("org/gated")
    msg = str(e.value)
    assert "'org/gated' is gated" in msg and "not found" not in msg
    assert f"open {fake_hub.url}/org/gated while logged in and request access" in msg
    with pytest.raises(hub.ModelLoadError, match="'org/missing' was not found or you have no access"):
        hub.load("org/missing")


def test_a_hub_repo_that_is_no_ferhub_repo_says_so(fake_hub: FakeHub, tmp_path: Path) -> None:
    """They got "re-save with ferhub.hub.save" advice, which a user loading someone's repo cannot take."""
    folder = hub.save(trained("test_tiny"), tmp_path / "m")
    no_config, no_weights = tmp_path / "no_config", tmp_path / "no_weights"
    for copy, drop in ((no_config, "config.json"), (no_weights, "model.safetensors")):
        shutil.copytree(folder, copy)
        (copy / drop).unlink()
    fake_hub.add("org/noconfig", no_config, ["main"], {})
    fake_hub.add("org/noweights", no_weights, ["main"], {"pytorch_model.bin": b"pickle"})
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load("org/noconfig")
    assert "Hub model 'org/noconfig' is not a ferhub model repo (no config.json)" in str(e.value)
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load("org/noweights")
    msg = str(e.value)
    assert "Hub model 'org/noweights' is not a ferhub model repo (no model.safetensors)" in msg
    assert "pytorch_model.bin is a pickle ferhub never loads" in msg and "import_torch_checkpoint" in msg
    assert "pytorch_model.bin" not in fake_hub.downloads()  # named from the listing, never downloaded


def test_a_damaged_cached_copy_says_to_delete_it(
    fake_hub: FakeHub, tmp_path: Path, isolated_hf: Path
) -> None:
    """A corrupt cached config got "re-save the model with ferhub.hub.save. Fix: ... re-save the model": the
    advice twice, and not the fix (download it again)."""
    import huggingface_hub.constants as constants

    folder = hub.save(trained("test_tiny"), tmp_path / "m")
    fake_hub.add("org/real", folder, ["main"], {})
    snapshot = hub.resolve("org/real")
    config_blob = (snapshot / "config.json").resolve()
    config_blob.chmod(0o644)
    config_blob.write_text('{"architecture": ')  # the blob no longer holds what the Hub sent
    constants.HF_HUB_OFFLINE = True  # undone by the fake_hub fixture
    # a snapshot without its weights and no listing to tell (zoo import, an older huggingface_hub)
    unlisted = write_hf_cache(isolated_hf / "hub", "org/unlisted", folder, {"main": ""})
    shutil.rmtree(unlisted.parents[1] / "trees")
    (unlisted / "model.safetensors").unlink()
    for ref, damage in (("org/real", "config"), ("org/real", "weights"), ("org/unlisted", "missing weights")):
        if damage == "weights":
            config_blob.write_bytes(fake_hub.repos["org/real"]["files"]["config.json"])
            weights = (snapshot / "model.safetensors").resolve()
            weights.chmod(0o644)
            weights.write_bytes(weights.read_bytes()[:100])
        hub.clear_cache()
        with pytest.raises(hub.ModelLoadError) as e:
            hub.load(ref)
        msg = str(e.value)
        repo_dir = isolated_hf / "hub" / f"models--{ref.replace('/', '--')}"
        assert f"delete it from the Hugging Face cache ({repo_dir}) and load again" in msg, damage
        assert "ferhub.hub.save" not in msg and msg.count("Fix:") == 1, damage


def test_weights_damaged_on_the_hub_say_so_not_to_download_again(
    fake_hub: FakeHub, tmp_path: Path, isolated_hf: Path
) -> None:
    """Weights truncated on the Hub itself got "delete it from the Hugging Face cache and load again", which
    downloads the same truncated file and gives the same advice, for ever: an intact cached copy (its blob
    named by its hash) is the Hub's file, and only the repo's owner can replace it."""
    folder = hub.save(trained("test_tiny"), tmp_path / "m")
    fake_hub.add("org/trunc", folder, ["main"], {})
    weights = fake_hub.repos["org/trunc"]["files"]["model.safetensors"]
    fake_hub.repos["org/trunc"]["files"]["model.safetensors"] = weights[: len(weights) // 2]
    repo_dir = isolated_hf / "hub" / "models--org--trunc"
    for _ in range(2):  # doing what the message says changes nothing: it must not say to do it
        hub.clear_cache()
        with pytest.raises(hub.ModelLoadError) as e:
            hub.load("org/trunc")
        msg = str(e.value)
        assert "is not a readable safetensors file" in msg and msg.count("Fix:") == 1
        assert "Hub model 'org/trunc' holds a damaged file" in msg and "ask its owner to push" in msg
        assert "delete it from the Hugging Face cache" not in msg
        shutil.rmtree(repo_dir)


def test_a_hub_config_that_ferhub_cannot_read_is_the_repos(fake_hub: FakeHub, tmp_path: Path) -> None:
    """A config.json the Hub holds as it is (the cached copy intact) is the repo's fault, not the cache's."""
    folder = hub.save(trained("test_tiny"), tmp_path / "m")
    (folder / "config.json").write_text('{"architecture": "test_tiny"}')
    fake_hub.add("org/oldcfg", folder, ["main"], {})
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load("org/oldcfg")
    msg = str(e.value)
    assert (
        "missing required keys ['labels', " in msg
        and "Hub model 'org/oldcfg' is not a ferhub model repo" in msg
    )
    assert "delete it" not in msg and "ferhub.hub.save" not in msg


def test_a_bad_local_config_gives_its_fix_once(tiny_repo: Path) -> None:
    (tiny_repo / "config.json").write_text("{not json")
    with pytest.raises(hub.ModelLoadError) as e:
        hub.load(tiny_repo)
    assert str(e.value).count("re-save") == 1 and "Fix: config.json is written by ferhub.hub.save" in str(
        e.value
    )


# ---------------------------------------------------------------------------------------------------------
# evaluate --push: the card as `ferhub push` sends it, onto the branch and commit that were evaluated
# ---------------------------------------------------------------------------------------------------------
class CommitRecorder:
    """Replaces HfApi.create_commit (the Hub's side of a results push): records its arguments and the bytes of
    each file committed; ``fail`` raises that error instead."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import huggingface_hub

        self.calls: list[dict[str, Any]] = []
        self.files: list[dict[str, bytes]] = []
        self.fail: Exception | None = None
        recorder = self

        def create_commit(api: Any, **kwargs: Any) -> Any:
            if recorder.fail is not None:
                raise recorder.fail
            recorder.calls.append({k: v for k, v in kwargs.items() if k != "operations"})
            recorder.files.append(
                {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in kwargs["operations"]}
            )
            return huggingface_hub.CommitInfo(
                commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/abc123",
                commit_message=kwargs["commit_message"],
                commit_description="",
                oid="abc123",
            )

        monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)


def test_results_push_names_the_repo_in_a_card_that_names_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evaluate --push --repo-id` of a trained folder put `path/to/model` back into the Hub card, which no
    longer matched the card.json `ferhub push` had put there."""
    from ferhub.evaluation import push_results

    folder = hub.save(trained("test_tiny"), tmp_path / "m", eval_results=eval_results())
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    HubRecorder(monkeypatch)
    rec = CommitRecorder(monkeypatch)
    commit = HubListing(monkeypatch).holds("org/name", folder)  # the Hub holds these weights
    push_results(folder, "org/name")
    (files,) = rec.files
    assert set(files) == {"eval_results.json", "README.md", "card.json"}
    card = files["README.md"].decode()
    assert 'ferhub.load("org/name")' in card and "path/to/model" not in card and "model-index" in card
    assert json.loads(files["card.json"])["repo_id"] == "org/name"
    published = shutil.copytree(folder, tmp_path / "hub-copy")  # the Hub's repo after the commit
    for name, data in files.items():
        (published / name).write_bytes(data)
    assert hub.card_is_current(published)  # the Hub's card is what its card.json renders to
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the folder is left as it is
    assert rec.calls[0]["revision"] is None and rec.calls[0]["parent_commit"] == commit  # the one checked


def _evaluate_push(crops: Path, out: Path, *models_and_options: str) -> int:
    from ferhub.cli import main

    argv = ["evaluate", "--data", str(crops), "--precropped", "--bootstrap", "5", "--no-report"]
    return main([*argv, "--out", str(out), "--push", *models_and_options])


def _real_repo(fake_hub: FakeHub, tmp_path: Path) -> str:
    """A tiny model on branches main and dev of `org/real` (its card naming the repo); returns the commit."""
    folder = hub.save(trained("test_tiny"), tmp_path / "m", card_context={"repo_id": "org/real"})
    return fake_hub.add("org/real", folder, ["main", "dev"], {})


def test_evaluate_push_commits_to_the_branch_and_commit_evaluated(
    fake_hub: FakeHub, lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`--model org/name@dev --push` committed dev's card and results onto main, over whatever it held."""
    commit = _real_repo(fake_hub, tmp_path)
    rec = CommitRecorder(monkeypatch)
    assert _evaluate_push(lfw_crops, tmp_path / "out", "--model", "org/real@dev") == 0, (
        capsys.readouterr().err
    )
    (call,) = rec.calls
    assert call["repo_id"] == "org/real" and call["revision"] == "dev" and call["parent_commit"] == commit
    # its card named the repo but not the branch: on dev, it goes up loading org/real@dev
    assert set(rec.files[0]) == {"eval_results.json", "README.md", "card.json"}
    assert json.loads(rec.files[0]["card.json"])["revision"] == "dev"
    assert 'ferhub.load("org/real@dev")' in rec.files[0]["README.md"].decode()
    assert "pushed org/real@dev results to org/real@dev" in capsys.readouterr().err
    assert _evaluate_push(lfw_crops, tmp_path / "out", "--model", "org/real") == 0  # the default branch
    assert rec.calls[-1]["revision"] is None and rec.calls[-1]["parent_commit"] == commit
    assert set(rec.files[-1]) == {"eval_results.json", "README.md"}  # its card names the repo already


def test_evaluate_push_never_sends_a_results_copy_of_other_weights(
    fake_hub: FakeHub, lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A second evaluation into the same --out, after the branch got new weights, pushed the card (and
    results) of the copy the first one left there beside the new weights: that copy is moved aside (said),
    and the results of the new weights go to a fresh copy of them; re-evaluating the same weights merges
    into the copy, silently."""
    context = {"repo_id": "org/real"}
    fake_hub.add(
        "org/real", hub.save(trained("test_tiny"), tmp_path / "a", card_context=context), ["main"], {}
    )
    rec = CommitRecorder(monkeypatch)
    out = tmp_path / "out"
    assert _evaluate_push(lfw_crops, out, "--model", "org/real") == 0
    new = hub.save(trained("test_tiny", seed=1), tmp_path / "b", card_context=context)
    fake_hub.repos["org/real"].update(
        commit="d" * 40, refs={"main": "d" * 40}, files={p.name: p.read_bytes() for p in new.iterdir()}
    )
    hub.clear_cache()
    capsys.readouterr()
    assert _evaluate_push(lfw_crops, out, "--model", "org/real") == 0
    err = capsys.readouterr().err
    assert "held another version of org/real (its model.safetensors differs" in err, err
    copy, aside = out / "org--real", out / "org--real.replaced-1"
    assert (copy / "model.safetensors").read_bytes() == (new / "model.safetensors").read_bytes()
    assert (aside / "model.safetensors").read_bytes() == (tmp_path / "a" / "model.safetensors").read_bytes()
    assert len(rec.calls) == 2 and rec.calls[-1]["parent_commit"] == "d" * 40
    assert _evaluate_push(lfw_crops, out, "--model", "org/real") == 0
    assert "another version" not in capsys.readouterr().err and not (out / "org--real.replaced-2").exists()


def test_evaluate_push_refuses_a_branch_that_moved(
    fake_hub: FakeHub, lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Results measured on commit A were committed onto a branch whose weights had become B."""
    from ferhub import evaluation

    commit = _real_repo(fake_hub, tmp_path)
    rec = CommitRecorder(monkeypatch)
    evaluate = evaluation.evaluate

    def evaluate_while_dev_moves(*args: Any, **kwargs: Any) -> Any:
        runs = evaluate(*args, **kwargs)
        fake_hub.repos["org/real"]["refs"]["dev"] = "b" * 40  # someone pushed new weights to dev meanwhile
        return runs

    monkeypatch.setattr(evaluation, "evaluate", evaluate_while_dev_moves)
    out = tmp_path / "out"
    assert _evaluate_push(lfw_crops, out, "--model", "org/real@dev") == 1
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("ferhub evaluate:")]
    assert f"not pushed to org/real@dev: branch 'dev' of org/real has moved since commit {commit}" in line
    assert "Fix: evaluate org/real@dev again" in line and rec.calls == []
    assert hub.read_eval_results(out / "org--real@dev")["results"]  # the results are kept
    # moved between that check and the commit: the Hub refuses the parent commit (412)
    monkeypatch.setattr(evaluation, "evaluate", evaluate)
    fake_hub.repos["org/real"]["refs"]["dev"] = commit
    rec.fail = _http_error(412, "A commit has happened since. Please refresh and try again.")
    assert _evaluate_push(lfw_crops, out, "--model", "org/real@dev") == 1
    assert "branch 'dev' of org/real has moved since commit" in capsys.readouterr().err
    rec.fail = _http_error(503, "Internal Error")  # and a Hub that fails is no login problem
    assert _evaluate_push(lfw_crops, out, "--model", "org/real@dev") == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "the Hub failed while uploading to org/real (HTTP 503" in line and "log in" not in line


def test_evaluate_push_refuses_a_branch_that_moved_during_the_evaluation(
    fake_hub: FakeHub, lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """main got new weights B while A was being evaluated: the run resolved the id a second time, took B's
    folder, revision and commit as its own, and the push put A's numbers beside B's weights."""
    from ferhub import evaluation

    context = {"repo_id": "org/real"}
    a = hub.save(trained("test_tiny"), tmp_path / "a", card_context=context)
    b = hub.save(trained("test_tiny", seed=1), tmp_path / "b", card_context=context)
    commit = fake_hub.add("org/real", a, ["main"], {})
    rec = CommitRecorder(monkeypatch)
    summarize = evaluation.metrics.summarize

    def summarize_while_main_moves(*args: Any, **kwargs: Any) -> Any:  # after the predictions were made
        fake_hub.repos["org/real"].update(
            commit="b" * 40, refs={"main": "b" * 40}, files={p.name: p.read_bytes() for p in b.iterdir()}
        )
        return summarize(*args, **kwargs)

    monkeypatch.setattr(evaluation.metrics, "summarize", summarize_while_main_moves)
    out = tmp_path / "out"
    assert _evaluate_push(lfw_crops, out, "--model", "org/real") == 1
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("ferhub evaluate:")]
    assert f"not pushed to org/real: branch 'main' of org/real has moved since commit {commit}" in line
    assert rec.calls == []
    copy = out / "org--real"  # the results sit beside the weights they were measured on
    assert (copy / "model.safetensors").read_bytes() == (a / "model.safetensors").read_bytes()
    (entry,) = hub.read_eval_results(copy)["results"].values()
    assert entry["model"] == {"id": "org/real", "revision": commit}
    asked = [p for m, p in fake_hub.requests if m == "GET" and p == "/api/models/org/real/revision/main"]
    assert len(asked) == 1  # the branch head is asked for once, when the model loads


def test_evaluate_push_refreshes_a_card_that_changed_on_the_hub(
    fake_hub: FakeHub, lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A push that filled in the card's repo_id (or a card edit on the Hub) made the next evaluation into the
    same --out move its copy aside as "another version" of the model, though weights and config were the
    same: the card prose is refreshed from the Hub instead."""
    folder = hub.save(trained("test_tiny"), tmp_path / "m", card_context={"license": "mit"})
    fake_hub.add("org/real", folder, ["main"], {})
    rec = CommitRecorder(monkeypatch)
    out = tmp_path / "out"
    copy = out / "org--real"

    def hub_commits(commit: str, files: dict[str, bytes]) -> None:
        repo = fake_hub.repos["org/real"]
        repo.update(commit=commit, refs={"main": commit}, files={**repo["files"], **files})
        hub.clear_cache()

    assert _evaluate_push(lfw_crops, out, "--model", "org/real") == 0
    assert json.loads(rec.files[0]["card.json"])["repo_id"] == "org/real"  # staged, as `ferhub push` does
    hub_commits("c" * 40, rec.files[0])
    capsys.readouterr()
    assert _evaluate_push(lfw_crops, out, "--model", "org/real") == 0
    assert "another version" not in capsys.readouterr().err
    assert (copy / "card.json").read_bytes() == rec.files[0]["card.json"]
    assert (
        set(rec.files[1]) == {"eval_results.json", "README.md"} and rec.calls[1]["parent_commit"] == "c" * 40
    )
    card = json.loads(rec.files[0]["card.json"])
    hub_commits("e" * 40, {"card.json": json.dumps({**card, "license": "apache-2.0"}).encode()})
    assert _evaluate_push(lfw_crops, out, "--model", "org/real") == 0
    assert "another version" not in capsys.readouterr().err
    assert json.loads((copy / "card.json").read_text())["license"] == "apache-2.0"
    assert "license: apache-2.0" in rec.files[2]["README.md"].decode() and hub.card_is_current(copy)
    assert not list(out.glob("org--real.replaced-*"))
    # the copy's own card.json, which a user may have edited there, is kept beside the refreshed one, and said
    kept = sorted(p.name for p in copy.glob("card.json.replaced-*"))
    assert kept == ["card.json.replaced-1", "card.json.replaced-2"]
    assert json.loads((copy / "card.json.replaced-2").read_text())["license"] == "mit"
    edited = {**json.loads((copy / "card.json").read_text()), "description": "my words"}
    (copy / "card.json").write_text(json.dumps(edited))
    capsys.readouterr()
    assert _evaluate_push(lfw_crops, out, "--model", "org/real") == 0
    assert "card.json.replaced-3" in capsys.readouterr().err
    assert json.loads((copy / "card.json.replaced-3").read_text())["description"] == "my words"


@pytest.mark.parametrize(
    ("model", "option", "expected"),
    [
        ("org/real@v1", [], "revision 'v1' of org/real is a tag; results can only be committed to a branch"),
        ("org/real@nope", [], "revision 'nope' of org/real is no branch of the repo"),
        (f"org/real@{'c' * 40}", [], f"org/real@{'c' * 40} names a commit, and results can only be "
         "pushed to a branch"),
        ("org/real@dev", ["--revision", "main"], "--revision main would put the results of org/real@dev on "
         "another branch"),
        ("org/real", ["--revision", "dev"], "evaluate org/real@dev to push to that branch"),
    ],
)  # fmt: skip
def test_evaluate_push_refuses_what_is_no_branch_before_evaluating(
    model: str,
    option: list[str],
    expected: str,
    fake_hub: FakeHub,
    lfw_crops: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    commit = _real_repo(fake_hub, tmp_path)
    fake_hub.repos["org/real"]["tags"] = {"v1": commit}
    rec = CommitRecorder(monkeypatch)
    out = tmp_path / "out"
    assert _evaluate_push(lfw_crops, out, "--model", model, *option) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ferhub evaluate: ") and expected in line
    assert not out.exists() and rec.calls == [] and not fake_hub.downloads()  # nothing was evaluated
