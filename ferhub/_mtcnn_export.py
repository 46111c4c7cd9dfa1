"""The torch side of :mod:`ferhub._mtcnn_onnx`: MTCNN's steps as modules ``torch.onnx.export`` turns into the
ONNX graphs that module runs.

Imported only when a graph is not cached yet (a cold start): detection itself never imports torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ferhub._mtcnn import _load_nets, _Nets


def _prelu(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """PReLU written as ``(1 - a) relu(x) + a x``: ONNX Runtime's own PRelu kernel broadcasts slowly and keeps
    the convolutions before it from running in its blocked layout (R-net on 70 crops: 9.3 -> 5.0 ms)."""
    a = slope.view(1, -1, 1, 1) if x.ndim == 4 else slope
    return (1 - a) * F.relu(x) + a * x


def _relu_plus(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """``prelu(x) / (1 - a)``, as ``relu(x) + a / (1 - a) x``, for slopes ``a < 1``; the next layer takes the
    ``1 - a`` (:func:`_fold`). One scaling pass instead of :func:`_prelu`'s two: ONNX Runtime runs each as a
    depthwise convolution in its blocked layout."""
    c = slope / (1 - slope)
    return F.relu(x) + (c.view(1, -1, 1, 1) if x.ndim == 4 else c) * x


def _fold(weight: torch.Tensor, slope: torch.Tensor, repeat: int = 1) -> nn.Parameter:
    """``weight`` of the layer after a :func:`_relu_plus`, its input channels scaled by ``1 - a``: a positive
    scale, which a max-pool between them keeps (``repeat``: values per channel of a flattened map)."""
    if not bool((slope < 1).all()):
        raise ValueError("a PReLU slope of 1 or more has no positive 1 - a to fold into the next layer")
    scale = (1 - slope.detach()).repeat_interleave(repeat)
    shape = (1, -1) + (1,) * (weight.ndim - 2)
    return nn.Parameter((weight.detach() * scale.view(shape)).contiguous(), requires_grad=False)


class _Net(nn.Module):
    """One of facenet-pytorch's nets (``n``) with its first convolution's weights from ``_Nets`` (made for
    inputs shifted by +1, see ``_mtcnn._Nets``) as parameters of their own."""

    def __init__(self, net: nn.Module, conv1: tuple[torch.Tensor, torch.Tensor]) -> None:
        super().__init__()
        self.n = net
        self.conv1_weight, self.conv1_bias = (nn.Parameter(t.clone(), requires_grad=False) for t in conv1)


class _PooledPReLU(nn.Module):
    """``max_pool2d(prelu(conv(x)), 2, 2, ceil_mode=True)`` computed with the PReLU after the pooling, on a
    quarter of the values, with its output channels reordered (negative slopes first, ``order``).

    A max-pool commutes with a non-decreasing function, which PReLU is for slopes >= 0. For a negative slope
    it is V-shaped, and its largest value over a window is at the window's largest or smallest input:
    ``max(prelu(M), |a| * -m)`` with ``M``/``m`` the window's max/min. The convolution therefore gives each
    of those channels a negated copy, whose max-pool is ``-m``. For P-net's first layer, at each level's full
    size, the PReLU's passes over every value cost more than the convolution (``bench/detect.py
    --pnet-only``: P-net in 0.83x the time); the copies fill the padding of the 16-channel blocks ONNX Runtime
    computes anyway. The result equals the plain order's to float rounding (``tests/test_export.py``).
    """

    def __init__(self, conv: tuple[torch.Tensor, torch.Tensor], slope: torch.Tensor) -> None:
        super().__init__()
        weight, bias = conv
        slope = slope.detach()
        negative = torch.nonzero(slope < 0).flatten()
        self.order = torch.cat([negative, torch.nonzero(slope >= 0).flatten()])
        self.negative = len(negative)
        self.weight = nn.Parameter(torch.cat([weight[self.order], -weight[negative]]), requires_grad=False)
        self.bias = nn.Parameter(torch.cat([bias[self.order], -bias[negative]]), requires_grad=False)
        self.slope = nn.Parameter(slope[self.order].clone(), requires_grad=False)
        self.flipped_slope = nn.Parameter(-slope[negative].view(1, -1, 1, 1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool2d(F.conv2d(x, self.weight, self.bias), 2, 2, ceil_mode=True)
        channels, k = len(self.order), self.negative
        out = _prelu(pooled[:, :channels], self.slope)
        v_shaped = torch.maximum(out[:, :k], pooled[:, channels:] * self.flipped_slope)
        return torch.cat([v_shaped, out[:, k:]], dim=1)


class _PNet(nn.Module):
    def __init__(self, nets: _Nets) -> None:
        super().__init__()
        self.n = nets.pnet
        self.layer1 = _PooledPReLU(nets.p_conv1, nets.pnet.prelu1.weight)
        # conv2 reads layer1's channels in layer1's order
        conv2 = nets.pnet.conv2
        self.conv2_weight = nn.Parameter(conv2.weight[:, self.layer1.order].clone(), requires_grad=False)
        self.conv2_bias = nn.Parameter(conv2.bias.clone(), requires_grad=False)
        self.conv3_weight = _fold(nets.pnet.conv3.weight, nets.pnet.prelu2.weight)
        # The 1x1 head on PReLU(y) = (1 - a) relu(y) + a y (conv3's output y) is two 1x1 convolutions, of
        # relu(y) and of y, with the slopes in their weights: ONNX Runtime computes the PReLU's terms in
        # three passes over conv3's 32 channels otherwise, 19% of P-net's time on a 640x480 photo's first
        # level (P-net 0.92x the time there). Its first row is the face logit's difference (the two logits
        # only ever enter the probability as that).
        weight, bias = nets.p_head
        head = torch.cat([weight[1:2] - weight[0:1], weight[2:]])[:, :, None, None]
        slope = nets.pnet.prelu3.weight.detach()[None, :, None, None]
        self.head_relu = nn.Parameter(head * (1 - slope), requires_grad=False)
        self.head_linear = nn.Parameter(head * slope, requires_grad=False)
        self.head_bias = nn.Parameter(torch.cat([bias[1:2] - bias[0:1], bias[2:]]), requires_grad=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 3, H, W) prepared pixels -> face probability (H', W') and box offsets (4, H', W')."""
        n = self.n
        x = self.layer1(x)
        x = _relu_plus(F.conv2d(x, self.conv2_weight, self.conv2_bias), n.prelu2.weight)
        y = F.conv2d(x, self.conv3_weight, n.conv3.bias)
        out = (F.conv2d(F.relu(y), self.head_relu) + F.conv2d(y, self.head_linear, self.head_bias))[0]
        return torch.sigmoid(out[0]), out[1:5]


def _flat_dense(
    dense: nn.Linear, channels: int, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense layer's weight re-ordered for inputs flattened as they are, (c, h, w), instead of facenet's
    ``x.permute(0, 3, 2, 1)`` order (w, h, c): the graph then has no transpose before it."""
    w = dense.weight.detach().view(-1, width, height, channels).permute(0, 3, 2, 1)
    return w.reshape(dense.weight.shape[0], -1).contiguous(), dense.bias.detach()


class _RNet(_Net):
    """R-net, its first convolution's 28 channels padded to 32 with zero filters (zero slopes; conv2 reads
    them with zero weights, so the outputs are the same numbers): ONNX Runtime keeps its 16-channel blocked
    layout only for whole blocks, and at 28 channels the max-pool after the PReLU ran in plain layout,
    between two reorders (R-net on a photo's crops: 0.91x the time)."""

    def __init__(self, net: nn.Module, conv1: tuple[torch.Tensor, torch.Tensor]) -> None:
        super().__init__(net, conv1)
        extra = 32 - net.conv1.out_channels
        weight, bias = conv1
        self.conv1_weight = nn.Parameter(
            torch.cat([weight, weight.new_zeros(extra, *weight.shape[1:])]), False
        )
        self.conv1_bias = nn.Parameter(torch.cat([bias, bias.new_zeros(extra)]), requires_grad=False)
        slope = net.prelu1.weight.detach()
        self.slope1 = nn.Parameter(torch.cat([slope, slope.new_zeros(extra)]), requires_grad=False)
        conv2 = net.conv2.weight.detach()
        self.conv2_weight = nn.Parameter(
            torch.cat([conv2, conv2.new_zeros(conv2.shape[0], extra, 3, 3)], 1), False
        )
        weight, bias = _flat_dense(net.dense4, 64, 3, 3)
        self.dense4 = (_fold(weight, net.prelu3.weight, 9), bias)
        self.conv3_weight = _fold(net.conv3.weight, net.prelu2.weight)
        self.head = [(_fold(d.weight, net.prelu4.weight), d.bias) for d in (net.dense5_1, net.dense5_2)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 24, 24) crops -> face probability (N,) and box offsets (N, 4)."""
        n = self.n
        x = F.conv2d(x, self.conv1_weight, self.conv1_bias)
        # slopes up to 1.3 here: 1 - a is negative for some channels, and a max-pool keeps no negative scale
        x = F.max_pool2d(_prelu(x, self.slope1), 3, 2, ceil_mode=True)
        x = F.conv2d(x, self.conv2_weight, n.conv2.bias)
        x = F.max_pool2d(_relu_plus(x, n.prelu2.weight), 3, 2, ceil_mode=True)
        x = _relu_plus(F.conv2d(x, self.conv3_weight, n.conv3.bias), n.prelu3.weight)
        x = _relu_plus(F.linear(x.flatten(1), *self.dense4), n.prelu4.weight)
        logits = F.linear(x, *self.head[0])
        return torch.sigmoid(logits[:, 1] - logits[:, 0]), F.linear(x, *self.head[1])


class _ONet(_Net):
    def __init__(self, net: nn.Module, conv1: tuple[torch.Tensor, torch.Tensor]) -> None:
        super().__init__(net, conv1)
        weight, bias = _flat_dense(net.dense5, 128, 3, 3)
        self.dense5 = (_fold(weight, net.prelu4.weight, 9), bias)
        self.convs = [
            (_fold(conv.weight, slope.weight), conv.bias)
            for conv, slope in ((net.conv2, net.prelu1), (net.conv3, net.prelu2), (net.conv4, net.prelu3))
        ]
        heads = (net.dense6_1, net.dense6_2, net.dense6_3)
        self.head = [(_fold(d.weight, net.prelu5.weight), d.bias) for d in heads]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, 48, 48) crops -> face probability (N,), box offsets (N, 4), landmarks (N, 10)."""
        n = self.n
        (w2, b2), (w3, b3), (w4, b4) = self.convs
        x = F.conv2d(x, self.conv1_weight, self.conv1_bias)
        x = F.max_pool2d(_relu_plus(x, n.prelu1.weight), 3, 2, ceil_mode=True)
        x = F.max_pool2d(_relu_plus(F.conv2d(x, w2, b2), n.prelu2.weight), 3, 2, ceil_mode=True)
        x = F.max_pool2d(_relu_plus(F.conv2d(x, w3, b3), n.prelu3.weight), 2, 2, ceil_mode=True)
        x = _relu_plus(F.conv2d(x, w4, b4), n.prelu4.weight)
        x = _relu_plus(F.linear(x.flatten(1), *self.dense5), n.prelu5.weight)
        logits = F.linear(x, *self.head[0])
        face = torch.sigmoid(logits[:, 1] - logits[:, 0])
        return face, F.linear(x, *self.head[1]), F.linear(x, *self.head[2])


Export = tuple[nn.Module, tuple[torch.Tensor, ...], list[str], list[str], dict[str, dict[int, str]]]


def net_modules() -> dict[str, Export]:
    """The exportable steps: name -> (module, example inputs, input names, output names, dynamic axes)."""
    nets = _load_nets("cpu")
    source = torch.zeros(1, 3, 40, 50)
    boxes = {"crops": {0: "boxes"}}
    return {
        "pnet": (
            _PNet(nets).eval(),
            (source,),
            ["x"],
            ["prob", "reg"],
            {"x": {2: "height", 3: "width"}, "prob": {0: "rows", 1: "cols"}, "reg": {1: "rows", 2: "cols"}},
        ),
        "rnet": (
            _RNet(nets.rnet, nets.r_conv1).eval(),
            (torch.zeros(2, 3, 24, 24),),
            ["crops"],
            ["prob", "reg"],
            {**boxes, "prob": {0: "boxes"}, "reg": {0: "boxes"}},
        ),
        "onet": (
            _ONet(nets.onet, nets.o_conv1).eval(),
            (torch.zeros(2, 3, 48, 48),),
            ["crops"],
            ["prob", "reg", "landmarks"],
            {**boxes, "prob": {0: "boxes"}, "reg": {0: "boxes"}, "landmarks": {0: "boxes"}},
        ),
    }
