"""GELAN and PGI building blocks.

Attribute names (`conv`, `bn`, `cv1`..`cv5`, `m`, `conv1`, `conv2`) are the official ones because checkpoint
state_dict keys are built from them. Every block with BatchNorm can be fused in place for inference.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

ActivationFactory = Callable[[], nn.Module]
_default_activation: contextvars.ContextVar[ActivationFactory] = contextvars.ContextVar(
    "default_activation", default=lambda: nn.SiLU(inplace=True)
)


@contextlib.contextmanager
def default_activation(factory: ActivationFactory) -> Iterator[None]:
    """Blocks built inside this context use `factory()` as their activation (config key `activation`)."""
    token = _default_activation.set(factory)
    try:
        yield
    finally:
        _default_activation.reset(token)


def autopad(k: int, p: Optional[int] = None, d: int = 1) -> int:
    """'Same' padding for an odd kernel `k` with dilation `d`."""
    if p is not None:
        return p
    k = d * (k - 1) + 1 if d > 1 else k
    return k // 2


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one conv equal to `bn(conv(x))` in eval mode."""
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return weight.detach(), bias.detach()


def _conv_with(weight: torch.Tensor, bias: torch.Tensor, like: nn.Conv2d) -> nn.Conv2d:
    conv = nn.Conv2d(like.in_channels, like.out_channels, like.kernel_size, like.stride, like.padding,
                     like.dilation, like.groups, bias=True).to(weight.device, weight.dtype)
    conv.weight.data.copy_(weight)
    conv.bias.data.copy_(bias)
    conv.weight.requires_grad_(like.weight.requires_grad)
    conv.bias.requires_grad_(like.weight.requires_grad)
    return conv


class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm -> activation. After `fuse()`: Conv2d with bias -> activation."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: Optional[int] = None, g: int = 1, d: int = 1,
                 act: Union[bool, nn.Module] = True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        if act is True:
            self.act = _default_activation.get()()
        elif isinstance(act, nn.Module):
            self.act = act
        else:
            self.act = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn is None:
            return self.act(self.conv(x))
        return self.act(self.bn(self.conv(x)))

    def fuse(self) -> None:
        if self.bn is not None:
            self.conv = _conv_with(*fold_batchnorm(self.conv, self.bn), like=self.conv)
            self.bn = None


class AConv(nn.Module):
    """Average-pool (2x2, stride 1) then a stride-2 3x3 Conv: the downsampling of GELAN t/s/m."""

    def __init__(self, c1: int, c2: int):
        super().__init__()
        self.cv1 = Conv(c1, c2, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv1(F.avg_pool2d(x, 2, 1, 0, False, True))


class ADown(nn.Module):
    """Two-path downsampling of GELAN c/e: strided conv on one half of the channels, max-pool + 1x1 on the other."""

    def __init__(self, c1: int, c2: int):
        super().__init__()
        self.c = c2 // 2
        self.cv1 = Conv(c1 // 2, self.c, 3, 2, 1)
        self.cv2 = Conv(c1 // 2, self.c, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(x, 2, 1, 0, False, True)
        x1, x2 = x.chunk(2, 1)
        return torch.cat((self.cv1(x1), self.cv2(F.max_pool2d(x2, 3, 2, 1))), 1)


class RepConvN(nn.Module):
    """Re-parameterisable conv: 3x3 Conv-BN + 1x1 Conv-BN summed (no identity branch); merges into one 3x3 conv."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, p: int = 1, g: int = 1, d: int = 1,
                 act: Union[bool, nn.Module] = True):
        super().__init__()
        assert k == 3 and p == 1, "RepConvN merges a 3x3 and a 1x1 branch"
        self.g, self.c1, self.c2 = g, c1, c2
        self.conv1 = Conv(c1, c2, k, s, p=p, g=g, act=False)
        self.conv2 = Conv(c1, c2, 1, s, p=(p - k // 2), g=g, act=False)
        self.act = _default_activation.get()() if act is True else act if isinstance(act, nn.Module) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "conv"):
            return self.act(self.conv(x))
        return self.act(self.conv1(x) + self.conv2(x))

    def fuse(self) -> None:
        if hasattr(self, "conv"):
            return
        w3, b3 = self._branch(self.conv1)
        w1, b1 = self._branch(self.conv2)
        weight = w3 + F.pad(w1, [1, 1, 1, 1])
        self.conv = _conv_with(weight, b3 + b1, like=self.conv1.conv)
        del self.conv1, self.conv2

    @staticmethod
    def _branch(branch: Conv) -> tuple[torch.Tensor, torch.Tensor]:
        if branch.bn is None:
            return branch.conv.weight.detach(), branch.conv.bias.detach()
        return fold_batchnorm(branch.conv, branch.bn)


class RepNBottleneck(nn.Module):
    """RepConvN 3x3 -> Conv 3x3, with a residual connection when shapes allow."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, k: Sequence[int] = (3, 3),
                 e: float = 0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = RepConvN(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class RepNCSP(nn.Module):
    """CSP block of `n` RepNBottlenecks."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(RepNBottleneck(c_, c_, shortcut, g, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class _ELANBase(nn.Module):
    """ELAN data flow: split cv1's output in two, chain cv2 and cv3 on the second half, concat all four, cv4."""

    cv1: nn.Module
    cv2: nn.Module
    cv3: nn.Module
    cv4: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.append(self.cv2(y[-1]))
        y.append(self.cv3(y[-1]))
        return self.cv4(torch.cat(y, 1))


class RepNCSPELAN4(_ELANBase):
    """The GELAN block: ELAN whose computational blocks are RepNCSP + 3x3 Conv. `c5` = RepNCSP depth."""

    def __init__(self, c1: int, c2: int, c3: int, c4: int, c5: int = 1):
        super().__init__()
        self.c = c3 // 2
        self.cv1 = Conv(c1, c3, 1, 1)
        self.cv2 = nn.Sequential(RepNCSP(c3 // 2, c4, c5), Conv(c4, c4, 3, 1))
        self.cv3 = nn.Sequential(RepNCSP(c4, c4, c5), Conv(c4, c4, 3, 1))
        self.cv4 = Conv(c3 + 2 * c4, c2, 1, 1)


class ELAN1(_ELANBase):
    """The light ELAN stem block of GELAN t/s: plain 3x3 convs as computational blocks."""

    def __init__(self, c1: int, c2: int, c3: int, c4: int):
        super().__init__()
        self.c = c3 // 2
        self.cv1 = Conv(c1, c3, 1, 1)
        self.cv2 = Conv(c3 // 2, c4, 3, 1)
        self.cv3 = Conv(c4, c4, 3, 1)
        self.cv4 = Conv(c3 + 2 * c4, c2, 1, 1)


class SP(nn.Module):
    """Stride-1 max-pool with 'same' padding (parameter-free; kept as a module for state_dict layout)."""

    def __init__(self, k: int = 3, s: int = 1):
        super().__init__()
        self.m = nn.MaxPool2d(kernel_size=k, stride=s, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.m(x)


class SPPELAN(nn.Module):
    """Spatial pyramid pooling as ELAN: cv1, three chained 5x5 max-pools, concat, cv5."""

    def __init__(self, c1: int, c2: int, c3: int):
        super().__init__()
        self.c = c3
        self.cv1 = Conv(c1, c3, 1, 1)
        self.cv2 = SP(5)
        self.cv3 = SP(5)
        self.cv4 = SP(5)
        self.cv5 = Conv(4 * c3, c2, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for pool in (self.cv2, self.cv3, self.cv4):
            y.append(pool(y[-1]))
        return self.cv5(torch.cat(y, 1))


class CBLinear(nn.Module):
    """PGI: a 1x1 conv (with bias) whose output is split into the pieces routed to the auxiliary backbone."""

    def __init__(self, c1: int, c2s: Sequence[int], k: int = 1, s: int = 1, p: Optional[int] = None, g: int = 1):
        super().__init__()
        self.c2s = list(c2s)
        self.conv = nn.Conv2d(c1, sum(self.c2s), k, s, autopad(k, p), groups=g, bias=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.conv(x).split(self.c2s, dim=1)


class CBFuse(nn.Module):
    """PGI: sum the target map with nearest-upsampled pieces `idx[i]` of each CBLinear input."""

    def __init__(self, idx: Sequence[int]):
        super().__init__()
        self.idx = list(idx)

    def forward(self, xs: list) -> torch.Tensor:
        size = xs[-1].shape[2:]
        terms = [F.interpolate(pieces[i], size=size, mode="nearest") for pieces, i in zip(xs[:-1], self.idx)]
        out = terms[0]
        for term in terms[1:] + [xs[-1]]:
            out = out + term
        return out


class Concat(nn.Module):
    """Concatenate a list of tensors along dimension `d`."""

    def __init__(self, dimension: int = 1):
        super().__init__()
        self.d = dimension

    def forward(self, x: list) -> torch.Tensor:
        return torch.cat(x, self.d)


class Silence(nn.Module):
    """Identity; as layer 0 it gives the input image an index that later rows can name."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class DFL(nn.Module):
    """Distribution focal loss integral: (B, 4*c1, A) bin logits -> (B, 4, A) expected distances (side-major)."""

    def __init__(self, c1: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
        self.c1 = c1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


class Proto(nn.Module):
    """Mask prototypes of the `Segment` head: 3x3 Conv -> nearest upsample x2 -> 3x3 Conv -> 1x1 Conv to `c2` maps.

    (B, c1, H, W) -> (B, c2, 2H, 2W); on P3 (stride 8) the prototypes come out at stride 4.
    """

    def __init__(self, c1: int, c_: int = 256, c2: int = 32):
        super().__init__()
        self.cv1 = Conv(c1, c_, 3)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.cv2 = Conv(c_, c_, 3)
        self.cv3 = Conv(c_, c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))
