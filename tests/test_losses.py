"""Each loss against its paper's equation, computed by hand in plain Python floats."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ferhub.losses import (
    CrossEntropyLoss,
    FocalLoss,
    LabelSmoothingCrossEntropy,
    SoftmaxMSELoss,
    WeightedCrossEntropyLoss,
    build_loss,
    class_counts,
    class_weights,
    mixup_batch,
    smooth_targets,
)

LOGITS = [[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 3.0, -2.0], [-0.5, 1.5, 0.0, 0.3]]
TARGET = [0, 2, 3]


def _softmax(row: list[float]) -> list[float]:
    m = max(row)  # seed 000 eq. 1 subtracts max(X)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def _x() -> torch.Tensor:
    return torch.tensor(LOGITS, dtype=torch.float64).float().requires_grad_()


def _y() -> torch.Tensor:
    return torch.tensor(TARGET)


def test_cross_entropy_matches_definition_and_torch() -> None:
    expected = sum(-math.log(_softmax(r)[t]) for r, t in zip(LOGITS, TARGET)) / 3
    loss = CrossEntropyLoss()(_x(), _y())
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert loss.item() == pytest.approx(F.cross_entropy(_x(), _y()).item(), rel=1e-6)


def test_label_smoothing_spreads_epsilon_over_the_other_k_minus_1_classes() -> None:
    eps, k = 0.3, 4
    expected = 0.0
    for r, t in zip(LOGITS, TARGET):
        p = _softmax(r)
        expected += -sum(((1 - eps) if i == t else eps / (k - 1)) * math.log(p[i]) for i in range(k))
    expected /= 3
    loss = LabelSmoothingCrossEntropy()(_x(), _y())  # ε = 0.3 by default, seed 003
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # torch's built-in spreads ε over K classes, a different target: the two must differ
    torch_ls = F.cross_entropy(_x(), _y(), label_smoothing=eps).item()
    assert abs(torch_ls - expected) > 1e-3
    t = smooth_targets(F.one_hot(_y(), 4).float(), eps)
    assert t[0].tolist() == pytest.approx([0.7, 0.1, 0.1, 0.1])
    assert torch.allclose(t.sum(1), torch.ones(3))


def test_class_weights_inverse_frequency_normalised() -> None:
    counts = [10, 30, 60]  # N = 100, K = 3 -> α_k = 100 / (3 n_k)
    w = class_weights(counts)
    assert w.tolist() == pytest.approx([100 / 30, 100 / 90, 100 / 180])
    assert float((w * torch.tensor(counts, dtype=torch.float)).sum()) == pytest.approx(100)  # Σ n_k α_k = N
    assert class_weights([5, 5, 5, 5]).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert class_counts([0, 2, 2, 3], 5).tolist() == [1, 0, 2, 1, 0]
    with pytest.raises(ValueError, match="at least one training sample"):
        class_weights([3, 0])


def test_weighted_cross_entropy_is_seed001_eq1() -> None:
    alpha = [0.5, 2.0, 1.5, 3.0]
    # Loss_total = 1/M Σ_m α_{y_m} CE(x_m): a batch mean, not torch's Σ α-normalised mean
    expected = sum(alpha[t] * -math.log(_softmax(r)[t]) for r, t in zip(LOGITS, TARGET)) / 3
    loss = WeightedCrossEntropyLoss(alpha)(_x(), _y())
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    built = build_loss("weighted_ce", class_counts=[1, 2, 3, 4])(_x(), _y())
    w = [10 / 4, 10 / 8, 10 / 12, 10 / 16]
    assert built.item() == pytest.approx(
        sum(w[t] * -math.log(_softmax(r)[t]) for r, t in zip(LOGITS, TARGET)) / 3, rel=1e-6
    )


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_focal_loss_with_per_class_alpha(smoothing: float) -> None:
    alpha, gamma, k = [0.25, 1.0, 0.5, 2.0], 2.0, 4
    expected = 0.0
    for r, t in zip(LOGITS, TARGET):
        p = _softmax(r)
        tt = [(1 - smoothing) if i == t else smoothing / (k - 1) for i in range(k)]
        expected += -sum(alpha[i] * tt[i] * (1 - p[i]) ** gamma * math.log(p[i]) for i in range(k))
    expected /= 3
    loss = FocalLoss(alpha=alpha, gamma=gamma, label_smoothing=smoothing)(_x(), _y())
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    if smoothing == 0.0:  # one-hot: -α_y (1 - p_y)^γ log p_y
        hand = sum(
            -alpha[t] * (1 - _softmax(r)[t]) ** 2 * math.log(_softmax(r)[t]) for r, t in zip(LOGITS, TARGET)
        )
        assert loss.item() == pytest.approx(hand / 3, rel=1e-6)


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    assert FocalLoss(gamma=0.0)(_x(), _y()).item() == pytest.approx(
        F.cross_entropy(_x(), _y()).item(), rel=1e-6
    )


def test_softmax_mse_value_and_gradient_exactly() -> None:
    x = _x()
    loss = SoftmaxMSELoss()(x, _y())
    # eq. 2: ŷ_j = Σ_k k p_k ; eq. 3: L = 1/n Σ (ŷ_j - y_j)^2
    y_hat = [sum(k * p for k, p in enumerate(_softmax(r))) for r in LOGITS]
    expected = sum((yh - t) ** 2 for yh, t in zip(y_hat, TARGET)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # eq. 4: ∂L_j/∂x_i = p_i - 1[i = y_j], averaged over the batch like softmax-CE's mean
    hand = torch.tensor(
        [[(p - (i == t)) / 3 for i, p in enumerate(_softmax(r))] for r, t in zip(LOGITS, TARGET)]
    )
    assert torch.allclose(x.grad, hand, atol=1e-7)
    x2 = _x()
    F.cross_entropy(x2, _y()).backward()
    assert torch.equal(x.grad, x2.grad) or torch.allclose(x.grad, x2.grad, atol=1e-7, rtol=0)
    # and it is not MSE's own gradient
    x3 = _x()
    p = torch.softmax(x3, 1)
    ((p @ torch.arange(4.0) - _y().float()) ** 2).mean().backward()
    assert not torch.allclose(x.grad, x3.grad, atol=1e-3)


def test_softmax_mse_scales_gradient_by_upstream() -> None:
    x = _x()
    (2.5 * SoftmaxMSELoss()(x, _y())).backward()
    x2 = _x()
    (2.5 * F.cross_entropy(x2, _y())).backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-7)


def test_softmax_mse_under_half_precision_logits() -> None:
    x = _x().detach().bfloat16().requires_grad_()
    loss = SoftmaxMSELoss()(x, _y())
    assert loss.dtype == torch.float32
    loss.backward()
    assert x.grad.dtype == torch.bfloat16
    ref = _x().detach().bfloat16().float().requires_grad_()
    F.cross_entropy(ref, _y()).backward()
    assert torch.allclose(x.grad.float(), ref.grad, atol=1e-2)


def test_soft_targets_equal_index_targets_when_one_hot() -> None:
    one_hot = F.one_hot(_y(), 4).float()
    for loss in (CrossEntropyLoss(), FocalLoss(alpha=[1, 2, 3, 4]), WeightedCrossEntropyLoss([1, 2, 3, 4])):
        assert loss(_x(), one_hot).item() == pytest.approx(loss(_x(), _y()).item(), rel=1e-6)
    soft = torch.tensor([[0.6, 0.4, 0.0, 0.0]] * 3)
    expected = sum(-(0.6 * math.log(_softmax(r)[0]) + 0.4 * math.log(_softmax(r)[1])) for r in LOGITS) / 3
    assert CrossEntropyLoss()(_x(), soft).item() == pytest.approx(expected, rel=1e-6)


def test_mixup_mixes_pixels_and_targets_with_the_same_lambda() -> None:
    torch.manual_seed(0)
    n, k = 8, 8
    x = torch.arange(n, dtype=torch.float).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    y = torch.arange(n)
    xm, t = mixup_batch(x, y, alpha=0.4, num_classes=k)
    assert t.shape == (n, k)
    assert (t.count_nonzero(dim=1) == 2).sum() >= n - 2  # most rows really are mixed
    assert torch.allclose(t.sum(1), torch.ones(n))
    for i in range(n):  # each image is λ·i + (1-λ)·j, and its target puts λ on i, 1-λ on j
        lam = t[i, i].item()
        others = [int(c) for c in t[i].nonzero().flatten() if c != i]
        j = others[0] if others else i
        assert torch.allclose(xm[i], torch.full_like(xm[i], lam * i + (1 - lam) * j), atol=1e-5)


def test_cutmix_target_weight_equals_pasted_area() -> None:
    torch.manual_seed(3)
    n, k = 6, 6
    x = torch.arange(n, dtype=torch.float).view(n, 1, 1, 1).expand(n, 3, 20, 20).contiguous()
    xm, t = mixup_batch(x, torch.arange(n), cutmix_alpha=1.0, num_classes=k)
    assert (t.count_nonzero(dim=1) == 2).any()
    for i in range(n):
        own = (xm[i] == i).float().mean().item()
        assert t[i, i].item() == pytest.approx(own, abs=1e-6)
        assert torch.isin(xm[i].unique(), t[i].nonzero().flatten().float()).all()


def test_mixup_off_returns_one_hot() -> None:
    x = torch.randn(4, 1, 8, 8)
    xm, t = mixup_batch(x, torch.tensor([0, 1, 2, 3]), num_classes=5)
    assert xm is x
    assert torch.equal(t, F.one_hot(torch.tensor([0, 1, 2, 3]), 5).float())


def test_build_loss_names_and_errors() -> None:
    assert isinstance(build_loss("ce"), CrossEntropyLoss)
    assert isinstance(build_loss("label_smoothing"), LabelSmoothingCrossEntropy)
    assert build_loss("label_smoothing").label_smoothing == 0.3
    assert isinstance(build_loss("softmax_mse"), SoftmaxMSELoss)
    focal = build_loss("focal", class_counts=[1, 3], gamma=1.0)
    assert focal.alpha.tolist() == pytest.approx([2.0, 2 / 3])
    with pytest.raises(ValueError, match="known: cross_entropy"):
        build_loss("hinge")
    with pytest.raises(ValueError, match="class_counts"):
        build_loss("weighted_ce")
    with pytest.raises(ValueError, match="takes no class weights"):
        build_loss("ce", class_counts=[1, 2])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        build_loss("ce", label_smoothing=1.5)


def test_class_weights_must_be_one_number_per_class() -> None:
    """A focal alpha of the wrong length broke the first batch with torch's broadcast error."""
    logits, target = torch.randn(4, 7), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"^the loss has 3 class weights for 7 classes; give one per class$"):
        FocalLoss(alpha=[1.0, 2.0, 3.0])(logits, target)
    with pytest.raises(ValueError, match=r"^the loss has 2 class weights for 7 classes"):
        build_loss("weighted_ce", weight=[1.0, 2.0])(logits, target)
    with pytest.raises(ValueError, match=r"^alpha must be a list of numbers, one per class, got abc$"):
        build_loss("focal", alpha="abc")
    with pytest.raises(ValueError, match=r"^alpha must be a list of numbers, one per class"):
        build_loss("focal", alpha=[[1.0, 2.0]])
    with pytest.raises(
        ValueError, match=r"^weight must hold finite numbers >= 0, one per class, got \[1.0, nan\]$"
    ):
        build_loss("weighted_ce", weight=[1.0, float("nan")])
