"""Hostile images, paths, zips and command lines: each gets a clear error (or a correct result) in bounded
time and memory, and never a hang, a crash or an unbounded read. The cases run in a memory-limited child
(see hostile.py); the CLI cases call ``ferhub.cli.main`` there and report its exit code and stderr.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from hostile import suite

EXPECTED_ERRORS = ("ImageDecodeError", "DataSourceError", "EvaluationError", "CliExit")
_PREDICTOR: list[Any] = []


# -- helpers (run in the child) ------------------------------------------------------------------------------
def _predictor() -> Any:
    if not _PREDICTOR:
        from ferhub.predict import Predictor

        _PREDICTOR.append(Predictor())
    return _PREDICTOR[0]


def warm_up(tmp: Path) -> None:
    from PIL import Image

    _predictor().predict_image(Image.new("RGB", (64, 64), (120, 120, 120)))


def _predict(source: Any) -> str:
    """The one inference path, as the CLI and the app call it: an error becomes the result's ``error``."""
    (result,) = _predictor().predict([source])
    if result.error:
        from ferhub.images import ImageDecodeError

        raise ImageDecodeError(result.error)
    return f"{len(result.faces)} faces, {result.width}x{result.height}"


class CliExit(Exception):
    """``ferhub`` ended with a non-zero exit code: the message is ``code|stderr``."""


def _cli(*argv: str, stdout: Any = None) -> str:
    from ferhub.cli import main

    err, out = io.StringIO(), stdout or io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(list(argv))
    if code:
        raise CliExit(f"{code}|{err.getvalue().strip()}")
    return out.getvalue() if stdout is None else ""


def _evaluate(data: Path, out: Path) -> str:
    """``ferhub evaluate`` of the mini model on precropped faces (10 bootstrap rounds, no report)."""
    return _cli("evaluate", "--model", "ferhub/fer-mini-xception", "--data", str(data), "--precropped",
                "--bootstrap", "10", "--out", str(out), "--no-report")  # fmt: skip


def _evaluated_counts(data: Path, out: Path) -> dict:
    """Evaluate ``data`` and return how many images were read and how many were unreadable."""
    _evaluate(data, out)
    (entry,) = json.loads((out / "ferhub--fer-mini-xception" / "eval_results.json").read_text())[
        "results"
    ].values()
    return {"num_images": entry["num_images"], "unreadable": entry["unreadable"]["count"]}


def _png(width: int, height: int, *chunks: bytes) -> bytes:
    from images_corpus import png_chunk

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = zlib.compress((b"\x00" + b"\x80" * 3 * width) * height)
    body = b"".join(chunks) + png_chunk(b"IDAT", raw)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + body + png_chunk(b"IEND", b"")


def _faces_folder(tmp: Path) -> Path:
    import numpy as np
    import skimage.data
    from PIL import Image

    from ferhub.labels import FER7

    lfw = skimage.data.lfw_subset()
    root = tmp / "faces"
    for i, label in enumerate(FER7):
        (root / label).mkdir(parents=True)
        Image.fromarray((lfw[i] * 255).astype(np.uint8)).save(root / label / f"{i}.png")
    return root


# -- images -------------------------------------------------------------------------------------------------
def case_image_zero_bytes(tmp: Path) -> Any:
    return _predict(b"")


def case_image_truncated_jpeg(tmp: Path) -> Any:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 120, 200)).save(buf, "JPEG")
    return _predict(buf.getvalue()[:200])


def case_image_text_named_jpg(tmp: Path) -> Any:
    (tmp / "notes.jpg").write_text("not a photo\n" * 100)
    return _predict(str(tmp / "notes.jpg"))


def case_image_html_as_png(tmp: Path) -> Any:
    (tmp / "x.png").write_text("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    return _predict(str(tmp / "x.png"))


def case_image_bomb_header_png(tmp: Path) -> Any:
    from images_corpus import bomb_png

    return _predict(bomb_png(40000, 40000))


def case_image_bomb_header_gif(tmp: Path) -> Any:
    from images_corpus import bomb_gif

    return _predict(bomb_gif(40000, 40000))


def prepare_image_text_chunk_bomb(tmp: Path) -> None:
    from images_corpus import png_chunk

    ztxt = png_chunk(b"zTXt", b"k\x00\x00" + zlib.compress(b"a" * (256 << 20), 9))  # 256 MB of text
    (tmp / "text.png").write_bytes(_png(64, 64, ztxt))


def case_image_text_chunk_bomb(tmp: Path) -> Any:
    return _predict(str(tmp / "text.png"))


def prepare_image_20_megapixels_wide(tmp: Path) -> None:
    (tmp / "wide.png").write_bytes(_png(20_000_000, 1))  # 20 MP in one row, under the pixel limit


def case_image_20_megapixels_wide(tmp: Path) -> Any:
    return _predict(str(tmp / "wide.png"))


def prepare_image_7000x7000(tmp: Path) -> None:
    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 255, (7000, 7000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp / "big.jpg", quality=40)


def case_image_7000x7000(tmp: Path) -> Any:
    return _predict(str(tmp / "big.jpg"))


def prepare_image_gif_3000_frames(tmp: Path) -> None:
    from PIL import Image

    frames = [Image.new("P", (160, 160), i % 200) for i in range(3000)]
    frames[0].save(tmp / "anim.gif", save_all=True, append_images=frames[1:])


def case_image_gif_3000_frames(tmp: Path) -> Any:
    return _predict(str(tmp / "anim.gif"))


def case_image_array_nan_and_5d(tmp: Path) -> Any:
    import numpy as np

    assert "faces" in _predict(np.full((80, 80, 3), np.nan, dtype=np.float32))  # NaN pixels: black, no crash
    return _predict(np.zeros((2, 2, 2, 2, 2), dtype=np.uint8))


# awkward but valid photos: a face in each must still be found (bad input handled well, keep it)
def _hopper() -> Any:
    from PIL import Image

    from ferhub.assets import EXAMPLES_DIR

    return Image.open(EXAMPLES_DIR / "grace_hopper.jpg").convert("RGB")  # 512x600, one face


def case_image_cmyk_jpeg_face(tmp: Path) -> Any:
    _hopper().convert("CMYK").save(tmp / "cmyk.jpg", quality=92)
    return _predict(str(tmp / "cmyk.jpg"))


def case_image_16bit_gray_png_face(tmp: Path) -> Any:
    import numpy as np
    from PIL import Image

    gray = np.asarray(_hopper().convert("L")).astype(np.uint16) * 257
    Image.fromarray(gray).save(tmp / "gray16.png")
    return _predict(str(tmp / "gray16.png"))


def case_image_palette_png_face(tmp: Path) -> Any:
    from PIL import Image

    palette = _hopper().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.save(tmp / "palette.png", transparency=0)
    return _predict(str(tmp / "palette.png"))


def case_image_exif_rotated_face(tmp: Path) -> Any:
    """Stored on its side with EXIF Orientation 6, as phones write portraits: read upright (512x600)."""
    from images_corpus import exif_rotated

    (tmp / "portrait.jpg").write_bytes(exif_rotated(_hopper(), "JPEG"))
    return _predict(str(tmp / "portrait.jpg"))


# -- paths --------------------------------------------------------------------------------------------------
def case_path_fifo(tmp: Path) -> Any:
    os.mkfifo(tmp / "photo.jpg")  # opening a FIFO for reading blocks until a writer comes: must not hang
    return _predict(str(tmp / "photo.jpg"))


def case_path_symlink_to_dev_zero(tmp: Path) -> Any:
    (tmp / "photo.jpg").symlink_to("/dev/zero")  # an endless file
    return _predict(str(tmp / "photo.jpg"))


def case_path_sparse_10gb(tmp: Path) -> Any:
    with open(tmp / "photo.jpg", "wb") as f:
        f.truncate(10 << 30)  # 10 GB of zeros that take no disk: must not be read whole
    return _predict(str(tmp / "photo.jpg"))


def case_path_missing(tmp: Path) -> Any:
    return _predict(str(tmp / "nowhere" / "photo.jpg"))


def case_path_folder_symlink_loop(tmp: Path) -> Any:
    (tmp / "photos" / "sub").mkdir(parents=True)
    (tmp / "photos" / "sub" / "up").symlink_to("../..")
    (tmp / "photos" / "self").symlink_to(".")
    return _cli("predict", str(tmp / "photos"))


# -- zips (labelled data for evaluate) ----------------------------------------------------------------------
def case_zip_not_a_zip(tmp: Path) -> Any:
    (tmp / "data.zip").write_bytes(b"PK\x03\x04 this is not really a zip" * 10)
    return _cli("evaluate", "--model", "ferhub/fer-mini-xception", "--data", str(tmp / "data.zip"))


def case_zip_member_names_escape(tmp: Path) -> Any:
    """Members named ``../../outside/happy/x.png``: read in place (never extracted), refused as no class
    folders."""
    src = _faces_folder(tmp)
    with zipfile.ZipFile(tmp / "data.zip", "w") as zf:
        for f in sorted(src.rglob("*.png")):
            zf.write(f, f"../../outside/{f.parent.name}/{f.name}")
    try:
        return _evaluate(tmp / "data.zip", tmp / "out")
    finally:
        assert not (tmp.parent / "outside").exists() and not (tmp.parent.parent / "outside").exists()


def prepare_zip_gib_member(tmp: Path) -> None:
    from bombs import write_bomb

    hopper = _faces_folder(tmp) / "happy" / "3.png"
    write_bomb(tmp / "data.zip", [("happy/0.png", hopper.read_bytes()), ("sad/1.png", 1024)])  # 1 MB -> 1 GiB


def case_zip_gib_member(tmp: Path) -> Any:
    return _evaluate(tmp / "data.zip", tmp / "out")


def prepare_zip_ratio_bomb(tmp: Path) -> None:
    from bombs import write_bomb

    hopper = _faces_folder(tmp) / "happy" / "3.png"
    write_bomb(
        tmp / "data.zip", [("happy/0.png", hopper.read_bytes()), ("sad/1.bmp", 200)]
    )  # 200 KB -> 200 MiB


def case_zip_ratio_bomb(tmp: Path) -> Any:
    return _evaluate(tmp / "data.zip", tmp / "out")


def prepare_zip_250000_entries(tmp: Path) -> None:
    with zipfile.ZipFile(tmp / "data.zip", "w", zipfile.ZIP_STORED) as zf:  # zip64: over 65,535 entries
        for i in range(250_000):
            zf.writestr(f"happy/{i}.png", b"x")


def case_zip_250000_entries(tmp: Path) -> Any:
    return _evaluate(tmp / "data.zip", tmp / "out")


def prepare_zip_corrupt_member(tmp: Path) -> None:
    """One member's bytes damaged after zipping (CRC mismatch)."""
    src = _faces_folder(tmp)
    path = tmp / "data.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(src.rglob("*.png")):
            zf.write(f, f"{f.parent.name}/{f.name}")
        target = zf.getinfo("happy/3.png")
    data = bytearray(path.read_bytes())
    start = target.header_offset + 30 + len(target.filename)
    data[start + 40 : start + 60] = b"\x00" * 20
    path.write_bytes(bytes(data))


def case_zip_corrupt_member(tmp: Path) -> Any:
    """The damaged member is skipped and counted, the rest evaluated."""
    return _evaluated_counts(tmp / "data.zip", tmp / "out")


def case_folder_with_corrupt_image(tmp: Path) -> Any:
    src = _faces_folder(tmp)
    (src / "sad" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    return _evaluated_counts(src, tmp / "out")


# -- command lines ------------------------------------------------------------------------------------------
def case_cli_unknown_model(tmp: Path) -> Any:
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp / "photo.png")  # a folder without photos is refused before any model
    return _cli("compare", "someone/" + "x" * 5000, "ferhub/fer-mini-xception", "--images", str(tmp))


def case_cli_evaluate_push_offline(tmp: Path) -> Any:
    return _cli("evaluate", "--model", "ferhub/fer-mini-xception", "--data", str(tmp), "--push")


def case_cli_zoo_push_token_on_command_line(tmp: Path) -> Any:
    try:
        return _cli("zoo", "push", "--token", "hf_secret")
    except SystemExit as e:  # argparse's usage error
        raise CliExit(f"{e.code}|refused") from None


def case_cli_output_to_full_disk(tmp: Path) -> Any:
    full = open("/dev/full", "w")  # noqa: SIM115  (closing it flushes again, which fails again)
    try:
        return _cli("models", stdout=full)
    finally:
        with contextlib.suppress(OSError):
            full.close()


def prepare_cli_overflowing_model_gives_strict_json(tmp: Path) -> None:
    import numpy as np
    import torch
    from PIL import Image

    import ferhub

    model = ferhub.create_model("test_tiny").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3e38)  # finite, so accepted at load, but the logits overflow to NaN
    ferhub.hub.save(model, tmp / "overflowing")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp / "gray.png")


def case_cli_overflowing_model_gives_strict_json(tmp: Path) -> Any:
    from ferhub.cli import main

    out = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(out):
        code = main(
            ["predict", str(tmp / "gray.png"), "--model", str(tmp / "overflowing"), "--no-face", "fallback"]
        )
    (result,) = json.loads(
        out.getvalue(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"bare {c}"))
    )
    return (
        f"exit {code}, faces {result['faces']}: {result['error']}"  # NaN scores: the image's error, no label
    )


# -- tests --------------------------------------------------------------------------------------------------
# kind -> (error class or None for a result, patterns the message (or the result's repr) must hold)
EXPECT: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "image_zero_bytes": ("ImageDecodeError", (r"no data \(0 bytes\)",)),
    "image_truncated_jpeg": ("ImageDecodeError", ("accepted: JPEG",)),
    "image_text_named_jpg": ("ImageDecodeError", ("not an image file",)),
    "image_html_as_png": ("ImageDecodeError", ("not an image file",)),
    "image_bomb_header_png": ("ImageDecodeError", (r"1600\.0 MP, over the limit",)),
    "image_bomb_header_gif": ("ImageDecodeError", (r"over the limit",)),
    "image_text_chunk_bomb": ("ImageDecodeError", ("too large",)),
    "image_20_megapixels_wide": (None, ("faces",)),
    "image_7000x7000": (None, ("7000x7000",)),
    "image_gif_3000_frames": (None, ("160x160",)),
    "image_array_nan_and_5d": ("ImageDecodeError", ("array",)),
    "image_cmyk_jpeg_face": (None, (r"^'1 faces, 512x600'$",)),
    "image_16bit_gray_png_face": (None, (r"^'1 faces, 512x600'$",)),
    "image_palette_png_face": (None, (r"^'1 faces, 512x600'$",)),
    "image_exif_rotated_face": (None, (r"^'1 faces, 512x600'$",)),
    "path_fifo": ("ImageDecodeError", ("photo.jpg: not a regular file",)),
    "path_symlink_to_dev_zero": ("ImageDecodeError", ("photo.jpg: not a regular file",)),
    "path_sparse_10gb": ("ImageDecodeError", ("not an image file",)),
    "path_missing": ("ImageDecodeError", ("no such file",)),
    "path_folder_symlink_loop": (
        "CliExit",
        (r"^2\|ferhub predict: no photo or video files found .*\(left out 2 link\(s\) to a folder read",),
    ),
    "zip_not_a_zip": ("CliExit", (r"^1\|ferhub evaluate: .*not a readable zip file",)),
    "zip_member_names_escape": ("CliExit", (r"^1\|ferhub evaluate: .*holds no class folders",)),
    "zip_gib_member": ("CliExit", (r"^1\|ferhub evaluate: .*'sad/1\.png' inflates to 1024\.0 MiB",)),
    "zip_ratio_bomb": ("CliExit", (r"^1\|ferhub evaluate: .*'sad/1\.bmp' expands [\d,]+x .*zip bomb",)),
    "zip_250000_entries": (
        "CliExit",
        (r"^1\|ferhub evaluate: .*holds 250,000 entries; the limit here is 200,000",),
    ),
    "zip_corrupt_member": (None, ("'num_images': 6", "'unreadable': 1")),
    "folder_with_corrupt_image": (None, ("'num_images': 7", "'unreadable': 1")),
    "cli_unknown_model": ("CliExit", (r"^1\|ferhub compare: ",)),
    "cli_evaluate_push_offline": ("CliExit", (r"^3\|ferhub evaluate: --push needs the Hugging Face Hub",)),
    "cli_zoo_push_token_on_command_line": ("CliExit", (r"^2\|refused",)),
    "cli_output_to_full_disk": ("CliExit", (r"^1\|ferhub models: the disk is full",)),
    "cli_overflowing_model_gives_strict_json": (
        None,
        (r"exit 1, faces \[\]: .*gave NaN or infinite probabilities for face 1",),
    ),
}
KINDS, results, test_every_case_has_an_expectation, test_hostile_input_is_handled_clearly = suite(
    __name__, EXPECT
)
