"""The Predictor as a Python caller meets it: settings refused when built, one image where a list is asked
refused, one decoding for every entry (EXIF included), NaN never reported as an answer, copies and pickles
that work, and typed messages for the odd call."""

from __future__ import annotations

import copy
import io
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from images_corpus import exif_rotated, gradient
from PIL import Image

from ferhub import hub
from ferhub.errors import DeviceError, FerhubError, ImageDecodeError, WrongTypeError
from ferhub.faces import Face, FaceDetector
from ferhub.labels import FER7
from ferhub.models import create_model
from ferhub.predict import Predictor, PredictorSettingError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("test_tiny", labels=FER7).eval()


class NoFaces:
    """A detector that finds nothing (with ``no_face="fallback"``, each image is one face): no MTCNN."""

    def detect(self, image: Image.Image) -> list[Face]:
        return []


def photo(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A picture whose every crop differs from its turned copy's (noise over a gradient)."""
    noise = np.random.default_rng(seed).integers(0, 60, (height, width, 3))
    return Image.fromarray(np.clip(gradient(width, height) + noise, 0, 255).astype(np.uint8))


FACE = Face(box=(10.0, 6.0, 40.0, 40.0), score=1.0)


# -- 1: batch_size ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -1, -64, 2.5, 8.0, True, "8", None])
def test_batch_size_is_refused_when_the_predictor_is_built(bad) -> None:
    """A negative size made every forward loop skip, returning np.empty's memory as probabilities; 0 raised
    range()'s bare ValueError part-way through predict."""
    with pytest.raises(PredictorSettingError, match=r"batch_size must be a positive int .* got"):
        Predictor(tiny(), batch_size=bad, detector=NoFaces())
    assert issubclass(PredictorSettingError, ValueError) and issubclass(PredictorSettingError, FerhubError)


def test_any_positive_batch_size_gives_the_same_probabilities() -> None:
    p = Predictor(tiny(), detector=NoFaces(), batch_size=np.int64(2))
    assert p.batch_size == 2 and type(p.batch_size) is int
    crops = [photo(seed=i) for i in range(5)]
    (by_two,) = p.classify_crops(crops)
    p.batch_size = 64
    np.testing.assert_allclose(p.classify_crops(crops)[0], by_two, atol=1e-6)
    np.testing.assert_allclose(by_two.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(PredictorSettingError):
        p.batch_size = -1  # set later: checked all the same
    assert p.batch_size == 64


# -- 6: one image where a list is asked for ---------------------------------------------------------------
def test_one_image_given_where_a_list_is_asked_is_refused(tmp_path: Path) -> None:
    """A str is a sequence: predict("photo.jpg") gave one "no such file" result per character."""
    path = tmp_path / "photo.png"
    photo().save(path)
    p = Predictor(tiny(), detector=NoFaces(), no_face="fallback")
    for one in (str(path), path, path.read_bytes(), photo(), np.asarray(photo())):
        with pytest.raises(TypeError, match=r"predict takes a list of images, got one .*predict_image"):
            p.predict(one)
        with pytest.raises(TypeError, match=r"classify_crops takes a list of crops, got one"):
            p.classify_crops(one)
    results = p.predict([str(path)])  # as the module docstring shows it
    assert len(results) == 1 and results[0].ok and results[0].path == str(path)
    batch = np.stack([np.asarray(photo(seed=i)) for i in range(3)])  # N x H x W x C: N images
    assert [r.ok for r in p.predict(batch)] == [True] * 3
    assert [r.ok for r in p.predict(iter([path, path]))] == [True, True]


@pytest.mark.parametrize(("given", "got"), [(None, "None"), (5, "int 5"), (3.5, "float 3.5")])
def test_what_is_no_list_at_all_is_a_wrong_type_error(given: Any, got: str) -> None:
    """``predict(None)`` (an upload field left empty) raised Python's bare "not iterable" TypeError, which
    ``except FerhubError`` missed and which said nothing of what was expected."""
    p = Predictor(tiny(), detector=NoFaces(), no_face="fallback")
    expected = r"takes a list of {} \(paths, bytes, PIL images or numpy arrays\), got {}$"
    with pytest.raises(WrongTypeError, match="Predictor.predict " + expected.format("images", got)):
        p.predict(given)
    with pytest.raises(WrongTypeError, match="Predictor.classify_crops " + expected.format("crops", got)):
        p.classify_crops(given)


def test_arrays_that_are_sequences_of_images_are_taken_as_before(tmp_path: Path) -> None:
    """A 1-D array of paths (np.array(paths), df.path.to_numpy(str)) and an N x H x W stack of grey images
    (FER2013's layout) were refused as "one image" by the single-image check; before it they worked."""
    p = Predictor(tiny(), detector=NoFaces(), no_face="fallback")
    paths = []
    for i in range(2):
        photo(seed=i).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    results = p.predict(np.array(paths))
    assert [r.ok for r in results] == [True, True] and [r.path for r in results] == paths
    grey = np.stack([np.asarray(photo(48, 48, seed=i).convert("L")) for i in range(3)])  # N x 48 x 48
    results = p.predict(grey)
    assert [r.ok for r in results] == [True] * 3 and (results[0].width, results[0].height) == (48, 48)
    (stacked,) = p.classify_crops(grey)
    (listed,) = p.classify_crops(list(grey))
    assert stacked.shape == (3, 7)
    np.testing.assert_allclose(stacked, listed, atol=1e-6)
    for stack in (grey.astype(np.float32) / 255, grey[:, :, :5], np.zeros((2, 48, 48, 3), np.uint8)):
        assert len(p.classify_crops(stack)[0]) == len(
            stack
        )  # N x H x W (any width but 1, 3, 4), N x H x W x C


@pytest.mark.parametrize(
    ("shape", "one"),
    [
        ((48, 64), "an H x W image"),
        ((48, 64, 3), "an H x W x C image"),
        ((48, 64, 4), "an H x W x C image"),
        ((48, 64, 1), "an H x W x C image"),
    ],
)
def test_one_array_image_is_refused_with_what_it_is(shape: tuple[int, ...], one: str) -> None:
    """Only what cannot be a stack: H x W, or H x W x C with C 1, 3 or 4 (images 1-4 pixels wide are none)."""
    p = Predictor(tiny(), detector=NoFaces(), no_face="fallback")
    image = np.zeros(shape, np.uint8)
    with pytest.raises(TypeError) as e:
        p.predict(image)
    assert str(e.value) == (
        f"Predictor.predict takes a list of images, got one numpy array of shape {shape}: {one}, not a stack"
        " of images; pass [image] or use predict_image(image) (a stack of images is N x H x W or"
        " N x H x W x C)"
    )
    with pytest.raises(
        TypeError, match=rf"classify_crops takes a list of crops, got one numpy array .*{one}"
    ):
        p.classify_crops(image)
    assert p.predict([image])[0].ok and p.predict_image(image).ok


def test_a_path_names_one_model(tmp_path: Path) -> None:
    folder = hub.save(tiny(), tmp_path / "tiny")
    p = Predictor(folder, detector=NoFaces())
    assert p.names == [str(folder)]
    with pytest.raises(TypeError, match="models must be a model id"):
        Predictor(123)  # type: ignore[arg-type]


def test_names_given_as_one_string_are_refused() -> None:
    """A string was taken letter by letter: two models named 'f' and 'm', or "1 models but 4 names"."""
    for models, names in (([tiny(), tiny()], "fm"), (tiny(), "mini"), (tiny(), "x")):
        with pytest.raises(
            WrongTypeError, match=f"names takes a list of names, one per model; got a string '{names}'"
        ):
            Predictor(models, names=names, detector=NoFaces())
    assert Predictor(tiny(), names=["mini"], detector=NoFaces()).names == ["mini"]


# -- 5: one decoding for every entry ---------------------------------------------------------------------
def test_every_entry_reads_a_pil_image_upright_as_predict_does(tmp_path: Path) -> None:
    """predict_image turned an EXIF-rotated PIL image upright and gave faces in upright pixels;
    classify_faces, classify_many and explain_faces cropped the stored (sideways) pixels with them."""
    from ferhub.saliency import explain_faces

    upright = photo(64, 48)
    stored = Image.open(io.BytesIO(exif_rotated(upright, "PNG")))
    assert stored.size == (48, 64)  # as stored: sideways
    model = tiny()
    p = Predictor(model, detector=NoFaces(), no_face="fallback")
    result = p.predict_image(stored)
    assert (result.width, result.height) == (64, 48)
    (face,) = [f.face for f in result.faces]
    (expected,) = p.classify_faces(upright, [face, FACE])
    (got,) = p.classify_faces(stored, [face, FACE])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got[0], [result.faces[0].probabilities[k] for k in FER7], atol=1e-6)
    (many,) = p.classify_many([(stored, face), (stored, FACE), (upright, FACE)])
    np.testing.assert_array_equal(many, np.concatenate([expected, expected[1:]]))
    (ours,) = explain_faces(model, stored, [FACE], "saliency")
    (theirs,) = explain_faces(model, upright, [FACE], "saliency")
    assert np.array_equal(np.asarray(ours.crop), np.asarray(theirs.crop)) and ours.target == theirs.target
    # arrays and paths are images for these entries too (they raised AttributeError / TypeError)
    (from_array,) = explain_faces(model, np.asarray(upright), [FACE], "saliency")
    assert np.array_equal(np.asarray(from_array.crop), np.asarray(theirs.crop))
    upright.save(tmp_path / "face.png")
    crops = [upright, np.asarray(upright), tmp_path / "face.png", stored]
    (probs,) = p.classify_crops(crops)
    np.testing.assert_allclose(probs, np.repeat(probs[:1], 4, axis=0), atol=1e-6)
    with pytest.raises(ImageDecodeError, match="unsupported input type int"):
        p.classify_faces(5, [FACE])  # type: ignore[arg-type]


# -- 7: NaN -----------------------------------------------------------------------------------------------
class NaNOnBright(torch.nn.Module):
    """Finite weights, NaN logits for bright inputs: a model whose computation, not its file, goes wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = tiny()
        self.config = self.inner.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.inner(x)
        bright = x.mean(dim=(1, 2, 3)) > 0
        return torch.where(bright[:, None], torch.full_like(logits, float("nan")), logits)


def test_nan_probabilities_are_an_error_never_a_label() -> None:
    """argmax of a NaN row is 0: the image got 'angry' with NaN probabilities, and to_dict NaN (not JSON)."""
    p = Predictor(NaNOnBright(), detector=NoFaces(), no_face="fallback", runtime="torch")
    white, black = Image.new("RGB", (40, 40), "white"), Image.new("RGB", (40, 40), "black")
    results = p.predict([white, black])
    assert not results[0].ok and results[0].faces == []
    assert "gave NaN or infinite probabilities for face 1" in results[0].error
    assert results[1].ok and len(results[1].faces) == 1  # the other image keeps its result
    json.dumps([r.to_dict() for r in results], allow_nan=False)  # valid JSON


class NaNOnDark(NaNOnBright):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(-x)


def test_the_nan_error_names_only_the_models_that_failed_on_that_image() -> None:
    """Each failing image's message named every model that failed anywhere in the batch."""
    bright_fails, dark_fails = NaNOnBright(), NaNOnDark()
    p = Predictor(
        [bright_fails, dark_fails], names=["A", "B"], detector=NoFaces(), no_face="fallback", runtime="torch"
    )
    white, black = Image.new("RGB", (40, 40), "white"), Image.new("RGB", (40, 40), "black")
    results = p.predict([white, black])
    assert "model A gave NaN or infinite probabilities for face 1; the model's weights" in results[0].error
    assert "model B" not in results[0].error
    assert "model B gave NaN or infinite probabilities for face 1; the model's weights" in results[1].error
    assert "model A" not in results[1].error


def test_nan_weights_are_refused_by_the_predictor_and_by_save(tmp_path: Path) -> None:
    """ferhub.load refused such a repo, but ferhub.save wrote it and Predictor(module) ran it."""
    model = tiny()
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"holds NaN or infinite values in classifier\.weight"):
        Predictor(model, detector=NoFaces())
    with pytest.raises(ValueError, match=r"save\(\): .* holds NaN or infinite values in classifier\.weight"):
        hub.save(model, tmp_path / "nan")
    assert not (tmp_path / "nan").exists()


def test_the_cli_gives_nan_scores_as_the_images_error_in_strict_json(tmp_path: Path, capsys) -> None:
    """Finite weights large enough to overflow: NaN scores, which no load-time check sees."""
    from ferhub.cli import main

    model = tiny()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(3e38)
    folder = hub.save(model, tmp_path / "overflowing")
    photo().save(tmp_path / "photo.png")
    code = main(["predict", str(tmp_path / "photo.png"), "--model", str(folder), "--no-face", "fallback"])
    out, err = capsys.readouterr()
    (result,) = json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON output"))
    assert code == 1 and result["faces"] == [] and "gave NaN or infinite probabilities" in result["error"]
    assert "gave NaN or infinite probabilities" in err


# -- 10: copies and pickles ------------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_a_predictor_deep_copies_and_pickles(runtime: str, tmp_path: Path) -> None:
    """ONNX Runtime sessions cannot be pickled: deepcopy and pickle raised a bare onnxruntime TypeError."""
    folder = hub.save(tiny(), tmp_path / "tiny")
    for spec in (tiny(1), str(folder)):  # a module; a folder (on ONNX, run from its cached graph)
        p = Predictor(spec, detector=NoFaces(), no_face="fallback", runtime=runtime)
        image = photo()
        expected = p.predict_image(image).faces[0].probabilities
        for clone in (copy.deepcopy(p), pickle.loads(pickle.dumps(p)), copy.copy(p)):
            assert clone.runtime == runtime and clone.names == p.names
            assert clone.predict_image(image).faces[0].probabilities == pytest.approx(expected, abs=1e-6)
        assert copy.copy(p)._runners is p._runners  # a shallow copy shares the sessions


def test_threads_first_asking_at_once_make_one_detector_and_load_each_model_once(monkeypatch) -> None:
    """A web service's first requests arrive together: each thread built a detector of its own (an MTCNN on
    the GPU each with device="cuda"). Each construction here waits until a second one starts (at most 1 s):
    without the lock every thread is past its ``is None`` check by then; with it, only one is made. The same
    for a model a warm start left unloaded, loaded by ``models`` on first use. A pickled copy has a lock of
    its own."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import ferhub.predict

    made: list[int] = []
    second = threading.Event()

    def slowly(thing: Any) -> Any:
        made.append(1)
        if len(made) > 1:
            second.set()
        second.wait(1.0)
        return thing

    monkeypatch.setattr(ferhub.predict, "FaceDetector", lambda **kwargs: slowly(NoFaces()))
    p = Predictor(tiny(), no_face="fallback")
    start = threading.Barrier(8)

    def first_use(read: Callable[[], Any]) -> Any:
        start.wait()
        return read()

    with ThreadPoolExecutor(8) as pool:
        detectors = list(pool.map(first_use, [lambda: p.detector] * 8))
    assert len(made) == 1 and all(d is detectors[0] for d in detectors)

    made.clear()
    second.clear()
    loaded = tiny(2)
    p._models, p._specs = [None], ["a model a warm start ran from its ONNX graph"]
    monkeypatch.setattr(p, "_load", lambda spec: slowly(loaded))
    with ThreadPoolExecutor(8) as pool:
        models = list(pool.map(first_use, [lambda: p.models] * 8))
    assert len(made) == 1 and all(m == [loaded] for m in models)

    clone = pickle.loads(pickle.dumps(Predictor(tiny(), no_face="fallback")))
    assert clone._lazy_lock is not p._lazy_lock and isinstance(clone.detector, NoFaces)


def test_a_predictors_own_detector_is_made_again_in_a_copy() -> None:
    p = Predictor(tiny(), runtime="onnx")
    assert p.detector.runtime == "onnx"  # made on first use, sessions and all
    clone = pickle.loads(pickle.dumps(p))
    assert clone.detector is not p.detector and clone.detector.runtime == "onnx"
    given = Predictor(tiny(), runtime="onnx", detector=FaceDetector(min_face_size=30, runtime="onnx"))
    assert copy.deepcopy(given).detector.min_face_size == 30  # the given settings, new sessions

    class MyDetector(FaceDetector):
        pass

    custom = Predictor(tiny(), runtime="onnx", detector=MyDetector(runtime="onnx"))
    with pytest.raises(TypeError, match="create a Predictor in each process"):
        copy.deepcopy(custom)


# -- 11: typed messages ----------------------------------------------------------------------------------
def test_a_device_ferhub_does_not_run_on_is_a_device_error() -> None:
    for device in ("xpu", "meta"):
        refused = rf"device '{device}' is not one ferhub runs on: use auto, cpu, cuda"
        with pytest.raises(DeviceError, match=refused):
            Predictor(tiny(), device=device, detector=NoFaces())
    # an Apple GPU is taken where torch has one (it was before); here, a clear refusal
    with pytest.raises(DeviceError, match=r"device 'mps' was asked for but torch sees no Apple GPU \(MPS\)"):
        Predictor(tiny(), device="mps", detector=NoFaces())


def test_a_folder_given_as_a_video_is_not_called_missing(tmp_path: Path) -> None:
    from ferhub.errors import VideoDecodeError
    from ferhub.videoio import open_video

    with pytest.raises(VideoDecodeError, match="not a regular file"):
        open_video(tmp_path)
    with pytest.raises(VideoDecodeError, match="no such file"):
        open_video(tmp_path / "missing.mp4")


class OwnPath:
    """An ``os.PathLike`` that is no ``pathlib.Path`` (a project's own file class): only ``__fspath__``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return str(self.path)


def test_any_path_like_is_read_and_named_by_its_path(tmp_path: Path) -> None:
    """``str()`` of a path-like that is no ``pathlib.Path`` is its repr: photos were named ``<...OwnPath
    object at 0x...>`` in results and errors, an existing video was refused as unreadable, and an animated GIF
    was taken for a still."""
    import clips

    from ferhub.video import VideoAnalyzer
    from ferhub.videoio import is_animation, open_video

    photo().save(tmp_path / "a.png")
    p = Predictor(tiny(), detector=NoFaces(), no_face="fallback")
    found, missing = p.predict([OwnPath(tmp_path / "a.png"), OwnPath(tmp_path / "b.png")])
    assert found.path == str(tmp_path / "a.png") and found.error is None and found.faces
    assert missing.path == str(tmp_path / "b.png") and missing.error == f"{tmp_path / 'b.png'}: no such file"
    frames = [np.asarray(photo(clips.W, clips.H, seed)) for seed in range(3)]
    clip = clips.write_clip(tmp_path / "c.mp4", frames)
    with open_video(OwnPath(clip)) as video:
        assert video.path == str(clip) and len(list(video.frames())) == 3
    run = VideoAnalyzer(p).open(OwnPath(clip))
    assert run.path == run.header()["path"] == str(clip)
    run.close()
    gif = tmp_path / "d.gif"
    first, *rest = [Image.fromarray(f) for f in frames]
    first.save(gif, save_all=True, append_images=rest)
    assert is_animation(OwnPath(gif))


# -- 12: the caller's module -----------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_a_callers_module_keeps_its_train_mode_and_device(runtime: str, monkeypatch) -> None:
    """Training code that checks its model with a Predictor goes on training it: the predictor runs its own
    copies (in eval mode, on its device). It once switched the caller's module to eval mode (dropout off,
    BatchNorm's statistics frozen for the rest of training) and moved it to the predictor's device."""
    model = tiny(3).train()
    params = [(q, q.device) for q in model.parameters()]
    moved: list[tuple] = []
    real_to = torch.nn.Module.to

    def spy(self: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        if self is model:  # the caller's own module, not a copy of it
            moved.append((args, kwargs))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", spy)
    p = Predictor(model, runtime=runtime, device="cpu", detector=NoFaces(), no_face="fallback")
    probs = p.classify_crops([photo()])[0]
    assert p.predict_image(photo()).ok
    assert model.training and all(m.training for m in model.modules())
    assert moved == []
    assert all(q is q0 and q.device == d for q, (q0, d) in zip(model.parameters(), params, strict=True))
    assert p.models[0] is model
    # and the copies run in eval mode: the same probabilities as an eval copy's
    reference = Predictor(copy.deepcopy(model).eval(), runtime=runtime, device="cpu", detector=NoFaces())
    np.testing.assert_allclose(probs, reference.classify_crops([photo()])[0], atol=1e-6)


# -- 13: the pixel limit ---------------------------------------------------------------------------------
def test_an_image_in_memory_has_no_pixel_limit_and_an_encoded_one_keeps_it(grace_hopper) -> None:
    """The limit guards against a file whose header claims more pixels than its size suggests; a PIL image or
    array is already the caller's pixels (FaceDetector.detect took one, but the Predictor refused it, also
    after the limit's own advice: ``load_image(path, max_pixels=None)``). A 51 MP canvas with a real face."""
    from images_corpus import bomb_png

    from ferhub.images import DEFAULT_MAX_PIXELS

    big = Image.new("RGB", (7200, 7100))  # black: cheap to make, and only the pasted face is found
    assert big.width * big.height > DEFAULT_MAX_PIXELS
    big.paste(grace_hopper.resize((2048, 2400)), (3000, 2500))
    p = Predictor(tiny())
    result = p.predict_image(big)
    assert result.error is None and len(result.faces) == 1, result.error
    face = result.faces[0].face
    assert 3000 < face.box[0] < face.box[2] < 5048 and 2500 < face.box[1] < face.box[3] < 4900
    array = np.asarray(big)
    assert [len(r.faces) for r in p.predict([array])] == [1]
    for image in (big, array):
        assert p.classify_faces(image, [face])[0].shape == (1, len(FER7))
    assert p.classify_many([(big, face), (big, face)])[0].shape == (2, len(FER7))
    del array, big
    # what ferhub decodes itself (paths, bytes) keeps the limit, with the advice that worked above
    header = bomb_png(7200, 7100)
    (refused,) = p.predict([header])
    assert refused.error is not None and "over the limit of 50.0 MP" in refused.error
    assert "load_image's max_pixels sets the limit" in refused.error
    with pytest.raises(ImageDecodeError, match="over the limit"):
        p.classify_faces(header, [face])


# -- 14: test-time augmentation views --------------------------------------------------------------------
def test_the_views_example_of_classify_faces_runs() -> None:
    """The docstring's example, run here with a predictor, a photo and its faces (doctest skips it, having
    none): ``views`` is called with the crop alone, so ``tta_views`` is given its method first (given bare,
    as the docstring once suggested, it raised TypeError)."""
    import doctest

    doc = Predictor.classify_faces.__doc__ or ""
    globs = {
        "predictor": Predictor(tiny(), detector=NoFaces()),
        "photo": photo(),
        "faces": [FACE, Face(box=(30.0, 10.0, 60.0, 44.0), score=1.0)],
    }
    test = doctest.DocTestParser().get_doctest(doc, globs, "classify_faces", None, 0)
    assert any("partial(tta_views" in e.source for e in test.examples)
    for example in test.examples:
        example.options.clear()  # run the lines doctest skips
    out: list[str] = []
    runner = doctest.DocTestRunner(verbose=False)
    results = runner.run(test, out=out.append, clear_globs=False)
    assert results.failed == 0 and results.attempted == len(test.examples), "".join(out)


# -- the API round: predict_image's faces given back, ferhub's own argument checks ------------------------
def test_predict_images_faces_are_taken_back_by_classify_and_explain() -> None:
    """The README says classify_faces and explain_faces take the faces predict_image found; its ``.faces``
    are FaceResult objects, which raised a bare AttributeError from deep inside crop_face. They are taken for
    their ``.face``; anything else is a TypeError saying what to pass."""
    from ferhub.saliency import explain_faces

    model = tiny()
    p = Predictor(model, detector=NoFaces(), no_face="fallback")
    image = photo()
    result = p.predict_image(image)
    faces = [f.face for f in result.faces]
    expected = p.classify_faces(image, faces)[0]
    np.testing.assert_array_equal(p.classify_faces(image, result.faces)[0], expected)
    np.testing.assert_array_equal(p.classify_many([(image, f) for f in result.faces])[0], expected)
    (got,) = explain_faces(model, image, result.faces, "saliency")
    (want,) = explain_faces(model, image, faces, "saliency")
    np.testing.assert_array_equal(got.heatmap, want.heatmap)
    # another detector's face objects (or a Face of a class reloaded in a notebook) are taken as they are
    from types import SimpleNamespace

    alike = [SimpleNamespace(**vars(f)) for f in faces]
    np.testing.assert_array_equal(p.classify_faces(image, alike)[0], expected)
    with pytest.raises(TypeError, match=r"classify_faces takes faces .* got tuple; a box is Face\(box="):
        p.classify_faces(image, [(10, 6, 40, 40)])
    with pytest.raises(TypeError, match=r"explain_faces takes faces .* got dict; a box is Face\(box="):
        explain_faces(model, image, [{"box": [10, 6, 40, 40]}], "saliency")


def test_a_predictor_argument_that_cannot_work_is_a_predictor_setting_error() -> None:
    """A bad runtime or an empty model list raised a plain ValueError, which ``except FerhubError`` missed."""
    from ferhub.predict import resolve_runtime

    for kwargs, match in (
        ({"models": tiny(), "runtime": "tf"}, "runtime must be 'auto', 'onnx' or 'torch', got 'tf'"),
        ({"models": []}, "Predictor needs at least one model"),
    ):
        with pytest.raises(PredictorSettingError, match=match) as e:
            Predictor(detector=NoFaces(), **kwargs)
        assert isinstance(e.value, ValueError) and isinstance(e.value, FerhubError)
    with pytest.raises(PredictorSettingError, match="runtime 'onnx' runs on the CPU; device 'cuda:0'"):
        resolve_runtime("onnx", "cuda:0")  # (Predictor refuses cuda first where torch sees no GPU)
