"""``ferhub evaluate`` / ``compare`` / ``report`` on data holding images that cannot be decoded: those are
skipped and counted, and the rest still gives metrics, the table and the HTML report, whose thumbnails show
the images each row is about. Also: ``evaluate --json`` keeps stdout JSON only, ``--push`` that cannot work
is refused before evaluating, and a Hub that cannot be reached is exit code 3.

Data: real face crops from scikit-image's LFW subset in class folders, plus a truncated PNG and an empty JPEG.
Models: ``test_tiny`` saved with ``ferhub.hub.save``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ferhub import evaluation, hub
from ferhub.cli import main
from ferhub.data import DataSourceError, open_source
from ferhub.errors import HubConnectionError
from ferhub.images import load_image
from ferhub.labels import FER7
from ferhub.models import create_model
from ferhub.report import thumbnail_b64

N_GOOD = 4  # readable images per class
THUMB = re.compile(r'src="data:image/jpeg;base64,([^"]+)"')


@pytest.fixture(autouse=True)
def face_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path / "ferhub_cache"))


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``damaged/<class>/``: LFW crops under ``contempt`` (a FER7 model never predicts it, so every one is
    misclassified and gets a thumbnail) and ``happy``, each class with a file that cannot be decoded sorted
    first (a truncated PNG, an empty JPEG): every readable image after it is one row before its index."""
    import skimage.data

    lfw = skimage.data.lfw_subset()
    root = tmp_path_factory.mktemp("data") / "damaged"
    for c, cls in enumerate(("contempt", "happy")):
        (root / cls).mkdir(parents=True)
        for i in range(N_GOOD):
            Image.fromarray((lfw[c * N_GOOD + i] * 255).astype(np.uint8)).save(root / cls / f"g{i}.png")
    (root / "contempt" / "a_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "happy" / "a_empty.jpg").write_bytes(b"")
    return root


def _save_tiny(folder: Path, seed: int, repo_id: str | None = None) -> Path:
    torch.manual_seed(seed)
    model = create_model("test_tiny", labels=FER7).eval()
    return hub.save(model, folder, card_context={"repo_id": repo_id} if repo_id else None)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("repos")
    return [_save_tiny(root / "tiny_a", 0, "org/tiny-a"), _save_tiny(root / "tiny_b", 1, "org/tiny-b")]


def _thumbnails(html: Path) -> Counter[str]:
    """The misclassified-image thumbnails of a report."""
    return Counter(THUMB.findall(html.read_text(encoding="utf-8")))


def _misclassified(p: evaluation.ImagePredictions) -> Counter[str]:
    """The thumbnails the report should show for ``p``: of each misclassified row's own image file."""
    wrong = [i for i in range(len(p.y_true)) if p.y_pred[i] != p.y_true[i]]
    return Counter(thumbnail_b64(load_image(p.paths[i])) for i in wrong)


def test_each_prediction_row_keeps_the_index_of_its_image(damaged: Path, models: list[Path]) -> None:
    """The skipped images have no row, so row i is not image i: thumbnails go through the rows' indices."""
    source = open_source(damaged)
    (run,) = evaluation.evaluate(str(models[0]), source, precropped=True, n_resamples=10)
    p = run.predictions
    broken = {i for i in range(len(source)) if Path(source.path_of(i)).name.startswith("a_")}
    assert len(broken) == 2 and len(p.indices) == len(source) - 2 and not broken & set(p.indices)
    image_at = evaluation.image_reader(p, source)
    assert image_at is not None
    for i, path in enumerate(p.paths):
        assert image_at(i).tobytes() == load_image(path).tobytes(), path
    back = evaluation.ImagePredictions.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back.indices == p.indices  # kept in the predictions file, for `ferhub report --data`
    # rows that cannot be matched to this source's images get no thumbnails rather than wrong ones
    back.indices = None  # a file written before indices were kept: only when the counts match
    assert evaluation.image_reader(back, source) is None
    back.indices = [i + len(source) for i in p.indices]
    assert evaluation.image_reader(back, source) is None


def test_evaluate_writes_the_report_with_thumbnails_past_unreadable_images(
    damaged: Path, models: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        ["evaluate", "--model", str(models[0]), "--data", str(damaged), "--precropped", "--bootstrap", "10",
         "--out", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "unreadable: 2 images could not be decoded and were skipped" in err
    (predictions,) = out.glob("*.predictions.json")
    expected = _misclassified(evaluation.ImagePredictions.load(predictions))
    assert expected.total() >= N_GOOD  # every contempt image is misclassified
    assert _thumbnails(out / "report.html") == expected  # each of its own image, none lost

    # `ferhub report` from the results and predictions files: the same thumbnails
    report = tmp_path / "r.html"
    code = main(
        ["report", "--results", str(models[0]), "--predictions", str(predictions), "--data", str(damaged),
         "--out", str(report)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert _thumbnails(report) == expected


def test_evaluate_json_leaves_stdout_to_the_json(
    damaged: Path, models: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["evaluate", "--model", str(models[0]), "--data", str(damaged), "--precropped", "--bootstrap", "10",
         "--out", str(tmp_path / "out"), "--no-report", "--json"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    (entries,) = json.loads(out).values()  # stdout parses as a whole
    (entry,) = entries.values()
    assert entry["unreadable"]["count"] == 2
    assert "accuracy [95% CI]" in err  # the table went to stderr


def test_compare_prints_its_table_and_writes_the_report_past_unreadable_images(
    damaged: Path, models: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = tmp_path / "cmp.html"
    code = main(
        ["compare", *map(str, models), "--data", str(damaged), "--precropped", "--out", str(html),
         "--json", str(tmp_path / "cmp.json")]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "McNemar p" in out and f"damaged (all), {2 * N_GOOD} images" in out
    assert "damaged: 2 images could not be decoded and were skipped" in err
    runs = evaluation.evaluate(list(map(str, models)), str(damaged), precropped=True, n_resamples=10)
    assert _thumbnails(html) == _misclassified(runs[0].predictions) + _misclassified(runs[1].predictions)
    assert json.loads((tmp_path / "cmp.json").read_text())["pairs"][0]["mcnemar"]


def test_push_whose_repo_is_unknown_is_refused_before_evaluating(
    damaged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    monkeypatch.setattr(
        huggingface_hub.constants, "HF_HUB_OFFLINE", False
    )  # online: only the repo is missing
    folder = _save_tiny(tmp_path / "no_repo", 0)  # its card.json names no Hub repo
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            "--model",
            str(folder),
            "--data",
            str(damaged),
            "--precropped",
            "--push",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    (line,) = [x for x in err.splitlines() if x.startswith("ferhub evaluate:")]
    assert str(folder) in line and "--repo-id org/name" in line
    assert not out.exists() and hub.read_eval_results(folder) is None  # nothing was evaluated


class _HubDown(DataSourceError, HubConnectionError):
    """A Hub dataset that cannot be fetched because the Hub cannot be reached."""


@pytest.mark.parametrize("command", ["evaluate", "compare", "report"])
def test_an_unreachable_hub_is_exit_code_3(
    command: str, models: list[Path], tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args, **kw):
        raise _HubDown("Hub dataset 'org/data' is not in the datasets cache and the Hub is unreachable")

    monkeypatch.setattr(evaluation, "open_data", down)
    monkeypatch.setattr("ferhub.commands.report.load_results", lambda ref: (ref, {"results": {}}))
    argv = {
        "evaluate": ["evaluate", "--model", str(models[0]), "--data", "org/data", "--out", str(tmp_path)],
        "compare": ["compare", *map(str, models), "--data", "org/data"],
        "report": ["report", "--results", str(models[0]), "--data", "org/data", "--out", str(tmp_path / "r")],
    }[command]
    assert main(argv) == 3
    assert f"ferhub {command}: Hub dataset 'org/data' is not in the datasets cache" in capsys.readouterr().err


def test_unlabelled_rows_are_said_on_stderr_and_in_the_entry(
    models: list[Path], tmp_path: Path, capsys
) -> None:
    """Rows a dataset leaves without a label (-1) are left out of the metrics, and the run says so."""
    import datasets
    import skimage.data

    faces = [Image.fromarray((f * 255).astype(np.uint8)) for f in skimage.data.lfw_subset()[:4]]
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["happy", "sad"])}
    )
    ds = datasets.Dataset.from_dict({"image": faces, "label": [0, 1, -1, 0]}, features=features)
    ds.save_to_disk(str(tmp_path / "hidden"))
    argv = ["evaluate", "--model", str(models[0]), "--data", str(tmp_path / "hidden"), "--precropped"]
    assert main([*argv, "--no-report", "--json", "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    (entry,) = json.loads(out)[str(models[0])].values()
    note = "unlabelled: 1 of 4 rows have no label ('label' missing or < 0) and were left out"
    assert entry["num_images"] == 3 and note in entry["notes"] and note in err


def test_evaluate_and_compare_take_the_column_options(
    models: list[Path], damaged: Path, tmp_path: Path, capsys
) -> None:
    """The message for a dataset whose columns are not found names --image-column/--label-column, which only
    `train` had: evaluate and compare refused them (exit 2)."""
    import datasets
    import skimage.data

    faces = [Image.fromarray((f * 255).astype(np.uint8)) for f in skimage.data.lfw_subset()[:3]]
    features = datasets.Features({"pic": datasets.Image(), "expr": datasets.Value("string")})
    datasets.Dataset.from_dict(
        {"pic": faces, "expr": ["happy", "sad", "happy"]}, features=features
    ).to_parquet(str(tmp_path / "faces.parquet"))
    data = ["--data", str(tmp_path / "faces.parquet"), "--precropped"]
    assert (
        main(["evaluate", "--model", str(models[0]), *data, "--no-report", "--out", str(tmp_path / "o")]) == 1
    )
    assert "--image-column/--label-column" in capsys.readouterr().err
    columns = ["--image-column", "pic", "--label-column", "expr"]
    out = ["--json", "--no-report", "--out", str(tmp_path / "o")]
    assert main(["evaluate", "--model", str(models[0]), *data, *columns, *out]) == 0
    (entry,) = json.loads(capsys.readouterr().out)[str(models[0])].values()
    assert entry["num_images"] == 3
    assert main(["compare", *map(str, models), *data, *columns]) == 0
    # on class folders they would pick nothing: said, not silently ignored
    capsys.readouterr()
    folders = ["--data", str(damaged), "--label-column", "expr", "--no-report", "--out", str(tmp_path / "f")]
    assert main(["evaluate", "--model", str(models[0]), *folders]) == 1
    assert (
        "label_column= (--label-column) picks the columns of a Hugging Face dataset"
        in capsys.readouterr().err
    )
