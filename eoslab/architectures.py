"""Networks from the literature as ``torch.nn`` modules, to wrap with :func:`eoslab.problems.from_module`.

* :func:`fully_connected` and :func:`convnet`: the fully connected and
  convolutional networks of Cohen et al. (2021) ("fc-tanh", "cnn-relu", ...:
  widths 200, 200; two 3x3 convolutions of 32 channels, each followed by the
  activation and a 2x2 pooling, then one linear layer);
* :func:`resnet`: a small residual network without BatchNorm (each block
  ``x + conv(act(conv(x)))``, its second convolution scaled down so that the
  network starts close to its skip connections);
* :func:`vision_transformer`: a small Vision Transformer (patch embedding, a
  class token, learned positions, pre-LayerNorm blocks).

Every layer is written with differentiable torch operations whose third
derivatives are right, which the central flow and the self-stabilization code
take (:math:`\nabla S = \nabla^3 L[u, u]`): attention is written out, and
layer normalization is :class:`LayerNorm`, because torch's fused
``layer_norm`` returns a wrong third derivative (in torch 2.13, by a factor of
about 2.5 against finite differences on a small example, while its first and
second derivatives are right). The tests check every network's products
against finite differences. Initialization is PyTorch's default, seeded by
``seed``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._validation import check_choice, check_int

__all__ = ["LayerNorm", "convnet", "fully_connected", "resnet", "vision_transformer"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "softplus": nn.Softplus}


def _activation(name):
    return _ACTIVATIONS[check_choice("activation", name, _ACTIVATIONS)]()


def _seeded(seed, build):
    """``build()`` under a fixed seed, without touching the global random state."""
    seed = check_int("seed", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def fully_connected(input_size, widths=(200, 200), num_classes=10, *, activation="tanh", seed=0):
    """Cohen et al.'s fully connected network: flatten, then ``Linear -> activation`` per width, then a linear head.

    Parameters
    ----------
    input_size : int
        Number of input features (pixels times channels).
    widths : sequence of int
        Hidden widths.
    num_classes : int
    activation : {"relu", "tanh", "elu", "gelu", "softplus"}
    seed : int
    """
    sizes = [check_int("input_size", input_size, low=1)] + [check_int("widths", w, low=1) for w in widths]

    def build():
        layers = [nn.Flatten()]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), _activation(activation)]
        return nn.Sequential(*layers, nn.Linear(sizes[-1], check_int("num_classes", num_classes, low=1)))
    return _seeded(seed, build)


def convnet(in_channels=3, image_size=32, widths=(32, 32), num_classes=10, *, activation="relu", pooling="max",
            seed=0):
    """Cohen et al.'s convolutional network: per width a 3x3 convolution, the activation and a 2x2 pooling;
    then a linear head.

    Parameters
    ----------
    in_channels, image_size : int
        Input channels and side (CIFAR-10: 3, 32; the digits as images: 1, 8).
    widths : sequence of int
        Channels of each convolution; the side halves after each, so ``image_size`` must be divisible by
        ``2 ** len(widths)``.
    num_classes : int
    activation : {"relu", "tanh", "elu", "gelu", "softplus"}
    pooling : {"max", "average"}
    seed : int
    """
    check_int("in_channels", in_channels, low=1)
    side = check_int("image_size", image_size, low=1)
    if side % (2 ** len(widths)):
        raise ValueError(f"image_size must be divisible by 2 ** len(widths) = {2 ** len(widths)}, got {side}")
    pool = {"max": nn.MaxPool2d, "average": nn.AvgPool2d}[check_choice("pooling", pooling, ("max", "average"))]
    channels = [in_channels] + [check_int("widths", w, low=1) for w in widths]

    def build():
        layers = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), _activation(activation), pool(2)]
        final = side // 2 ** len(widths)
        return nn.Sequential(*layers, nn.Flatten(),
                             nn.Linear(channels[-1] * final * final, check_int("num_classes", num_classes, low=1)))
    return _seeded(seed, build)


class _Block(nn.Module):
    """``x + s * conv2(act(conv1(x)))`` with a 1x1 projection where the shape changes; no BatchNorm."""

    def __init__(self, c_in, c_out, stride, activation, scale):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.act = _activation(activation)
        self.scale = scale
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride=stride)

    def forward(self, x):
        return self.act(self.skip(x) + self.scale * self.conv2(self.act(self.conv1(x))))


def resnet(in_channels=3, num_classes=10, widths=(16, 32, 64), blocks=1, *, activation="relu", seed=0):
    """A residual network without BatchNorm: a 3x3 stem, ``blocks`` residual blocks per width (the first of each
    stage after the first halving the side), global average pooling and a linear head.

    Each block's residual branch is multiplied by ``1 / sqrt(number of blocks)``, so that the network starts
    close to its skip connections and trains without normalization layers.

    Parameters
    ----------
    in_channels, num_classes : int
    widths : sequence of int
        Channels of each stage.
    blocks : int
        Residual blocks per stage.
    activation : {"relu", "tanh", "elu", "gelu", "softplus"}
    seed : int
    """
    widths = [check_int("widths", w, low=1) for w in widths]
    blocks = check_int("blocks", blocks, low=1)
    scale = 1 / math.sqrt(blocks * len(widths))

    def build():
        layers = [nn.Conv2d(check_int("in_channels", in_channels, low=1), widths[0], 3, padding=1),
                  _activation(activation)]
        c_in = widths[0]
        for stage, c_out in enumerate(widths):
            for b in range(blocks):
                layers.append(_Block(c_in, c_out, 2 if stage > 0 and b == 0 else 1, activation, scale))
                c_in = c_out
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(c_in, check_int("num_classes", num_classes, low=1)))
    return _seeded(seed, build)


class LayerNorm(nn.Module):
    """Layer normalization over the last dimension, written with elementary operations.

    The same function and parameters (``weight``, ``bias``) as ``torch.nn.LayerNorm(dim)``, but its
    derivatives of every order are torch's derivatives of means, squares and square roots: right where the
    fused kernel's third derivative is not. A drop-in replacement in a module whose ∇S will be taken.
    """

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        centered = x - x.mean(dim=-1, keepdim=True)
        return centered / torch.sqrt((centered ** 2).mean(dim=-1, keepdim=True) + self.eps) * self.weight + self.bias


class _Attention(nn.Module):
    """Multi-head self-attention written out (softmax of scaled dot products), no fused kernel."""

    def __init__(self, dim, heads):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        n, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(n, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dim // self.heads), dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(n, tokens, dim))


class _TransformerBlock(nn.Module):
    """Pre-LayerNorm: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, dim, heads, mlp_dim):
        super().__init__()
        self.norm1, self.attn = LayerNorm(dim), _Attention(dim, heads)
        self.norm2 = LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _ViT(nn.Module):
    def __init__(self, in_channels, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim):
        super().__init__()
        tokens = (image_size // patch_size) ** 2
        self.embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(0.02 * torch.randn(1, tokens + 1, dim))
        self.blocks = nn.Sequential(*[_TransformerBlock(dim, heads, mlp_dim) for _ in range(depth)])
        self.norm = LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        patches = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), patches], dim=1) + self.position
        return self.head(self.norm(self.blocks(x))[:, 0])


def vision_transformer(in_channels=3, image_size=32, patch_size=4, num_classes=10, *, dim=64, depth=2, heads=4,
                       mlp_dim=128, seed=0):
    """A small Vision Transformer: patch embedding, class token, learned positions, ``depth`` pre-LayerNorm
    blocks (self-attention and a GELU MLP), a final LayerNorm and a linear head on the class token.

    Parameters
    ----------
    in_channels, image_size, patch_size, num_classes : int
        ``image_size`` must be divisible by ``patch_size``.
    dim, depth, heads, mlp_dim : int
        Token width, blocks, attention heads (dividing ``dim``) and hidden width of the MLPs.
    seed : int
    """
    side, patch = check_int("image_size", image_size, low=1), check_int("patch_size", patch_size, low=1)
    if side % patch:
        raise ValueError(f"image_size must be divisible by patch_size, got {side} and {patch}")
    args = [check_int(k, v, low=1) for k, v in (("in_channels", in_channels), ("image_size", side),
                                                   ("patch_size", patch), ("num_classes", num_classes),
                                                   ("dim", dim), ("depth", depth), ("heads", heads),
                                                   ("mlp_dim", mlp_dim))]
    return _seeded(seed, lambda: _ViT(*args))
