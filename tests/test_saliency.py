"""ferhub.saliency: Captum attributions as normalised heatmaps, and their overlays on crops and photos."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ferhub.config import ModelConfig
from ferhub.faces import Face, crop_face
from ferhub.models import create_model
from ferhub.saliency import (
    METHODS,
    SaliencyError,
    attribute,
    colorize,
    crop_placement,
    explain_faces,
    gradcam_layer,
    method_id,
    model_slugs,
    occlusion_grid,
    overlay,
    overlay_on_photo,
    target_index,
    write_overlays,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "ferhub" / "assets" / "examples"
# Eileen Collins' face in astronaut.jpg (512x512), with MTCNN-like landmarks; fixed so no detector runs here
ASTRONAUT_FACE = Face(
    (175.0, 60.0, 250.0, 160.0),
    0.99,
    ((190.0, 100.0), (230.0, 95.0), (210.0, 120.0), (195.0, 140.0), (225.0, 138.0)),
)


class LeftHalf(nn.Module):
    """Two classes: class 0 scores the mean of the image's left half, class 1 the right half (through a
    conv)."""

    def __init__(self, size: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.ones_(self.conv.weight)
        self.relu = nn.ReLU(inplace=True)
        mask = torch.zeros(2, 1, size, size)
        mask[0, :, :, : size // 2] = 1
        mask[1, :, :, size // 2 :] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.conv(x))  # (B, 1, H, W)
        return (a.unsqueeze(1) * self.mask).mean(dim=(2, 3, 4))


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.open(EXAMPLES / "astronaut.jpg").convert("RGB")


def test_method_ids_accept_display_names_and_reject_others() -> None:
    assert [method_id(name) for name in METHODS.values()] == list(METHODS)
    assert method_id("grad_cam") == "gradcam" and method_id("IG") == "integrated_gradients"
    with pytest.raises(SaliencyError, match="choose one of gradcam"):
        method_id("lime")


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_gives_normalised_maps_of_the_input_size(method: str) -> None:
    torch.manual_seed(0)
    model = create_model("test_tiny").eval()
    x = torch.randn(3, 1, 16, 16)
    maps = attribute(model, x, method)
    assert maps.shape == (3, 16, 16) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() == pytest.approx(1.0)
    # the shared model is untouched: no Captum hook left on it, its ReLUs still in place
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "guided_backprop", "occlusion"])
def test_pixel_methods_only_light_up_what_the_class_reads(method: str) -> None:
    model = LeftHalf().eval()
    x = torch.rand(1, 1, 16, 16) + 0.1
    left = attribute(model, x, method, target=0)[0]
    right = attribute(model, x, method, target=1)[0]
    # occlusion's 3-pixel window also credits the pixels next to the boundary it overlaps
    edge = 2 if method == "occlusion" else 0
    assert left[:, 8 + edge :].max() == 0 and left[:, :8].mean() > 0.3
    assert right[:, : 8 - edge].max() == 0 and right[:, 8:].mean() > 0.3


def test_gradcam_peaks_on_the_bright_blob() -> None:
    model = LeftHalf().eval()
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 3:6, 2:5] = 1.0  # a blob in the left half, which class 0 reads
    cam = attribute(model, x, "gradcam", target=0)[0]
    y, xx = np.unravel_index(cam.argmax(), cam.shape)
    assert 3 <= y <= 5 and 2 <= xx <= 4
    assert cam[10:, 10:].max() == 0


def _two_member_ensemble(gray_size: int = 48, rgb_size: int = 64) -> nn.Module:
    """Members framed and fed differently (gray, 48 px by default, tight crop; RGB, 64 px by default, wide
    aligned crop; other labels) so a crop or preprocessing shared between them would show."""
    from ferhub.models.ensemble import _CFG, Ensemble

    torch.manual_seed(0)
    gray = create_model("test_tiny", config_overrides={"input_size": gray_size, "crop_margin": 0.0})
    rgb_config = {
        "channels": 3,
        "mean": (0.5,) * 3,
        "std": (0.5,) * 3,
        "input_size": rgb_size,
        "crop_margin": 0.4,
    }
    rgb_config["align"] = True  # the eyes levelled: a rotated crop
    rgb = create_model("test_tiny", ("happy", "sad", "neutral"), in_chans=3, config_overrides=rgb_config)
    assert (gray.config.channels, gray.config.input_size) != (rgb.config.channels, rgb.config.input_size)
    ensemble = Ensemble([gray.eval(), rgb.eval()], weights=[1.0, 2.0])
    ensemble.config = ModelConfig(architecture="ensemble", labels=ensemble.labels, **_CFG)
    return ensemble


@pytest.mark.slow
def test_the_ensemble_explanation_explains_the_predictors_computation(astronaut: Image.Image) -> None:
    """The forward the attribution differentiates is the Predictor's: each member fed its own crop through
    crop_face + eval_tensor, their vote combined; its probabilities are the Predictor's."""
    from ferhub.predict import Predictor

    ensemble = _two_member_ensemble()
    faces = [ASTRONAUT_FACE, dataclasses.replace(ASTRONAUT_FACE, box=(150.0, 40.0, 270.0, 180.0))]
    inputs = ensemble.member_inputs(astronaut, faces)
    assert [tuple(x.shape) for x in inputs] == [(2, 1, 48, 48), (2, 3, 64, 64)]
    with torch.no_grad():
        explained = torch.softmax(ensemble(*inputs), dim=1).numpy()
    for runtime in ("torch", "onnx"):
        (predicted,) = Predictor(ensemble, device="cpu", runtime=runtime).classify_faces(astronaut, faces)
        np.testing.assert_allclose(explained, predicted, atol=1e-5)
    exps = explain_faces(ensemble, astronaut, faces, "integrated_gradients")
    assert [e.target for e in exps] == [ensemble.labels[i] for i in explained.argmax(axis=1)]
    for e in exps:
        assert e.crop.size == (112, 112) and e.heatmap.shape == (112, 112)  # shown on the ensemble's crop
        assert e.heatmap.max() == pytest.approx(1.0) and e.heatmap.min() >= 0
    with pytest.raises(SaliencyError, match="one per member"):
        explain_faces(ensemble, astronaut, faces, "gradcam")
    with pytest.raises(SaliencyError, match="explain it with explain_faces"):
        attribute(ensemble, inputs[0], "saliency")


def _occluded_by_hand(
    model: nn.Module, xs: tuple[torch.Tensor, ...], i: int, targets: list[int], window: int, stride: int
) -> np.ndarray:
    """Occlusion of input ``i`` one window at a time, the other inputs as they are: the score drop of each
    item's target, averaged over the windows covering a pixel and summed over channels, as Captum computes it
    (its last window per side may run past the edge, clipped)."""
    x = xs[i]
    rows = torch.arange(len(x))
    with torch.no_grad():
        base = model(*xs)[rows, targets]
        side = x.shape[-1]
        starts = range(0, math.ceil((side - window) / stride) * stride + 1, stride)
        total = torch.zeros(len(x), side, side)
        covered = torch.zeros(side, side)
        for top in starts:
            for left in starts:
                occluded = x.clone()
                occluded[..., top : top + window, left : left + window] = 0.0
                drop = base - model(*xs[:i], occluded, *xs[i + 1 :])[rows, targets]
                total[:, top : top + window, left : left + window] += drop.view(-1, 1, 1)
                covered[top : top + window, left : left + window] += 1
    return (x.shape[1] * total / covered.clamp(min=1)).clamp(min=0).numpy()


@pytest.mark.usefixtures("one_torch_thread")
def test_occlusion_explains_an_ensemble(astronaut: Image.Image, monkeypatch: pytest.MonkeyPatch) -> None:
    """Occlusion of an ensemble (one input per member, each its own size and channels) occludes each member's
    crop with the others held (each occluded copy runs that member only, into the whole vote); the members
    split the budget
    (one grid per member, sized for faces x members inputs); the maps land on the ensemble's crop."""
    from ferhub import saliency

    grids: list[tuple[int, int]] = []

    def spy(size: int, share: int = 1, flops: float = 0.0) -> tuple[int, int]:
        grids.append((size, share))
        return occlusion_grid(size, share, flops)

    monkeypatch.setattr(saliency, "OCCLUSION_BUDGET_FLOPS", 1.0)  # each member at the 4x4 floor: fast
    monkeypatch.setattr(saliency, "occlusion_grid", spy)
    ensemble = _two_member_ensemble(16, 24)  # gray 16 px and RGB 24 px: a fast test
    faces = [ASTRONAUT_FACE, dataclasses.replace(ASTRONAUT_FACE, box=(150.0, 40.0, 270.0, 180.0))]
    exps = explain_faces(ensemble, astronaut, faces, "occlusion")
    assert grids == [(16, 4), (24, 4)]  # 2 faces x 2 members share the budget
    xs = ensemble.member_inputs(astronaut, faces)
    with torch.no_grad():
        predicted = ensemble(*xs).argmax(dim=1).tolist()
    assert [e.target for e in exps] == [ensemble.labels[i] for i in predicted]
    for e in exps:
        assert e.method == "occlusion" and e.heatmap.shape == (112, 112)
        assert np.isfinite(e.heatmap).all() and e.heatmap.min() >= 0 and e.heatmap.max() == pytest.approx(1.0)

    # each member's raw map is what occluding that member's crop by hand gives, for a different target per
    # face (Captum repeats the held inputs to match each batch of occluded copies)
    clone, _ = saliency._attribution_copy(ensemble)
    targets = [0, 1]
    raw = saliency._raw_maps(clone, xs, "occlusion", targets, None)
    for i, (x, member_map) in enumerate(zip(xs, raw)):
        window, stride = occlusion_grid(x.shape[-1], 4, clone.members[i]._ferhub_flops)
        assert member_map.shape == (2, x.shape[-1], x.shape[-1]) and member_map.max() > 0
        expected = _occluded_by_hand(clone, xs, i, targets, window, stride)
        np.testing.assert_allclose(member_map.numpy(), expected, atol=1e-5)


def test_each_members_map_lands_where_its_crop_lies(astronaut: Image.Image) -> None:
    """Occlusion of the ensemble: member maps are carried onto the shown crop through the photo, so heat
    only appears where a member's crop covers the shown crop; a member whose crop is the shown crop's centre
    leaves the shown crop's border cold."""
    from ferhub.models.ensemble import _CFG, Ensemble

    torch.manual_seed(0)
    tight = create_model(
        "test_tiny",
        ("happy", "sad"),
        in_chans=3,
        config_overrides={
            "channels": 3,
            "mean": (0.5,) * 3,
            "std": (0.5,) * 3,
            "input_size": 32,
            "crop_margin": 0.0,
        },
    )
    ensemble = Ensemble([tight.eval()])
    ensemble.config = ModelConfig(
        architecture="ensemble", labels=ensemble.labels, **{**_CFG, "crop_margin": 0.5}
    )
    (exp,) = explain_faces(ensemble, astronaut, [ASTRONAUT_FACE], "saliency")
    heat = exp.heatmap
    # the ensemble's crop is 2x the box (margin 0.5 each side); the member sees the middle half of it
    assert (
        heat[:20].max() == 0
        and heat[-20:].max() == 0
        and heat[:, :20].max() == 0
        and heat[:, -20:].max() == 0
    )
    assert heat[40:72, 40:72].max() > 0.5


def _many_faces(count: int) -> list[Face]:
    """``count`` faces at different places of astronaut.jpg: each crop (and so each map) its own."""
    boxes = [(120.0 + 25 * i, 40.0 + 20 * i, 220.0 + 25 * i, 160.0 + 20 * i) for i in range(count)]
    return [dataclasses.replace(ASTRONAUT_FACE, box=box) for box in boxes]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("ensemble", [False, True])
def test_many_faces_are_attributed_a_bounded_chunk_at_a_time(
    astronaut: Image.Image, monkeypatch: pytest.MonkeyPatch, ensemble: bool
) -> None:
    """Every face's activations were kept at once for the backward pass: ~17 MB a face for facemood, 2 GB for
    a crowd photo's 117 faces with Guided Backprop. Faces now go a chunk at a time, sized by
    ATTRIBUTION_BUDGET_BYTES of activations: no forward pass of any method takes more than a chunk's rows
    (Integrated Gradients' scaled copies included), and the maps are those of one batch."""
    from ferhub import saliency

    model = _two_member_ensemble(16, 24) if ensemble else create_model("test_tiny").eval()
    methods = [m for m in METHODS if not (ensemble and m == "gradcam")]
    faces = _many_faces(7)
    monkeypatch.setattr(saliency, "OCCLUSION_BUDGET_FLOPS", 1.0)  # occlusion at its 4x4 floor: fast
    monkeypatch.setattr(saliency, "ATTRIBUTION_BUDGET_BYTES", 2**40)  # one batch
    assert saliency.faces_per_chunk(model) == saliency.MAX_CHUNK
    whole = {m: explain_faces(model, astronaut, faces, m) for m in methods}

    clone, _ = saliency._attribution_copy(model)
    shapes = tuple((c.channels, c.input_size, c.input_size) for c in saliency._input_configs(model))
    per_face = saliency._activation_bytes(clone, shapes)
    monkeypatch.setattr(saliency, "ATTRIBUTION_BUDGET_BYTES", 2 * per_face + 1)
    assert saliency.faces_per_chunk(model) == 2
    rows: list[int] = []
    handle = clone.register_forward_pre_hook(lambda module, args: rows.append(len(args[0])))
    try:
        for method in methods:
            rows.clear()
            chunked = explain_faces(model, astronaut, faces, method)
            forwards = [n for n in rows if n > 1]  # occlusion's per-copy FLOP count runs one face alone
            if method != "occlusion":  # occlusion batches occluded copies without gradients (see _occlude)
                assert forwards and max(forwards) <= 2, (method, rows)
            assert [e.target for e in chunked] == [e.target for e in whole[method]], method
            for a, b in zip(chunked, whole[method]):
                np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5, err_msg=method)
    finally:
        handle.remove()


def test_gradcam_layer_prefers_the_family_choice_then_the_last_conv() -> None:
    model = create_model("test_tiny")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert gradcam_layer(model) is convs[-1]
    model.gradcam_layer = convs[0]
    assert gradcam_layer(model) is convs[0]
    with pytest.raises(SaliencyError, match="no Conv2d"):
        gradcam_layer(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


def test_target_index_by_name_alias_and_errors() -> None:
    config = create_model("test_tiny").config
    assert target_index(config, "predicted") is None and target_index(config, None) is None
    assert target_index(config, "Happiness") == config.labels.index("happy")
    assert target_index(config, 2) == 2
    with pytest.raises(SaliencyError, match="no class 'contempt'"):
        target_index(config, "contempt")
    with pytest.raises(SaliencyError, match="out of range"):
        target_index(config, 7)


def test_numpy_targets_are_indices_and_bad_targets_are_saliency_errors(astronaut: Image.Image) -> None:
    """A Predictor's probabilities give numpy integers (``probs.argmax()``; ``probs.argmax(axis=1)`` is one
    per face): indices, as ints are. They and arrays of them met ``target.strip()`` (an AttributeError), as
    did any target that is neither a name nor an index, which is a SaliencyError."""
    model = create_model("test_tiny").eval()
    labels = model.config.labels
    faces = [ASTRONAUT_FACE, dataclasses.replace(ASTRONAUT_FACE, box=(200.0, 300.0, 300.0, 420.0))]

    def explained(target: Any) -> list[str]:
        return [e.target for e in explain_faces(model, astronaut, faces, "saliency", target)]

    assert target_index(model.config, np.int64(2)) == 2
    assert type(target_index(model.config, np.uint8(2))) is int
    assert explained(np.int64(2)) == [labels[2]] * 2
    assert explained(np.array([1, 3])) == [labels[1], labels[3]]  # one per face, as a list is
    assert explained(np.array(4)) == [labels[4]] * 2  # a 0-d array: one target
    assert explained(("happy", np.int32(0))) == ["happy", labels[0]]
    for bad in (True, np.bool_(True), 2.5, b"happy", object(), [1, [2]], np.array([[1], [2]])):
        with pytest.raises(SaliencyError, match="a target is a class name or index"):
            explained(bad)
    with pytest.raises(SaliencyError, match="got 3 targets for 2 faces"):
        explained(np.array([0, 1, 2]))
    with pytest.raises(SaliencyError, match="out of range"):
        explained(np.int64(7))


def test_attribute_checks_targets_and_methods_as_explain_faces_does() -> None:
    """``attribute`` read a class name one character at a time (``'happy'`` -> ``int('h')``), took True as
    class 1 and passed an index out of range on to Captum (a RuntimeError deep inside); ``method=None`` met
    ``.strip()``. Now the one check of explain_faces, for a model with a config and a bare module alike."""
    torch.manual_seed(0)
    model = create_model("test_tiny").eval()
    labels = model.config.labels
    x = torch.randn(2, 1, model.config.input_size, model.config.input_size)
    by_name = attribute(model, x, "saliency", "happy")
    np.testing.assert_array_equal(by_name, attribute(model, x, "saliency", labels.index("happy")))
    np.testing.assert_array_equal(
        attribute(model, x, "saliency", ["happy", 0]),
        np.stack([by_name[0], attribute(model, x, "saliency", 0)[1]]),
    )
    for bad, match in ((99, "target index 99 is out of range for 7 classes"), (-1, "target index -1 is out"),
                       (True, "a target is a class name or index"), ("contempt", "no class 'contempt'"),
                       ([0, 1, 2], "got 3 targets for 2 faces")):  # fmt: skip
        with pytest.raises(SaliencyError, match=match):
            attribute(model, x, "saliency", bad)
    bare = LeftHalf().eval()  # no config: indices only, checked against what it outputs
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(SaliencyError, match="target index 2 is out of range for 2 classes"):
        attribute(bare, x, "saliency", 2)
    with pytest.raises(SaliencyError, match="no config naming its classes"):
        attribute(bare, x, "saliency", "happy")
    for method in (None, 3):
        with pytest.raises(SaliencyError, match="a saliency method is one of gradcam"):
            attribute(bare, x, method)
        with pytest.raises(SaliencyError, match="a saliency method is one of gradcam"):
            explain_faces(model, Image.new("RGB", (64, 64)), [], method)  # refused with no face too


@pytest.mark.slow
def test_explain_faces_uses_the_models_crop_and_predicted_class(astronaut: Image.Image) -> None:
    from ferhub.hub import DEFAULT_MODEL, load
    from ferhub.predict import Predictor

    model = load(DEFAULT_MODEL)
    (exp,) = explain_faces(model, astronaut, [ASTRONAUT_FACE], "gradcam")
    assert exp.heatmap.shape == (64, 64) and exp.method == "gradcam"
    assert np.array_equal(
        np.asarray(exp.crop), np.asarray(crop_face(astronaut, ASTRONAUT_FACE, model.config))
    )
    predicted = Predictor(model).classify_faces(astronaut, [ASTRONAUT_FACE])[0][0]
    assert exp.target == model.config.labels[int(predicted.argmax())]
    (forced,) = explain_faces(model, astronaut, [ASTRONAUT_FACE], "Saliency", target="sad")
    assert forced.target == "sad"


@pytest.mark.parametrize("ensemble", [False, True])
def test_a_model_giving_nan_has_no_predicted_class_and_no_map(astronaut: Image.Image, ensemble: bool) -> None:
    """argmax read the first class out of NaN scores and explained it, with a map of NaN: both refused."""
    model = _two_member_ensemble() if ensemble else create_model("test_tiny").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3e38)  # finite weights whose scores overflow to NaN (a diverged training run)
    faces = [ASTRONAUT_FACE, ASTRONAUT_FACE]
    with pytest.raises(SaliencyError, match="NaN or infinite scores for face 1, 2, so it has no predicted"):
        explain_faces(model, astronaut, faces, "saliency")
    with pytest.raises(SaliencyError, match=r"the attribution is NaN or infinite; .*\(a diverged or corrupt"):
        explain_faces(model, astronaut, faces, "saliency", target="happy")


def test_a_model_trained_on_after_an_explanation_is_explained_with_its_new_weights(
    astronaut: Image.Image,
) -> None:
    """The private attribution copy is made again when the model's weights change in place (a training step
    between two explanations explained the old weights: the same map and the old predicted class)."""
    torch.manual_seed(0)
    model = create_model("test_tiny").eval()
    (before,) = explain_faces(model, astronaut, [ASTRONAUT_FACE], "saliency")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # an optimiser step changes the weights in place
    (after,) = explain_faces(model, astronaut, [ASTRONAUT_FACE], "saliency")
    (fresh,) = explain_faces(copy.deepcopy(model), astronaut, [ASTRONAUT_FACE], "saliency")
    assert not np.array_equal(before.heatmap, after.heatmap)
    assert np.array_equal(after.heatmap, fresh.heatmap) and after.target == fresh.target


@pytest.mark.parametrize("align", [False, True])
def test_crop_placement_maps_crop_pixels_onto_the_photo(astronaut: Image.Image, align: bool) -> None:
    config = ModelConfig(
        architecture="test_tiny",
        labels=("happy", "sad"),
        input_size=48,
        channels=3,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
    )
    config = dataclasses.replace(config, align=align, crop_margin=0.25)
    placement = crop_placement(astronaut.size, ASTRONAUT_FACE, config)
    if not align:  # square 100 px box + 25% margin each side = 150 px over 48 crop pixels, centred on the box
        # (fitted on nearest-neighbour samples: exact to a fraction of a pixel over the crop)
        assert placement[0, 0] == pytest.approx(150 / 48, rel=0.005) and abs(placement[0, 1]) < 0.01
        assert placement[0, 2] == pytest.approx(212.5 - 75, abs=0.5)
        assert placement[1, 2] == pytest.approx(110 - 75, abs=0.5)
    crop = np.asarray(crop_face(astronaut, ASTRONAUT_FACE, config).convert("L"), dtype=np.float64)
    v, u = np.mgrid[0:48, 0:48] + 0.5
    xs = placement[0, 0] * u + placement[0, 1] * v + placement[0, 2]
    ys = placement[1, 0] * u + placement[1, 1] * v + placement[1, 2]
    gray = np.asarray(astronaut.convert("L"), dtype=np.float64)
    sampled = gray[ys.astype(int), xs.astype(int)]
    assert np.corrcoef(sampled.ravel(), crop.ravel())[0, 1] > 0.98


def test_crop_placement_of_a_face_at_the_photo_edge(astronaut: Image.Image) -> None:
    """Half of this crop is edge-replicated padding: the map is still exact where the crop shows the photo."""
    config = create_model("mini_xception").config
    face = Face((0.0, 300.0, 60.0, 380.0), 0.9)
    placement = crop_placement(astronaut.size, face, config)
    side = 80 * (1 + 2 * config.crop_margin)  # square of the longer side plus the margin
    assert placement[0, 0] == pytest.approx(side / 64, rel=0.01) and placement[1, 1] == pytest.approx(
        side / 64, rel=0.01
    )
    assert placement[0, 2] == pytest.approx(30 - side / 2, abs=1) and placement[1, 2] == pytest.approx(
        340 - side / 2, abs=1
    )


def test_overlay_on_photo_changes_only_the_face_region(astronaut: Image.Image) -> None:
    config = create_model("mini_xception").config
    heat = np.zeros((64, 64), dtype=np.float32)
    heat[16:48, 16:48] = 1.0  # the middle of the crop
    out = np.asarray(overlay_on_photo(astronaut, [ASTRONAUT_FACE], [heat], config), dtype=np.int32)
    diff = np.abs(out - np.asarray(astronaut, dtype=np.int32)).sum(axis=2)
    assert diff[110, 212] > 60  # the box centre is in the hot square
    assert diff[:40].max() == 0 and diff[200:].max() == 0 and diff[:, :140].max() == 0


def test_overlay_blends_the_colormap_and_keeps_cold_pixels() -> None:
    base = Image.new("RGB", (8, 8), (128, 128, 128))
    heat = np.zeros((4, 4), dtype=np.float32)
    heat[:2, :2] = 1.0
    out = np.asarray(overlay(base, heat, alpha=1.0, size=8))
    assert tuple(out[7, 7]) == (128, 128, 128)
    assert tuple(out[0, 0]) == tuple(colorize(np.ones((1, 1)))[0, 0])


def test_colorize_is_turbo() -> None:
    rgb = colorize(np.array([[0.0, 0.5, 1.0]]))[0]
    assert np.abs(rgb[0].astype(int) - (34, 23, 27)).max() <= 20  # turbo starts dark
    assert rgb[1, 1] > 200  # green-yellow in the middle
    assert rgb[2, 0] > rgb[2, 2] and rgb[2, 1] < 40  # and ends dark red


def test_write_overlays_for_the_cli(tmp_path: Path) -> None:
    from ferhub.hub import DEFAULT_MODEL
    from ferhub.predict import Predictor

    predictor = Predictor(DEFAULT_MODEL)
    photos = [str(EXAMPLES / "astronaut.jpg"), str(EXAMPLES / "grace_hopper.jpg")]
    paths = write_overlays(predictor, predictor.predict(photos), method="Grad-CAM", out_dir=tmp_path / "out")
    names = sorted(p.name for p in paths)
    assert names == [
        "astronaut_face1_gradcam.png",
        "astronaut_gradcam.jpg",
        "grace_hopper_face1_gradcam.png",
        "grace_hopper_gradcam.jpg",
    ]
    assert Image.open(tmp_path / "out" / "astronaut_gradcam.jpg").size == (512, 512)
    assert Image.open(tmp_path / "out" / "astronaut_face1_gradcam.png").size == (192, 192)


def test_model_slugs_are_short_and_tell_every_model_apart() -> None:
    assert model_slugs(["ferhub/fer-mini-xception", "ferhub/facemood"]) == ["fer-mini-xception", "facemood"]
    assert model_slugs(["org/name@v1", "org/name@v2"]) == ["org-name@v1", "org-name@v2"]  # two revisions
    assert model_slugs(["runs/a/model/", "runs/b/model", "c/x"]) == ["runs-a-model", "runs-b-model", "x"]
    assert model_slugs(["x/m", "x/m"]) == ["m", "m-2"]  # one model given twice
    assert model_slugs(["a/Face", "b/face", "b/face"]) == ["a-Face", "b-face", "b-face-2"]  # case: one file
    # no "_" in a slug: photo `x` with model `mini_xception` and photo `x_mini` with model `xception` both
    # wrote x_mini_xception_gradcam.jpg, the second replacing the first
    assert model_slugs(["runs/mini_xception", "runs2/xception"]) == ["mini-xception", "xception"]
