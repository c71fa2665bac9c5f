"""The exercise checks accept right answers, reject the typical wrong ones, and never give the
solution away."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from dlbook import check

# --- right answers, written as a student would -------------------------------------------------


def right_heavy_ball(x, velocity, gradient, lr, momentum):
    velocity = gradient if velocity is None else momentum * velocity + gradient
    return x - lr * velocity, velocity


@dataclass(frozen=True)
class RightExponential:
    gamma: float

    def lr_at(self, step, base_lr):
        return base_lr * self.gamma**step


def rotated_hessian(degrees):
    angle = np.deg2rad(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return rotation @ np.diag([1.0, 100.0]) @ rotation.T


def right_rotated_bowl(p):
    hessian = rotated_hessian(45)
    return 0.5 * p @ hessian @ p, hessian @ p


def right_layer_backward(X, W, b, grad_Y):
    Y = np.tanh(X @ W + b)
    grad_Z = grad_Y * (1 - Y**2)
    return grad_Z @ W.T, X.T @ grad_Z, grad_Z.sum(axis=0)


def right_sigmoid_gradient(z):
    s = 1 / (1 + np.exp(-z))
    return s * (1 - s)


# --- typical wrong answers ------------------------------------------------------------------------


def uphill_heavy_ball(x, velocity, gradient, lr, momentum):
    velocity = gradient if velocity is None else momentum * velocity + gradient
    return x + lr * velocity, velocity


def averaging_heavy_ball(x, velocity, gradient, lr, momentum):
    velocity = (1 - momentum) * gradient if velocity is None else momentum * velocity + (1 - momentum) * gradient
    return x - lr * velocity, velocity


def crashing_heavy_ball(x, velocity, gradient, lr, momentum):
    return x - lr * (momentum * velocity + gradient), velocity  # None * float on the first call


@dataclass(frozen=True)
class OffByOneExponential:
    gamma: float

    def lr_at(self, step, base_lr):
        return base_lr * self.gamma ** (step + 1)


def wrong_axis_layer_backward(X, W, b, grad_Y):
    dX, dW, _ = right_layer_backward(X, W, b, grad_Y)
    return dX, dW, (grad_Y * (1 - np.tanh(X @ W + b) ** 2)).sum(axis=1)


def unsummed_layer_backward(X, W, b, grad_Y):
    dX, dW, _ = right_layer_backward(X, W, b, grad_Y)
    return dX, dW, grad_Y * (1 - np.tanh(X @ W + b) ** 2)


def no_tanh_layer_backward(X, W, b, grad_Y):
    return grad_Y @ W.T, X.T @ grad_Y, grad_Y.sum(axis=0)


def negated_layer_backward(X, W, b, grad_Y):
    return tuple(-g for g in right_layer_backward(X, W, b, grad_Y))


def two_gradients_layer_backward(X, W, b, grad_Y):
    return right_layer_backward(X, W, b, grad_Y)[:2]


def doubled_gradient_rotated_bowl(p):
    hessian = rotated_hessian(45)
    return 0.5 * p @ hessian @ p, 2 * hessian @ p


def unrotated_bowl(p):
    hessian = np.diag([1.0, 100.0])
    return 0.5 * p @ hessian @ p, hessian @ p


def buggy_sigmoid_gradient(z):
    s = 1 / (1 + np.exp(-z))
    return s * (1 + s)


@pytest.fixture
def features():
    return np.random.default_rng(0).normal(size=(50, 3)) * np.array([10.0, 1.0, 1.0])


def largest_stable(X):
    design = np.hstack([X, np.ones((len(X), 1))])
    return 2 / np.linalg.eigvalsh(design.T @ design / len(X)).max()


def test_right_answers_are_accepted(features):
    assert check.largest_stable_lr(largest_stable(features), features)
    assert check.heavy_ball_step(right_heavy_ball)
    assert check.exponential_lr(RightExponential)
    assert check.rotated_bowl(right_rotated_bowl)
    assert check.rotated_bowl(lambda p: (0.5 * p @ rotated_hessian(-45) @ p, rotated_hessian(-45) @ p))
    assert check.layer_backward(right_layer_backward)
    assert check.sigmoid_gradient(right_sigmoid_gradient)
    assert check.activation_bytes_per_example(8 * (64 + 3 * 512 + 20))


@pytest.mark.parametrize(
    ("factor", "reason"),
    [(0.5, "half the limit"), (50, "factor N"), (1 / 50, "factor N"), (3.0, "off by a factor")],
)
def test_largest_stable_lr_names_the_mistake(features, factor, reason):
    feedback = check.largest_stable_lr(factor * largest_stable(features), features)
    assert not feedback and reason in feedback.message


def test_largest_stable_lr_catches_the_flattest_direction(features):
    design = np.hstack([features, np.ones((len(features), 1))])
    flattest = 2 / np.linalg.eigvalsh(design.T @ design / len(features)).min()
    assert "steepest direction" in check.largest_stable_lr(flattest, features).message


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (uphill_heavy_ball, "uphill"),
        (averaging_heavy_ball, "(1 - momentum)"),
        (crashing_heavy_ball, "raised TypeError"),
    ],
)
def test_heavy_ball_step_names_the_mistake(answer, reason):
    feedback = check.heavy_ball_step(answer)
    assert not feedback and reason in feedback.message


@pytest.mark.parametrize(
    ("answer", "reason"), [(doubled_gradient_rotated_bowl, "twice too large"), (unrotated_bowl, "before the rotation")]
)
def test_rotated_bowl_names_the_mistake(answer, reason):
    feedback = check.rotated_bowl(answer)
    assert not feedback and reason in feedback.message


def test_exponential_lr_catches_an_off_by_one():
    feedback = check.exponential_lr(OffByOneExponential)
    assert not feedback and "off by one" in feedback.message


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (wrong_axis_layer_backward, "shape"),
        (unsummed_layer_backward, "broadcast over the rows"),
        (no_tanh_layer_backward, "differs"),
        (negated_layer_backward, "wrong sign"),
        (two_gradients_layer_backward, "three gradients"),
    ],
)
def test_layer_backward_names_the_mistake(answer, reason):
    feedback = check.layer_backward(answer)
    assert not feedback and reason in feedback.message


def test_sigmoid_gradient_rejects_the_buggy_version():
    assert not check.sigmoid_gradient(buggy_sigmoid_gradient)


@pytest.mark.parametrize(("answer", "reason"), [(1620, "count of numbers"), (4 * 1620, "float64"), (5000, "too few")])
def test_activation_bytes_names_the_mistake(answer, reason):
    feedback = check.activation_bytes_per_example(answer)
    assert not feedback and reason in feedback.message


def test_every_check_has_a_hint_and_feedback_points_to_it():
    for name in check.HINTS:
        assert name in repr(check.hint(name)) and len(check.hint(name).text) > 40
        assert hasattr(check, name)
    assert 'check.hint("heavy_ball_step")' in repr(check.heavy_ball_step(uphill_heavy_ball))


def test_an_unknown_hint_lists_the_exercises():
    with pytest.raises(ValueError, match="heavy_ball_step"):
        check.hint("no_such_exercise")


def test_feedback_never_contains_the_answer(features):
    """The messages describe the mistake; they must not print the number or code that is right."""
    truth = largest_stable(features)
    for factor in [0.5, 3.0, 50]:
        message = check.largest_stable_lr(factor * truth, features).message
        assert f"{truth:.3g}" not in message and f"{truth:.4f}" not in message
    assert "12960" not in check.activation_bytes_per_example(5000).message
    for text in check.HINTS.values():
        assert "1 - s" not in text and "s * (1" not in text and "W.T" not in text and "X.T" not in text


# --- chapter 3 -----------------------------------------------------------------------------------


def right_conv_output_shape(input_shape, weight_shape, stride, padding, dilation):
    n, _, h, w = input_shape
    f, _, kh, kw = weight_shape
    return (
        n,
        f,
        (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1,
        (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1,
    )


def right_avg_pool_as_conv(x, kernel_size):
    from dlbook.np.conv import conv2d

    channels = x.shape[1]
    weight = np.zeros((channels, channels, kernel_size, kernel_size), dtype=x.dtype)
    weight[np.arange(channels), np.arange(channels)] = 1 / kernel_size**2
    return conv2d(x, weight, stride=kernel_size)[0]


def test_chapter_3_right_answers_are_accepted():
    assert check.conv_output_shape(right_conv_output_shape)
    assert check.receptive_field(195)
    assert check.avg_pool_as_conv(right_avg_pool_as_conv)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            lambda x, w, s, p, d: (
                (
                    x[0],
                    w[0],
                    (x[2] + 2 * p - (w[2] - 1) - 1) // s + 1,
                )
                * 1
                + ((x[3] + 2 * p - (w[3] - 1) - 1) // s + 1,)
            ),
            "ignores the dilation",
        ),
        (lambda x, w, s, p, d: (x[0], w[0], *((x[2] + p - d * (w[2] - 1) - 1) // s + 1,) * 2), "both sides"),
        (lambda x, w, s, p, d: (x[0], w[0], *((x[2] + 2 * p - d * (w[2] - 1) - 1) / s + 1,) * 2), "round down"),
        (lambda x, w, s, p, d: (x[0], x[1], *right_conv_output_shape(x, w, s, p, d)[2:]), "number of filters"),
        (lambda x, w, s, p, d: right_conv_output_shape(x, w, s, p, d)[2:], "four numbers"),
    ],
)
def test_conv_output_shape_names_the_mistake(answer, reason):
    feedback = check.conv_output_shape(answer)
    assert not feedback and reason in feedback.message


@pytest.mark.parametrize(("answer", "reason"), [(163, "last pooling"), (27, "ignores the strides"), (131, "check one")])
def test_receptive_field_names_the_mistake(answer, reason):
    feedback = check.receptive_field(answer)
    assert not feedback and reason in feedback.message


def sum_pool(x, kernel_size):
    return right_avg_pool_as_conv(x, kernel_size) * kernel_size**2


def mixing_pool(x, kernel_size):
    from dlbook.np.conv import conv2d

    channels = x.shape[1]
    return conv2d(x, np.full((channels, channels, kernel_size, kernel_size), 1 / kernel_size**2), stride=kernel_size)[0]


def unstrided_pool(x, kernel_size):
    from dlbook.np.conv import conv2d

    channels = x.shape[1]
    weight = np.zeros((channels, channels, kernel_size, kernel_size))
    weight[np.arange(channels), np.arange(channels)] = 1 / kernel_size**2
    return conv2d(x, weight)[0]


@pytest.mark.parametrize(
    ("answer", "reason"), [(sum_pool, "sum"), (mixing_pool, "mixes all input channels"), (unstrided_pool, "stride")]
)
def test_avg_pool_as_conv_names_the_mistake(answer, reason):
    feedback = check.avg_pool_as_conv(answer)
    assert not feedback and reason in feedback.message


def square_only_output_shape(input_shape, weight_shape, stride, padding, dilation):
    n, _, h, _ = input_shape
    f, _, k, _ = weight_shape
    size = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    return (n, f, size, size)  # uses the height and the kernel height for both axes


def test_conv_output_shape_catches_an_answer_that_assumes_square_images():
    feedback = check.conv_output_shape(square_only_output_shape)
    assert not feedback and "each uses its own" in feedback.message


def test_avg_pool_check_rejects_a_returned_cache_and_runs_float32():
    feedback = check.avg_pool_as_conv(lambda x, k: (right_avg_pool_as_conv(x, k), None))
    assert not feedback and "(out, cache)" in feedback.message

    def float64_weight(x, kernel_size):
        from dlbook.np.conv import conv2d

        channels = x.shape[1]
        weight = np.zeros((channels, channels, kernel_size, kernel_size))  # float64 even for float32 x
        weight[np.arange(channels), np.arange(channels)] = 1 / kernel_size**2
        return conv2d(x, weight, stride=kernel_size)[0]

    feedback = check.avg_pool_as_conv(float64_weight)
    assert not feedback and "same dtype" in feedback.message


@pytest.mark.parametrize(("answer", "reason"), [(281, "own stride"), ("195", "an int")])
def test_receptive_field_explains_stride_order_and_type_slips(answer, reason):
    feedback = check.receptive_field(answer)
    assert not feedback and reason in feedback.message


# --- chapter 4 -----------------------------------------------------------------------------------


def right_rnn_step_backward(x, h_prev, weight_ih, weight_hh, h_next, dh_next):
    da = dh_next * (1 - h_next**2)
    return da @ weight_ih, da @ weight_hh, da.T @ x, da.T @ h_prev, da.sum(axis=0)


def right_clip(grads, max_norm):
    total = np.sqrt(sum(np.sum(g**2) for g in grads))
    return [g * min(1.0, max_norm / (total + 1e-6)) for g in grads]


def test_chapter_4_right_answers_are_accepted():
    assert check.rnn_step_backward(right_rnn_step_backward)
    assert check.clip_grad_norm(right_clip)
    assert check.bits_and_perplexity((1.2 / np.log(2), np.exp(1.2)))


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda x, hp, wi, wh, hn, d: (d @ wi, d @ wh, d.T @ x, d.T @ hp, d.sum(0)), "tanh"),
        (lambda x, hp, wi, wh, hn, d: right_rnn_step_backward(x, hp, wi, wh, hn, d)[:4], "five arrays"),
        (lambda x, hp, wi, wh, hn, d: (*right_rnn_step_backward(x, hp, wi, wh, hn, d)[:4], 0 * d.sum(0)), "dbias"),
    ],
)
def test_rnn_step_backward_names_the_mistake(answer, reason):
    feedback = check.rnn_step_backward(answer)
    assert not feedback and reason in feedback.message


def test_clip_grad_norm_catches_per_array_clipping_and_clipping_below_the_threshold():
    per_array = check.clip_grad_norm(lambda grads, c: [g * min(1.0, c / np.linalg.norm(g)) for g in grads])
    assert not per_array and "one norm for all" in per_array.message
    always = check.clip_grad_norm(lambda grads, c: [g * c / np.sqrt(sum(np.sum(h**2) for h in grads)) for g in grads])
    assert not always and "unchanged" in always.message


@pytest.mark.parametrize(
    ("answer", "reason"),
    [((1.2 * np.log(2), np.exp(1.2)), "other way"), ((1.2 / np.log(2), 2**1.2), "bases"), ((1.7, 3.3), "bits")],
)
def test_bits_and_perplexity_names_the_mistake(answer, reason):
    feedback = check.bits_and_perplexity(answer)
    assert not feedback and reason in feedback.message


# --- chapter 5 -----------------------------------------------------------------------------------


def right_causal_attention(q, k, v):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    length = q.shape[-2]
    scores = np.where(np.tril(np.ones((length, length), dtype=bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)) @ v


def test_chapter_5_right_answers_are_accepted():
    assert check.causal_attention(right_causal_attention)
    assert check.tiny_gpt_params(110_784)
    assert check.kv_cache_bytes(2 * 12 * 768 * 1024 * 8 * 2)


def test_causal_attention_names_the_mistake():
    def unscaled(q, k, v):
        return right_causal_attention(q * np.sqrt(q.shape[-1]), k, v)

    def unmasked(q, k, v):
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return (weights / weights.sum(axis=-1, keepdims=True)) @ v

    assert "not scaled" in check.causal_attention(unscaled).message
    assert "causal mask is missing" in check.causal_attention(unmasked).message


@pytest.mark.parametrize(
    ("answer", "reason"), [(110_784 + 103 * 64, "tied"), (110_784 - 640, "norms"), (110_784 - 64 * 64, "position")]
)
def test_tiny_gpt_params_names_the_mistake(answer, reason):
    feedback = check.tiny_gpt_params(answer)
    assert not feedback and reason in feedback.message


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (12 * 768 * 1024 * 8 * 2, "keys and values"),
        (2 * 12 * 768 * 1024 * 8 * 4, "two bytes"),
        (2 * 12 * 768 * 1024 * 2, "eight"),
    ],
)
def test_kv_cache_bytes_names_the_mistake(answer, reason):
    feedback = check.kv_cache_bytes(answer)
    assert not feedback and reason in feedback.message


def test_causal_attention_rejects_an_unstable_softmax_and_accepts_float32():
    def unstable(q, k, v):
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
        length = q.shape[-2]
        with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the mistake under test
            weights = np.exp(np.where(np.tril(np.ones((length, length), dtype=bool)), scores, -np.inf))
            return (weights / weights.sum(axis=-1, keepdims=True)) @ v

    assert "not stable" in check.causal_attention(unstable).message
    assert check.causal_attention(lambda q, k, v: right_causal_attention(*(a.astype(np.float32) for a in (q, k, v))))


def test_chapter_5_number_checks_explain_units_and_types():
    assert "megabytes" in check.kv_cache_bytes(288).message
    assert "one number" in check.kv_cache_bytes("301989888").message
    assert "one number" in check.tiny_gpt_params(np.array([110_784, 1])).message
    assert "token embedding is missing" in check.tiny_gpt_params(110_784 - 103 * 64).message


# --- chapter 6 -----------------------------------------------------------------------------------

LLAMA2_7B_PARAMS = 6_738_415_616
RING_BYTES = 2 * 7 * 124_439_808 * 2 // 8  # 2(p - 1)/p of GPT-2 small's gradients in bfloat16, p = 8


def right_affine_quantize(x, scale, zero_point, qmin, qmax):
    codes = np.clip(np.rint(x / scale) + zero_point, qmin, qmax).astype(np.int64)
    return codes, scale * (codes - zero_point)


def right_round_to_format(x, exponent_bits, fraction_bits, *, rounder=np.round, clamp=True, shift=1, overflow=True):
    """The exercise's solution; the keywords build its typical mistakes."""
    x = np.asarray(x, dtype=np.float64)
    bias = 2 ** (exponent_bits - 1) - 1
    exponent = np.frexp(x)[1] - shift  # the power of two at or below |x| when shift = 1
    if clamp:
        exponent = np.maximum(exponent, 1 - bias)
    gap = np.ldexp(1.0, exponent - fraction_bits)
    with np.errstate(invalid="ignore"):
        rounded = rounder(x / gap) * gap
    if overflow:
        rounded = np.where(np.abs(rounded) > (2 - 2.0**-fraction_bits) * 2.0**bias, np.copysign(np.inf, x), rounded)
    return rounded


def test_chapter_6_right_answers_are_accepted():
    assert check.llama2_7b_params(LLAMA2_7B_PARAMS)
    assert check.llama2_7b_params(np.int64(LLAMA2_7B_PARAMS))
    assert check.ring_allreduce_bytes(RING_BYTES)
    assert check.ring_allreduce_bytes(float(RING_BYTES))
    assert check.affine_quantize(right_affine_quantize)
    assert check.round_to_format(right_round_to_format)


def test_affine_quantize_accepts_a_reciprocal_scale_and_lists():
    def by_reciprocal(x, scale, zero_point, qmin, qmax):  # as PyTorch computes it, in float32
        codes = np.clip(np.rint(x * np.float32(1 / scale)) + zero_point, qmin, qmax)
        return codes.tolist(), (scale * (codes - zero_point)).tolist()

    assert check.affine_quantize(by_reciprocal)


D, F, V, L = 4096, 11008, 32000, 32  # Llama 2 7B: width, MLP, vocabulary, layers


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (LLAMA2_7B_PARAMS - V * D, "not tied"),
        (LLAMA2_7B_PARAMS - L * D * F, "three matrices"),
        (LLAMA2_7B_PARAMS + L * (5 * D + 2 * F), "no biases"),
        (LLAMA2_7B_PARAMS + (2 * L + 1) * D, "no shift"),
        (LLAMA2_7B_PARAMS - (2 * L + 1) * D, "parameters too"),
        (LLAMA2_7B_PARAMS - D, "final norm"),
        (LLAMA2_7B_PARAMS - 2 * L * D, "two norms"),
        (LLAMA2_7B_PARAMS + 4096 * D, "no position table"),
        (LLAMA2_7B_PARAMS - 3 * L * D * F + 12 * L * D * D, "not 4 d"),
        (12 * L * D * D + 2 * V * D, "rule of thumb"),
        (LLAMA2_7B_PARAMS + 7, "not exact"),
        (7e9 * 2, "recount layer by layer"),
        ("6738415616", "one number"),
        ([LLAMA2_7B_PARAMS], "one number"),
        (None, "one number"),
        (True, "one number"),
        (float("nan"), "finite"),
    ],
)
def test_llama2_7b_params_names_the_mistake(answer, reason):
    feedback = check.llama2_7b_params(answer)
    assert not feedback and reason in feedback.message


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (RING_BYTES / 2, "only the reduce-scatter"),
        (RING_BYTES * 2, "two bytes per number"),
        (2 * 124_439_808 * 2, "limit for many GPUs"),
        (124_439_808 * 2, "size of the gradients"),
        (RING_BYTES * 8, "all 8 GPUs"),
        (7 * 124_439_808 * 2, "naive all-reduce"),
        (435.5, "megabytes"),
        (RING_BYTES / 2**20, "mebibytes"),
        (0.4355, "gigabytes"),
        (1e9, "how many steps"),
        ("435539328", "one number"),
        (np.array([1.0, 2.0]), "one number"),
    ],
)
def test_ring_allreduce_bytes_names_the_mistake(answer, reason):
    feedback = check.ring_allreduce_bytes(answer)
    assert not feedback and reason in feedback.message


def _quantizer(rounder=np.rint, clip=True, sign=1, clip_first=False, divide=True, dequantize_zero=True):
    def quantize(x, scale, zero_point, qmin, qmax):
        ratio = rounder(x / scale if divide else x * scale)
        codes = np.clip(ratio, qmin, qmax) + zero_point if clip_first else ratio + sign * zero_point
        if clip and not clip_first:
            codes = np.clip(codes, qmin, qmax)
        return codes, scale * (codes - zero_point if dequantize_zero else codes)

    return quantize


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_quantizer(rounder=lambda r: np.floor(r + 0.5)), "even neighbour"),
        (_quantizer(rounder=lambda r: np.sign(r) * np.floor(np.abs(r) + 0.5)), "even neighbour"),
        (_quantizer(rounder=np.trunc), "truncated"),
        (_quantizer(rounder=np.floor), "truncated"),
        (_quantizer(clip=False), "not clipped"),
        (_quantizer(sign=-1), "zero point is subtracted"),
        (_quantizer(clip_first=True), "clipping comes before"),
        (_quantizer(divide=False), "multiplied by the scale"),
        (_quantizer(dequantize_zero=False), "forget the zero point"),
        (lambda x, scale, zero_point, qmin, qmax: right_affine_quantize(x, scale, zero_point, qmin, qmax)[0], "a pair"),
        (lambda x, scale, zero_point, qmin, qmax: (x[:3], x[:3]), "one code and one value per number"),
        (lambda x, scale, zero_point, qmin, qmax: ("codes", "values"), "two arrays of numbers"),
        (lambda x, scale, zero_point, qmin, qmax: 1 / 0, "raised ZeroDivisionError"),
        (right_affine_quantize(np.zeros(2, dtype=np.float32), 0.1, 0, -127, 127), "pass your function itself"),
    ],
)
def test_affine_quantize_names_the_mistake(answer, reason):
    feedback = check.affine_quantize(answer)
    assert not feedback and reason in feedback.message


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"rounder": lambda r: np.floor(r + 0.5)}, "ties"),
        ({"rounder": np.trunc}, "smaller than the nearest"),
        ({"clamp": False}, "smallest normal"),
        ({"shift": 0}, "twice too large"),
        ({"shift": 2}, "half what it should be"),
        ({"overflow": False}, "largest number"),
    ],
)
def test_round_to_format_names_the_mistake(options, reason):
    feedback = check.round_to_format(lambda x, e, m: right_round_to_format(x, e, m, **options))
    assert not feedback and reason in feedback.message


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda x, e, m: np.asarray(x, dtype=np.float32).astype(np.float64), "should become"),
        (lambda x, e, m: None, "one value per input"),
        (lambda x, e, m: "rounded", "an array of numbers"),
        ("round_to_format", "pass your function itself"),
    ],
)
def test_round_to_format_explains_other_answers(answer, reason):
    feedback = check.round_to_format(answer)
    assert not feedback and reason in feedback.message


def test_chapter_6_feedback_never_contains_the_answer():
    for wrong in (LLAMA2_7B_PARAMS + 7, LLAMA2_7B_PARAMS - D, 7e9):
        message = check.llama2_7b_params(wrong).message
        assert "6,738,415,616" not in message and "6738415616" not in message
    for wrong in (RING_BYTES / 2, 1e9, 435.5):
        message = check.ring_allreduce_bytes(wrong).message
        assert "435,539,328" not in message and "435539328" not in message and "1.75" not in message
    for name in ("affine_quantize", "round_to_format"):
        assert "np.clip(" not in check.HINTS[name] and "np.round(" not in check.HINTS[name]


def right_compute_optimal_split(compute_flops, tokens_per_param=20.0):
    n = (compute_flops / (6 * tokens_per_param)) ** 0.5
    return n, tokens_per_param * n


def test_compute_optimal_split_accepts_the_right_split():
    assert check.compute_optimal_split(right_compute_optimal_split)
    assert check.compute_optimal_split(lambda c, r=20.0: np.array(right_compute_optimal_split(c, r)))


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda c, r=20.0: right_compute_optimal_split(c, r)[::-1], "swapped"),
        (lambda c, r=20.0: ((c / r) ** 0.5, r * (c / r) ** 0.5), "factor 6"),
        (lambda c, r=20.0: (c / (6 * r), c / 6), "square root is missing"),
        (lambda c, r=20.0: right_compute_optimal_split(c), "instead of tokens_per_param = 5"),
        (lambda c, r=5.0: right_compute_optimal_split(c, r), "should use 20 tokens per parameter"),
        (
            lambda c, r=20.0: (2 * right_compute_optimal_split(c, r)[0], 2 * right_compute_optimal_split(c, r)[1]),
            "D = 20 N holds",
        ),
        (lambda c, r=20.0: (1.0, 2.0), "neither"),
        (lambda c, r=20.0: (-1.0, -20.0), "positive"),
        (lambda c: right_compute_optimal_split(c), "raised TypeError"),
        (lambda c, r=20.0: 5.0, "a pair of numbers"),
        (lambda c, r=20.0: ("N", "D"), "a pair of numbers"),
        (lambda c, r=20.0: (1.0, 2.0, 3.0), "a pair of numbers"),
        (right_compute_optimal_split(1e20), "pass your function itself"),
    ],
)
def test_compute_optimal_split_names_the_mistake(answer, reason):
    feedback = check.compute_optimal_split(answer)
    assert not feedback and reason in feedback.message


def test_compute_optimal_split_never_prints_the_right_split():
    n, d = right_compute_optimal_split(5.76e23)
    for wrong in (lambda c, r=20.0: (1.0, 2.0), lambda c, r=20.0: right_compute_optimal_split(c, r)[::-1]):
        message = check.compute_optimal_split(wrong).message
        assert f"{n:.3g}" not in message and f"{d:.3g}" not in message
    assert "sqrt" not in check.HINTS["compute_optimal_split"] and "**" not in check.HINTS["compute_optimal_split"]
