"""PyTorch twin of `dlbook.np.cnn`: the same LeNet-style network as a `torch.nn.Module`, and deep
plain / batch-normalised / residual networks for the depth experiment of chapter 3.

Differences in shape of the API, none in the numbers: the NumPy functions take a dict of arrays and
return new ones; here the parameters live in the module (`model.state_dict()` has the NumPy twin's
names and shapes), autograd computes the gradients, and a `torch.optim` optimizer updates in place.
The weights are drawn by the NumPy twin's `init_lenet` from the same Generator, so a seed gives both
twins identical starting weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from dlbook.data import minibatch_indices
from dlbook.np.cnn import IMAGE_SHAPE, N_CLASSES, lenet_shapes
from dlbook.np.cnn import init_lenet as init_lenet_arrays

__all__ = [
    "IMAGE_SHAPE",
    "DeepCNN",
    "LeNet",
    "batch_norm2d",
    "cross_entropy",
    "init_lenet",
    "lenet_forward",
    "lenet_shapes",
    "predict",
    "saliency",
    "train_epoch",
]


class LeNet(nn.Module):
    """conv 5x5 -> ReLU -> max pool 2 -> conv 5x5 -> ReLU -> max pool 2 -> fc -> ReLU -> fc, on (N, 1, 16, 16)."""

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 128) -> None:
        super().__init__()
        lenet_shapes(channels, hidden)  # validates the sizes with the NumPy twin's messages
        self.conv1 = nn.Conv2d(IMAGE_SHAPE[0], channels[0], 5, padding=2)
        self.conv2 = nn.Conv2d(channels[0], channels[1], 5, padding=2)
        self.fc1 = nn.Linear(channels[1] * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, N_CLASSES)

    def feature_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ReLU outputs of both convolutions: "conv1" (N, F1, 16, 16), "conv2" (N, F2, 8, 8)."""
        conv1 = torch.relu(self.conv1(x))
        conv2 = torch.relu(self.conv2(nn.functional.max_pool2d(conv1, 2)))
        return {"conv1": conv1, "conv2": conv2}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 16, 16) -> logits (N, 10)."""
        h = nn.functional.max_pool2d(self.feature_maps(x)["conv2"], 2)  # (N, F2, 4, 4)
        return self.fc2(torch.relu(self.fc1(h.flatten(1))))


def init_lenet(
    rng: np.random.Generator,
    channels: tuple[int, int] = (16, 32),
    hidden: int = 128,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> LeNet:
    """A LeNet holding the weights `dlbook.np.cnn.init_lenet(rng, channels, hidden)` draws."""
    model = LeNet(channels, hidden).to(device=device, dtype=dtype)
    # drawn in float64 and rounded once, to `dtype`, exactly as the NumPy twin rounds its draw
    model.load_state_dict(_as_tensors(init_lenet_arrays(rng, channels, hidden, dtype=np.float64)))
    return model


def _as_tensors(params: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in params.items()}


def lenet_forward(model: LeNet, x: torch.Tensor) -> torch.Tensor:
    """x: (N, 1, 16, 16) -> logits (N, 10); the same as model(x)."""
    return model(x)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of integer targets (N,) under softmax(logits) (N, K)."""
    return nn.functional.cross_entropy(logits, targets)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The most likely class of every image of x (N, 1, 16, 16): (N,) int64, computed in batches."""
    was_training = model.training
    model.eval()
    classes = torch.cat([model(x[start : start + batch_size]).argmax(dim=1) for start in range(0, len(x), batch_size)])
    model.train(was_training)
    return classes


def saliency(model: nn.Module, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """|d logit[n, classes[n]] / d x[n]|: (N, 1, 16, 16) -> (N, 16, 16) (Simonyan et al., 2014)."""
    x = x.detach().clone().requires_grad_(True)
    scores = model(x).gather(1, classes[:, None]).sum()
    (gradient,) = torch.autograd.grad(scores, x)
    return gradient.abs()[:, 0]


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """One pass over (x, y) in minibatches shuffled by the NumPy Generator `rng` (the same batches as the
    NumPy twin for the same seed), one optimizer step per batch. Returns the mean training loss."""
    model.train()
    losses = []
    for batch in minibatch_indices(len(x), batch_size, rng):
        index = torch.from_numpy(batch).to(x.device)
        optimizer.zero_grad()
        loss = cross_entropy(model(x[index]), y[index])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def batch_norm2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """torch.nn.functional.batch_norm on x (N, C, H, W); running_mean and running_var (C,) are updated in
    place in training (the NumPy twin returns new ones instead)."""
    return nn.functional.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)


class _Block(nn.Module):
    """Plain: ReLU(norm(conv(x))). Residual: x + conv(ReLU(norm(x))), the "pre-activation" form of He et
    al. (2016), whose identity path carries the input, and the gradient, through unchanged."""

    def __init__(self, width: int, batch_norm: bool, residual: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm)
        self.norm = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            return x + self.conv(torch.relu(self.norm(x)))
        return torch.relu(self.norm(self.conv(x)))


class DeepCNN(nn.Module):
    """A stem conv to `width` channels, `depth` 3x3 blocks at 16x16, 4x4 average pooling, a linear classifier.

    batch_norm: every block normalises its convolution's input or output (Ioffe and Szegedy, 2015);
    residual: every block adds its input to its output (He et al., 2016). x: (N, 1, 16, 16) -> (N, 10).
    """

    def __init__(self, depth: int, width: int = 16, batch_norm: bool = False, residual: bool = False) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be >= 1, got depth={depth}, width={width}")
        self.stem = nn.Conv2d(IMAGE_SHAPE[0], width, 3, padding=1)
        self.blocks = nn.Sequential(*[_Block(width, batch_norm, residual) for _ in range(depth)])
        self.head = nn.Linear(width * 4 * 4, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(torch.relu(self.stem(x)))  # (N, width, 16, 16)
        return self.head(nn.functional.avg_pool2d(h, 4).flatten(1))  # (N, width * 4 * 4) -> (N, 10)
