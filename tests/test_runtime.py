"""The CPU runtime: ONNX Runtime finds the same faces and gives the same labels as the torch path, on real
photos;
models that do not export fall back to torch with a log line; importing and predicting change no process-wide
setting."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from ferhub import _compat, _onnx
from ferhub.assets import EXAMPLES_DIR
from ferhub.faces import Face, FaceDetector
from ferhub.labels import FER7
from ferhub.models import create_model
from ferhub.predict import Predictor, TorchRunner


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def real_photos() -> dict[str, Image.Image]:
    """The bundled photos, a 5-face group composite of them, and LFW crops (faces and non-faces)."""
    from skimage import data

    photos = {p.name: Image.open(p).convert("RGB") for p in sorted(EXAMPLES_DIR.glob("*.jpg"))}
    group = Image.new("RGB", (1600, 600), (110, 116, 120))
    lfw = data.lfw_subset()
    for i, x in enumerate(range(20, 1600, 320)):
        face = Image.fromarray((lfw[i * 7] * 255).round().astype(np.uint8)).convert("RGB")
        group.paste(face.resize((200, 200), Image.Resampling.BICUBIC), (x, 150 + 40 * (i % 3)))
    photos["group of five LFW faces"] = group
    for i in (*range(0, 100, 9), *range(100, 200, 17)):  # 0-99 are faces, 100-199 are not
        photos[f"lfw {i}"] = Image.fromarray((lfw[i] * 255).round().astype(np.uint8)).convert("RGB")
    return photos


@pytest.fixture(scope="module")
def detectors() -> tuple[FaceDetector, FaceDetector]:
    return FaceDetector(runtime="onnx"), FaceDetector(runtime="torch")


def matched(onnx_faces: list[Face], torch_faces: list[Face]) -> list[tuple[Face, Face]]:
    """Pairs of the same face (IoU >= 0.7), asserting that neither path found a face the other did not."""
    assert len(onnx_faces) == len(torch_faces)
    pairs = []
    for f in onnx_faces:
        best = max(torch_faces, key=lambda g: iou(f.box, g.box))
        assert iou(f.box, best.box) >= 0.7, (f.box, best.box)
        pairs.append((f, best))
    assert len({id(g) for _, g in pairs}) == len(torch_faces)
    return pairs


def test_onnx_detector_finds_the_same_faces_as_the_torch_path(detectors) -> None:
    onnx_detector, torch_detector = detectors
    assert onnx_detector.runtime == "onnx" and torch_detector.runtime == "torch"
    found = 0
    for name, photo in real_photos().items():
        onnx_faces, torch_faces = onnx_detector.detect(photo), torch_detector.detect(photo)
        try:
            pairs = matched(onnx_faces, torch_faces)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from e
        for f, g in pairs:
            eyes = np.asarray(f.landmarks[:2]) - np.asarray(g.landmarks[:2])
            assert np.abs(eyes).max() <= 0.08 * (g.box[2] - g.box[0]), name
        found += len(pairs)
    assert found >= 15  # the group's five, the bundled photos' and the LFW faces


@pytest.mark.parametrize(("min_face_size", "size"), [(6, (300, 352)), (20, (4000, 3000))])
def test_a_min_face_size_under_p_nets_window_upscales_like_the_torch_path(
    min_face_size: int, size: tuple[int, int]
) -> None:
    # 6 px faces in a small photo, or 20 px ones in a 4000 px photo detected on a 1024 px copy, ask for a
    # first pyramid level larger than the image P-net sees: it is upscaled from it (the ONNX path raised
    # StopIteration, "internal error" in `ferhub predict --min-face-size 20 big.jpg`)
    photo = Image.open(EXAMPLES_DIR / "grace_hopper.jpg").convert("RGB").resize(size)
    onnx_faces = FaceDetector(min_face_size=min_face_size, runtime="onnx").detect(photo)
    torch_faces = FaceDetector(min_face_size=min_face_size, runtime="torch").detect(photo)
    assert len(matched(onnx_faces, torch_faces)) == 1


def test_a_tiny_min_face_size_upscales_the_image_at_most_4x_in_both_runtimes() -> None:
    # `--min-face-size 1` on a 640x480 photo asked for a 7680x5760 first level: 13-40 s and 5-10 GB, and
    # 0.5 px four times that; the first level is now at most 4x the detection image (3 px faces)
    from ferhub._mtcnn_onnx import level_sizes

    assert level_sizes(480, 640, 1)[0] == (1920, 2560)
    assert level_sizes(480, 640, 0.01) == level_sizes(480, 640, 1) == level_sizes(480, 640, 3)
    assert level_sizes(480, 640, 6)[0] == (960, 1280)  # 2x: untouched
    photo = Image.open(EXAMPLES_DIR / "grace_hopper.jpg").convert("RGB").resize((160, 120))
    for runtime in ("onnx", "torch"):
        tiny = FaceDetector(min_face_size=0.25, runtime=runtime).detect(photo)
        assert tiny == FaceDetector(min_face_size=3, runtime=runtime).detect(photo), runtime
        assert len(tiny) == 1, runtime


def test_p_net_peaks_are_the_3x3_maxima_of_their_level_above_the_threshold() -> None:
    """The P-net graph's peaks (``_peaks_graph``: a 3x3 max-pool) against the definition, on random maps with
    ties: one level, or several packed levels apart from each other with unused (-1) cells between them, as
    :func:`_level_map` lays them out (the next test); with each peak's score and box offsets."""
    from ferhub import _onnx
    from ferhub._mtcnn_onnx import _INSIDE, _peaks_graph

    peaks = _onnx.session(_peaks_graph(_onnx.IR_VERSION).SerializeToString())
    rng = np.random.default_rng(7)
    for case in range(300):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        prob = rng.random((h, w)).astype(np.float32)
        if case % 3 == 0:
            prob = np.round(prob * 4) / 4  # ties: a cell equal to its largest neighbour is a peak
        level_of = None
        if case % 2:  # rectangles of levels, each with a border of unused cells
            level_of = np.full((h, w), -1)
            for index in range(int(rng.integers(0, 4))):
                y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
                y2, x2 = y + int(rng.integers(1, 12)), x + int(rng.integers(1, 12))
                if (level_of[max(0, y - 1) : y2 + 1, max(0, x - 1) : x2 + 1] == -1).all():
                    level_of[y:y2, x:x2] = index
        threshold = float(rng.choice([0.0, 0.5, 0.6, 0.9]))
        of = np.zeros((h, w), dtype=int) if level_of is None else level_of
        expected = [
            (y, x)
            for y in range(h)
            for x in range(w)
            if of[y, x] >= 0
            and prob[y, x] >= threshold
            and all(
                prob[y, x] >= prob[v, u]
                for v in range(max(0, y - 1), min(h, y + 2))
                for u in range(max(0, x - 1), min(w, x + 2))
                if of[v, u] == of[y, x]
            )
        ]
        reg = rng.standard_normal((4, h, w)).astype(np.float32)
        outside = _INSIDE if level_of is None else np.where(level_of >= 0, 0, -np.inf).astype(np.float32)
        cells, score, offsets = peaks.run(
            None, {"prob": prob, "reg": reg, "outside": outside, "threshold": np.array(threshold, np.float32)}
        )
        assert [tuple(c) for c in cells.tolist()] == expected, case
        ys, xs = cells.T
        np.testing.assert_array_equal(score, prob[ys, xs])
        np.testing.assert_array_equal(offsets, reg[:, ys, xs].T)


def test_nms_iou_is_torchvisions_nms() -> None:
    """``nms_iou`` (the compiled greedy NMS after P-net and R-net) keeps exactly torchvision's boxes
    (``_compat.nms_cpu``, its arithmetic), on random boxes; an IoU equal to the threshold rounded to float32
    suppresses nothing, as in torchvision (float64 comparison); equal scores keep the lowest index first."""
    from ferhub._mtcnn_onnx import nms_iou

    rng = np.random.default_rng(4)
    for n in (0, 1, 2, 7, 60, 300):
        for threshold in (0.3, 0.5, 0.7):
            xy = rng.uniform(0, 60 if n <= 60 else 300, (n, 2))
            boxes = np.concatenate([xy, xy + rng.uniform(2, 40, (n, 2))], axis=1).astype(np.float32)
            scores = (rng.permutation(n) / max(n, 1)).astype(np.float32)
            expected = _compat.nms_cpu(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).tolist()
            assert nms_iou(boxes, scores, threshold).tolist() == expected
    on_threshold = np.array([[0, 0, 10, 10], [0, 0, 10, 7], [0, 0, 10, 7.001]], np.float32)  # IoU 0.7, 0.7001
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert nms_iou(on_threshold[:2], scores[:2], 0.7).tolist() == [0, 1]
    assert nms_iou(on_threshold[[0, 2]], scores[:2], 0.7).tolist() == [0]
    # float32(0.3) is above 0.3: an IoU of float32(0.3) is above the threshold in torchvision's comparison
    third = np.array([[0, 0, 10, 10], [0, 0, 10, 3]], np.float32)
    assert (
        nms_iou(third, scores[:2], 0.3).tolist()
        == _compat.nms_cpu(torch.from_numpy(third), torch.from_numpy(scores[:2]), 0.3).tolist()
        == [0]
    )
    same = np.array([[0, 0, 10, 10]] * 3, np.float32)
    assert nms_iou(same, np.array([0.5, 0.9, 0.9], np.float32), 0.5).tolist() == [1]
    # a strided view (P-net's candidates are columns of a wider array)
    wide = np.concatenate([on_threshold, scores[:, None]], axis=1)
    assert nms_iou(wide[:, :4], wide[:, 4], 0.7).tolist() == [0, 1]


def test_nms_min_is_mtcnns_greedy_min_overlap_nms() -> None:
    """``nms_min`` (the compiled greedy NMS, over the smaller area) against greedy "Min" NMS box by box, on
    random boxes and on a long chain (each box suppresses only the next: every other one is kept)."""
    from ferhub._mtcnn_onnx import nms_min

    def reference(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        kept: list[int] = []
        for i in np.argsort(-scores, kind="stable"):
            iw = np.clip(
                np.minimum(boxes[i, 2], boxes[kept, 2]) - np.maximum(boxes[i, 0], boxes[kept, 0]), 0, None
            )
            ih = np.clip(
                np.minimum(boxes[i, 3], boxes[kept, 3]) - np.maximum(boxes[i, 1], boxes[kept, 1]), 0, None
            )
            if not (iw * ih / np.maximum(np.minimum(area[i], area[kept]), 1e-9) > threshold).any():
                kept.append(int(i))
        return kept

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 3, 8, 40):
        for _ in range(20):
            xy = rng.uniform(0, 40, (n, 2))
            boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (n, 2))], axis=1).astype(np.float32)
            scores = rng.permutation(n).astype(np.float32)
            assert nms_min(boxes, scores, 0.7).tolist() == reference(boxes, scores, 0.7)
    chain = np.array([[3.0 * i, 0, 3.0 * i + 10, 10] for i in range(25)], np.float32)
    scores = np.linspace(1, 0.1, len(chain)).astype(np.float32)
    assert (
        nms_min(chain, scores, 0.6).tolist() == reference(chain, scores, 0.6) == list(range(0, len(chain), 2))
    )


def test_packed_levels_never_touch_in_p_nets_map() -> None:
    """Between two levels of a packed canvas lie cells of no level (``_peaks_graph`` relies on it), for the
    pyramids of many photo sizes; the P-net graph's ``outside`` input marks the others."""
    from ferhub._mtcnn_onnx import CELL, _level_map, _map_shape, _pack, auto_min_face_size, level_sizes

    for h, w in ((480, 640), (1080, 1920), (640, 480), (97, 129), (300, 301), (1024, 683), (250, 2000)):
        small = level_sizes(h, w, auto_min_face_size(w, h))[2:]
        if not small:
            continue
        offsets, (ch, cw) = _pack(tuple(small))
        assert _map_shape((ch, cw)) == ((ch - CELL) // 2 + 1, (cw - CELL) // 2 + 1)  # the canvas is even
        level_of, outside = _level_map(_map_shape((ch, cw)), tuple(small), tuple(offsets))
        assert set(np.unique(level_of).tolist()) == {-1, *range(len(small))}
        np.testing.assert_array_equal(outside, np.where(level_of >= 0, 0, -np.inf))
        framed = np.pad(level_of, 1, constant_values=-1)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                other = framed[dy : dy + level_of.shape[0], dx : dx + level_of.shape[1]]
                assert not ((level_of >= 0) & (other >= 0) & (other != level_of)).any(), (h, w)


def test_side_by_side_runs_each_call_once_in_order_and_shares_by_cost() -> None:
    """The crop calls queued on the second stream: each runs once, the outputs come back in call order, and
    while the stream is held up by a long call the calling thread takes the others from the back."""
    import functools
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from ferhub._mtcnn_onnx import OnnxMTCNN

    ran: list[tuple[int, int]] = []
    first_started, others_done = threading.Event(), threading.Event()

    def call(i: int) -> list[np.ndarray]:
        if i == 0:  # the long call: the stream holds it until the calling thread has run the others
            first_started.set()
            assert others_done.wait(timeout=30)
        else:
            assert first_started.wait(timeout=30)
            if i == 1:
                others_done.set()
        ran.append((i, threading.get_ident()))
        return [np.array([i])]

    calls = [functools.partial(call, i) for i in range(6)]
    with ThreadPoolExecutor(1) as stream:
        out = OnnxMTCNN._side_by_side(calls, stream)
    assert [int(r[0][0]) for r in out] == list(range(6))
    assert sorted(i for i, _ in ran) == list(range(6))
    here = threading.get_ident()
    assert [i for i, thread in ran if thread == here] == [5, 4, 3, 2, 1]  # taken from the back, in turn
    first_started.clear()
    first_started.set()
    assert [int(r[0][0]) for r in OnnxMTCNN._side_by_side(calls[1:], None)] == [1, 2, 3, 4, 5]


def test_queued_work_runs_here_when_the_stream_has_not_started_it() -> None:
    """Work queued on the second stream (the first pyramid level, the padded photo) runs on the calling
    thread when the stream is still busy, and comes from the stream once it has started it."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from ferhub._mtcnn_onnx import _queued

    release, busy = threading.Event(), threading.Event()

    def hold() -> None:
        busy.set()
        assert release.wait(timeout=30)

    with ThreadPoolExecutor(1) as stream:
        stream.submit(hold)
        assert busy.wait(timeout=30)
        result = _queued(stream, threading.get_ident)
        assert result() == threading.get_ident()  # the stream was busy: run here
        release.set()
        started = threading.Event()
        result = _queued(stream, lambda: started.set() or threading.get_ident())
        assert started.wait(timeout=30)
        assert result() != threading.get_ident()  # the stream had it: its result


def test_crops_split_between_the_streams_give_one_threads_outputs() -> None:
    """R-net's crops, read from the photo's pixels and from the pyramid's levels, in two calls side by side
    (:meth:`OnnxMTCNN._side_by_side`), each on half the crops whatever their sources: the same outputs as one
    thread's, row for row."""
    from ferhub._mtcnn_onnx import OnnxMTCNN, _Sources

    detector = OnnxMTCNN(threads=2)
    assert detector._stream is not None
    photo = Image.open(EXAMPLES_DIR / "grace_hopper.jpg").convert("RGB")
    pixels = np.asarray(photo)[None]
    levels, _, packed = detector._pyramid(pixels, 30.0, None)
    assert packed is not None  # the small levels are regions of one canvas
    # boxes of 20-200 px: the small ones are read from the photo, the others from the levels, 10 a source
    sides = np.repeat(np.arange(20.0, 220.0, 20.0), 10)
    x = 7.0 * np.arange(len(sides)) % 300
    boxes = np.stack([x, np.full_like(x, 40.0), x + sides, 40.0 + sides], axis=1)
    sources = _Sources(pixels[0], levels, packed)
    detector._callers = 1  # as inside detect(): the only caller, so the stream is used
    ran, batches = set(), []
    run = detector._run

    def watched(name: str, **inputs: np.ndarray) -> list[np.ndarray]:
        ran.add(threading.current_thread().name)
        batches.append(len(inputs["crops"]))
        return run(name, **inputs)

    detector._run = watched  # type: ignore[method-assign]
    order, got = detector._net_on_crops("rnet", sources, boxes.astype(np.float32), 24)
    detector._run = run  # type: ignore[method-assign]
    assert len(ran) == 2  # both streams ran calls
    assert sorted(batches) == [len(boxes) // 2, len(boxes) - len(boxes) // 2]  # one call each, half the crops
    alone_order, alone = OnnxMTCNN(threads=1)._net_on_crops("rnet", sources, boxes.astype(np.float32), 24)
    np.testing.assert_array_equal(order, alone_order)
    assert sorted(order.tolist()) == list(range(len(boxes)))  # each box's crop once, grouped by source
    for a, b in zip(got, alone):
        assert len(a) == len(boxes)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_the_first_halving_in_two_bands_is_the_one_piece_halving() -> None:
    """With a second stream the pyramid's first halving is made in two bands of rows side by side; it is
    exactly the halving of the whole photo (odd heights go in one piece), from RGB or RGBX pixels."""
    from concurrent.futures import ThreadPoolExecutor

    from ferhub._mtcnn_onnx import SCALE, OnnxMTCNN

    detector = OnnxMTCNN(threads=1)
    rng = np.random.default_rng(3)
    with ThreadPoolExecutor(1) as stream:
        for h, w in ((480, 640), (482, 641), (50, 64), (97, 130), (1080, 1920), (52, 66)):
            rgbx = rng.integers(0, 256, (1, h, w, 4), dtype=np.uint8)  # images.rgb_pixels' view
            pixels = np.ascontiguousarray(rgbx[..., :3])  # np.asarray's copy
            whole = detector._first_halving(pixels, None)
            assert whole.shape == (1, 3, h // 2, w // 2)
            np.testing.assert_array_equal(detector._first_halving(pixels, stream), whole)
            # RGBX pixels: the same numbers, the 4th byte unread
            np.testing.assert_array_equal(detector._first_halving(rgbx, None), whole)
            np.testing.assert_array_equal(detector._first_halving(rgbx, stream), whole)
            # resized, then normalised, as odd sides are: the same numbers for even sides (2x2 means of
            # integers), to float rounding for odd ones
            resized = np.empty_like(whole)
            detector._halve_resized(pixels, resized, 0, h)
            np.testing.assert_allclose(resized, whole, rtol=0, atol=1e-6 if (h % 2 or w % 2) else 0)
            # MTCNN's values of the photo, resized: the same numbers
            photo = (pixels.transpose(0, 3, 1, 2).astype(np.float32) + np.float32(0.5)) * np.float32(SCALE)
            halved = detector._resize(photo, (h // 2, w // 2))
            np.testing.assert_allclose(halved, whole, rtol=0, atol=1e-6 if (h % 2 or w % 2) else 0)


def test_detection_streams_split_the_cores_and_find_what_one_thread_finds() -> None:
    """With two streams (the default on two cores or more) every net's session takes half the cores, with one
    stream all of them. One stream, or one thread, finds the same faces with the same boxes on the real
    photos (threads and streams only split the work)."""
    from ferhub._mtcnn_onnx import OnnxMTCNN
    from ferhub.device import cpu_cores

    cores = cpu_cores()
    wide, single, narrow = OnnxMTCNN(), OnnxMTCNN(streams=1), OnnxMTCNN(threads=1)
    assert wide.threads == cores and narrow.threads == 1
    assert (wide.streams, single.streams, narrow.streams) == (2 if cores > 1 else 1, 1, 1)
    assert narrow._stream is None and single._stream is None and (wide._stream is None) == (cores == 1)

    def threads(detector: OnnxMTCNN) -> dict[str, int]:
        return {n: s.get_session_options().intra_op_num_threads for n, s in detector.sessions.items()}

    def layout(nets: int) -> dict[str, int]:
        return {"pnet": nets, "rnet": nets, "onet": nets}

    assert threads(wide) == layout(max(1, cores // 2))
    assert threads(single) == layout(cores) and threads(narrow) == layout(1)
    photos = real_photos()
    for name in ("grace_hopper.jpg", "group of five LFW faces", "lfw 9", "lfw 117"):
        a = wide.detect(photos[name])
        for other in (single, narrow):
            b = other.detect(photos[name])
            assert len(a[0]) == len(b[0]), name
            np.testing.assert_allclose(a[0], b[0], atol=1e-3, err_msg=name)
            np.testing.assert_allclose(a[1], b[1], atol=1e-5, err_msg=name)


def test_two_streams_serve_a_lone_caller_and_concurrent_callers_run_alone(monkeypatch) -> None:
    """One detect() call at a time hands half its nets' work to the second stream; calls side by side (a
    folder's photos) keep theirs, one core each, and each gets what it gets alone."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from ferhub._mtcnn_onnx import OnnxMTCNN

    detector = OnnxMTCNN(threads=2)
    assert detector._stream is not None
    submitted: list[object] = []
    real_submit = detector._stream.submit
    monkeypatch.setattr(
        detector._stream, "submit", lambda *a, **k: submitted.append(a) or real_submit(*a, **k)
    )
    photos = [
        p for name, p in real_photos().items() if name in ("grace_hopper.jpg", "group of five LFW faces")
    ]
    alone = [detector.detect(p) for p in photos]
    assert len(submitted) >= 2 * len(photos)  # P-net's first level and half of R-net's crops, at least
    submitted.clear()
    both_inside = threading.Barrier(2)
    real_detect = detector._detect

    def side_by_side(*args: object) -> object:
        both_inside.wait(timeout=60)  # both calls have counted themselves in before either starts
        result = real_detect(*args)
        both_inside.wait(timeout=60)  # and neither finishes before the other has
        return result

    monkeypatch.setattr(detector, "_detect", side_by_side)
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(detector.detect, photos))
    assert submitted == []
    for expected, got in zip(alone, together):
        for e, g in zip(expected, got):
            np.testing.assert_array_equal(e, g)


def test_onnx_predictor_gives_the_same_labels_as_the_torch_path(detectors) -> None:
    photos = [p for name, p in real_photos().items() if not name.startswith("lfw 1")]
    onnx_p = Predictor(detector=detectors[0], runtime="onnx")
    torch_p = Predictor(detector=detectors[1], runtime="torch")
    assert isinstance(onnx_p._runners[0], _onnx.OnnxClassifier)
    assert isinstance(torch_p._runners[0], TorchRunner)
    faces = 0
    for a, b in zip(onnx_p.predict(photos), torch_p.predict(photos)):
        for f, g in matched([r.face for r in a.faces], [r.face for r in b.faces]):
            fa = next(r for r in a.faces if r.face is f)
            fb = next(r for r in b.faces if r.face is g)
            assert fa.label == fb.label, (a.path, fa.probabilities, fb.probabilities)
            faces += 1
    assert faces >= 10
    # on the same faces, the two runtimes' probabilities agree to float rounding
    photo = photos[0]
    face = detectors[1].detect(photo)
    (p_onnx,), (p_torch,) = onnx_p.classify_faces(photo, face), torch_p.classify_faces(photo, face)
    np.testing.assert_allclose(p_onnx, p_torch, atol=_onnx.TOLERANCE)


class Unexportable(torch.nn.Module):
    """A classifier torch runs and the ONNX exporter refuses."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inner = create_model("test_tiny", labels=FER7).eval()
        self.config = self.inner.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.inner(x)
        # a shift softmax ignores, through an operator ONNX's exporter does not know
        return logits - torch.kthvalue(logits, 1, dim=1, keepdim=True)[0]


def test_model_that_does_not_export_runs_in_torch_with_a_log_line(caplog) -> None:
    model = Unexportable()
    crops = [Image.new("RGB", (40, 40), (120, 100, 90)), Image.new("RGB", (40, 40), (20, 30, 40))]
    with caplog.at_level(logging.WARNING, logger="ferhub.predict"):
        p = Predictor(model, runtime="auto")
    assert isinstance(p._runners[0], TorchRunner)
    assert any("runs in torch instead of ONNX Runtime" in r.message for r in caplog.records)
    (probs,) = p.classify_crops(crops)
    (expected,) = Predictor(model, runtime="torch").classify_crops(crops)
    np.testing.assert_array_equal(probs, expected)
    with pytest.raises(_onnx.ExportError, match="does not export"):
        Predictor(model, runtime="onnx")


def test_runtime_is_validated() -> None:
    with pytest.raises(ValueError, match="runtime must be"):
        Predictor(create_model("test_tiny"), runtime="tensorrt")  # type: ignore[arg-type]


def test_ensemble_members_run_in_onnx_and_match_torch(astronaut) -> None:
    from ferhub.models.ensemble import make_ensemble

    ensemble = make_ensemble(["fer-mini-xception", "faceapi-expression"])
    detector = FaceDetector(runtime="torch")
    onnx_p = Predictor(ensemble, detector=detector, runtime="onnx")
    assert all(isinstance(r, _onnx.OnnxClassifier) for r in onnx_p._runners[0])
    torch_p = Predictor(ensemble, detector=detector, runtime="torch")
    a, b = onnx_p.predict_image(astronaut), torch_p.predict_image(astronaut)
    assert a.faces[0].label == b.faces[0].label
    assert a.faces[0].probabilities == pytest.approx(b.faces[0].probabilities, abs=_onnx.TOLERANCE)


def test_exported_graphs_are_cached_on_disk_by_weights_hash(isolated_hf, monkeypatch) -> None:
    # another test of this process may have built the same graph (the same seed): kept in memory, it would
    # never reach this test's disk cache
    monkeypatch.setattr(_onnx, "_MEMORY", {})
    torch.manual_seed(3)
    model = create_model("test_tiny").eval()
    _onnx.OnnxClassifier(model)
    files = list((isolated_hf / "ferhub" / "onnx").glob("*.onnx"))
    assert len(files) == 1 and files[0].stem == _onnx.weights_hash(
        model,
        _onnx.EXPORT_VERSION,
        _onnx.OPSET,
        torch.__version__,
        1,
        model.config.input_size,
        _onnx.code_hash(model),
    )
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # other weights: another graph
    _onnx.OnnxClassifier(model)
    assert len(list((isolated_hf / "ferhub" / "onnx").glob("*.onnx"))) == 2


def test_import_and_predict_change_no_process_wide_setting(tmp_path) -> None:
    """``import ferhub`` and a whole prediction leave the environment, torch's threads and glibc alone, and
    write
    no file outside the caches (onnxruntime >= 1.29 writes a telemetry `.ses` file into TMPDIR on import)."""
    code = """
import json, os, sys
before = dict(os.environ)
import ferhub
after_import = dict(os.environ)
loaded = sorted(m for m in ("torch", "ferhub._malloc", "onnxruntime") if m in sys.modules)
import torch
threads = torch.get_num_threads()
from PIL import Image
ferhub.Predictor().predict([Image.open(sys.argv[1])])
print(json.dumps({"import_env": before == after_import, "loaded": loaded,
                  "predict_env": dict(os.environ) == after_import,
                  "threads": [threads, torch.get_num_threads()]}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "ORT_DISABLE_TELEMETRY")}
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env["TMPDIR"] = str(scratch)
    out = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLES_DIR / "grace_hopper.jpg")],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["import_env"] and result["predict_env"]
    assert result["loaded"] == []  # nothing heavy, and nothing that tunes, at import
    assert result["threads"][0] == result["threads"][1]
    assert sorted(p.name for p in scratch.iterdir()) == []


_FORKED: dict[str, object] = {}  # what a forked child inherits (a detector cannot be pickled)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_detects_without_the_parents_stream() -> None:
    """The second stream's worker thread does not exist in a forked child (multiprocessing's default on
    Linux): a child that used it would wait forever. It detects in one stream and finds the same faces."""
    import multiprocessing

    from ferhub._mtcnn_onnx import OnnxMTCNN

    detector = OnnxMTCNN(threads=2)
    photo = real_photos()["grace_hopper.jpg"]
    boxes = detector.detect(photo)[0]  # the parent's worker thread now exists
    assert detector._second_stream() is None and detector._stream is not None  # no call under way now
    _FORKED.update(detector=detector, photo=photo)
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            child = pool.apply_async(_boxes_in_child).get(timeout=60)
    finally:
        _FORKED.clear()
    np.testing.assert_array_equal(child, boxes)


def _boxes_in_child() -> np.ndarray:
    detector = _FORKED["detector"]
    detector._callers = 1  # type: ignore[attr-defined]  (as inside detect(): still not two streams)
    assert detector._second_stream() is None  # type: ignore[attr-defined]
    detector._callers = 0  # type: ignore[attr-defined]
    return detector.detect(_FORKED["photo"])[0]  # type: ignore[attr-defined]


def test_dir_lists_the_public_api_without_importing_it() -> None:
    """The API is loaded lazily: ``dir(ferhub)`` (and so ``help``, tab completion) showed the errors only."""
    code = (
        "import sys, ferhub; names = dir(ferhub); "
        "print(all(n in names for n in ferhub.__all__), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["True", "False"]
