"""What a model looked at: Captum attributions on face crops, as normalised heatmaps, and their overlays.

Every method returns one ``(S, S)`` float heatmap in ``[0, 1]`` per face, in the coordinates of the crop the
model was fed (``ferhub.faces.crop_face`` with the model's config), so overlays line up with that crop and,
through the crop's geometry, with the original photo.

>>> from ferhub.saliency import explain_faces, overlay            # doctest: +SKIP
>>> exp = explain_faces(model, photo, faces, "gradcam")[0]         # doctest: +SKIP
>>> overlay(exp.crop, exp.heatmap).save("face_gradcam.png")        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import re
import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ferhub.config import ModelConfig
from ferhub.device import autograd_batch
from ferhub.errors import SaliencyError, not_finite
from ferhub.fileio import NAME_MAX, atomic_save_image, fit_name, remove_stale_temps_in

# method id -> display name; the ids are what the CLI (`--saliency`) and the app's API accept
METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "guided_backprop": "Guided Backprop",
    "integrated_gradients": "Integrated Gradients",
    "saliency": "Saliency",
    "occlusion": "Occlusion",
}
_ALIASES = {name.lower().replace(" ", "_").replace("-", ""): mid for mid, name in METHODS.items()}
_ALIASES.update({"grad_cam": "gradcam", "guided": "guided_backprop", "ig": "integrated_gradients"})


def method_id(method: str) -> str:
    """Accept an id (``"gradcam"``) or a display name (``"Grad-CAM"``); raise listing the choices
    otherwise (the one check of a method, for :func:`attribute` and :func:`explain_faces` alike)."""
    if not isinstance(method, str):
        raise SaliencyError(f"a saliency method is one of {', '.join(METHODS)}, got {method!r}")
    key = method.strip().lower().replace(" ", "_").replace("-", "")
    mid = key if key in METHODS else _ALIASES.get(key)
    if mid is None:
        raise SaliencyError(f"unknown saliency method {method!r}; choose one of {', '.join(METHODS)}")
    return mid


def gradcam_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM explains: ``model.gradcam_layer`` when the family names one, else the last
    Conv2d."""
    layer = getattr(model, "gradcam_layer", None)
    if isinstance(layer, nn.Module):
        return layer
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise SaliencyError(
            f"{type(model).__name__} has no Conv2d layer and no `gradcam_layer` attribute, so Grad-CAM has "
            "nothing to explain; use another method (e.g. integrated_gradients)"
        )
    return convs[-1]


# -- attribution on a shared model -------------------------------------------------------------------------
# Captum's guided backprop and Grad-CAM install hooks on the module they are given. The app classifies on
# the same module from other threads at the same time, so attribution runs on a private copy (ReLUs made
# out-of-place, which Captum's backward hooks need), one at a time per copy. A copy is made again when the
# model's tensors changed since (a training step or load_state_dict in between: they change in place).
_Copy = tuple[nn.Module, threading.Lock, tuple[tuple[int, int], ...]]
_copies: weakref.WeakKeyDictionary[nn.Module, _Copy] = weakref.WeakKeyDictionary()
_copies_lock = threading.Lock()


def _tensor_versions(model: nn.Module) -> tuple[tuple[int, int], ...]:
    """Each parameter's and buffer's identity and in-place version: what changes when the weights do."""
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))


def _attribution_copy(model: nn.Module) -> tuple[nn.Module, threading.Lock]:
    versions = _tensor_versions(model)
    with _copies_lock:
        entry = _copies.get(model)
        if entry is None or entry[2] != versions:
            # contiguous, as the batch is (ferhub.device.autograd_batch): a channels-last module or batch
            # under autograd on the CPU hits oneDNN's strided 1x1 conv backward, which corrupts the heap on
            # AVX-512 machines
            clone = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
            for module in clone.modules():
                if isinstance(module, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.Hardtanh)):
                    module.inplace = False
            for p in clone.parameters():
                p.requires_grad_(False)  # gradients are wanted w.r.t. the input (or a layer), never weights
            entry = (clone, threading.Lock(), versions)
            _copies[model] = entry
        return entry[0], entry[1]


_NOT_FINITE = not_finite()


def _normalise(maps: torch.Tensor, *, robust: bool) -> np.ndarray:
    """(B, H, W) non-negative maps -> [0, 1] per map; ``robust`` clips the top 0.5% (pixel gradients are
    spiky)."""
    maps = maps.detach().float().cpu()
    if not torch.isfinite(maps).all():  # a map of NaN draws as garbage, or as nothing, and says neither
        raise SaliencyError(f"the attribution is NaN or infinite; {_NOT_FINITE}")
    flat = maps.flatten(1)
    top = torch.quantile(flat, 0.995, dim=1) if robust else flat.max(dim=1).values
    top = torch.where(top > 0, top, torch.ones_like(top))
    return (maps / top.view(-1, 1, 1)).clamp_(0, 1).numpy().astype(np.float32)


# Occlusion runs the model once per window position and face, so its cost is the number of occluded copies a
# call evaluates (all faces together) times the model's cost per copy, counted in FLOPs (torch's
# FlopCounterMode; an ensemble's copies of one member's crop run that member alone, so count its FLOPs).
# Measured on one core here: ~0.13 ms per MFLOP for these nets, and tiny ones cost at least ~8 ms a copy
# (hence the floor). 16 GFLOP is ~2 s: five faces of faceapi-expression (103 MFLOP a copy) get 5x5 positions
# each, where the earlier fixed 1/16 stride cost 15x15, 23-26 s in all.
OCCLUSION_BUDGET_FLOPS = 16e9
_FLOPS_FLOOR = 60e6


def _flops_per_copy(model: nn.Module, ones: tuple[torch.Tensor, ...]) -> float:
    """FLOPs of one forward pass of one face (an ensemble: one crop per member), counted once per (private)
    model copy."""
    flops = getattr(model, "_ferhub_flops", None)
    if flops is None:
        from torch.utils.flop_counter import FlopCounterMode

        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*ones)
        flops = float(counter.get_total_flops())
        model._ferhub_flops = flops
    return flops


def occlusion_grid(size: int, share: int = 1, flops: float = _FLOPS_FLOOR) -> tuple[int, int]:
    """``(window, stride)`` for occluding a ``size`` px input of a model costing ``flops`` a copy, when
    ``share`` inputs split :data:`OCCLUSION_BUDGET_FLOPS`: as many positions as that allows (4x4 to 12x12),
    windows twice the stride so neighbours overlap."""
    copies = OCCLUSION_BUDGET_FLOPS // (max(flops, _FLOPS_FLOOR) * max(1, share))
    per_side = max(4, min(12, math.isqrt(max(int(copies), 1))))
    stride = max(1, size // (per_side + 1))
    while (size - 2 * stride) // stride + 1 > per_side:  # integer sizes: the smallest stride that fits
        stride += 1
    return min(size, 2 * stride), stride


# Gradient methods keep every layer's activations of the batch for the backward pass, and the private copy's
# out-of-place ReLUs one more: facemood (170 px RGB, 32 channels at full size) holds ~18 MB a face, so the
# 117 faces of a crowd photo in one batch took 2.0 GB more with Guided Backprop, 0.86 GB with Grad-CAM, and
# nothing capped the number of faces. Faces are attributed (and their predicted classes read) in chunks, as
# many a chunk as keep its forward activations (every leaf module's outputs, counted on one face) within
# ATTRIBUTION_BUDGET_BYTES, at most MAX_CHUNK; Integrated Gradients' scaled copies go in batches of as many
# rows. Each map depends on its own face alone (the models run in eval mode): the maps are one batch's.
# Measured on those 117 faces (facemood: 7 a chunk), 2 shared cores: the call's peak RSS growth fell from
# 2.0 GB to 0.44 GB (Guided Backprop) and 0.86 to 0.16 GB (Grad-CAM); with the app's one torch thread a call
# took half the time (6.9 -> 3.3 s, 3.1 -> 1.5 s; a 256 MB budget: 4.0 and 2.4 s), with two threads on the
# busy cores up to 1.5x longer.
ATTRIBUTION_BUDGET_BYTES = 128 * 2**20
MAX_CHUNK = 64


_activations: weakref.WeakKeyDictionary[nn.Module, dict[tuple[tuple[int, ...], ...], int]] = (
    weakref.WeakKeyDictionary()
)
_activations_lock = threading.Lock()


def _activation_bytes(model: nn.Module, shapes: tuple[tuple[int, ...], ...]) -> int:
    """Bytes of every leaf module's outputs in one forward pass of one item shaped ``shapes`` (one shape per
    input), counted once per model and shapes on a copy of it on the CPU whose tensors are zeros (made there,
    none copied from the model's device: on ZeroGPU a GPU is lent inside the GPU functions alone). PyTorch's
    "meta" device would compute nothing, but its first use imports ~480 modules (+34 MB in the server)."""
    with _activations_lock:
        counted = _activations.setdefault(model, {})
        if shapes not in counted:
            total = 0

            def count(module: nn.Module, args: Any, output: Any) -> None:
                nonlocal total
                outputs = output if isinstance(output, (tuple, list)) else (output,)
                total += sum(t.nelement() * t.element_size() for t in outputs if isinstance(t, torch.Tensor))

            memo: dict[int, Any] = {id(b): torch.zeros_like(b, device="cpu") for b in model.buffers()}
            for p in model.parameters():
                memo[id(p)] = nn.Parameter(torch.zeros_like(p, device="cpu"), requires_grad=False)
            probe = copy.deepcopy(model, memo)
            for module in probe.modules():
                module._forward_pre_hooks.clear()  # a caller's hooks are for the model's real passes
                module._forward_hooks.clear()
                if not list(module.children()):
                    module.register_forward_hook(count)
            dtype = next(model.parameters()).dtype
            with torch.no_grad():
                probe.eval()(*(torch.zeros((1, *s), dtype=dtype) for s in shapes))
            counted[shapes] = max(total, 1)
        return counted[shapes]


def _fitting(model: nn.Module, shapes: tuple[tuple[int, ...], ...]) -> int:
    """How many items shaped ``shapes`` one attribution pass of ``model`` takes at once (see
    :data:`ATTRIBUTION_BUDGET_BYTES`)."""
    return max(1, min(MAX_CHUNK, ATTRIBUTION_BUDGET_BYTES // _activation_bytes(model, shapes)))


def _chunk_size(clone: nn.Module, xs: tuple[torch.Tensor, ...]) -> int:
    """How many items of ``xs`` (one batch per input of ``clone``) one attribution pass takes at once."""
    return _fitting(clone, tuple(tuple(x.shape[1:]) for x in xs))


def _input_configs(model: nn.Module) -> list[ModelConfig]:
    """The configs of the inputs ``model`` takes: its own, or an ensemble's members' (one input each)."""
    members = getattr(model, "members", None)
    return [m.config for m in members] if members is not None else [model.config]


def faces_per_chunk(model: nn.Module) -> int:
    """How many faces :func:`explain_faces` attributes at once for ``model`` (see
    :data:`ATTRIBUTION_BUDGET_BYTES`): a caller explaining many faces can go a chunk at a time, to report
    progress or stop in between, at no cost."""
    return _fitting(model, tuple((c.channels, c.input_size, c.input_size) for c in _input_configs(model)))


def _chunked_maps(
    clone: nn.Module, xs: tuple[torch.Tensor, ...], mid: str, target: list[int], occlusion_share: int | None
) -> tuple[torch.Tensor, ...]:
    """:func:`_raw_maps` of ``xs`` a chunk of :func:`_chunk_size` items at a time, the maps of all items put
    together (the items share occlusion's budget as one batch would); call as :func:`_raw_maps`."""
    count = len(xs[0])
    share = count if occlusion_share is None else occlusion_share
    step = _chunk_size(clone, xs)
    parts: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, count, step):
        chunk = tuple(x[start : start + step] for x in xs)
        maps = _raw_maps(clone, chunk, mid, target[start : start + step], share)
        parts.append(tuple(m.detach() for m in maps))
    return tuple(torch.cat(maps) for maps in zip(*parts))


def _check_method(model: nn.Module, mid: str) -> None:
    if mid == "gradcam" and getattr(model, "members", None) is not None:
        raise SaliencyError(
            "Grad-CAM explains one convolutional layer and an ensemble has one per member; use Integrated "
            "Gradients, Saliency, Guided Backprop or Occlusion, which explain the ensemble's whole vote"
        )


def _raw_maps(
    clone: nn.Module, xs: tuple[torch.Tensor, ...], mid: str, target: list[int], occlusion_share: int | None
) -> tuple[torch.Tensor, ...]:
    """Unnormalised non-negative maps ``(B, S_i, S_i)``, one per input of ``clone`` (an ensemble has one input
    per member), for the targets given; call under the copy's lock with gradients enabled."""
    from captum.attr import GuidedBackprop, IntegratedGradients, LayerAttribution, LayerGradCam, Saliency

    if mid == "gradcam":
        (x,) = xs
        attr = LayerGradCam(clone, gradcam_layer(clone)).attribute(x, target=target, relu_attributions=True)
        return (LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), "bilinear").squeeze(1).clamp_(min=0),)
    if mid == "occlusion":
        share = (len(xs[0]) if occlusion_share is None else occlusion_share) * len(xs)
        members = getattr(clone, "members", None)
        if members is None:
            (x,) = xs
            grid = occlusion_grid(x.shape[-1], share, _flops_per_copy(clone, (x[:1],)))
            return (_occlude(clone, x, (), target, grid),)
        # an ensemble: occluding member i's crop changes member i's vote alone, so each occluded copy runs
        # that member only, against the other members' probabilities computed once (every member ran for
        # each copy before: 4x the budget for the zoo's four members)
        with torch.no_grad():
            held = [torch.softmax(m(x).float(), dim=1) for m, x in zip(members, xs)]
        maps = []
        for i, (member, x) in enumerate(zip(members, xs)):

            def vote(
                occluded: torch.Tensor, *others: torch.Tensor, i: int = i, member: nn.Module = member
            ) -> torch.Tensor:
                return clone.vote([*others[:i], torch.softmax(member(occluded).float(), dim=1), *others[i:]])

            grid = occlusion_grid(x.shape[-1], share, _flops_per_copy(member, (x[:1],)))
            maps.append(_occlude(vote, x, (*held[:i], *held[i + 1 :]), target, grid))
        return tuple(maps)
    xs = tuple(x.clone().requires_grad_(True) for x in xs)
    if mid == "guided_backprop":
        with warnings.catch_warnings():  # Captum announces its (temporary) ReLU hooks on every call
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU", category=UserWarning)
            attrs = GuidedBackprop(clone).attribute(xs, target=target)
    elif mid == "integrated_gradients":
        baselines = tuple(torch.zeros_like(x) for x in xs)
        # Captum runs all of the steps of all of the items in batches of this many rows (at least one step of
        # every item a batch): the budget's rows, as the other methods
        rows = max(len(xs[0]), _chunk_size(clone, xs))
        attrs = IntegratedGradients(clone).attribute(
            xs, baselines=baselines, target=target, n_steps=32, internal_batch_size=rows
        )
    else:  # saliency: |d score / d pixel|
        attrs = Saliency(clone).attribute(xs, target=target, abs=True)
    return tuple(a.abs().sum(dim=1) for a in attrs)


def _occlude(
    forward: Callable[..., torch.Tensor],
    x: torch.Tensor,
    held: tuple[torch.Tensor, ...],
    target: list[int],
    grid: tuple[int, int],
) -> torch.Tensor:
    """Occlusion map ``(B, S, S)`` of ``x`` through ``forward(occluded, *held)``.

    One input per Captum call: with several inputs Captum 0.9 batches windows of different inputs together,
    which wants one baseline per input and builds the masks of the inputs not occluded on the CPU (a device
    mismatch on a GPU). ``held`` (one row per item of ``x``) is repeated by Captum to match each batch of
    occluded copies.
    """
    from captum.attr import Occlusion

    window, stride = grid
    positions = ((x.shape[-1] - window) // stride + 1) ** 2
    attr = Occlusion(forward).attribute(
        x,
        target=target,
        sliding_window_shapes=(x.shape[1], window, window),
        strides=(x.shape[1], stride, stride),
        baselines=0.0,  # 0 in normalised space = the dataset mean: a neutral grey patch
        additional_forward_args=held or None,
        # ~32 occluded copies per forward pass: measured on CPU, larger batches were slower per copy
        # (faceapi-expression: 17 ms at 16-32, 29 ms at 64, 47 ms at 100)
        perturbations_per_eval=max(1, min(positions, 32 // len(x))),
    )
    return attr.sum(dim=1).clamp_(min=0)


def _robust(mid: str) -> bool:
    return mid not in ("gradcam", "occlusion")  # pixel-gradient maps are spiky: clip their top 0.5%


def _predicted(clone: nn.Module, xs: tuple[torch.Tensor, ...]) -> list[int]:
    """Each input's predicted class, a chunk of :func:`_chunk_size` items at a time; :class:`SaliencyError`
    where the model's scores are NaN or infinite (argmax would read the first class out of them, and explain
    that)."""
    predicted: list[int] = []
    bad: list[int] = []
    step = _chunk_size(clone, xs)
    with torch.no_grad():
        for start in range(0, len(xs[0]), step):
            logits = clone(*(x[start : start + step] for x in xs))
            finite = torch.isfinite(logits).all(dim=1)
            bad += [start + i for i in torch.nonzero(~finite).flatten().tolist()]
            predicted += logits.argmax(dim=1).tolist()
    if bad:
        faces = ", ".join(str(i + 1) for i in bad)
        raise SaliencyError(
            f"the model gave NaN or infinite scores for face {faces}, so it has no predicted class to"
            f" explain; {_NOT_FINITE}"
        )
    return predicted


def _targets(clone: nn.Module, xs: tuple[torch.Tensor, ...], indices: Sequence[int | None]) -> list[int]:
    """The class explained for each item: its index as checked (:func:`_target_indices`), or where that is
    ``None`` the item's predicted class (computed only where one is asked for)."""
    if all(i is not None for i in indices):
        return list(indices)  # type: ignore[arg-type]
    return [p if i is None else i for i, p in zip(indices, _predicted(clone, xs))]


def _classes(model: nn.Module, clone: nn.Module, xs: tuple[torch.Tensor, ...]) -> ModelConfig | int:
    """What a target is checked against: the model's config (labels and count), or for a bare module
    without one, the number of classes it outputs (one item run through its private copy)."""
    config = getattr(model, "config", None)
    if isinstance(config, ModelConfig):
        return config
    with torch.no_grad():
        return int(clone(*(x[:1] for x in xs)).shape[1])


def attribute(
    model: nn.Module,
    inputs: torch.Tensor,
    method: str,
    target: str | int | Sequence[str | int] | np.ndarray | torch.Tensor | None = None,
    *,
    occlusion_share: int | None = None,
) -> np.ndarray:
    """Heatmaps ``(B, S, S)`` in ``[0, 1]`` for a normalised batch ``(B, C, S, S)`` as the model is fed.

    ``target`` is a class index or name (or one per item), checked as :func:`explain_faces` checks it (an
    index out of range, a name the model does not have, a bool: :class:`SaliencyError`); ``None`` explains
    each item's predicted class. ``occlusion_share``: how many inputs share :data:`OCCLUSION_BUDGET_FLOPS`
    (default: this batch's), so one face at a time of a five-face photo gets the grid the five would get
    together. An ensemble, whose members each see their own crop, is explained per face by
    :func:`explain_faces`.
    """
    mid = method_id(method)
    _check_method(model, mid)
    if getattr(model, "members", None) is not None:
        raise SaliencyError(
            "an ensemble's members each see their own crop of a face: explain it with explain_faces(model, "
            "image, faces, method)"
        )
    clone, lock = _attribution_copy(model)
    xs = (autograd_batch(inputs.to(next(clone.parameters()).device).float()),)
    count = len(xs[0])
    with lock:
        # checked as explain_faces checks it: a name read one character at a time, an index past the classes
        # (Captum's own error deep inside) or True taken as class 1 is refused here
        indices = (
            [None] * count if target is None else _target_indices(_classes(model, clone, xs), target, count)
        )
        with torch.enable_grad():
            (maps,) = _chunked_maps(clone, xs, mid, _targets(clone, xs, indices), occlusion_share)
    return _normalise(maps, robust=_robust(mid))


# -- faces of a photo --------------------------------------------------------------------------------------
@dataclass
class Explanation:
    """One face's attribution: the crop the model saw, its heatmap (crop coordinates) and the class
    explained."""

    crop: Image.Image
    heatmap: np.ndarray
    target: str
    method: str


def target_index(config: ModelConfig | int, target: str | int | np.integer | None) -> int | None:
    """A class name or index (a numpy integer too: a ``probs.argmax()``) -> index in the model's label order;
    ``None``/"predicted" -> ``None``; anything else is a :class:`SaliencyError`. ``config`` may be the number
    of classes alone (a module without a config), which takes indices only."""
    if target is None or (isinstance(target, str) and target.strip().lower() in ("", "predicted")):
        return None
    count = config if isinstance(config, int) else config.num_classes
    # bool is an int to Python, but True is no class index anyone means
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if not 0 <= target < count:
            raise SaliencyError(f"target index {target} is out of range for {count} classes")
        return int(target)
    if not isinstance(target, str):
        raise SaliencyError(
            f"a target is a class name or index (or None for the predicted class), got {target!r}"
        )
    if isinstance(config, int):
        raise SaliencyError(
            f"this model has no config naming its classes, so the target {target!r} must be a class index"
        )
    from ferhub.labels import UnknownLabelError, canonical

    try:
        name = canonical(target)
    except UnknownLabelError:
        name = target
    if name not in config.labels:
        raise SaliencyError(f"this model has no class {target!r}; its classes are {', '.join(config.labels)}")
    return config.labels.index(name)


def _target_indices(
    config: ModelConfig | int,
    target: str | int | Sequence[str | int] | np.ndarray | torch.Tensor | None,
    count: int,
) -> list[int | None]:
    """One :func:`target_index` per face: ``target`` is one target for every face, or a sequence of one per
    face (a list, a tuple, a numpy array such as ``probs.argmax(axis=1)`` or a torch tensor: anything but a
    string)."""
    if isinstance(target, (np.ndarray, torch.Tensor)):  # tolist: Python's scalars (a 0-d array is one)
        per_face = target.tolist() if target.ndim else [target.item()] * count
    elif isinstance(target, Sequence) and not isinstance(target, (str, bytes)):
        per_face = list(target)
    else:
        per_face = [target] * count
    if len(per_face) != count:
        raise SaliencyError(f"got {len(per_face)} targets for {count} faces")
    return [target_index(config, t) for t in per_face]


def explain_faces(
    model: nn.Module,
    image: Image.Image | str | os.PathLike | bytes | np.ndarray,
    faces: Sequence,
    method: str,
    target: str | int | Sequence[str | int] | np.ndarray | torch.Tensor | None = None,
    *,
    occlusion_share: int | None = None,
) -> list[Explanation]:
    """Attribute every face of ``image`` (``ferhub.faces.Face`` list), cropped exactly as the model is fed.

    ``image`` is decoded as ``Predictor.predict`` decodes it (:func:`ferhub.images.upright_rgb`: a PIL image
    with an EXIF orientation is turned upright; a path, bytes or a numpy array are read), so the faces a
    ``Predictor`` found in it frame the same pixels here.

    ``target``: one class name or index (a numpy integer too) for every face, or a sequence of them, one per
    face (a list, or an array such as ``probs.argmax(axis=1)`` of a ``Predictor``'s probabilities; the labels
    it already gave save a forward pass), or ``None`` for each face's predicted class; anything else raises
    :class:`SaliencyError`. ``occlusion_share``: see :func:`attribute`.
    """
    from ferhub.faces import as_faces, crop_face
    from ferhub.images import pixel_limit, upright_rgb
    from ferhub.transforms import eval_tensor

    config: ModelConfig = model.config
    mid = method_id(method)  # checked first: a bad method is refused with no face too
    faces = as_faces(faces, "explain_faces")  # predict_image(...).faces too, for their faces
    if not faces:
        return []
    image = upright_rgb(image, max_pixels=pixel_limit(image))
    if getattr(model, "members", None) is not None:
        return _explain_ensemble(model, image, faces, mid, target, occlusion_share)
    crops = [crop_face(image, f, config) for f in faces]
    x = eval_tensor(crops, config)
    indices = _target_indices(config, target, len(crops))
    if any(i is None for i in indices):
        clone, lock = _attribution_copy(model)
        with lock:
            predicted = _predicted(clone, (x.to(next(clone.parameters()).device),))
        indices = [p if i is None else i for i, p in zip(indices, predicted)]
    targets: list[int] = indices  # type: ignore[assignment]
    maps = attribute(model, x, mid, targets, occlusion_share=occlusion_share)
    return [Explanation(c, m, config.labels[t], mid) for c, m, t in zip(crops, maps, targets)]


def _explain_ensemble(
    model: nn.Module,
    image: Image.Image,
    faces: Sequence,
    mid: str,
    target: str | int | Sequence[str | int] | np.ndarray | torch.Tensor | None,
    occlusion_share: int | None,
) -> list[Explanation]:
    """An ensemble's explanation of exactly what :class:`~ferhub.predict.Predictor` computes: every member
    fed its own crop (:meth:`~ferhub.models.ensemble.Ensemble.member_inputs`), the attribution taken through
    the combined vote, and each member's map carried through the photo onto the ensemble's own crop (its
    config frames the picture shown), where the maps add up."""
    from ferhub.faces import crop_face

    _check_method(model, mid)
    config: ModelConfig = model.config
    indices = _target_indices(config, target, len(faces))
    clone, lock = _attribution_copy(model)
    device = next(clone.parameters()).device
    xs = tuple(autograd_batch(x.to(device).float()) for x in model.member_inputs(image, faces))
    with lock, torch.enable_grad():
        targets = _targets(clone, xs, indices)
        raw = _chunked_maps(clone, xs, mid, targets, occlusion_share)
    size = config.input_size
    maps = np.zeros((len(faces), size, size), dtype=np.float32)
    for member, member_maps in zip(model.members, raw):
        for i, face in enumerate(faces):
            maps[i] += _onto_crop(
                member_maps[i].detach().cpu().numpy(), image.size, face, member.config, config
            )
    heatmaps = _normalise(torch.from_numpy(maps), robust=_robust(mid))
    crops = [crop_face(image, f, config) for f in faces]
    return [Explanation(c, m, config.labels[t], mid) for c, m, t in zip(crops, heatmaps, targets)]


def _onto_crop(
    heatmap: np.ndarray, image_size: tuple[int, int], face, source: ModelConfig, dest: ModelConfig
) -> np.ndarray:
    """A map over ``face``'s crop for config ``source`` moved onto its crop for ``dest`` (both placed in the
    photo by :func:`crop_placement`), as amounts per ``dest`` pixel; zero where the source crop has none."""
    src, dst = crop_placement(image_size, face, source), crop_placement(image_size, face, dest)
    inverse = np.linalg.inv(src[:, :2])
    linear = inverse @ dst[:, :2]  # dest pixel -> source pixel
    shift = inverse @ (dst[:, 2] - src[:, 2])
    coeffs = (*linear[0], shift[0], *linear[1], shift[1])
    moved = Image.fromarray(heatmap.astype(np.float32), mode="F").transform(
        (dest.input_size, dest.input_size),
        Image.Transform.AFFINE,
        coeffs,
        resample=Image.Resampling.BILINEAR,
        fillcolor=0.0,
    )
    return np.asarray(moved) * abs(np.linalg.det(linear))  # a dest pixel covers this many source pixels


# -- overlays ----------------------------------------------------------------------------------------------
# Turbo colormap (Google, Apache-2.0), polynomial fit by its authors: no matplotlib needed at run time.
_TURBO = np.array(
    [
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ],
    dtype=np.float32,
)


def _turbo(values: np.ndarray) -> np.ndarray:
    powers = np.stack([values**k for k in range(6)], axis=-1)
    return np.clip(powers @ _TURBO.T, 0, 1)


# 256-entry lookup table: colouring a whole photo's heatmap is then one indexing operation
_TURBO_LUT = (_turbo(np.linspace(0, 1, 256, dtype=np.float32)) * 255 + 0.5).astype(np.uint8)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """``[0, 1]`` heatmap (H, W) -> uint8 RGB (H, W, 3) in the turbo colormap."""
    index = (np.clip(heatmap, 0, 1) * 255 + 0.5).astype(np.uint8)
    return _TURBO_LUT[index]


def _resize_map(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if heatmap.shape[::-1] == size:
        return heatmap
    return np.asarray(
        Image.fromarray(heatmap.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR)
    )


def overlay(
    image: Image.Image, heatmap: np.ndarray, alpha: float = 0.6, size: int | None = None
) -> Image.Image:
    """Blend the coloured heatmap over ``image`` (resized to ``size`` square when given); cold areas stay
    clear."""
    base = image.convert("RGB")
    if size is not None:
        base = base.resize((size, size), Image.Resampling.BICUBIC)
    h = _resize_map(heatmap, base.size)
    out = np.array(base)
    # blend only the rows and columns that hold any heat (a face's crop in a whole photo)
    rows = np.flatnonzero(h.max(axis=1) >= 0.5 / 255)
    cols = np.flatnonzero(h.max(axis=0) >= 0.5 / 255)
    if rows.size == 0:
        return Image.fromarray(out)
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    index = (np.clip(h[window], 0, 1) * 255 + 0.5).astype(np.uint8)
    weight = (alpha * np.sqrt(np.arange(256, dtype=np.float32) / 255))[index][
        ..., None
    ]  # sqrt: mid heat shows
    region = out[window].astype(np.float32)
    out[window] = (region + (_TURBO_LUT[index] - region) * weight + 0.5).astype(np.uint8)
    return Image.fromarray(out)


def crop_placement(image_size: tuple[int, int], face, config: ModelConfig) -> np.ndarray:
    """The 2x3 affine map from crop pixel coordinates to photo coordinates for ``crop_face(photo, face,
    config)``.

    Read off ``crop_face`` itself rather than re-deriving its geometry (margin, squaring, eye alignment):
    crop two probe images whose pixels hold their own x and y coordinates (16 bits over two channels, sampled
    with "nearest" so no value is blended) and fit the affine map to the coordinates that come back.
    """
    import dataclasses

    from ferhub.faces import crop_face

    width, height = image_size
    probe_config = dataclasses.replace(
        config, channels=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="nearest"
    )
    # Probe only a window around the face (a large photo would cost two full-size probes otherwise). Samples
    # that fall outside the window come back edge-replicated with the window's border values and are dropped
    # from the fit, so a window smaller than the crop costs samples, never accuracy.
    x1, y1, x2, y2 = face.box
    half = max(x2 - x1, y2 - y1) * (0.5 + config.crop_margin) * 1.5 + 4
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rx0, ry0 = max(0, int(cx - half)), max(0, int(cy - half))
    rx1, ry1 = min(width, int(cx + half) + 1), min(height, int(cy + half) + 1)
    if rx1 - rx0 < 3 or ry1 - ry0 < 3:
        raise SaliencyError("the face's crop lies outside the photo; nothing to overlay")
    shifted = dataclasses.replace(
        face,
        box=(x1 - rx0, y1 - ry0, x2 - rx0, y2 - ry0),
        landmarks=None if face.landmarks is None else tuple((x - rx0, y - ry0) for x, y in face.landmarks),
    )
    w, h = rx1 - rx0, ry1 - ry0
    sampled = []
    for axis, start, extent in ((1, rx0, w), (0, ry0, h)):
        coords = np.broadcast_to(np.expand_dims(np.arange(start, start + extent), 1 - axis), (h, w))
        probe = np.zeros((h, w, 3), dtype=np.uint8)
        probe[..., 0], probe[..., 1] = coords & 255, coords >> 8
        crop = np.asarray(crop_face(Image.fromarray(probe), shifted, probe_config), dtype=np.int64)
        sampled.append(crop[..., 0] + 256 * crop[..., 1])
    xs, ys = sampled
    size = xs.shape[0]
    inside = (xs > rx0) & (xs < rx1 - 1) & (ys > ry0) & (ys < ry1 - 1)
    if inside.sum() < 3:
        raise SaliencyError("the face's crop lies outside the photo; nothing to overlay")
    v, u = np.mgrid[0:size, 0:size]
    design = np.stack([u[inside] + 0.5, v[inside] + 0.5, np.ones(int(inside.sum()))], axis=1)
    target = np.stack([xs[inside] + 0.5, ys[inside] + 0.5], axis=1)
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return solution.T  # rows: X = a u + b v + c, Y = d u + e v + f


def overlay_on_photo(
    photo: Image.Image,
    faces: Sequence,
    heatmaps: Sequence[np.ndarray],
    config: ModelConfig,
    alpha: float = 0.6,
) -> Image.Image:
    """Map each face's crop-space heatmap back onto the whole photo through its crop geometry and blend."""
    photo = photo.convert("RGB")
    width, height = photo.size
    canvas = np.zeros((height, width), dtype=np.float32)
    for face, heatmap in zip(faces, heatmaps):
        placement = crop_placement(photo.size, face, config)
        # PIL's affine transform pulls: for each photo pixel it needs the crop pixel, i.e. the inverse map
        scale = heatmap.shape[0] / config.input_size
        linear, shift = placement[:, :2], placement[:, 2]
        inverse = np.linalg.inv(linear) * scale
        offset = -inverse @ shift
        coeffs = (*inverse[0], offset[0], *inverse[1], offset[1])
        sampled = Image.fromarray(heatmap.astype(np.float32), mode="F").transform(
            (width, height), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR, fillcolor=0.0
        )
        canvas = np.maximum(canvas, np.asarray(sampled))
    return overlay(photo, canvas, alpha)


def unique_stem(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ... when taken (two photos with one name in different folders);
    compared without case, as macOS and Windows file systems do. The stem returned is added to ``taken``."""
    name, n = stem, 1
    while name.casefold() in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name.casefold())
    return name


def model_slugs(names: Sequence[str]) -> list[str]:
    """Short file-name-safe names for models, one each, to tell their overlays apart: the last part of an id
    or folder (``ferhub/fer-mini-xception`` -> ``fer-mini-xception``), the whole id where two models share
    that part (``org-a-model``, ``org-b-model``; two revisions of one repo), numbered where still equal (one
    model given twice: ``NAME``, ``NAME-2``)."""

    def safe(text: str) -> str:  # no "_": it parts STEM_MODEL_faceN, so `x` + `mini_xception` is no `x_mini`
        return re.sub(r"[^\w.@-]+|_+", "-", text).strip("-.") or "model"

    short = [safe(re.split(r"[/\\]", name.rstrip("/\\"))[-1].split("@")[0]) for name in names]
    ids_of: dict[str, set[str]] = {}
    for s, name in zip(short, names):
        ids_of.setdefault(s.casefold(), set()).add(name)
    # one model given twice keeps its short name (numbered below): its whole id would tell nothing apart
    wanted = [s if len(ids_of[s.casefold()]) == 1 else safe(name) for s, name in zip(short, names)]
    taken: set[str] = set()
    return [unique_stem(s, taken) for s in wanted]


def write_overlays(
    predictor,
    results: Sequence,
    *,
    method: str | Sequence[str],
    out_dir: str | Path,
    target: str | None = None,
    on_error: Callable[[Path, OSError], None] | None = None,
    taken: set[str] | None = None,
    is_input: Callable[[Path], bool] | None = None,
) -> list[Path]:
    """Write attribution overlays for ``ferhub predict --saliency``: per face ``STEM_faceN_METHOD.png`` (the
    crop the model saw, 192 px) and per photo ``STEM_METHOD.jpg`` (all faces' maps on the photo).

    ``results`` are the :class:`~ferhub.predict.ImageResult` list of ``predictor.predict`` (images are read
    again from their paths). Every model of ``predictor`` is explained, for each face's class as that model
    predicted it unless ``target`` names one; with several models each one's files carry its
    :func:`model_slugs` name (``STEM_SLUG_faceN_METHOD.png``, ``STEM_SLUG_METHOD.jpg``), so none replaces
    another's. ``method``: one for every model, or one per model (the CLI explains an ensemble with
    Integrated Gradients where Grad-CAM was asked for). Returns the paths written. ``on_error(path, error)``,
    when given, is told of each file that cannot be written (a full disk) and the others are still tried;
    without it the error is raised. ``taken`` holds the stems already used in this run (a caller writing
    batch after batch passes the same set): a photo whose stem is taken gets ``STEM-2``, ``STEM-3``, ... so no
    overlay replaces another. ``is_input(path)`` says whether a file must never be written over (one of the
    run's inputs: ``--out`` may be the photos' own folder, where ``a_gradcam.jpg`` can be a photo of its own);
    a photo any of whose overlays would be one takes the next free stem the same way. A stem whose file names
    would pass 255 bytes is shortened to its start and a hash of the whole (:func:`ferhub.fileio.fit_name`).
    Each file is written whole or not at all; a call with ``taken`` empty (a run's first) first removes what
    an earlier run killed mid-write left in ``out_dir`` (:func:`ferhub.fileio.remove_stale_temps_in`).
    """
    from ferhub.images import load_image

    models = predictor.models
    mids = [method_id(method)] * len(models) if isinstance(method, str) else [method_id(m) for m in method]
    if len(mids) != len(models):
        raise SaliencyError(f"got {len(mids)} saliency methods for {len(models)} models")
    slugs = model_slugs(predictor.names) if len(models) > 1 else [""]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    taken = set() if taken is None else taken
    if not taken:
        # the leftovers of an earlier run's overlays, once a run: each file's own sweep listed the whole
        # folder, which made thousands of photos' overlays into one folder quadratic
        ids = "|".join(map(re.escape, sorted(set(mids))))
        # the names of names(): STEM[_SLUG][_faceN]_METHOD.png|jpg
        overlay_name = re.compile(rf".+_(?:face\d+_)?(?:{ids})\.(?:png|jpg)")
        remove_stale_temps_in(out, overlay_name.fullmatch)

    def names(stem: str, faces: int) -> list[tuple[list[Path], Path]]:
        """Each model's face crop files and photo file for ``stem``."""
        named = []
        for slug, mid in zip(slugs, mids):
            base = f"{stem}_{slug}" if slug else stem
            crops = [out / f"{base}_face{i}_{mid}.png" for i in range(1, faces + 1)]
            named.append((crops, out / f"{base}_{mid}.jpg"))
        return named

    for result in results:
        if not result.ok or not result.faces or result.path is None:
            continue
        image = load_image(result.path)
        faces = [f.face for f in result.faces]
        # the longest name's part after the stem, and room for unique_stem's "-2", "-3", ...
        after = max(
            len(os.fsencode(p.name)) for crops, photo in names("", len(faces)) for p in (*crops, photo)
        )
        wanted = fit_name(Path(result.path).stem, max(NAME_MAX - after - 8, 32))
        while True:  # the next free stem whose files are none of the inputs
            stem = unique_stem(wanted, taken)
            named = names(stem, len(faces))
            if is_input is None or not any(is_input(p) for crops, photo in named for p in (*crops, photo)):
                break
        for k, (model, mid, (crop_paths, photo_path)) in enumerate(zip(models, mids, named)):
            targets = [f.predictions[k].label for f in result.faces] if target is None else target
            explanations = explain_faces(model, image, faces, mid, targets)
            outputs = [
                (path, overlay(e.crop, e.heatmap, size=max(192, e.crop.width)), {})
                for path, e in zip(crop_paths, explanations)
            ]
            heatmaps = [e.heatmap for e in explanations]
            photo = overlay_on_photo(image, faces, heatmaps, model.config)
            outputs.append((photo_path, photo, {"quality": 92}))
            for path, picture, options in outputs:
                try:
                    # encoded in memory and written whole or not at all: Pillow's save(path) can leave a
                    # truncated JPEG on a nearly full disk and report no error. The rename is what keeps a cut
                    # file from its name; no fsync (3 ms an overlay, as --out-dir's results have none): only a
                    # crash of the machine can leave one empty, and a rerun writes it again
                    atomic_save_image(path, picture, durable=False, sweep=False, **options)
                except OSError as error:
                    if on_error is None:
                        raise
                    # no overlay of an earlier run left under this run's name; a name the save refused (too
                    # long) fails here again
                    with contextlib.suppress(OSError):
                        path.unlink(missing_ok=True)
                    on_error(path, error)
                    continue
                written.append(path)
    return written
