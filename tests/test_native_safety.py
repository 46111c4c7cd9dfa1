"""Native-crash regressions: oneDNN's ``brgconv_strided`` backward (1x1 stride-2 convolution, few input
channels, NHWC) corrupts the heap on AVX-512 CPUs, at any batch size, in train or eval mode, whenever the
module *or the batch* is channels-last. Whatever the Predictor does for speed must never reach a module others
train or explain, and every batch handed to autograd is made contiguous
(:func:`ferhub.device.autograd_batch`).
The layout checks below fail on every CPU kind when a guard goes; the crash itself needs AVX-512.

The product paths run in a subprocess, so that on a machine where the crash still happens it fails this test
and not the whole suite.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap

import numpy as np
import torch
from PIL import Image

from ferhub import hub
from ferhub.predict import Predictor

# After a Predictor has used the shared, cached module: fine-tune it at batch 1 (a last short batch), then
# explain with each gradient method. Before the fix the Predictor converted the cached module to channels-last
# in place and this died of SIGSEGV / SIGABRT (`free(): invalid next size`) on Intel and AMD AVX-512 machines.
_PRODUCT_PATH = textwrap.dedent(
    """
    import torch
    from PIL import Image
    from ferhub import hub
    from ferhub.faces import Face
    from ferhub.predict import Predictor
    from ferhub.saliency import explain_faces

    model = hub.load("ferhub/fer-mini-xception")
    photo = Image.new("RGB", (96, 96), (120, 100, 90))
    Predictor(model, device="cpu").classify_crops([photo])
    face = Face(box=(8.0, 8.0, 88.0, 88.0), score=1.0)
    for method in ("gradcam", "guided_backprop", "saliency", "integrated_gradients"):
        explain_faces(model, photo, [face], method)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(30):
        x = torch.randn(1, 1, 64, 64)
        opt.zero_grad()
        model(x).logsumexp(1).sum().backward()
        opt.step()
    print("ok")
    """
)


def test_train_and_explain_a_model_the_predictor_used_survive_in_a_subprocess() -> None:
    run = subprocess.run([sys.executable, "-c", _PRODUCT_PATH], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stderr[-3000:]}"
    assert run.stdout.strip().endswith("ok")


def _all_contiguous(module: torch.nn.Module) -> bool:
    return all(p.is_contiguous() for p in module.parameters())


def test_predictor_never_mutates_the_shared_module() -> None:
    """Detects the cause on every CPU kind (the crash itself needs AVX-512)."""
    model = hub.load("ferhub/fer-mini-xception")
    assert _all_contiguous(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    predictor = Predictor(model, device="cpu", runtime="torch")
    crop = Image.new("RGB", (64, 64), (128, 110, 100))
    (probs,) = predictor.classify_crops([crop])
    assert predictor.models[0] is model
    assert _all_contiguous(model), "the Predictor converted the caller's module in place"
    assert all(p.requires_grad for p in model.parameters()), "the Predictor froze the caller's module"
    # its private runner is channels-last (the fast path) and gives the same numbers
    runner = predictor._runners[0].module
    assert runner is not model
    conv = next(p for p in runner.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    with torch.inference_mode():
        from ferhub.transforms import eval_tensor

        direct = torch.softmax(model.eval()(eval_tensor([crop], model.config)), dim=1).numpy()
    np.testing.assert_allclose(probs, direct, atol=1e-5)


def test_explanations_run_on_a_contiguous_copy_even_of_a_channels_last_module() -> None:
    from ferhub.saliency import _attribution_copy

    model = hub.load("ferhub/fer-mini-xception")
    converted = copy.deepcopy(model).to(memory_format=torch.channels_last)
    clone, _lock = _attribution_copy(converted)
    assert _all_contiguous(clone)


# -- channels-last batches ---------------------------------------------------------------------------------
# An RGB model whose first layer is a 1x1 stride-2 convolution over 3 channels (the subprocess test below
# builds the same net): the crashing oneDNN primitive on a 60x60 map. Fed a channels-last batch (an RGB
# (B, H, W, 3) tensor permuted is one) under autograd, it crashes on AVX-512 CPUs unless made contiguous.
_GRADIENT_METHODS = ("gradcam", "guided_backprop", "integrated_gradients", "saliency")


def _strided_rgb_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 1, stride=2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 3),
    )


def _channels_last_rgb(n: int = 2, size: int = 60) -> torch.Tensor:
    x = torch.rand(n, size, size, 3).permute(0, 3, 1, 2)  # as an RGB (B, H, W, 3) batch permuted is laid out
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return x


def test_attribute_hands_the_network_a_contiguous_batch_for_every_gradient_method() -> None:
    from ferhub.saliency import attribute

    model = _strided_rgb_net()
    layouts: list[bool] = []
    # the hook travels into saliency's private copy (deepcopy keeps hooks, sharing this closure's list)
    model[0].register_forward_pre_hook(lambda _m, args: layouts.append(args[0].is_contiguous()))
    for method in _GRADIENT_METHODS:
        layouts.clear()
        maps = attribute(model, _channels_last_rgb(), method, target=0)
        assert maps.shape == (2, 60, 60)
        assert layouts and all(layouts), f"{method}: a channels-last batch reached the network under autograd"


def test_train_transform_returns_a_contiguous_batch_for_rgb_input() -> None:
    from ferhub.config import ModelConfig
    from ferhub.transforms import TrainTransform

    config = ModelConfig(
        "test_tiny", ["happy", "sad"], channels=3, mean=(0.5,) * 3, std=(0.25,) * 3, input_size=60
    )
    batch = torch.randint(0, 256, (4, 60, 60, 3), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    for augment in ({}, {"hflip": 0.5, "brightness": 0.2, "erasing": 0.5}):
        x = TrainTransform(config=config, **augment)(batch, g)
        assert x.shape == (4, 3, 60, 60)
        assert x.is_contiguous(), f"{augment}: the training batch is channels-last"


def test_the_training_loop_makes_a_channels_last_batch_contiguous_on_the_cpu() -> None:
    from ferhub.training.distributed import SINGLE_PROCESS
    from ferhub.training.loop import _rank_batch
    from ferhub.training.settings import TrainConfig

    data = torch.randint(0, 256, (4, 60, 60, 3), dtype=torch.uint8)
    targets = torch.tensor([0, 1, 2, 0])

    def channels_last_transform(batch: torch.Tensor, _g: torch.Generator) -> torch.Tensor:
        return batch.permute(0, 3, 1, 2).float()  # a transform that keeps the permuted layout

    gens = (torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    idx = np.arange(4)
    x, _t, y = _rank_batch(
        data,
        targets,
        idx,
        channels_last_transform,
        gens,
        TrainConfig(),
        3,
        SINGLE_PROCESS,
        torch.device("cpu"),
    )
    assert x.is_contiguous(), "the training loop handed autograd a channels-last batch on the CPU"
    assert torch.equal(x, data.permute(0, 3, 1, 2).float()) and torch.equal(y, targets)


# The crash itself, end to end: explain a channels-last RGB batch with each gradient method, then train steps
# on the training transform's output of an RGB uint8 batch. Without the transform's guard the training steps
# abort on an AVX-512 Xeon (exit -6); the explanations, whose private copy has frozen weights, survived there
# even unguarded, so their guard is held by the layout check above.
_CHANNELS_LAST_PATH = textwrap.dedent(
    """
    import torch
    from torch import nn
    from ferhub.config import ModelConfig
    from ferhub.saliency import attribute
    from ferhub.transforms import TrainTransform

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 1, stride=2), nn.ReLU(), nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    )
    for method in ("gradcam", "guided_backprop", "integrated_gradients", "saliency"):
        for _ in range(3):
            x = torch.rand(4, 60, 60, 3).permute(0, 3, 1, 2)  # channels-last
            attribute(model, x, method, target=1)
    model.train()
    rgb = dict(channels=3, mean=[0.5] * 3, std=[0.25] * 3, input_size=60)
    config = ModelConfig("test_tiny", ["happy", "sad"], **rgb)
    transform = TrainTransform(config=config)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = transform(torch.randint(0, 256, (4, 60, 60, 3), dtype=torch.uint8), g)
        model.zero_grad()
        model(x).logsumexp(1).sum().backward()
    print("ok")
    """
)


def test_channels_last_rgb_batches_explain_and_train_in_a_subprocess() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _CHANNELS_LAST_PATH], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stderr[-3000:]}"
    assert run.stdout.strip().endswith("ok")
