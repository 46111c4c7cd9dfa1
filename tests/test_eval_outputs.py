"""What ``evaluate`` and ``compare`` write, and when they refuse: an ``--out`` that cannot be written is
refused before any work, one model's files that cannot be written lose no other model's results, long names
fit a file name, a failed write keeps the earlier report and JSON whole, and a ``predictor`` given to
``evaluation.evaluate`` must hold the models named."""

from __future__ import annotations

import errno
import io
import json
import resource
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ferhub import errors, eval_results, evaluation, fileio, hub
from ferhub.cli import main
from ferhub.labels import FER7
from ferhub.models import create_model
from ferhub.predict import Predictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def face_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path_factory.mktemp("ferhub_cache")))


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("repos")
    folders = {}
    for seed, name in enumerate(("a", "b")):
        torch.manual_seed(seed)
        folders[name] = hub.save(create_model("test_tiny", labels=FER7).eval(), root / name)
    return folders


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``crops/<class>/<i>.png``: one LFW face per FER7 class."""
    import skimage.data

    lfw = skimage.data.lfw_subset()
    root = tmp_path_factory.mktemp("data") / "crops"
    for i, label in enumerate(FER7):
        (root / label).mkdir(parents=True)
        Image.fromarray((lfw[i] * 255).astype(np.uint8)).save(root / label / f"{i}.png")
    return root


def _evaluate(*argv: str) -> list[str]:
    return ["evaluate", *argv, "--precropped", "--bootstrap", "10"]


# -- evaluate --out: checked before any work ----------------------------------------------------------------
def test_an_out_that_cannot_be_written_is_refused_before_evaluating(
    repos, crops, tmp_path, capsys, monkeypatch
) -> None:
    """``--out`` (or the default eval_out in the current folder) was found unwritable only after every image
    had been detected and classified; predict checks its --out-dir before any work, and so does this."""
    monkeypatch.setattr(
        evaluation, "evaluate", lambda *a, **k: pytest.fail("evaluated before --out was checked")
    )
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for out in (a_file, a_file / "ev"):
        code = main(_evaluate("--model", str(repos["a"]), "--data", str(crops), "--out", str(out)))
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith(f"ferhub evaluate: --out {out}: ") and "is a file, not a folder" in err, err
    here = tmp_path / "here"
    here.mkdir()
    (here / "eval_out").write_text("not a folder")
    monkeypatch.chdir(here)
    code = main(_evaluate("--model", str(repos["a"]), "--data", str(crops)))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ferhub evaluate: --out eval_out: eval_out is a file"), err
    assert a_file.read_text() == "not a folder"


# -- one model's files: that model's error, the others kept ------------------------------------------------
def test_one_models_unwritable_results_lose_no_other_models_results_or_the_report(
    repos, crops, tmp_path, capsys, monkeypatch
) -> None:
    """A model whose folder is on a full disk ended the command before the other models' results, the
    metrics table and the report were written, although every model had been evaluated."""
    a = Path(shutil.copytree(repos["a"], tmp_path / "a"))
    b = Path(shutil.copytree(repos["b"], tmp_path / "b"))
    write = eval_results.write

    def full_disk(folder, entries, **kw):
        if Path(folder) == a:
            raise OSError(errno.ENOSPC, "No space left on device", str(a / "eval_results.json"))
        return write(folder, entries, **kw)

    monkeypatch.setattr(eval_results, "write", full_disk)
    out = tmp_path / "out"
    code = main(_evaluate("--model", str(a), "--model", str(b), "--data", str(crops), "--out", str(out)))
    stdout, stderr = capsys.readouterr()
    assert code == 1, stderr
    assert str(a) in stdout and str(b) in stdout  # the table of both: both were evaluated
    assert "crops:default:all" in hub.read_eval_results(b)["results"]
    assert not (a / "eval_results.json").exists()
    (predictions,) = out.glob("*.predictions.json")
    assert json.loads(predictions.read_text())["model"] == "b"
    assert (out / "report.html").is_file()
    last = stderr.rstrip().splitlines()[-1]
    assert (
        last.startswith(f"ferhub evaluate: {a}: writing its results failed: the disk is full")
        and str(a / "eval_results.json") in last
    ), stderr


def test_long_model_and_data_names_fit_a_file_name(repos, crops, tmp_path, capsys) -> None:
    """A model id and a dataset id of ~150 characters each made a predictions file name past the 255 bytes a
    file system takes ("File name too long"): each is cut to its share, both starts readable."""
    model = Path(shutil.copytree(repos["a"], tmp_path / ("m" * 150)))
    data = Path(shutil.copytree(crops, tmp_path / ("d" * 150)))
    out = tmp_path / "out"
    code = main(_evaluate("--model", str(model), "--data", str(data), "--out", str(out), "--no-report"))
    assert code == 0, capsys.readouterr().err
    (predictions,) = out.glob("*.predictions.json")
    assert len(predictions.name.encode()) <= fileio.NAME_MAX and "~" in predictions.name
    # both parts readable (the model's is its whole path, as long as the test's temporary folder makes it)
    assert "m" * 16 in predictions.name and "d" * 40 in predictions.name
    assert predictions.name.endswith(".predictions.json")
    # a results copy (a bundled, Hub or in-memory model's) of a long name fits, and its moved-aside copy
    copy = evaluation.results_copy(out, "org/" + "x" * 300)
    assert copy.parent == out and len(copy.name.encode()) <= fileio.NAME_MAX
    copy.mkdir()
    aside = evaluation._move_aside(copy, "held another version", "test")
    assert aside.parent == out and ".replaced-1" in aside.name and len(aside.name.encode()) <= fileio.NAME_MAX


def test_a_model_given_by_a_relative_path_gets_a_visible_predictions_file(
    repos, crops, tmp_path, monkeypatch, capsys
) -> None:
    """``--model ./a`` made ``.--a.<key>.predictions.json``, a hidden file: ``ls`` showed only report.html."""
    assert [evaluation.slug(m) for m in ("./model", "../x/model", ".", "..", "/runs/a/model")] == [
        "model", "x--model", "model", "model", "runs--a--model",
    ]  # fmt: skip
    assert evaluation.slug("org/name@v1") == "org--name@v1"  # a Hub id's, as before
    out = tmp_path / "out"
    for folder, model in ((repos["a"].parent, "./a"), (repos["a"], ".")):
        monkeypatch.chdir(folder)
        code = main(_evaluate("--model", model, "--data", str(crops), "--out", str(out), "--no-report"))
        assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.glob("*.predictions.json"))  # beside results_folders.json
    assert names == ["a.crops--default--all.predictions.json", "model.crops--default--all.predictions.json"]


# -- report.html and compare --json: written atomically ----------------------------------------------------
def test_a_failed_report_write_keeps_the_earlier_report_whole(repos, crops, tmp_path) -> None:
    """report.html was written in place: under a file-size limit (or on a full disk) the earlier report was
    gone and a cut-off one left."""
    from ferhub.data import open_source
    from ferhub.report import runs_section, write_report

    source = open_source(str(crops), precropped=True)
    runs = evaluation.evaluate([str(repos["a"])], source, n_resamples=10)
    path = write_report(tmp_path / "report.html", [runs_section(source, runs)])
    before = path.read_bytes()
    assert len(before) > 1_000_000  # plotly.js embedded
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))  # Python ignores SIGXFSZ: EFBIG
    try:
        with pytest.raises(OSError) as e:
            write_report(path, [runs_section(source, runs)], title="again")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert e.value.errno == errno.EFBIG and e.value.filename == str(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_a_failed_compare_json_write_keeps_the_earlier_file(
    repos, crops, tmp_path, capsys, monkeypatch
) -> None:
    """``compare --json FILE`` wrote in place, as report.html did."""
    out = tmp_path / "cmp.json"
    out.write_text('{"earlier": true}\n')

    def full_disk(path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(fileio, "fsync_file", full_disk)  # the write's last step, before the rename
    argv = [
        "compare",
        str(repos["a"]),
        str(repos["b"]),
        "--data",
        str(crops),
        "--precropped",
        "--json",
        str(out),
    ]
    code = main(argv)
    stdout, stderr = capsys.readouterr()
    assert code == 1 and f"the disk is full: {out}" in stderr, stderr
    assert "McNemar p" in stdout  # the table, printed before the file
    assert out.read_text() == '{"earlier": true}\n' and [p.name for p in tmp_path.iterdir()] == ["cmp.json"]


# -- evaluation.evaluate(predictor=...) ----------------------------------------------------------------------
def test_a_predictor_holding_other_models_is_refused(repos, crops, tmp_path, monkeypatch) -> None:
    """Only the number of models was compared: a predictor of model A evaluated for the name B saved A's
    numbers under B's id, or into B's folder (a bundled model's folder inside the package for a local B)."""
    a, b = str(repos["a"]), str(repos["b"])
    p = Predictor([a])
    for named in ([b], [a, b], ["ferhub/fer-mini-xception"]):
        with pytest.raises(
            errors.EvaluationSettingError, match=rf"the predictor holds {a}, not the models named"
        ) as e:
            evaluation.evaluate(named, tmp_path / "no-such-data", predictor=p)  # refused before the data
        assert isinstance(e.value, ValueError) and isinstance(e.value, evaluation.EvaluationError)
    # the predictor's own models, however given: the same id, another path to the folder, the module, or the
    # name it reports them under (the app's cached modules, named by the ids picked)
    (run,) = evaluation.evaluate([a], str(crops), predictor=p, precropped=True, n_resamples=10)
    assert run.name == a and run.folder == repos["a"]
    monkeypatch.chdir(repos["a"].parent)
    evaluation._check_predictor(p, ["a"])
    module = hub.load(b)
    evaluation._check_predictor(Predictor([module]), [module])
    evaluation._check_predictor(Predictor([module]), [b])  # the folder the module was loaded from
    evaluation._check_predictor(Predictor([module], names=["org/b"]), ["org/b"])
    with pytest.raises(errors.EvaluationSettingError):
        evaluation._check_predictor(Predictor([module]), [hub.load(a)])
    # a bundled model by either of its names
    evaluation._check_predictor(Predictor(["fer-mini-xception"]), ["ferhub/fer-mini-xception"])
    evaluation._check_predictor(Predictor(["ferhub/fer-mini-xception"]), ["fer-mini-xception"])


# -- progress: a line of its own where stderr is no terminal ------------------------------------------------
def test_progress_off_a_terminal_is_whole_lines(repos, crops, tmp_path, capsys, monkeypatch) -> None:
    """In a log file or a Slurm job's output every ``\\r`` update of evaluate's progress landed on one line
    (``^Mphotos: 256/280 images^Mphotos: 280/280 images``); ``ferhub train`` leaves its bar out there. Now a
    line of its own at each tenth of the images and at the end; a terminal keeps the one overwritten line."""
    out = tmp_path / "out"
    assert main(_evaluate("--model", str(repos["a"]), "--data", str(crops), "--out", str(out))) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "\ncrops: 7/7 images\n" in f"\n{err}", err
    from ferhub.commands.evaluate import _Progress

    progress = _Progress()
    for done in range(256, 2800, 256):
        progress(done, 2800, f"photos: {done}/2800 images")
    progress(2800, 2800, "photos: 2800/2800 images")
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"photos: {d}/2800 images" for d in (512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 2560, 2800)
    ]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    progress = _Progress()
    progress(1, 2, "x: 1/2 images")
    progress(2, 2, "x: 2/2 images")
    assert terminal.getvalue() == "\rx: 1/2 images\rx: 2/2 images\n"
