"""Native-crash regressions: oneDNN's channels-last depthwise-conv backward corrupts the heap on AVX-512 CPUs
(batch 1, train mode). Whatever the Predictor does for speed must never reach a module others train or
explain.

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
