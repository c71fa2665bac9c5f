"""Instant checks for the coding exercises: right or wrong, why, and a hint on request.

In an exercise notebook:

    check.heavy_ball_step(heavy_ball_step)   # your function: says whether it is right, and why not
    check.hint("heavy_ball_step")            # a nudge, never the solution

Each check runs the reader's answer on fresh random cases and compares it with the library, then
names the most likely mistake when it differs (a wrong sign, an off-by-one, a wrong axis...). The
messages describe what went wrong, never the code that would be right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from dlbook.np import optim
from dlbook.np.conv import output_size
from dlbook.np.tensor import Tensor

if TYPE_CHECKING:
    from dlbook.np.precision import FormatInfo

HINTS = {
    "largest_stable_lr": "Gradient descent on a quadratic is stable when lr * curvature < 2 for every "
    "curvature. The curvatures are the eigenvalues of the Hessian of the loss in (w, b): build the "
    "design matrix with a column of ones, and remember the 1/N of the mean.",
    "heavy_ball_step": "The velocity adds the *whole* gradient to momentum times the old velocity (no "
    "factor 1 - momentum), and the parameters move *against* the velocity. On the first call the "
    "velocity is None.",
    "rotated_bowl": "Rotate the curvature matrix, not the point: H = R diag(1, 100) R^T with R the 2x2 "
    "rotation matrix. The value is a quadratic form in p, and its gradient is linear in p (no factor 2 "
    "once you remember the 1/2).",
    "exponential_lr": "Step 0 must use the base learning rate itself; each later step multiplies by gamma once more.",
    "layer_backward": "Go backwards one operation at a time: first through tanh (you need its output), "
    "then through the bias addition (b was broadcast over the rows), then through X @ W (two matrix "
    "products, each with one transpose; check the shapes).",
    "sigmoid_gradient": "Differentiate 1 / (1 + exp(-z)) with the chain rule and write the result in "
    "terms of the sigmoid itself.",
    "activation_bytes_per_example": "Every operation of the forward pass leaves one result array in the "
    "graph; count the ones whose size grows with the batch (the input too), in numbers per example, "
    "then convert to bytes.",
    "conv_output_shape": "Along each axis the dilated kernel spans d(K - 1) + 1 pixels of the input padded on "
    "both sides; count the placements that fit when they start every s pixels. The channel count of the "
    "output is the number of filters.",
    "receptive_field": "Walk up the stack from the input, keeping two numbers: the field so far, and how many "
    "input pixels lie between neighbouring positions of the current layer. Pooling layers count too.",
    "avg_pool_as_conv": "Average pooling treats each channel on its own, so the weight must not mix channels: "
    "channel c of the output should read only channel c of the input. What is each tap's weight in a mean?",
    "rnn_step_backward": "Go backwards through the step: first through the tanh (you need h_next), then the "
    "pre-activation is a sum, so each weight's gradient is an outer product of that gradient with what it "
    "multiplied, summed over the batch, and both biases get the same gradient.",
    "clip_grad_norm": "The total norm is one number for all the gradients together: the square root of the sum of "
    "every squared entry. All gradients are scaled by the same factor, and only when the norm is too large.",
    "bits_and_perplexity": "Nats and bits differ by a factor ln 2; perplexity is the base raised to the "
    "cross-entropy in the same base.",
    "causal_attention": "Scores are q k^T scaled by 1/sqrt(d); a causal mask sets the scores above the "
    "diagonal to -inf before the softmax over the keys (the last axis); then weight the values.",
    "tiny_gpt_params": "Count block by block: embeddings (tokens and positions), per layer the four attention "
    "matrices with biases, the two MLP matrices with biases, two layer norms (a scale and a shift each), "
    "then the final norm. The head is tied to the token embedding.",
    "kv_cache_bytes": "Every layer keeps a key and a value vector of d_model numbers for every position of "
    "every sequence in the batch.",
    "round_to_format": "Work on all values at once: np.frexp returns each value's exponent (its mantissa lies in "
    "[0.5, 1), so mind the off-by-one). The gap between neighbours is 2**(exponent - fraction_bits) for the "
    "power of two at or below |x|, but never smaller than the gap at the smallest normal number. Round to a "
    "multiple of the gap with ties to even, then send what lies beyond the largest number to infinity.",
    "compute_optimal_split": "Two equations, two unknowns: put D = tokens_per_param * N into C = 6 N D and solve "
    "for N (a square root appears). Then D follows from N.",
    "llama2_7b_params": "Per layer: four d x d attention matrices, three d x d_ff MLP matrices and two RMSNorm "
    "scales of d numbers. Outside the layers: the token embedding, a head of the same shape (not tied), and a "
    "final norm. No biases, no position table.",
    "ring_allreduce_bytes": "The ring cuts the gradients into p chunks; a reduce-scatter of p - 1 steps and an "
    "all-gather of p - 1 steps follow, and at every step each GPU sends exactly one chunk. Count the gradients' "
    "bytes first (2 per number in bfloat16).",
    "affine_quantize": "Divide by the scale, round to the nearest integer with ties going to the even neighbour "
    "(np.rint does that), add the zero point, then clip to [qmin, qmax]. To dequantize, undo the zero point "
    "before undoing the scale.",
}


@dataclass(frozen=True)
class Feedback:
    """The verdict on an answer; shows itself as one or two readable lines in a notebook."""

    exercise: str
    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __repr__(self) -> str:
        if self.correct:
            return f"Correct: {self.message}"
        return f'Not yet: {self.message}\n(For a hint: check.hint("{self.exercise}"))'


@dataclass(frozen=True)
class Hint:
    exercise: str
    text: str

    def __repr__(self) -> str:
        return f"Hint for {self.exercise}: {self.text}"


def hint(exercise: str) -> Hint:
    """A hint for an exercise, by the name of its check."""
    if exercise not in HINTS:
        raise ValueError(f"no exercise called {exercise!r}; the checks are: {', '.join(sorted(HINTS))}")
    return Hint(exercise, HINTS[exercise])


def _run(exercise: str, answer: Callable, *arguments: object) -> object | Feedback:
    try:
        return answer(*arguments)
    except Exception as error:  # a learner's bug: report it instead of a traceback from here
        return Feedback(exercise, False, f"your code raised {type(error).__name__}: {error}")


# Chapter 1 -----------------------------------------------------------------------------------


def largest_stable_lr(answer: float, X: np.ndarray) -> Feedback:
    """Chapter 1, exercise "The largest stable learning rate": `answer` for data X: (N, D)."""
    design = np.hstack([X, np.ones((len(X), 1))])
    eigenvalues = np.linalg.eigvalsh(design.T @ design / len(X))
    truth = 2 / eigenvalues.max()
    ratio = float(answer) / truth
    if np.isclose(ratio, 1, rtol=1e-6):
        return Feedback("largest_stable_lr", True, "gradient descent is stable just below this rate.")
    if np.isclose(ratio, 0.5, rtol=1e-6):
        return Feedback(
            "largest_stable_lr", False, "this is half the limit: the threshold of oscillation, not of divergence."
        )
    if np.isclose(float(answer), 2 / eigenvalues.min(), rtol=1e-6):
        return Feedback("largest_stable_lr", False, "the limit is set by the steepest direction, not the flattest.")
    if np.isclose(ratio, len(X), rtol=1e-6) or np.isclose(ratio, 1 / len(X), rtol=1e-6):
        return Feedback("largest_stable_lr", False, "off by a factor N: the loss is a mean over examples.")
    return Feedback("largest_stable_lr", False, f"off by a factor {ratio:.3g} from the largest stable rate.")


def heavy_ball_step(answer: Callable) -> Feedback:
    """Chapter 1, exercise "Momentum by hand": answer(x, velocity, gradient, lr, momentum)."""
    rng = np.random.default_rng(0)
    curvatures = rng.uniform(0.5, 5.0, size=3)
    x = rng.normal(size=3)
    reference = optim.SGD(lr=0.05, momentum=0.8)
    params, state, velocity = [x.copy()], reference.init([x]), None
    for step in range(30):
        gradient = curvatures * x
        result = _run("heavy_ball_step", answer, x.copy(), velocity, gradient.copy(), 0.05, 0.8)
        if isinstance(result, Feedback):
            return result
        if not (isinstance(result, tuple) and len(result) == 2):
            return Feedback("heavy_ball_step", False, "return a pair (new x, new velocity).")
        params, state = reference.step(params, [curvatures * params[0]], state)
        x, velocity = np.asarray(result[0]), result[1]
        if not np.allclose(x, params[0], rtol=1e-10, atol=1e-12):
            return Feedback("heavy_ball_step", False, _momentum_diagnosis(answer, step))
    message = "30 steps equal dlbook's SGD(momentum=0.8), which follows torch.optim.SGD."
    return Feedback("heavy_ball_step", True, message)


def _momentum_diagnosis(answer: Callable, step: int) -> str:
    x, gradient = np.array([1.0]), np.array([2.0])
    first = _run("heavy_ball_step", answer, x, None, gradient, 0.1, 0.5)
    if isinstance(first, Feedback) or not isinstance(first, tuple):
        return f"the path leaves torch.optim.SGD's at step {step}."
    if np.allclose(first[0], x + 0.1 * gradient):
        return "the update moves uphill: the parameters should move against the velocity."
    if np.allclose(first[0], x - 0.1 * 0.5 * gradient):
        return "the first velocity is scaled by (1 - momentum); torch.optim.SGD adds the whole gradient."
    second = _run("heavy_ball_step", answer, np.asarray(first[0]), first[1], gradient, 0.1, 0.5)
    if isinstance(second, tuple) and np.allclose(second[1], 0.5 * gradient + 0.5 * gradient):
        return "the velocity averages with weight (1 - momentum) on the gradient; it should add the whole gradient."
    return f"the first {step} steps agree with torch.optim.SGD, then the path leaves it (look at the velocity)."


def rotated_bowl(answer: Callable) -> Feedback:
    """Chapter 1, exercise "RMSProp on a rotated bowl": answer(p) -> (value, gradient) for the bowl
    1/2 p^T R diag(1, 100) R^T p rotated by 45 degrees (either direction)."""
    points = np.random.default_rng(3).normal(size=(5, 2))
    hessians = []
    for degrees in (45, -45):
        angle = np.deg2rad(degrees)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        hessians.append(rotation @ np.diag([1.0, 100.0]) @ rotation.T)
    results = [_run("rotated_bowl", answer, p.copy()) for p in points]
    if any(isinstance(r, Feedback) for r in results):
        return next(r for r in results if isinstance(r, Feedback))
    if not all(isinstance(r, tuple) and len(r) == 2 for r in results):
        return Feedback("rotated_bowl", False, "return a pair (value, gradient) for a point p of shape (2,).")
    values = np.array([float(r[0]) for r in results])
    gradients = np.array([np.asarray(r[1], dtype=float).reshape(-1) for r in results])
    for hessian in hessians:
        true_values = 0.5 * np.einsum("ni,ij,nj->n", points, hessian, points)
        if np.allclose(values, true_values, rtol=1e-10):
            if np.allclose(gradients, points @ hessian, rtol=1e-10):
                return Feedback("rotated_bowl", True, "value and gradient match the rotated bowl at five points.")
            if np.allclose(gradients, 2 * points @ hessian, rtol=1e-10):
                return Feedback("rotated_bowl", False, "the gradient is twice too large: mind the 1/2.")
            return Feedback("rotated_bowl", False, "the value is right but the gradient is not.")
    if np.allclose(values, 0.5 * (points**2 * [1.0, 100.0]).sum(axis=1), rtol=1e-10):
        return Feedback("rotated_bowl", False, "this is the bowl before the rotation.")
    return Feedback("rotated_bowl", False, "the value differs from the rotated bowl's.")


def exponential_lr(answer: type) -> Feedback:
    """Chapter 1, exercise "An exponential schedule": a class with `gamma` and `lr_at(step, base_lr)`."""
    schedule = _run("exponential_lr", answer, 0.9)
    if isinstance(schedule, Feedback):
        return schedule
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    expected = []
    for _ in range(40):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    got = [_run("exponential_lr", schedule.lr_at, t, 0.5) for t in range(40)]
    if any(isinstance(g, Feedback) for g in got):
        return next(g for g in got if isinstance(g, Feedback))
    if np.allclose(got, expected, rtol=1e-12):
        return Feedback("exponential_lr", True, "40 steps equal torch.optim.lr_scheduler.ExponentialLR.")
    if np.allclose(got, [e * 0.9 for e in expected], rtol=1e-12):
        return Feedback("exponential_lr", False, "off by one step: step 0 should use the base rate.")
    if np.allclose(got[1:], expected[:-1], rtol=1e-12):
        return Feedback("exponential_lr", False, "one step behind: the decay should start after step 0.")
    return Feedback(
        "exponential_lr",
        False,
        "the rates differ from PyTorch's ExponentialLR from step "
        f"{int(np.argmax(~np.isclose(got, expected, rtol=1e-12)))} on.",
    )


# Chapter 3 -----------------------------------------------------------------------------------

# (input shape, weight shape, stride, padding, dilation): odd sizes, floors that matter, dilation.
_CONV_SHAPE_CASES = [
    ((2, 3, 16, 16), (8, 3, 3, 3), 1, 1, 1),
    ((1, 1, 28, 28), (6, 1, 5, 5), 1, 0, 1),
    ((4, 2, 17, 17), (5, 2, 3, 3), 2, 1, 1),
    ((1, 3, 15, 15), (2, 3, 3, 3), 1, 0, 2),
    ((3, 4, 16, 16), (7, 4, 2, 2), 3, 0, 1),
    ((2, 1, 20, 20), (4, 1, 5, 5), 2, 3, 2),
    ((2, 3, 15, 20), (4, 3, 3, 5), 2, 1, 1),  # not square: each axis has its own size and kernel
]


def conv_output_shape(answer: Callable) -> Feedback:
    """Chapter 3, exercise "Output shapes": answer(input_shape, weight_shape, stride, padding, dilation)
    -> the (N, F, H_out, W_out) of torch.nn.functional.conv2d."""
    for x_shape, w_shape, stride, padding, dilation in _CONV_SHAPE_CASES:
        result = _run("conv_output_shape", answer, x_shape, w_shape, stride, padding, dilation)
        if isinstance(result, Feedback):
            return result
        truth = (
            x_shape[0],
            w_shape[0],
            output_size(x_shape[2], w_shape[2], stride, padding, dilation),
            output_size(x_shape[3], w_shape[3], stride, padding, dilation),
        )
        if tuple(np.ravel(result).tolist()) != truth:
            case = f"x {x_shape}, weight {w_shape}, stride {stride}, padding {padding}, dilation {dilation}"
            return Feedback(
                "conv_output_shape",
                False,
                f"{_shape_diagnosis(result, truth, x_shape, w_shape, stride, padding, dilation)} ({case}).",
            )
    return Feedback(
        "conv_output_shape", True, "seven cases equal PyTorch's shapes: non-square, strided, dilated, uneven floors."
    )


def _shape_diagnosis(result, truth, x_shape, w_shape, stride, padding, dilation) -> str:
    if not isinstance(result, tuple | list) or len(result) != 4:
        return "return a tuple of four numbers, (N, F, H_out, W_out)"
    if (result[0], result[1]) != truth[:2]:
        return "the first two entries should be the batch size and the number of filters"
    if (result[2] == truth[2]) != (result[3] == truth[3]):
        return "one spatial axis is right and the other is not: each uses its own input size and kernel size"
    size, kernel = x_shape[2], w_shape[2]
    if result[2] == output_size(size, kernel, stride, padding, 1) and dilation > 1:
        return "the spatial size ignores the dilation"
    if result[2] == output_size(size, kernel, stride, padding // 2 if padding else 0, dilation) or (
        padding and result[2] == (size + padding - dilation * (kernel - 1) - 1) // stride + 1
    ):
        return "the padding is added on both sides of the image"
    if not float(result[2]).is_integer() or result[2] != int(result[2]):
        return "the spatial size must be a whole number of positions (round down)"
    return "the spatial size differs from PyTorch's"


# conv 11/4, max pool 3/2, conv 5, max pool 3/2, conv 3 three times, max pool 3/2: AlexNet's feature stack
ALEXNET_LAYERS = [(11, 4, 1), (3, 2, 1), (5, 1, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 2, 1)]


def receptive_field(answer: int) -> Feedback:
    """Chapter 3, exercise "The receptive field of a classic": the field, in input pixels, of one output
    of the last layer of `ALEXNET_LAYERS`."""
    from dlbook.np.conv import receptive_field as field_of

    if isinstance(answer, bool) or not isinstance(answer, int | np.integer):
        return Feedback(
            "receptive_field", False, f"give the field as a whole number of pixels (an int), not {answer!r}."
        )
    early_jump = 1 + sum(
        (kernel - 1) * int(np.prod([s for _, s, _ in ALEXNET_LAYERS[: index + 1]]))
        for index, (kernel, _, _) in enumerate(ALEXNET_LAYERS)
    )
    if answer == early_jump:
        return Feedback(
            "receptive_field",
            False,
            "a layer's own stride only spaces the positions of the layers "
            "above it; apply it after adding that layer's K - 1 steps.",
        )
    if answer == field_of(ALEXNET_LAYERS):
        return Feedback("receptive_field", True, "that is the span of input pixels one final output can see.")
    if answer == field_of(ALEXNET_LAYERS[:-1]):
        return Feedback("receptive_field", False, "the last pooling layer widens the field too.")
    if answer == 1 + sum(kernel - 1 for kernel, _, _ in ALEXNET_LAYERS):
        return Feedback(
            "receptive_field",
            False,
            "that ignores the strides: after a stride-s layer, each step of the next layer is s pixels.",
        )
    if answer == field_of([(kernel, stride, 1) for kernel, stride, _ in ALEXNET_LAYERS if kernel != 3 or stride != 2]):
        return Feedback("receptive_field", False, "the pooling layers widen the field and multiply the steps too.")
    return Feedback("receptive_field", False, "not the field of this stack; check one layer at a time.")


def avg_pool_as_conv(answer: Callable) -> Feedback:
    """Chapter 3, exercise "Pooling is a convolution": answer(x, kernel_size) -> average pooling of
    x (N, C, H, W) with stride kernel_size, computed with `dlbook.np.conv.conv2d`."""
    from dlbook.np.conv import avg_pool2d

    rng = np.random.default_rng(4)
    for shape, kernel, dtype in [
        ((2, 3, 8, 8), 2, np.float64),
        ((1, 1, 9, 6), 3, np.float64),
        ((3, 2, 4, 4), 2, np.float32),
    ]:
        x = rng.normal(size=shape).astype(dtype)
        result = _run("avg_pool_as_conv", answer, x.copy(), kernel)
        if isinstance(result, Feedback):
            return result
        truth = avg_pool2d(x, kernel)[0]
        if isinstance(result, tuple):
            return Feedback("avg_pool_as_conv", False, "return the output array alone: conv2d returns (out, cache).")
        if np.shape(result) != truth.shape:
            too_large = np.ndim(result) == 4 and np.shape(result)[2] > truth.shape[2]
            hint_text = " (mind the stride and the padding)" if too_large else ""
            return Feedback(
                "avg_pool_as_conv",
                False,
                f"the output has shape {np.shape(result)}, expected {truth.shape}{hint_text}.",
            )
        tolerance = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
        if np.allclose(result, truth, **tolerance):
            continue
        if np.allclose(result, truth * kernel * kernel, **tolerance):
            return Feedback("avg_pool_as_conv", False, "that is the sum of each window, not its mean.")
        channel_sum = truth.sum(axis=1, keepdims=True)
        if np.allclose(result, np.broadcast_to(channel_sum, truth.shape), **tolerance):
            return Feedback(
                "avg_pool_as_conv", False, "every output channel mixes all input channels; pooling keeps them apart."
            )
        return Feedback(
            "avg_pool_as_conv", False, f"the values differ from average pooling (x of shape {shape}, kernel {kernel})."
        )
    return Feedback(
        "avg_pool_as_conv", True, "equal to average pooling on three shapes, one and several channels, float32 too."
    )


# Chapter 4 -----------------------------------------------------------------------------------


def rnn_step_backward(answer: Callable) -> Feedback:
    """Chapter 4, exercise "One step of BPTT by hand": answer(x, h_prev, weight_ih, weight_hh, h_next, dh_next)
    -> (dx, dh_prev, dweight_ih, dweight_hh, dbias) for h_next = tanh(x W_ih^T + b_ih + h_prev W_hh^T + b_hh)."""
    from dlbook.np import rnn

    rng = np.random.default_rng(6)
    for batch, n_in, hidden in [(3, 4, 5), (1, 2, 3)]:
        params = rnn.init_params("rnn", n_in, hidden, rng)
        x, h_prev, dh_next = (
            rng.normal(size=(batch, n_in)),
            rng.normal(size=(batch, hidden)),
            rng.normal(size=(batch, hidden)),
        )
        h_next, cache = rnn.rnn_step(x, h_prev, params)
        dx, dh_prev, grads = rnn.rnn_step_backward(dh_next, cache)
        truth = {
            "dx": dx,
            "dh_prev": dh_prev,
            "dweight_ih": grads.weight_ih,
            "dweight_hh": grads.weight_hh,
            "dbias": grads.bias_ih,
        }
        result = _run(
            "rnn_step_backward",
            answer,
            x.copy(),
            h_prev.copy(),
            params.weight_ih.copy(),
            params.weight_hh.copy(),
            h_next.copy(),
            dh_next.copy(),
        )
        if isinstance(result, Feedback):
            return result
        if not isinstance(result, tuple | list) or len(result) != 5:
            return Feedback(
                "rnn_step_backward", False, "return five arrays: (dx, dh_prev, dweight_ih, dweight_hh, dbias)."
            )
        for (name, expected), mine in zip(truth.items(), result, strict=True):
            mine = np.asarray(mine)
            if mine.shape != expected.shape:
                return Feedback(
                    "rnn_step_backward", False, f"{name} has shape {mine.shape}, expected {expected.shape}."
                )
            if not np.allclose(mine, expected, rtol=1e-10, atol=1e-12):
                without_tanh = {"dx": dh_next @ params.weight_ih, "dh_prev": dh_next @ params.weight_hh}
                if name in without_tanh and np.allclose(mine, without_tanh[name], rtol=1e-10):
                    return Feedback(
                        "rnn_step_backward", False, f"{name} skips the derivative of the tanh, 1 - h_next**2."
                    )
                if mine.shape[0] == mine.shape[-1] and np.allclose(mine.T, expected, rtol=1e-10):
                    return Feedback("rnn_step_backward", False, f"{name} is transposed.")
                return Feedback("rnn_step_backward", False, f"{name} differs from backpropagation's (batch {batch}).")
    return Feedback("rnn_step_backward", True, "all five gradients equal the library's, batch size 1 included.")


def clip_grad_norm(answer: Callable) -> Feedback:
    """Chapter 4, exercise "Clipping by hand": answer(grads: list of arrays, max_norm) -> list of clipped arrays,
    as torch.nn.utils.clip_grad_norm_ would leave them."""
    rng = np.random.default_rng(8)
    grads = [rng.normal(size=(3, 4)), rng.normal(size=5), rng.normal(size=(2, 2, 2))]
    total = float(np.sqrt(sum(np.sum(g**2) for g in grads)))
    for max_norm in (total / 4, total * 2):
        tensors = [torch.tensor(g, requires_grad=True) for g in grads]
        for tensor, g in zip(tensors, grads, strict=True):
            tensor.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(tensors, max_norm)
        result = _run("clip_grad_norm", answer, [g.copy() for g in grads], max_norm)
        if isinstance(result, Feedback):
            return result
        if not isinstance(result, tuple | list) or len(result) != len(grads):
            return Feedback("clip_grad_norm", False, "return a list with one clipped array per gradient.")
        if all(np.allclose(r, t.grad.numpy(), rtol=1e-5) for r, t in zip(result, tensors, strict=True)):
            continue
        if max_norm > total:
            return Feedback("clip_grad_norm", False, "gradients below the threshold must come back unchanged.")
        per_array = [g * min(1.0, max_norm / np.linalg.norm(g)) for g in grads]
        if all(np.allclose(r, p, rtol=1e-5) for r, p in zip(result, per_array, strict=True)):
            return Feedback(
                "clip_grad_norm", False, "each array was clipped by its own norm; use one norm for all of them."
            )
        return Feedback("clip_grad_norm", False, "the clipped gradients differ from torch.nn.utils.clip_grad_norm_'s.")
    return Feedback("clip_grad_norm", True, "equal to torch.nn.utils.clip_grad_norm_ above and below the threshold.")


def bits_and_perplexity(answer: tuple[float, float]) -> Feedback:
    """Chapter 4, exercise "Nats, bits, perplexity": for a cross-entropy of 1.2 nats per character, answer
    = (bits per character, perplexity)."""
    nats = 1.2
    if isinstance(answer, str) or np.shape(answer) != (2,):
        return Feedback("bits_and_perplexity", False, "give a pair: (bits per character, perplexity).")
    bits, perplexity = (float(value) for value in answer)
    if not np.isclose(bits, nats / np.log(2), rtol=1e-2):  # two decimals are enough
        if np.isclose(bits, nats * np.log(2), rtol=1e-2):
            return Feedback(
                "bits_and_perplexity", False, "the conversion goes the other way: a bit is smaller than a nat."
            )
        return Feedback("bits_and_perplexity", False, "the bits per character are off.")
    if not np.isclose(perplexity, np.exp(nats), rtol=1e-2):
        if np.isclose(perplexity, 2**nats, rtol=1e-2):
            return Feedback(
                "bits_and_perplexity", False, "the perplexity mixes the bases: 2 goes with bits, e with nats."
            )
        return Feedback("bits_and_perplexity", False, "the bits are right, the perplexity is not.")
    return Feedback(
        "bits_and_perplexity", True, "both right, and the perplexity is the same whichever base you compute it in."
    )


# Chapter 5 -----------------------------------------------------------------------------------


def causal_attention(answer: Callable) -> Feedback:
    """Chapter 5, exercise "Causal attention by hand": answer(q, k, v) -> softmax(q k^T / sqrt(d) + causal
    mask) v for q, k, v of shape (..., L, d)."""
    rng = np.random.default_rng(9)
    # the last case has scores in the thousands: an unshifted exp overflows there
    for shape, size in [((5, 4), 1.0), ((2, 3, 6, 8), 1.0), ((3, 2), 1.0), ((4, 7, 16), 40.0)]:
        q, k, v = (rng.normal(size=shape) * size for _ in range(3))
        result = _run("causal_attention", answer, q.copy(), k.copy(), v.copy())
        if isinstance(result, Feedback):
            return result
        tensors = [torch.from_numpy(a) for a in (q, k, v)]
        truth = torch.nn.functional.scaled_dot_product_attention(*tensors, is_causal=True).numpy()
        if np.shape(result) != truth.shape:
            return Feedback(
                "causal_attention", False, f"the output has shape {np.shape(result)}, expected {truth.shape}."
            )
        # float32 precision is enough: every mistake this check names changes the output by far more
        if np.allclose(result, truth, rtol=1e-5, atol=1e-6):
            continue
        if size > 1 or not np.all(np.isfinite(result)):
            return Feedback("causal_attention", False, "large scores break it: the softmax is not stable.")
        unscaled = torch.nn.functional.scaled_dot_product_attention(*tensors, is_causal=True, scale=1.0).numpy()
        if np.allclose(result, unscaled, rtol=1e-8, atol=1e-10):
            return Feedback("causal_attention", False, "the scores are not scaled by 1/sqrt(d).")
        if np.allclose(result, torch.nn.functional.scaled_dot_product_attention(*tensors).numpy(), rtol=1e-8):
            return Feedback("causal_attention", False, "every query sees every key: the causal mask is missing.")
        return Feedback("causal_attention", False, f"the output differs from causal attention's (shape {shape}).")
    return Feedback("causal_attention", True, "equal to torch's causal scaled_dot_product_attention on three shapes.")


def tiny_gpt_params(answer: int) -> Feedback:
    """Chapter 5, exercise "Count the tiny GPT": the parameters of the GPT of section 5.4 (2 layers,
    d_model 64, d_ff 256, 103 characters, context 64, biases, layer norms, tied head)."""
    from dlbook.scaling import TransformerConfig, count_params_breakdown

    config = TransformerConfig(
        n_layer=2,
        d_model=64,
        n_head=4,
        vocab_size=103,
        context_length=64,
        norm="layernorm",
        mlp="gelu",
        bias=True,
        tied_embeddings=True,
        positions="learned",
    )
    parts = count_params_breakdown(config)
    total = sum(parts.values())
    if isinstance(answer, str) or np.ndim(answer) != 0:
        return Feedback("tiny_gpt_params", False, f"give the count as one number, not {answer!r}.")
    if answer == total:
        return Feedback("tiny_gpt_params", True, "every parameter counted once.")
    if answer == total + config.vocab_size * config.d_model:
        return Feedback("tiny_gpt_params", False, "the head is tied to the token embedding: count that matrix once.")
    if answer == total - parts["norms"]:
        return Feedback("tiny_gpt_params", False, "the layer norms have parameters too.")
    if answer == total - config.context_length * config.d_model:
        return Feedback("tiny_gpt_params", False, "the learned position embedding is a table of parameters too.")
    if answer == total - config.vocab_size * config.d_model:
        return Feedback("tiny_gpt_params", False, "the token embedding is missing (the head shares it; count it once).")
    return Feedback(
        "tiny_gpt_params", False, "not the count; recount block by block: embeddings, attention, MLP, norms."
    )


def kv_cache_bytes(answer: float) -> Feedback:
    """Chapter 5, exercise "The memory of a KV cache": bytes of the cache of GPT-2 small (12 layers,
    d_model 768) for a batch of 8 sequences of 1,024 tokens in 16-bit floats."""
    per_number = 2
    truth = 2 * 12 * 768 * 1024 * 8 * per_number
    if isinstance(answer, str) or np.ndim(answer) != 0:
        return Feedback("kv_cache_bytes", False, f"give the size as one number of bytes, not {answer!r}.")
    if np.isclose(answer, truth / 2**20, rtol=1e-3) or np.isclose(answer, truth / 1e6, rtol=1e-2):
        return Feedback("kv_cache_bytes", False, "that looks like megabytes; the question asks for bytes.")
    if np.isclose(answer, truth, rtol=1e-3):
        return Feedback("kv_cache_bytes", True, "keys and values, every layer, position and sequence, two bytes each.")
    if np.isclose(answer, truth / 2, rtol=1e-3):
        return Feedback("kv_cache_bytes", False, "half of it: the cache keeps keys and values.")
    if np.isclose(answer, truth * 2, rtol=1e-3):
        return Feedback("kv_cache_bytes", False, "twice too much: 16-bit floats take two bytes, not four.")
    if np.isclose(answer, truth / 8, rtol=1e-3):
        return Feedback("kv_cache_bytes", False, "that is one sequence; the batch holds eight.")
    return Feedback("kv_cache_bytes", False, "not the size of the cache; count the numbers first, then the bytes.")


# Chapter 2 -----------------------------------------------------------------------------------


def layer_backward(answer: Callable) -> Feedback:
    """Chapter 2, exercise "A backward rule by hand": answer(X, W, b, grad_Y) -> (dX, dW, db)."""
    rng = np.random.default_rng(1)
    for n, d, h in [(5, 4, 3), (1, 3, 2), (7, 1, 4)]:
        X, W, b = rng.normal(size=(n, d)), rng.normal(size=(d, h)), rng.normal(size=h)
        G = rng.normal(size=(n, h))
        result = _run("layer_backward", answer, X, W, b, G)
        if isinstance(result, Feedback):
            return result
        tensors = [Tensor(a.copy(), requires_grad=True) for a in (X, W, b)]
        ((tensors[0] @ tensors[1] + tensors[2]).tanh() * Tensor(G)).sum().backward()
        if not (isinstance(result, tuple | list) and len(result) == 3):
            return Feedback("layer_backward", False, "return three gradients, (dX, dW, db).")
        for name, mine, truth in zip(("dX", "dW", "db"), result, (t.grad for t in tensors), strict=True):
            mine = np.asarray(mine)
            if mine.shape != truth.shape:
                extra = " (b was broadcast over the rows: sum over them)" if name == "db" else ""
                message = f"{name} has shape {mine.shape}, expected {truth.shape}{extra}."
                return Feedback("layer_backward", False, message)
            if not np.allclose(mine, truth, rtol=1e-10, atol=1e-12):
                if np.allclose(mine, -truth, rtol=1e-10, atol=1e-12):
                    return Feedback("layer_backward", False, f"{name} has the wrong sign.")
                return Feedback("layer_backward", False, f"{name} differs from the engine's (N={n}, D={d}, H={h}).")
    return Feedback("layer_backward", True, "dX, dW and db equal the engine's on three shapes, N = 1 included.")


def sigmoid_gradient(answer: Callable) -> Feedback:
    """Chapter 2, exercise "Catch the bug": answer(z) = d/dz sum(sigmoid(z))."""
    z = np.random.default_rng(2).normal(size=7) * 3
    result = _run("sigmoid_gradient", answer, z.copy())
    if isinstance(result, Feedback):
        return result
    s = 1 / (1 + np.exp(-z))
    truth = s * (1 - s)
    if np.shape(result) != z.shape:
        message = f"the gradient has shape {np.shape(result)}, expected {z.shape}."
        return Feedback("sigmoid_gradient", False, message)
    if np.allclose(result, truth, rtol=1e-10):
        return Feedback("sigmoid_gradient", True, "equal to the sigmoid's derivative at seven points.")
    return Feedback(
        "sigmoid_gradient",
        False,
        "still differs from the central difference; compare them with dlbook.np.gradcheck.relative_error.",
    )


def activation_bytes_per_example(answer: float) -> Feedback:
    """Chapter 2, exercise "Predict the memory": bytes the graph holds per example, mlp [64, 256, 256, 10]."""
    numbers = 64 + 3 * (256 + 256) + 2 * 10
    if answer == 8 * numbers:
        return Feedback("activation_bytes_per_example", True, "every array the graph holds per example, counted.")
    if answer == numbers:
        message = "that is a count of numbers; the question asks for bytes."
        return Feedback("activation_bytes_per_example", False, message)
    if answer == 4 * numbers:
        return Feedback("activation_bytes_per_example", False, "the engine computes in float64, not float32.")
    if answer < 8 * numbers:
        return Feedback(
            "activation_bytes_per_example",
            False,
            "too few: some intermediate results are missing (each layer keeps more than its output).",
        )
    return Feedback("activation_bytes_per_example", False, "too many: count each array once, per example.")


# Chapter 6 -----------------------------------------------------------------------------------


def _one_number(exercise: str, answer: object, what: str) -> float | Feedback:
    """`answer` as a finite float, or the Feedback that asks for one number."""
    if isinstance(answer, bool | str | bytes) or answer is None or np.ndim(answer) != 0:
        return Feedback(exercise, False, f"give {what} as one number, not {answer!r}.")
    try:
        value = float(answer)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return Feedback(exercise, False, f"give {what} as one number, not {answer!r}.")
    if not np.isfinite(value):
        return Feedback(exercise, False, f"give {what} as one finite number, not {answer!r}.")
    return value


def _not_a_function(exercise: str, answer: object) -> Feedback | None:
    if callable(answer):
        return None
    return Feedback(exercise, False, f"pass your function itself (its name, without calling it), not {answer!r}.")


def llama2_7b_params(answer: int) -> Feedback:
    """Chapter 6, exercise "Count Llama 2 7B": the parameters of Llama 2 7B (32 layers, d_model 4096,
    d_ff 11008, 32,000 tokens, SwiGLU, RMSNorm, no biases, rotary positions, untied head)."""
    from dlbook.scaling import LLAMA2_7B, count_params

    name = "llama2_7b_params"
    value = _one_number(name, answer, "the count")
    if isinstance(value, Feedback):
        return value
    config = LLAMA2_7B
    total = count_params(config)
    layers, d, f, vocabulary = config.n_layer, config.d_model, config.d_ff, config.vocab_size
    if value == total:
        return Feedback(name, True, "6,738,415,616, the published count, to the parameter.")
    mistakes = {
        total - vocabulary * d: "the head is not tied in Llama 2: it has its own matrix, as large as the embedding.",
        total - layers * d * f: "the SwiGLU MLP has three matrices (gate, up and down), not two.",
        total + layers * (5 * d + 2 * f): "Llama 2 has no biases in its linear layers.",
        total + (2 * layers + 1) * d: "RMSNorm has a scale but no shift.",
        total - (2 * layers + 1) * d: "the RMSNorms have parameters too: a scale per norm, two per layer and a "
        "final one.",
        total - d: "the final norm, after the last layer, has a scale too.",
        total - 2 * layers * d: "each layer has two norms with a scale each, before attention and before the MLP.",
        total + config.context_length * d: "rotary positions have no parameters: there is no position table.",
        total - 3 * layers * d * f + 3 * layers * d * 4 * d: "the MLP has d_ff = 11008 hidden units, not 4 d.",
        total - vocabulary * d - d: "the head and the final norm are missing.",
        total - 2 * vocabulary * d - d: "that counts the layers only: the token embedding, the head and the final "
        "norm are outside them.",
        12 * layers * d * d + 2 * vocabulary * d: "that is the rule of thumb 12 L d^2 plus the embeddings; count "
        "the MLP's three matrices and the norms exactly.",
    }
    for wrong, message in mistakes.items():
        if value == wrong:
            return Feedback(name, False, message)
    if abs(value - total) / total < 0.05:
        return Feedback(
            name, False, "within 5% but not exact: recount every term (the MLP's width, the norms, the head)."
        )
    return Feedback(
        name, False, "not the count; recount layer by layer: attention, MLP, norms, then the embedding and the head."
    )


def ring_allreduce_bytes(answer: float) -> Feedback:
    """Chapter 6, exercise "The bytes of a data-parallel step": bytes each of 8 GPUs sends in a ring
    all-reduce of GPT-2 small's gradients in bfloat16."""
    from dlbook.scaling import GPT2_SMALL, count_params

    name = "ring_allreduce_bytes"
    value = _one_number(name, answer, "the bytes")
    if isinstance(value, Feedback):
        return value
    p, n = 8, count_params(GPT2_SMALL) * 2  # n: the gradients' bytes
    truth = 2 * (p - 1) * n / p
    if np.isclose(value, truth, rtol=1e-6):
        return Feedback(name, True, "2(p - 1)/p of the gradients: 1.75 times their size, in 14 chunks.")
    units = {1e6: "megabytes", 2**20: "mebibytes", 1e9: "gigabytes", 2**30: "gibibytes"}
    for unit, unit_name in units.items():
        if np.isclose(value, truth / unit, rtol=1e-2):
            return Feedback(name, False, f"that looks like {unit_name}; the question asks for bytes.")
    mistakes = {
        truth / 2: "half of it: either only the reduce-scatter (the all-gather sends as much again), or a count of "
        "numbers rather than bytes (bfloat16 takes two bytes each).",
        truth * 2: "twice too much: bfloat16 takes two bytes per number, not four.",
        2 * n: "close: that is the limit for many GPUs; with 8, each sends a little less.",
        n: "that is the size of the gradients; in a ring every GPU sends more than that, a chunk at every step.",
        truth * p: "that is all 8 GPUs together, or each GPU sending the whole gradient at every step; one GPU sends "
        "one chunk per step.",
        (p - 1) * n: "that is what the GPU at the centre of a naive all-reduce receives; the ring sends chunks.",
    }
    for wrong, message in mistakes.items():
        if np.isclose(value, wrong, rtol=1e-6):
            return Feedback(name, False, message)
    return Feedback(name, False, "not the count; how many steps, and how many bytes in each step's chunk?")


def affine_quantize(answer: Callable) -> Feedback:
    """Chapter 6, exercise "Quantize by hand": answer(x, scale, zero_point, qmin, qmax) -> (codes, values)
    for x (N,) float32; compared with torch.fake_quantize_per_tensor_affine, which rounds halves to even."""
    name = "affine_quantize"
    not_a_function = _not_a_function(name, answer)
    if not_a_function is not None:
        return not_a_function
    rng = np.random.default_rng(10)
    # powers of two make x / scale exact, so that ties are true ties whichever way the division is done
    cases = [(0.25, 0, -127, 127), (0.125, 3, 0, 15), (0.5, 128, 0, 255)]
    for scale, zero_point, qmin, qmax in cases:
        halves = np.arange(-6, 7) + 0.5  # ties: 0.5, 2.5 ... go down to the even neighbour, 1.5, 3.5 ... up
        inside = rng.integers(qmin - zero_point, qmax - zero_point, size=40) + rng.uniform(0.05, 0.45, size=40)
        outside = np.array([qmin - zero_point - 5.3, qmax - zero_point + 7.8])  # beyond the range: clipped
        x = (np.concatenate([halves, inside, -inside, outside]) * scale).astype(np.float32)
        expected_values = torch.fake_quantize_per_tensor_affine(
            torch.from_numpy(x), scale, zero_point, qmin, qmax
        ).numpy()
        expected_codes = np.rint(expected_values.astype(np.float64) / scale).astype(np.int64) + zero_point
        result = _run(name, answer, x.copy(), scale, zero_point, qmin, qmax)
        if isinstance(result, Feedback):
            return result
        if not (isinstance(result, tuple | list) and len(result) == 2):
            return Feedback(name, False, "return a pair (codes, dequantized values).")
        try:
            codes = np.asarray(result[0], dtype=np.float64)
            values = np.asarray(result[1], dtype=np.float64)
        except (TypeError, ValueError):
            return Feedback(name, False, "return two arrays of numbers: (codes, dequantized values).")
        if codes.shape != x.shape or values.shape != x.shape:
            return Feedback(name, False, f"return one code and one value per number: two arrays of shape {x.shape}.")
        if not np.array_equal(codes, expected_codes):
            return Feedback(name, False, _affine_diagnosis(codes, x, scale, zero_point, qmin, qmax))
        if np.array_equal(values, codes * scale) and zero_point != 0:
            return Feedback(name, False, "the codes are right; the values forget the zero point.")
        if not np.allclose(values, expected_values, rtol=1e-6, atol=0):
            return Feedback(name, False, "the codes are right but the dequantized values are not.")
    message = "codes and values equal torch.fake_quantize_per_tensor_affine, ties and clipping included."
    return Feedback(name, True, message)


def _affine_diagnosis(codes: np.ndarray, x: np.ndarray, scale: float, zero_point: int, qmin: int, qmax: int) -> str:
    ratio = x.astype(np.float64) / scale
    candidates = {
        "the ties (x / scale exactly halfway between two integers) are rounded up or away from zero; torch "
        "rounds them to the even neighbour.": [
            np.clip(np.floor(ratio + 0.5) + zero_point, qmin, qmax),
            np.clip(np.sign(ratio) * np.floor(np.abs(ratio) + 0.5) + zero_point, qmin, qmax),
        ],
        "the codes are truncated or floored instead of rounded to the nearest integer.": [
            np.clip(np.trunc(ratio) + zero_point, qmin, qmax),
            np.clip(np.floor(ratio) + zero_point, qmin, qmax),
        ],
        "the codes are not clipped to [qmin, qmax]: numbers beyond the range need the end codes.": [
            np.rint(ratio) + zero_point,
        ],
        "the zero point is subtracted; quantization adds it.": [
            np.clip(np.rint(ratio) - zero_point, qmin, qmax),
        ],
        "the clipping comes before the zero point is added; clip the final codes.": [
            np.clip(np.rint(ratio), qmin, qmax) + zero_point,
        ],
        "x is multiplied by the scale instead of divided by it.": [
            np.clip(np.rint(x.astype(np.float64) * scale) + zero_point, qmin, qmax),
        ],
    }
    for message, wrongs in candidates.items():
        if any(np.array_equal(codes, wrong) for wrong in wrongs):
            return message
    wrong = int(np.sum(codes != np.clip(np.rint(ratio) + zero_point, qmin, qmax)))
    return f"{wrong} of the {len(x)} codes differ from torch's (scale {scale}, zero point {zero_point})."


def round_to_format(answer: Callable) -> Feedback:
    """Chapter 6, exercise "Rounding to any format": answer(x: float64 array, exponent_bits, fraction_bits)
    -> x rounded to that IEEE-style format, as float64; compared with dlbook.np.precision.round_to for
    float16, bfloat16 and float32 (subnormals, ties and overflow included)."""
    from dlbook.np import precision

    name = "round_to_format"
    not_a_function = _not_a_function(name, answer)
    if not_a_function is not None:
        return not_a_function
    rng = np.random.default_rng(11)
    for dtype in ("float16", "bfloat16", "float32"):
        info = precision.format_info(dtype)
        e, m = info.exponent_bits, info.fraction_bits
        normal = rng.normal(size=500) * 10.0 ** rng.integers(-6, 6, size=500)
        # exactly halfway between two neighbours of the format (exact in float32 for float16 and bfloat16)
        ties = (1 + (2 * rng.integers(0, 2**m, size=50) + 1) / 2.0 ** (m + 1)) * 2.0 ** rng.integers(-3, 4, size=50)
        tiny, smallest_normal, largest = info.smallest_subnormal, info.smallest_normal, info.max
        special = [0.0, -0.0, largest, -largest, tiny, tiny / 2, tiny * 1.5, smallest_normal * 0.75]
        special += [largest * (1 + info.eps / 4), -largest * (1 + info.eps), np.inf, -np.inf]
        subnormal = rng.uniform(-1, 1, size=100) * smallest_normal
        with np.errstate(over="ignore"):  # float32's largest times (1 + eps) is inf in float32 already
            x = np.concatenate([normal, ties, special, subnormal]).astype(np.float32).astype(np.float64)
        truth = precision.round_to(x, dtype).astype(np.float64)
        result = _run(name, answer, x.copy(), e, m)
        if isinstance(result, Feedback):
            return result
        try:
            result = np.asarray(result, dtype=np.float64)
        except (TypeError, ValueError):
            return Feedback(name, False, "return an array of numbers, one per value of x.")
        if result.shape != x.shape:
            return Feedback(name, False, f"return one value per input: shape {x.shape}, got {result.shape}.")
        if np.array_equal(result, truth):
            continue
        return Feedback(name, False, f"{dtype} (E{e}M{m}): {_rounding_diagnosis(x, result, truth, info)}")
    return Feedback(name, True, "equal to PyTorch's rounding to float16, bfloat16 and float32, bit for bit.")


def _rounding_diagnosis(x: np.ndarray, result: np.ndarray, truth: np.ndarray, info: FormatInfo) -> str:
    wrong = ~((result == truth) | (np.isnan(result) & np.isnan(truth)))
    bias = 2 ** (info.exponent_bits - 1) - 1
    with np.errstate(invalid="ignore"):
        gap = np.ldexp(1.0, np.maximum(np.frexp(x)[1] - 1, 1 - bias) - info.fraction_bits)
        tie = np.isfinite(x) & (2 * np.abs(np.abs(x) - np.abs(truth)) == gap)
    if np.all(tie[wrong]):
        return "only the exact ties differ: a value halfway between two neighbours goes to the even one."
    if np.all((np.abs(x) < info.smallest_normal)[wrong]):
        return (
            "only values below the smallest normal number are wrong: below it the gap between neighbours stays "
            "that of the smallest normal numbers (the subnormals)."
        )
    if np.all((np.abs(x) >= info.max)[wrong]):
        return "only values at or beyond the largest number are wrong: the largest is finite, infinity begins above it."
    finite = wrong & np.isfinite(x) & (np.abs(x) < info.max)
    for factor, size in ((2.0, "twice too large"), (0.5, "half what it should be")):
        with np.errstate(over="ignore", invalid="ignore"):
            other_grid = np.round(x / (gap * factor)) * (gap * factor)
        if np.any(finite) and np.array_equal(result[finite], other_grid[finite]):
            return f"the gap between neighbours is {size}: check which power of two lies at or below |x|."
    if np.all(np.abs(result[wrong]) <= np.abs(truth[wrong])):
        return "some values come out smaller than the nearest number: round to the nearest, do not cut digits off."
    first = int(np.flatnonzero(wrong)[0])
    return f"{float(x[first]):.9g} should become {float(truth[first]):.9g}, got {float(result[first]):.9g}."


def compute_optimal_split(answer: Callable) -> Feedback:
    """Chapter 6, exercise "The compute-optimal split": answer(compute_flops, tokens_per_param=20.0) -> (N, D)
    with 6 N D = compute_flops and D = tokens_per_param * N."""
    name = "compute_optimal_split"
    not_a_function = _not_a_function(name, answer)
    if not_a_function is not None:
        return not_a_function
    for compute, ratio in ((5.76e23, 20.0), (1e12, 20.0), (3.0e21, 5.0), (8.1e22, 100.0), (2.5e17, None)):
        result = _run(name, answer, compute) if ratio is None else _run(name, answer, compute, ratio)
        if isinstance(result, Feedback):
            return result
        try:
            n, d = (float(value) for value in result)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            return Feedback(name, False, "return a pair of numbers (N, D): the parameters and the tokens.")
        r = 20.0 if ratio is None else ratio
        n_true = float(np.sqrt(compute / (6 * r)))
        if np.isclose(n, n_true, rtol=1e-6) and np.isclose(d, r * n_true, rtol=1e-6):
            continue
        if ratio is None:
            return Feedback(name, False, "called without tokens_per_param, it should use 20 tokens per parameter.")
        if np.isclose(n, r * n_true, rtol=1e-6) and np.isclose(d, n_true, rtol=1e-6):
            return Feedback(
                name, False, "N and D are swapped: a compute-optimal model sees more tokens than it has parameters."
            )
        if np.isclose(n, np.sqrt(compute / r), rtol=1e-6):
            return Feedback(name, False, "the factor 6 of C = 6 N D is missing.")
        if np.isclose(n, compute / (6 * r), rtol=1e-6) or np.isclose(n, compute / (6 * r**2), rtol=1e-6):
            return Feedback(name, False, "C = 6 N D with D = r N is quadratic in N: a square root is missing.")
        if not (np.isfinite(n) and np.isfinite(d) and n > 0 and d > 0):
            return Feedback(name, False, f"N and D must be positive numbers; got N = {n!r}, D = {d!r}.")
        if np.isclose(6 * n * d, compute, rtol=1e-6):
            return Feedback(
                name,
                False,
                f"6 N D = C holds, but D / N is {d / n:.3g} instead of tokens_per_param = {r:g} "
                f"(for C = {compute:.3g}).",
            )
        if np.isclose(d / n, r, rtol=1e-6):
            return Feedback(
                name, False, f"D = {r:g} N holds, but 6 N D is {6 * n * d:.3g} instead of C = {compute:.3g}."
            )
        return Feedback(
            name, False, f"for C = {compute:.3g} and {r:g} tokens per parameter, neither 6 N D = C nor D = r N holds."
        )
    return Feedback(name, True, "6 N D = C and D = r N at four budgets and ratios, and the default of 20.")
