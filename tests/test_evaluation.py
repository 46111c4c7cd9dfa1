"""Evaluation end to end on generated data: evaluate -> eval_results.json -> card model-index -> figures.

Data: real face crops from scikit-image's LFW subset in class folders (and a zip of them), and real photos
(scikit-image's astronaut, matplotlib's Grace Hopper, and a coffee cup without a face) for the detection path.
Models: ``test_tiny`` saved with ``ferhub.hub.save``.
"""

from __future__ import annotations

import json
import shlex
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hubrepo import HubListing
from PIL import Image, ImageOps

from ferhub import eval_results, evaluation, hub, metrics
from ferhub.cli import main
from ferhub.data import FaceCache, open_source
from ferhub.hub import EvalResultsError
from ferhub.labels import FER7, FER8
from ferhub.models import create_model
from ferhub.predict import Predictor
from ferhub.preprocess import at_input_size
from ferhub.transforms import tta_views

N_PER_CLASS = 3


@pytest.fixture(autouse=True)
def face_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path_factory.mktemp("ferhub_cache")))


def _tiny(labels=FER7, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("test_tiny", labels=labels).eval()


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("repos")
    return {
        "fer7": hub.save(_tiny(FER7, 0), root / "tiny7", card_context={"repo_id": "org/tiny7"}),
        "fer8": hub.save(_tiny(FER8, 1), root / "tiny8"),
    }


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``crops/<class>/<i>.png``: 3 LFW faces per FER8 class (24 images)."""
    import skimage.data

    lfw = skimage.data.lfw_subset()
    root = tmp_path_factory.mktemp("data") / "lfw-crops"
    for i in range(N_PER_CLASS * len(FER8)):
        folder = root / FER8[i % len(FER8)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((lfw[i] * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def crops_zip(crops: Path) -> Path:
    path = crops.parent / "lfw-crops.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(crops.rglob("*.png")):
            zf.write(f, f.relative_to(crops).as_posix())
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skimage.data
    from matplotlib import cbook

    root = tmp_path_factory.mktemp("data") / "photos"
    (root / "happy").mkdir(parents=True)
    (root / "neutral").mkdir()
    Image.fromarray(skimage.data.astronaut()).save(root / "happy" / "astronaut.jpg")
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        Image.open(f).convert("RGB").save(root / "neutral" / "hopper.jpg")
    Image.fromarray(skimage.data.coffee()).save(root / "neutral" / "coffee.jpg")  # no face
    return root


@pytest.fixture(scope="module")
def detector():
    from ferhub.faces import FaceDetector

    return FaceDetector()


# ---------------------------------------------------------------------------------------------- evaluate
@pytest.mark.slow
def test_evaluate_crops_goes_through_predictor_and_maps_labels(repos, crops) -> None:
    source = open_source(str(crops), precropped=True)
    runs = evaluation.evaluate([str(repos["fer7"]), str(repos["fer8"])], source, n_resamples=50)
    assert [r.name for r in runs] == [str(repos["fer7"]), str(repos["fer8"])]
    r7, r8 = runs
    assert r7.key == "lfw-crops:default:all"
    # the one inference path: probabilities are exactly Predictor.classify_crops on the images
    images = [source.image(i) for i in range(len(source))]
    ref = Predictor([hub.load(str(repos["fer7"]))]).classify_crops(images)[0]
    np.testing.assert_allclose(r7.predictions.probabilities, ref, atol=1e-6)
    # labels: the data's 8 classes; the 7-class model cannot say contempt and that is reported, not dropped
    assert r7.entry["labels"] == list(FER8)
    assert r7.entry["label_mapping"]["unpredictable"] == {"contempt": N_PER_CLASS}
    assert f"contempt: {N_PER_CLASS} images the model cannot predict, counted wrong" in r7.entry["notes"]
    assert sum(map(sum, r7.entry["confusion_matrix"])) == len(source) == r7.entry["num_images"]
    assert r7.entry["per_class"]["contempt"]["support"] == N_PER_CLASS
    # metrics agree with the per-image predictions they came from
    p = r7.predictions
    y_true, y_pred = np.array(p.y_true), np.array(p.y_pred)
    assert r7.entry["metrics"]["accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    assert FER8[int(np.argmax(ref[0]))] == p.labels[y_pred[0]]
    assert r8.entry["label_mapping"]["unpredictable"] == {}
    assert r7.entry["no_face"] == {"count": 0, "policy": "precropped", "per_class": dict.fromkeys(FER8, 0)}
    assert r7.entry["model"] == {"id": "tiny7", "revision": None}
    assert r7.entry["dataset"] == {
        "id": "lfw-crops",
        "config": "default",
        "split": "all",
        "name": "lfw-crops",
    }
    assert r7.entry["tta"] is False and r7.entry["tta_method"] is None
    json.dumps(r7.entry, allow_nan=False)


@pytest.mark.parametrize("method", ["flip", "tencrop"])
def test_tta_averages_views_through_classify_crops(repos, crops, method) -> None:
    source = open_source(str(crops), precropped=True)
    model = hub.load(str(repos["fer7"]))
    (run,) = evaluation.evaluate(model, source, tta=method, n_resamples=20)
    pred = Predictor(model)
    image = at_input_size(source.image(5), model.config)  # views of the crop as training holds it
    views = tta_views(image, method)
    assert len(views) == (2 if method == "flip" else 10)
    if method == "flip":
        assert np.array_equal(np.asarray(views[1]), np.asarray(ImageOps.mirror(image)))
    expected = pred.classify_crops(views)[0].mean(axis=0)
    np.testing.assert_allclose(run.predictions.probabilities[5], expected, atol=1e-6)
    assert run.entry["tta"] is True and run.entry["tta_method"] == method


@pytest.mark.parametrize("method", [None, "flip", "tencrop"])
def test_evaluate_gives_the_tta_number_training_recorded(repos, crops, method) -> None:
    """Training validates on crops held at the model's input size and took its ten crops of those; evaluate
    took them of the full-size crop: a ferhub_best card (tencrop) said 0.9286 where evaluate gave 0.9107."""
    from ferhub.data import materialize
    from ferhub.training.loop import evaluate as training_evaluate

    model = hub.load(str(repos["fer7"]))
    source = open_source(str(crops), precropped=True)
    held = materialize(source, model.config, precropped=True)  # what training holds of each image
    recorded = training_evaluate(
        model, torch.from_numpy(held.images), model.config, device=torch.device("cpu"), tta=method
    )
    (run,) = evaluation.evaluate(model, source, tta=method, n_resamples=20)
    np.testing.assert_allclose(run.predictions.probabilities, recorded, atol=1e-5)


def test_tta_views_geometry() -> None:
    crop = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 32), dtype=np.uint8))
    views = tta_views(crop, "tencrop")
    assert len(views) == 10 and all(v.size == (28, 42) for v in views)  # 87.5% of 32 x 48
    a = np.asarray(crop)
    assert np.array_equal(np.asarray(views[0]), a[:42, :28]) and np.array_equal(
        np.asarray(views[3]), a[6:, 4:]
    )
    assert np.array_equal(np.asarray(views[4]), a[3:45, 2:30])  # the centre
    assert np.array_equal(np.asarray(views[5]), a[:42, :28][:, ::-1])  # the mirrored ones follow
    assert tta_views(crop, None) == [crop]
    with pytest.raises(ValueError, match="tta"):
        tta_views(crop, "rotate")


def test_photo_tta_views_are_taken_of_each_models_own_crop(repos, photos, detector) -> None:
    from ferhub.faces import crop_face

    # two models that frame the face differently: each gets the views of its own crop
    wide = create_model("test_tiny", config_overrides={"crop_margin": 0.4}).eval()
    models = [hub.load(str(repos["fer7"])), wide]
    cache = FaceCache(detector, persist=False)
    pred = Predictor(models, detector=detector)
    source = open_source(str(photos))
    runs = evaluation.evaluate(models, source, predictor=pred, cache=cache, tta="tencrop", n_resamples=20)
    i = [Path(p).name for p in runs[0].predictions.paths].index("hopper.jpg")
    image = source.image(i)
    (face,) = cache.get_many([image])
    for run, model in zip(runs, models):
        views = tta_views(at_input_size(crop_face(image, face, model.config), model.config), "tencrop")
        expected = Predictor(model).classify_crops(views)[0].mean(axis=0)
        np.testing.assert_allclose(run.predictions.probabilities[i], expected, atol=1e-6)
        assert run.entry["tta_method"] == "tencrop"
    assert models[0].config.crop_margin != wide.config.crop_margin  # the two framings do differ


def test_photos_detect_once_and_no_face_policies(repos, photos, detector) -> None:
    cache = FaceCache(detector, persist=False)
    pred = Predictor([str(repos["fer7"])], detector=detector)
    (fb,) = evaluation.evaluate(
        [str(repos["fer7"])], str(photos), predictor=pred, cache=cache, n_resamples=20
    )
    assert cache.detections_run == 3
    assert fb.entry["no_face"]["count"] == 1 and fb.entry["no_face"]["policy"] == "fallback"
    assert fb.entry["no_face"]["per_class"]["neutral"] == 1
    paths = [Path(p).name for p in fb.predictions.paths]
    coffee = paths.index("coffee.jpg")
    assert fb.predictions.face_found[coffee] is False and fb.predictions.boxes[coffee] is None
    assert fb.predictions.y_pred[coffee] >= 0  # scored on the whole image
    astro = paths.index("astronaut.jpg")
    x1, y1, x2, y2 = fb.predictions.boxes[astro]
    assert 150 < x1 < x2 < 300 and 40 < y1 < y2 < 200  # the astronaut's face
    # the same face, classified through the Predictor's own crop path
    face = cache.get_many([open_source(str(photos)).image(astro)])[0]
    ref = pred.classify_faces(open_source(str(photos)).image(astro), [face])[0][0]
    np.testing.assert_allclose(fb.predictions.probabilities[astro], ref, atol=1e-6)
    # counted wrong: no detection again (cache), the coffee cup is a wrong answer and not in the matrix
    (wrong,) = evaluation.evaluate(
        [str(repos["fer7"])], str(photos), predictor=pred, cache=cache, no_face="wrong", n_resamples=20
    )
    assert cache.detections_run == 3
    assert wrong.predictions.y_pred[coffee] == -1
    assert sum(map(sum, wrong.entry["confusion_matrix"])) == 2
    assert "no face: 1 images without a face counted wrong" in wrong.entry["notes"]


def test_images_are_decoded_a_pixel_budget_at_a_time(repos, photos, detector, monkeypatch) -> None:
    """An evaluation decoded a whole chunk (256 images) before detecting faces in any: 14 KB PNGs that each
    decode to 49 MP held ~240 MB a member (a 3.6 MB zip: ~60 GB). Images are decoded, detected and classified
    a pixel budget at a time, with the same results."""
    import weakref

    source = open_source(str(photos))
    alive: list[weakref.ref] = []  # (a PIL image cannot go in a WeakSet: it is not hashable)
    held: list[int] = []  # decoded images alive as each next one is decoded
    read = type(source).image

    def image(self, i: int) -> Image.Image:
        held.append(sum(r() is not None for r in alive))
        decoded = read(self, i)
        alive.append(weakref.ref(decoded))
        return decoded

    monkeypatch.setattr(type(source), "image", image)
    pred = Predictor([str(repos["fer7"])], detector=detector)

    def run() -> evaluation.ImagePredictions:
        cache = FaceCache(detector, persist=False)
        return evaluation.evaluate([str(repos["fer7"])], source, predictor=pred, cache=cache, n_resamples=20)[
            0
        ].predictions

    together = run()  # the three photos (0.24-0.31 MP) fit the default budget: one batch
    assert held == [0, 1, 2]
    held.clear()
    monkeypatch.setattr(evaluation, "PIXEL_BUDGET", 300_000)  # one photo at a time
    alone = run()
    assert held == [0, 1, 1]  # (the one before, while the next is decoded to know its size; not both)
    np.testing.assert_array_equal(alone.probabilities, together.probabilities)
    assert (alone.boxes, alone.y_pred, alone.face_found) == (
        together.boxes,
        together.y_pred,
        together.face_found,
    )


# ------------------------------------------------------------------------------------ eval_results.json
def _entry(run, **changes):
    entry = json.loads(json.dumps(run.entry))
    entry.update(changes)
    return entry


def test_round_trip_results_card_and_figures(repos, crops, tmp_path) -> None:
    import shutil

    from ferhub import plots

    folder = Path(shutil.copytree(repos["fer7"], tmp_path / "repo"))
    (run,) = evaluation.evaluate(str(folder), str(crops), precropped=True, n_resamples=50)
    assert evaluation.results_folder(run, tmp_path / "out") == folder.resolve()
    eval_results.write(folder, {run.key: run.entry})
    other = _entry(run, dataset={"id": "org/other", "config": "default", "split": "test", "name": "Other"})
    eval_results.write(folder, {"org/other:default:test": other})
    data = hub.read_eval_results(folder)
    assert data["format_version"] == 1 and set(data["results"]) == {run.key, "org/other:default:test"}
    assert data["results"][run.key] == run.entry
    # the card's model-index carries both datasets' metrics
    card = (folder / "README.md").read_text()
    front = card.split("---")[1]
    assert "name: lfw-crops" in front and "type: org/other" in front
    assert f"value: {run.entry['metrics']['accuracy']}" in front
    # rerun of the same key replaces it; the other dataset is kept
    replaced = _entry(run, num_images=999)
    eval_results.write(folder, {run.key: replaced})
    data = hub.read_eval_results(folder)
    assert data["results"][run.key]["num_images"] == 999 and "org/other:default:test" in data["results"]
    # figures straight from the file
    entries = {"tiny": data["results"][run.key]}
    fig = plots.entry_confusion_figure(entries["tiny"])
    assert np.asarray(fig.data[0].z).tolist() == run.entry["confusion_matrix"]
    assert set(plots.dashboard_figures(entries)) >= {"metrics", "recall", "reliability", "confusion:tiny"}
    assert (folder / "eval_results.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"format_version": 7, "results": {}}', "newer than this ferhub"),
        ('{"format_version": 1, "results": []}', "'results' must be an object"),
    ],
)
def test_bad_results_file_is_never_overwritten(repos, crops, tmp_path, content, message) -> None:
    import shutil

    folder = Path(shutil.copytree(repos["fer7"], tmp_path / "repo"))
    (folder / "eval_results.json").write_text(content)
    entry = {"dataset": {"id": "x"}, "metrics": {"accuracy": 0.5}}
    with pytest.raises(EvalResultsError, match=message):
        eval_results.write(folder, {"x:default:all": entry})
    assert (folder / "eval_results.json").read_text() == content
    assert not list(folder.glob(".eval_results.json.*"))


def test_nan_is_refused_before_writing(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"JSON compliant|Out of range"):
        eval_results.write(tmp_path, {"k": {"dataset": {"id": "x"}, "metrics": {"nll": float("nan")}}})
    assert not (tmp_path / "eval_results.json").exists()


def test_predictions_file_round_trip(repos, crops, tmp_path) -> None:
    (run,) = evaluation.evaluate(str(repos["fer8"]), str(crops), precropped=True, n_resamples=10)
    path = run.predictions.save(tmp_path / "p.json")
    back = evaluation.ImagePredictions.load(path)
    assert back.y_pred == run.predictions.y_pred and back.model == "tiny8" and back.key == run.key
    assert np.array_equal(back.probabilities, run.predictions.probabilities)  # the model's float32 values
    # every metric of the entry recomputes from the file (data and model labels are FER8 alike here)
    again = metrics.summarize(back.y_true, back.probabilities, data_labels=back.labels,
                              model_labels=back.model_labels, n_resamples=10)  # fmt: skip
    assert again["metrics"] == run.entry["metrics"]
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(evaluation.EvaluationError, match="not a ferhub predictions file"):
        evaluation.ImagePredictions.load(tmp_path / "bad.json")


def test_predictions_file_keeps_small_and_near_probabilities(tmp_path) -> None:
    """Rounded to 6 decimals, 3e-9 became 0 (NLL recomputed from the file: 7.23 against 6.15) and 1e-7 and
    2e-7 a tie (top-2 0.50 against 0.52)."""
    probs = np.array([[0.9999997, 1e-7, 2e-7], [3e-9, 0.5, 0.49999997]], dtype=np.float32)
    kept = evaluation.ImagePredictions(
        labels=["happy", "sad", "neutral"], model_labels=["happy", "sad", "neutral"], y_true=[2, 0],
        y_pred=[0, 1], confidence=[float(v) for v in probs.max(axis=1)], face_found=[True, True],
        probabilities=probs,
    )  # fmt: skip
    path = kept.save(tmp_path / "p.json")
    back = evaluation.ImagePredictions.load(path)
    assert np.array_equal(back.probabilities, probs)
    assert np.array_equal(np.float32(back.confidence), np.float32(kept.confidence))
    assert metrics.nll(back.probabilities, [2, 0]) == metrics.nll(probs, [2, 0])
    assert metrics.top_k_accuracy(back.probabilities, [2, 0]) == 0.5  # neutral's 2e-7 is second, not a tie
    text = path.read_text()
    assert "3e-09" in text and "0.49999997" in text and "0.9999997" in text  # short: float32's own digits


# ------------------------------------------------------------------------------------------------ CLI
class CommitRecorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import huggingface_hub

        self.calls: list[dict] = []
        self.uploaded: list[dict[str, bytes]] = []

        def create_commit(api, **kw):
            self.calls.append({"token": api.token, **kw})
            self.uploaded.append(
                {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in kw["operations"]}
            )
            return huggingface_hub.CommitInfo(
                commit_url="https://huggingface.co/org/tiny7/commit/abc123",
                commit_message=kw["commit_message"],
                commit_description="",
                oid="abc123",
            )

        monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
        # the push path checks offline mode and probes the endpoint before any API call: say "online"
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hub._remote, "hub_unreachable", lambda endpoint: None)
        self.hub = HubListing(monkeypatch)  # what the Hub holds: results go only beside their own weights


def test_push_results_offline_fails_at_once_without_calling_the_hub(repos, tmp_path, monkeypatch) -> None:
    """evaluation.push_results goes through the one push path: offline, nothing is attempted (it used to
    call create_commit directly, which retries for ~23 s)."""
    import shutil

    folder = Path(shutil.copytree(repos["fer7"], tmp_path / "repo"))
    eval_results.write(folder, {"x:default:all": {"dataset": {"id": "x"}, "metrics": {"accuracy": 0.5}}})
    rec = CommitRecorder(monkeypatch)
    monkeypatch.setattr(
        hub._remote, "hub_unreachable", lambda endpoint: "the Hub cannot be reached (huggingface.co:443: x)"
    )
    with pytest.raises(
        hub.HubConnectionError,
        match=r"cannot push: the Hub cannot be reached \(huggingface\.co:443: x\); connect",
    ):
        evaluation.push_results(folder, "org/tiny7")
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(hub.HubConnectionError, match=r"offline mode is on \(HF_HUB_OFFLINE=1\)"):
        evaluation.push_results(folder, "org/tiny7")
    assert rec.calls == []


def test_cli_evaluate_writes_repo_predictions_report_and_pushes(
    repos, crops_zip, tmp_path, capsys, monkeypatch
) -> None:
    import shutil

    folder = Path(shutil.copytree(repos["fer7"], tmp_path / "repo"))
    rec = CommitRecorder(monkeypatch)
    commit = rec.hub.holds("org/tiny7", folder)
    out = tmp_path / "out"
    argv = ["evaluate", "--model", str(folder), "--data", str(crops_zip), "--precropped", "--tta", "--out"]
    argv += [str(out), "--bootstrap", "50", "--push"]
    monkeypatch.setattr(sys, "argv", ["ferhub", *argv])  # the command line recorded, as the user typed it
    code = main(argv)
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "accuracy [95% CI]" in stdout and str(folder) in stdout
    assert f"contempt: {N_PER_CLASS} images the model cannot predict, counted wrong" in stderr
    data = hub.read_eval_results(folder)
    entry = data["results"]["lfw-crops:default:all"]
    assert entry["tta_method"] == "flip" and entry["command"] == shlex.join(["ferhub", *argv])
    assert (out / "report.html").is_file()
    (pred_file,) = out.glob("*.predictions.json")
    assert json.loads(pred_file.read_text())["key"] == "lfw-crops:default:all"
    # one commit of exactly the two files, to the repo named in card.json
    (call,) = rec.calls
    ops = call.pop("operations")
    assert call == {
        "token": None,
        "repo_id": "org/tiny7",
        "commit_message": "Evaluation results on lfw-crops:default:all",
        "repo_type": "model",
        "revision": None,
        "parent_commit": commit,  # on top of the commit holding these weights, checked before and after
    }
    assert [op.path_in_repo for op in ops] == ["eval_results.json", "README.md"]
    assert rec.uploaded[0]["eval_results.json"] == (folder / "eval_results.json").read_bytes()
    assert b"lfw-crops" in rec.uploaded[0]["README.md"]


def _overflowing(folder: Path) -> Path:
    """A model whose finite weights overflow to NaN logits (a diverged training run looks like this)."""
    model = _tiny(FER7, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3e38)
    return hub.save(model, folder, card_context={"repo_id": "org/diverged"})


def test_a_model_giving_nan_gets_no_result_and_the_others_keep_theirs(
    repos, crops, tmp_path, capsys, monkeypatch
) -> None:
    """A label read from NaN is the first class (argmax) and the metrics NaN: the run ended in "Out of range
    float values are not JSON compliant" after writing some models' results; now the model is named, the
    others' results are written and shown, nothing is pushed and the exit is 1."""
    import shutil

    bad = _overflowing(tmp_path / "diverged")
    with pytest.raises(evaluation.NotFiniteError) as e:
        evaluation.evaluate([str(repos["fer7"]), str(bad)], str(crops), precropped=True, n_resamples=10)
    assert [r.name for r in e.value.runs] == [str(repos["fer7"])]
    assert str(e.value).startswith(
        f"model {bad} gave NaN or infinite probabilities for 24 of 24 images (first: "
    )
    assert str(e.value).endswith("(a diverged or corrupt model); the other models' results are kept")
    with pytest.raises(
        evaluation.NotFiniteError, match="the model's weights or its computation are not finite"
    ) as e:
        evaluation.evaluate(str(bad), str(crops), precropped=True, n_resamples=10)
    assert e.value.runs == [] and "kept" not in str(e.value)

    good = Path(shutil.copytree(repos["fer7"], tmp_path / "good"))
    rec = CommitRecorder(monkeypatch)
    rec.hub.holds("org/tiny7", good)
    rec.hub.holds("org/diverged", bad)
    out = tmp_path / "out"
    argv = ["evaluate", "--model", str(good), "--model", str(bad), "--data", str(crops), "--precropped"]
    code = main([*argv, "--out", str(out), "--bootstrap", "10", "--push"])
    stdout, stderr = capsys.readouterr()
    assert code == 1
    assert stderr.rstrip().endswith("the other models' results are kept; nothing was pushed")
    assert str(good) in stdout and str(bad) not in stdout  # the table of the model with results
    assert "lfw-crops:default:all" in hub.read_eval_results(good)["results"]
    assert not (bad / "eval_results.json").exists() and (out / "report.html").is_file()
    assert rec.calls == []


def test_cli_evaluate_bundled_model_writes_a_copy(crops, tmp_path, capsys) -> None:
    bundled = hub.DEFAULT_MODEL
    results_file = hub.resolve(bundled) / "eval_results.json"
    before = results_file.read_bytes() if results_file.exists() else None
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            "--model",
            bundled,
            "--data",
            str(crops),
            "--precropped",
            "--out",
            str(out),
            "--bootstrap",
            "20",
            "--no-report",
        ]
    )
    assert code == 0, capsys.readouterr().err
    copy = out / evaluation.slug(bundled)
    assert (copy / "config.json").is_file() and (copy / "README.md").is_file()
    assert "lfw-crops:default:all" in hub.read_eval_results(copy)["results"]
    after = results_file.read_bytes() if results_file.exists() else None
    assert after == before  # package data untouched


def test_cli_errors_are_clear(repos, tmp_path, capsys) -> None:
    code = main(["evaluate", "--model", str(repos["fer7"]), "--data", str(tmp_path / "nowhere.zip")])
    assert code == 1 and "ferhub evaluate:" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    code = main(["report", "--results", str(tmp_path / "empty"), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code == 1 and "ferhub report:" in err


def test_report_skips_a_model_without_results_and_reports_the_others(repos, crops, tmp_path, capsys) -> None:
    """eval/README's `report --results runs/my-model ferhub/fer-mini-xception` wrote nothing: the bundled
    model has no eval_results.json and one entry without results refused them all (``--video`` skips)."""
    (run,) = evaluation.evaluate([str(repos["fer7"])], str(crops), precropped=True, n_resamples=10)
    eval_results.write(repos["fer7"], {run.key: run.entry}, render_card=False)
    html_path = tmp_path / "r.html"
    code = main(
        ["report", "--results", str(repos["fer7"]), "ferhub/fer-mini-xception", "--out", str(html_path)]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "ferhub report: skipped ferhub/fer-mini-xception: no eval_results.json" in err
    assert run.key in html_path.read_text()
    # a mistyped folder is no model without results: the command fails rather than report one model short
    html_path.unlink()
    code = main(
        ["report", "--results", str(repos["fer7"]), str(tmp_path / "nowhere"), "--out", str(html_path)]
    )
    assert code == 1 and not html_path.exists() and "skipped" not in capsys.readouterr().err


def test_cli_compare_and_report(repos, crops, tmp_path, capsys) -> None:
    out = tmp_path / "cmp.json"
    code = main(
        [
            "compare",
            str(repos["fer7"]),
            str(repos["fer8"]),
            "--data",
            str(crops),
            "--precropped",
            "--json",
            str(out),
            "--out",
            str(tmp_path / "cmp.html"),
        ]
    )
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "McNemar p" in stdout
    result = json.loads(out.read_text())
    pair = result["pairs"][0]
    # McNemar from the per-image predictions, recomputed here
    runs = evaluation.evaluate(
        [str(repos["fer7"]), str(repos["fer8"])], str(crops), precropped=True, n_resamples=10
    )
    y = np.array(runs[0].predictions.y_true)
    c7 = np.array(runs[0].predictions.y_pred) == y
    p8 = runs[1].predictions
    c8 = np.array([p8.labels[i] for i in p8.y_pred]) == np.array([p8.labels[i] for i in p8.y_true])
    assert pair["mcnemar"]["a_only_correct"] == int(np.sum(c7 & ~c8))
    assert pair["mcnemar"]["b_only_correct"] == int(np.sum(~c7 & c8))
    assert (tmp_path / "cmp.html").stat().st_size > 1_000_000  # plotly.js embedded

    # ferhub report from the repo folders (+ predictions and data for thumbnails)
    folders = []
    for run in runs:
        folder = tmp_path / evaluation.slug(run.name)
        eval_results.write(folder, {run.key: run.entry}, render_card=False)
        run.predictions.save(tmp_path / f"{evaluation.slug(run.name)}.predictions.json")
        folders.append(folder / "eval_results.json")
    html_path = tmp_path / "report.html"
    code = main(
        [
            "report",
            "--results",
            *map(str, folders),
            "--predictions",
            *map(str, tmp_path.glob("*.predictions.json")),
            "--data",
            str(crops),
            "--out",
            str(html_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    text = html_path.read_text()
    assert "lfw-crops:default:all" in text and "McNemar p" in text and "data:image/jpeg;base64," in text


def test_compare_on_unlabelled_photos(repos, photos, detector) -> None:
    pred = Predictor([str(repos["fer7"]), str(repos["fer8"])], detector=detector)
    out = evaluation.compare_on_images(pred, sorted(photos.rglob("*.jpg")))
    assert out["num_faces"] == 2  # the coffee cup has none
    assert out["labels"] == list(FER8)
    assert len(out["agreement"]) == 2 and out["agreement"][0][0] == 1.0


def test_compare_on_photos_names_each_image_it_cannot_read(repos, photos, detector, tmp_path, capsys) -> None:
    """A missing or truncated file was dropped without a word (`1 faces in 3 images`)."""
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((photos / "happy" / "astronaut.jpg").read_bytes()[:500])
    pred = Predictor([str(repos["fer7"]), str(repos["fer8"])], detector=detector)
    said: list[tuple[str | None, str]] = []
    images = [str(photos / "happy" / "astronaut.jpg"), str(broken), str(tmp_path / "nowhere.jpg")]
    out = evaluation.compare_on_images(pred, images, on_error=lambda path, error: said.append((path, error)))
    assert [path for path, _ in said] == images[1:] and "no such file" in said[1][1]
    assert out["num_images"] == 3 and out["num_faces"] == 1
    assert out["unreadable"]["count"] == 2 and out["unreadable"]["examples"][0]["path"] == str(broken)
    with pytest.raises(evaluation.EvaluationError, match="none of the 2 images given could be read"):
        evaluation.compare_on_images(pred, images[1:])
    # the command names each on stderr, one line each, as `ferhub predict` does
    capsys.readouterr()
    assert main(["compare", str(repos["fer7"]), str(repos["fer8"]), "--images", *images]) == 0
    stdout, stderr = capsys.readouterr()
    assert "1 faces in 3 images (2 could not be read)" in stdout
    lines = stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"ferhub compare: {broken}: ")
    assert lines[1] == f"ferhub compare: {tmp_path / 'nowhere.jpg'}: no such file"


def test_cli_compare_images_refuses_out_and_videos_before_loading_anything(tmp_path, capsys) -> None:
    """`--out` with `--images` wrote nothing and said nothing; a video was "no face found", never read."""
    (tmp_path / "a.jpg").write_bytes(b"")
    code = main(
        ["compare", "m1", "m2", "--images", str(tmp_path / "a.jpg"), "--out", str(tmp_path / "c.html")]
    )
    assert code == 2 and "--out writes a report of labelled data (--data)" in capsys.readouterr().err
    code = main(["compare", "m1", "m2", "--images", str(tmp_path / "a.jpg"), str(tmp_path / "clip.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and f"{tmp_path / 'clip.mp4'}: --images compares photos, not videos" in err
    assert not (tmp_path / "c.html").exists()


def test_eval_scripts_are_the_cli() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    for script, command in (("eval/evaluate.py", "ferhub evaluate"), ("eval/report.py", "ferhub report")):
        out = subprocess.run(
            [sys.executable, str(root / script), "--help"], capture_output=True, text=True, check=True
        ).stdout
        assert out.startswith(f"usage: {command} ")


def test_the_recorded_command_can_be_pasted_and_names_print_on_one_line(
    repos: dict[str, Path], crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A folder with a space lost its quotes in the card's command, ``ferhub --debug evaluate`` recorded
    "evaluate --debug evaluate", and a folder name's newline and escape codes went to the terminal raw."""
    import shlex
    import shutil

    from ferhub.cli import main

    data = Path(shutil.copytree(crops, tmp_path / "my crops\nfake line \x1b[31mRED"))
    model = Path(shutil.copytree(repos["fer8"], tmp_path / "my model\x1b[32m"))
    argv = ["--model", str(model), "--data", str(data), "--precropped", "--out", str(tmp_path / "eval out")]
    monkeypatch.setattr(sys, "argv", ["ferhub", "--debug", "evaluate", *argv])
    assert main(["--debug", "evaluate", *argv]) == 0
    stdout, stderr = capsys.readouterr()
    (entry,) = hub.read_eval_results(model)["results"].values()
    assert shlex.split(entry["command"]) == ["ferhub", "evaluate", *argv]
    assert "\x1b" not in stderr + stdout and "\\x1b[31mRED" in stderr and "my model\\x1b[32m" in stdout
    # eval/evaluate.py has no subcommand: an argument named "evaluate" is an argument
    from ferhub.commands.evaluate import _command

    monkeypatch.setattr(sys, "argv", ["eval/evaluate.py", "--data", "evaluate", "--model", "m"])
    assert _command() == "ferhub evaluate --data evaluate --model m"
    assert all("fake line" not in line or "my crops\\nfake line" in line for line in stderr.splitlines())


def test_a_models_repo_files_are_copied_under_the_results_lock(
    repos: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two evaluations of one Hub model into one --out at once: the second's copy of the repo's
    eval_results.json, made after the first had written its entry under the lock, lost that entry."""
    import shutil
    from types import SimpleNamespace

    from ferhub import fileio

    held: list[bool] = []
    real_copy = shutil.copy2

    def copy(src, dst, **kwargs):
        try:  # another writer of the folder's results (its own open file) must find the lock taken
            f = fileio.lock_file(Path(dst).parent / eval_results.LOCK_NAME, wait=False)
        except BlockingIOError:
            held.append(True)
        else:
            held.append(False)
            f.close()
        return real_copy(src, dst, **kwargs)

    monkeypatch.setattr(evaluation.shutil, "copy2", copy)
    run = SimpleNamespace(spec="org/tiny7", folder=repos["fer7"], name="org/tiny7")
    target = evaluation.results_folder(run, tmp_path / "out")
    assert (target / "config.json").is_file() and held and all(held)
    assert not (target / eval_results.LOCK_NAME).exists()
