"""A LeNet-style convolutional network in NumPy, layer by layer, with batch normalisation (chapter 3).

The network (LeCun et al., 1998, shrunk to 16x16 digits), for x: (N, 1, 16, 16):

    conv1 5x5, 16 filters, padding 2 -> ReLU -> 2x2 max pool    (N, 16, 8, 8)
    conv2 5x5, 32 filters, padding 2 -> ReLU -> 2x2 max pool    (N, 32, 4, 4)
    flatten -> fc1 (512 -> 128) -> ReLU -> fc2 (128 -> 10)      (N, 10) class scores (logits)

Every layer is a pure forward function returning (output, cache) and a backward function taking the
gradient of the output and that cache, so `lenet_backward` is the chain rule read from the top:
each layer's backward in the reverse order of the forward. Parameters live in a dict whose names and
shapes are those of the PyTorch twin's `state_dict()` ("conv1.weight": (8, 1, 5, 5), "fc1.weight":
(128, 512) as (out, in), ...), so that one set of numbers can be loaded into both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from dlbook._validation import require_float_array, require_int, require_nonnegative
from dlbook.data import minibatch_indices
from dlbook.np.conv import conv2d, conv2d_backward, max_pool2d, max_pool2d_backward
from dlbook.np.optim import Optimizer

Params = dict[str, np.ndarray]

IMAGE_SHAPE = (1, 16, 16)  # (C, H, W) the network expects
N_CLASSES = 10


def lenet_shapes(channels: tuple[int, int] = (16, 32), hidden: int = 128) -> dict[str, tuple[int, ...]]:
    """name -> shape of every parameter, in forward order, for `channels` filters in the two
    convolutions and `hidden` units in fc1: the defaults give the (16, 32, 128) network drawn above."""
    first, second = (require_int(f"channels[{index}]", channels[index], minimum=1) for index in range(2))
    hidden = require_int("hidden", hidden, minimum=1)
    return {
        "conv1.weight": (first, IMAGE_SHAPE[0], 5, 5),
        "conv1.bias": (first,),
        "conv2.weight": (second, first, 5, 5),
        "conv2.bias": (second,),
        "fc1.weight": (hidden, second * 4 * 4),
        "fc1.bias": (hidden,),
        "fc2.weight": (N_CLASSES, hidden),
        "fc2.bias": (N_CLASSES,),
    }


def init_lenet(
    rng: np.random.Generator, channels: tuple[int, int] = (16, 32), hidden: int = 128, dtype: type = np.float32
) -> Params:
    """PyTorch's default initialisation of Conv2d and Linear: every weight and bias of a layer with
    fan_in inputs per output is drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    (torch writes this as kaiming_uniform_ with a = sqrt(5) for the weights; the bound works out to
    the same 1/sqrt(fan_in).) Returns a dict name -> array with the shapes of `lenet_shapes`.
    """
    shapes = lenet_shapes(channels, hidden)
    params = {}
    for name, shape in shapes.items():
        layer = name.split(".")[0]
        fan_in = int(np.prod(shapes[f"{layer}.weight"][1:]))  # inputs per output: C*KH*KW or D
        bound = 1 / np.sqrt(fan_in)
        params[name] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return params


# ---- the small layers ------------------------------------------------------------------------------


def relu(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """max(x, 0), and the mask of where x > 0 as the cache."""
    positive = x > 0
    return x * positive, positive


def relu_backward(dout: np.ndarray, positive: np.ndarray) -> np.ndarray:
    return dout * positive


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x: (N, D) @ weight^T (D, M) + bias (M,) -> (N, M), as torch.nn.Linear; the cache is x."""
    return x @ weight.T + bias, x


def linear_backward(dout: np.ndarray, x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ...]:
    """dout: (N, M) -> dx (N, D), dweight (M, D), dbias (M,)."""
    return dout @ weight, dout.T @ x, dout.sum(axis=0)


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer targets (N,) under softmax(logits) (N, K), and its gradient
    (softmax - one_hot) / N with respect to the logits."""
    logits = require_float_array("logits", logits, ndim=2)
    targets = _require_targets(targets, logits.shape)
    shifted = logits - logits.max(axis=1, keepdims=True)  # exp never overflows
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(targets))
    loss = -float(log_probs[rows, targets].mean())
    dlogits = np.exp(log_probs)
    dlogits[rows, targets] -= 1
    return loss, dlogits / len(targets)


def _require_targets(targets: np.ndarray, logits_shape: tuple[int, int]) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.shape != logits_shape[:1] or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(
            f"targets must be {logits_shape[0]} integer classes, shape ({logits_shape[0]},), to match logits "
            f"{logits_shape}; got shape {targets.shape} of dtype {targets.dtype}"
        )
    if targets.size and (targets.min() < 0 or targets.max() >= logits_shape[1]):
        raise ValueError(
            f"targets must lie in [0, {logits_shape[1]}), got values from {targets.min()} to {targets.max()}"
        )
    return targets


# ---- the network ------------------------------------------------------------------------------------


class LeNetCache(NamedTuple):
    """Every layer's cache, and the activations worth drawing."""

    conv1: object
    relu1: np.ndarray
    pool1: object
    conv2: object
    relu2: np.ndarray
    pool2: object
    fc1: np.ndarray
    relu3: np.ndarray
    fc2: np.ndarray
    feature_maps: dict[str, np.ndarray]  # "conv1", "conv2": the ReLU outputs, (N, F, H, W)


def _check_lenet(params: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    missing = sorted(set(lenet_shapes()) - set(params))
    if missing:
        raise KeyError(f"params lacks {missing}; build them with init_lenet")
    expected = lenet_shapes((len(params["conv1.bias"]), len(params["conv2.bias"])), len(params["fc1.bias"]))
    for name, shape in expected.items():
        if params[name].shape != shape:
            raise ValueError(f"params[{name!r}] must have shape {shape}, got {params[name].shape}")
    x = require_float_array("x", x, ndim=4)
    if x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"x must hold (N, {', '.join(map(str, IMAGE_SHAPE))}) images, got shape {x.shape}")
    return x


def lenet_forward(params: Mapping[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, LeNetCache]:
    """x: (N, 1, 16, 16) -> logits (N, 10) and the cache for `lenet_backward`."""
    x = _check_lenet(params, x)
    h, conv1_cache = conv2d(x, params["conv1.weight"], params["conv1.bias"], padding=2)  # (N, F1, 16, 16)
    h, relu1_mask = relu(h)
    feature_map1 = h
    h, pool1_cache = max_pool2d(h, 2)  # (N, F1, 8, 8)
    h, conv2_cache = conv2d(h, params["conv2.weight"], params["conv2.bias"], padding=2)  # (N, F2, 8, 8)
    h, relu2_mask = relu(h)
    feature_map2 = h
    h, pool2_cache = max_pool2d(h, 2)  # (N, F2, 4, 4)
    flat = h.reshape(len(x), -1)  # (N, F2 * 16)
    h, fc1_cache = linear(flat, params["fc1.weight"], params["fc1.bias"])  # (N, hidden)
    h, relu3_mask = relu(h)
    logits, fc2_cache = linear(h, params["fc2.weight"], params["fc2.bias"])  # (N, 10)
    maps = {"conv1": feature_map1, "conv2": feature_map2}
    cache = LeNetCache(
        conv1_cache,
        relu1_mask,
        pool1_cache,
        conv2_cache,
        relu2_mask,
        pool2_cache,
        fc1_cache,
        relu3_mask,
        fc2_cache,
        maps,
    )
    return logits, cache


def lenet_backward(
    dlogits: np.ndarray, params: Mapping[str, np.ndarray], cache: LeNetCache
) -> tuple[np.ndarray, Params]:
    """dlogits: (N, 10) -> dx (N, 1, 16, 16) and the gradient of every parameter (same names, order and shapes)."""
    grads = {}
    dh, grads["fc2.weight"], grads["fc2.bias"] = linear_backward(dlogits, cache.fc2, params["fc2.weight"])
    dh = relu_backward(dh, cache.relu3)
    dflat, grads["fc1.weight"], grads["fc1.bias"] = linear_backward(dh, cache.fc1, params["fc1.weight"])
    dh = max_pool2d_backward(dflat.reshape(cache.pool2.out_shape), cache.pool2)
    dh = relu_backward(dh, cache.relu2)
    dh, grads["conv2.weight"], grads["conv2.bias"] = conv2d_backward(dh, cache.conv2)
    dh = max_pool2d_backward(dh, cache.pool1)
    dh = relu_backward(dh, cache.relu1)
    dx, grads["conv1.weight"], grads["conv1.bias"] = conv2d_backward(dh, cache.conv1)
    return dx, {name: grads[name] for name in params}


def predict(params: Mapping[str, np.ndarray], x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The most likely class of every image of x (N, 1, 16, 16): (N,) int64, computed in batches."""
    batches = (lenet_forward(params, x[start : start + batch_size])[0] for start in range(0, len(x), batch_size))
    return np.concatenate([logits.argmax(axis=1) for logits in batches])


def saliency(params: Mapping[str, np.ndarray], x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """|d score_class / d x|: how strongly each pixel moves the score (logit) of the given class.

    x: (N, 1, 16, 16), classes: (N,) ints -> (N, 16, 16), the absolute gradient of logit[n, classes[n]]
    with respect to image n (Simonyan et al., 2014).
    """
    logits, cache = lenet_forward(params, x)
    classes = _require_targets(classes, logits.shape)
    pick = np.zeros_like(logits)
    pick[np.arange(len(classes)), classes] = 1  # d(sum_n logit[n, class_n]) / d logits
    dx, _ = lenet_backward(pick, params, cache)
    return np.abs(dx[:, 0])


class EpochResult(NamedTuple):
    params: Params
    optimizer_state: object
    mean_loss: float


def train_epoch(
    params: Mapping[str, np.ndarray],
    optimizer: Optimizer,
    optimizer_state: object,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    lr: float | None = None,
) -> EpochResult:
    """One pass over (x, y) in shuffled minibatches, one optimizer step per batch.

    optimizer: a `dlbook.np.optim` optimizer, its state from `optimizer.init(list(params.values()))`;
    lr: this epoch's learning rate (from a schedule), or None for the optimizer's own.
    Returns the new parameters, the new optimizer state and the mean training loss of the epoch.
    """
    names = list(params)
    arrays = [params[name] for name in names]
    losses = []
    for batch in minibatch_indices(len(x), batch_size, rng):
        logits, cache = lenet_forward(dict(zip(names, arrays, strict=True)), x[batch])
        loss, dlogits = cross_entropy(logits, y[batch])
        _, grads = lenet_backward(dlogits, dict(zip(names, arrays, strict=True)), cache)
        arrays, optimizer_state = optimizer.step(arrays, [grads[name] for name in names], optimizer_state, lr=lr)
        losses.append(loss)
    return EpochResult(dict(zip(names, arrays, strict=True)), optimizer_state, float(np.mean(losses)))


# ---- batch normalisation ----------------------------------------------------------------------------


class BatchNormCache(NamedTuple):
    normalized: np.ndarray  # (N, C, H, W): (x - mean) / sqrt(var + eps)
    inverse_std: np.ndarray  # (C,)
    weight: np.ndarray  # (C,)


class RunningStats(NamedTuple):
    """The averages batch norm keeps for inference: mean and unbiased variance per channel, (C,)."""

    mean: np.ndarray
    var: np.ndarray


def batch_norm2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    running: RunningStats,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, BatchNormCache | None, RunningStats]:
    """Batch normalisation of x (N, C, H, W) per channel, as torch.nn.BatchNorm2d (Ioffe and Szegedy, 2015).

    Training: each channel is normalised with the mean and (biased) variance of its N*H*W values in
    this batch, then scaled by weight (C,) and shifted by bias (C,); the running averages move towards
    the batch's mean and unbiased variance by `momentum`. Inference (training=False): the running
    averages normalise instead, and no cache is returned. Returns (out, cache, new running stats).
    """
    x = require_float_array("x", x, ndim=4)
    channels = x.shape[1]
    for name, value in (
        ("weight", weight),
        ("bias", bias),
        ("running.mean", running.mean),
        ("running.var", running.var),
    ):
        if np.shape(value) != (channels,):
            raise ValueError(f"{name} must have one entry per channel, shape ({channels},), got {np.shape(value)}")
    momentum = require_nonnegative("momentum", momentum)
    if not training:
        inverse_std = 1 / np.sqrt(running.var + eps)
        scale = (weight * inverse_std)[:, None, None]
        return (x - running.mean[:, None, None]) * scale + bias[:, None, None], None, running
    count = x.size // channels
    if count < 2:
        raise ValueError(f"batch norm in training needs more than one value per channel, got x of shape {x.shape}")
    mean = x.mean(axis=(0, 2, 3))  # (C,)
    var = x.var(axis=(0, 2, 3))  # (C,), biased: what normalises the batch
    inverse_std = 1 / np.sqrt(var + eps)
    normalized = (x - mean[:, None, None]) * inverse_std[:, None, None]
    out = normalized * weight[:, None, None] + bias[:, None, None]
    new_running = RunningStats(
        (1 - momentum) * running.mean + momentum * mean,
        (1 - momentum) * running.var + momentum * var * count / (count - 1),  # torch keeps the unbiased one
    )
    return out, BatchNormCache(normalized, inverse_std, weight), new_running


def batch_norm2d_backward(dout: np.ndarray, cache: BatchNormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (N, C, H, W) -> dx (N, C, H, W), dweight (C,), dbias (C,), for a forward in training mode.

    The batch's mean and variance depend on every x, so dx is not just dout * weight / std: the
    gradient loses its mean over the channel and its component along the normalised values,
    dx = weight / std * (g - mean(g) - normalized * mean(g * normalized)), g = dout.
    """
    dout = require_float_array("dout", dout, ndim=4)
    if dout.shape != cache.normalized.shape:
        raise ValueError(f"dout must have the shape of the forward output {cache.normalized.shape}, got {dout.shape}")
    axes = (0, 2, 3)
    dbias = dout.sum(axis=axes)
    dweight = (dout * cache.normalized).sum(axis=axes)
    count = dout.size // dout.shape[1]
    mean_g = dbias / count
    mean_g_normalized = dweight / count
    scale = (cache.weight * cache.inverse_std)[:, None, None]
    dx = scale * (dout - mean_g[:, None, None] - cache.normalized * mean_g_normalized[:, None, None])
    return dx, dweight, dbias
