"""Compression of `dlbook.np.compression` and its twin `dlbook.torch.compression` (chapter "The challenges
of scaling").

Quantization: in float32, quantize-then-dequantize equals torch.fake_quantize_per_tensor_affine and
fake_quantize_per_channel_affine bit for bit, for every number of bits from 2 to 16, symmetric and
asymmetric, any shape and any channel axis; the 8-bit codes equal torch.quantize_per_tensor and
quantize_per_channel (qint8 exactly; quint8 except at near-ties, where torch adds the zero point before
rounding); halves round to even; the error is at most half a step; zero is exact; an all-zero channel
divides by nothing; both twins give identical codes, scales and zero points in float32 and float64.
Rounding halves away from zero, or one scale for a matrix with an outlier row, are caught.
Pruning: masks equal torch.nn.utils.prune's l1_unstructured, ln_structured (n=2, any dim) and
global_unstructured; exactly round(sparsity * n) weights go, ties included. Distillation: the NumPy loss
and gradient equal the torch twin's under autograd in float64 and central differences, reduce to
cross-entropy at alpha = 0 and vanish when the student is the teacher at alpha = 1; dropping the T^2
factor is caught. Bad arguments raise errors that say what was expected and what came.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as prune
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook.np.compression as npc
import dlbook.torch.compression as tcc
from conftest import numerical_gradient

# float64 twins: the same log-softmax, KL and cross-entropy in another order, over K <= 12 classes.
RTOL, ATOL = 1e-12, 1e-14
# Central differences, h = 1e-6, on a smooth O(1) loss: rounding ~1e-16 / 1e-6 dominates.
FD_TOLERANCE = 1e-7

shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


def spread_array(seed: int, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """Normal numbers whose scale differs along every axis, so that per-channel scales differ."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    for axis, size in enumerate(shape):
        scale_shape = [1] * len(shape)
        scale_shape[axis] = size
        x = x * rng.uniform(0.2, 3.0, size=scale_shape)
    return x.astype(dtype)


def torch_fake_quantize(x: np.ndarray, scale, zero_point, bits: int, symmetric: bool, axis: int | None):
    qmin, qmax = npc.code_range(bits, symmetric)
    t = torch.from_numpy(x)
    if axis is None:
        return torch.fake_quantize_per_tensor_affine(t, float(scale), int(zero_point), qmin, qmax).numpy()
    return torch.fake_quantize_per_channel_affine(
        t, torch.from_numpy(scale), torch.from_numpy(zero_point).int(), axis % x.ndim, qmin, qmax
    ).numpy()


def torch_quantize_8bit(x: np.ndarray, scale, zero_point, symmetric: bool, axis: int | None) -> torch.Tensor:
    dtype = torch.qint8 if symmetric else torch.quint8
    with warnings.catch_warnings():  # torch 2.13 announces that quantized tensors are deprecated
        warnings.simplefilter("ignore", UserWarning)
        if axis is None:
            return torch.quantize_per_tensor(torch.from_numpy(x), float(scale), int(zero_point), dtype)
        return torch.quantize_per_channel(
            torch.from_numpy(x), torch.from_numpy(scale).double(), torch.from_numpy(zero_point), axis % x.ndim, dtype
        )


# ---- quantization ---------------------------------------------------------------------------------------


def test_code_ranges_and_dtypes():
    assert npc.code_range(8, symmetric=True) == (-127, 127)  # restricted: -128 is never used
    assert npc.code_range(8, symmetric=False) == (0, 255)
    assert npc.code_range(4, symmetric=True) == (-7, 7)
    assert npc.code_range(2, symmetric=True) == (-1, 1)  # ternary
    assert npc.code_range(16, symmetric=False) == (0, 65535)
    assert npc.code_dtype(4, True) == np.int8 and npc.code_dtype(8, False) == np.uint8
    assert npc.code_dtype(12, True) == np.int16 and npc.code_dtype(16, False) == np.int32
    assert tcc.code_dtype(8, True) == torch.int8 and tcc.code_dtype(16, False) == torch.int32


def test_a_worked_example_by_hand():
    x = np.array([-1.0, -0.5, 0.0, 0.25, 2.0], dtype=np.float32)
    codes, scale, zero_point = npc.quantize(x, 8, symmetric=True)
    assert scale == np.float32(2.0 / 127) and zero_point == 0
    assert codes.tolist() == [-64, -32, 0, 16, 127]  # -63.5 -> -64 and 15.875 -> 16
    codes, scale, zero_point = npc.quantize(x, 8, symmetric=False)
    assert scale == np.float32(3.0 / 255) and zero_point == 85  # 1.0 / (3 / 255) = 85
    assert codes.tolist() == [0, 43, 85, 106, 255]  # -0.5 / s = -42.5 -> -42 (ties to even), + 85


@settings(max_examples=60, deadline=None)
@given(
    shape=shapes,
    bits=st.integers(2, 16),
    symmetric=st.booleans(),
    per_channel=st.booleans(),
    axis_draw=st.integers(-4, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_quantize_matches_torch_fake_quantize_bit_for_bit(shape, bits, symmetric, per_channel, axis_draw, seed):
    x = spread_array(seed, shape)
    axis = (axis_draw % len(shape)) - (len(shape) if axis_draw < 0 else 0) if per_channel else None
    codes, scale, zero_point = npc.quantize(x, bits, symmetric, axis)
    expected = torch_fake_quantize(x, scale, zero_point, bits, symmetric, axis)
    np.testing.assert_array_equal(npc.dequantize(codes, scale, zero_point, axis), expected)
    np.testing.assert_array_equal(npc.fake_quantize(x, bits, symmetric, axis), expected)
    qmin, qmax = npc.code_range(bits, symmetric)
    assert codes.dtype == npc.code_dtype(bits, symmetric) and codes.min() >= qmin and codes.max() <= qmax


@settings(max_examples=40, deadline=None)
@given(shape=shapes, symmetric=st.booleans(), per_channel=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_8bit_codes_match_torch_quantize_per_tensor_and_per_channel(shape, symmetric, per_channel, seed):
    x = spread_array(seed, shape)
    axis = len(shape) - 1 if per_channel else None
    codes, scale, zero_point = npc.quantize(x, 8, symmetric, axis)
    quantized = torch_quantize_8bit(x, scale, zero_point, symmetric, axis)
    torch_codes = quantized.int_repr().numpy()
    if symmetric:  # zero point 0: the same rounding, exactly
        np.testing.assert_array_equal(codes, torch_codes)
        np.testing.assert_array_equal(npc.dequantize(codes, scale, zero_point, axis), quantized.dequantize().numpy())
        return
    # quint8 rounds x / s + z, not round(x / s) + z: they differ only within a rounding error of a tie
    inverse = (np.float32(1) / scale).astype(np.float32)
    ratio = x * (inverse if axis is None else inverse.reshape((1,) * (len(shape) - 1) + (-1,)))
    near_tie = np.abs(np.abs(ratio - np.floor(ratio)) - 0.5) < 1e-4 * np.maximum(1, np.abs(ratio))
    differ = codes.astype(int) != torch_codes.astype(int)
    assert not np.any(differ & ~near_tie)
    assert np.all(np.abs(codes.astype(int) - torch_codes.astype(int)) <= 1)


def test_halves_round_to_even_as_torch_does():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.0], dtype=np.float32)  # symmetric, 3 bits: scale 1
    codes, scale, _ = npc.quantize(x, 3, symmetric=True)
    assert scale == 1 and codes.tolist() == [0, 2, 2, 0, -2, -2, 3]
    np.testing.assert_array_equal(codes, torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), 1.0, 0, -3, 3))


def test_negative_control_rounding_halves_away_from_zero_is_caught():
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.0], dtype=np.float32)  # symmetric, 3 bits: scale 1, exact ties
    reference = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), 1.0, 0, -3, 3).numpy()
    away = np.sign(x) * np.floor(np.abs(x) + 0.5)  # the school rule
    assert not np.array_equal(away, reference)  # the comparison with torch detects it
    np.testing.assert_array_equal(npc.fake_quantize(x, 3), reference)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_torch_twin_gives_identical_codes_scales_and_zero_points(dtype, symmetric, axis, bits):
    x = spread_array(3, (9, 13), dtype)
    x[2] = 0  # an all-zero row
    ours = npc.quantize(x, bits, symmetric, axis)
    theirs = tcc.quantize(torch.from_numpy(x), bits, symmetric, axis)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.numpy().dtype
        np.testing.assert_array_equal(a, b.numpy())
    np.testing.assert_array_equal(
        npc.fake_quantize(x, bits, symmetric, axis),
        tcc.fake_quantize(torch.from_numpy(x), bits, symmetric, axis).numpy(),
    )


@settings(max_examples=50, deadline=None)
@given(shape=shapes, bits=st.integers(2, 16), symmetric=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_error_is_at_most_half_a_step_and_zero_is_exact(shape, bits, symmetric, seed):
    x = spread_array(seed, shape, np.float64)
    x.flat[0] = 0.0
    for axis in (None, 0):
        codes, scale, zero_point = npc.quantize(x, bits, symmetric, axis)
        error = np.abs(npc.dequantize(codes, scale, zero_point, axis) - x)
        step = scale if axis is None else scale.reshape((-1,) + (1,) * (len(shape) - 1))
        assert np.all(error <= step / 2 * (1 + 1e-9))
        assert npc.dequantize(codes, scale, zero_point, axis).flat[0] == 0.0


def test_all_zero_channel_gets_scale_one_and_no_nan():
    x = np.zeros((3, 4), dtype=np.float32)
    x[1] = [1.0, -2.0, 0.5, 0.0]
    for symmetric in (True, False):
        codes, scale, zero_point = npc.quantize(x, 4, symmetric, axis=0)
        assert scale[0] == 1 and scale[2] == 1
        deq = npc.dequantize(codes, scale, zero_point, axis=0)
        assert np.all(np.isfinite(deq)) and np.all(deq[[0, 2]] == 0)
    codes, scale, _ = npc.quantize(np.zeros(5), 8)  # the whole tensor zero
    assert scale == 1 and np.all(codes == 0)


def test_per_channel_scales_beat_one_scale_when_one_row_is_an_outlier():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 64))
    w[3] *= 50
    per_tensor = np.abs(npc.fake_quantize(w, 4, True, None) - w)[np.arange(8) != 3].mean()
    per_channel = np.abs(npc.fake_quantize(w, 4, True, 0) - w)[np.arange(8) != 3].mean()
    assert per_channel < per_tensor / 5
    assert np.all(npc.fake_quantize(w, 4, True, None)[0] == 0)  # the ordinary rows round to zero


def test_fake_quantize_weights_quantizes_matrices_and_keeps_biases():
    params = {"w": spread_array(1, (6, 5)), "b": spread_array(2, (6,)), "k": spread_array(3, (4, 2, 3, 3))}
    out = npc.fake_quantize_weights(params, 4, symmetric=True, per_channel=True)
    np.testing.assert_array_equal(out["b"], params["b"])
    np.testing.assert_array_equal(out["w"], npc.fake_quantize(params["w"], 4, True, 0))
    np.testing.assert_array_equal(out["k"], npc.fake_quantize(params["k"], 4, True, 0))
    out_t = tcc.fake_quantize_weights({k: torch.from_numpy(v) for k, v in params.items()}, 4, True, False)
    np.testing.assert_array_equal(out_t["w"].numpy(), npc.fake_quantize(params["w"], 4, True, None))
    assert out["b"] is not params["b"]


def test_quantization_errors_say_what_was_expected():
    x = np.ones((3, 4), dtype=np.float32)
    for bits in (1, 17, 0):
        with pytest.raises(ValueError, match=rf"bits must lie in \[2, 16\], got {bits}"):
            npc.quantize(x, bits)
    with pytest.raises(TypeError, match="bits must be an integer"):
        npc.quantize(x, 8.0)
    with pytest.raises(ValueError, match=r"axis must lie in \[-2, 2\) for an array of 2 dimension\(s\), got 2"):
        npc.quantize(x, 8, True, axis=2)
    with pytest.raises(ValueError, match=r"axis must lie in \[-2, 2\)"):
        tcc.quantize(torch.from_numpy(x), 8, True, axis=-3)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        npc.quantize(np.ones(3, dtype=int), 8)
    with pytest.raises(TypeError, match="symmetric must be True or False"):
        npc.quantize(x, 8, "yes")
    with pytest.raises(ValueError, match="x must be finite"):
        npc.quantize(np.array([1.0, np.nan]), 8)
    codes, scale, zero_point = npc.quantize(x, 8, axis=0)
    with pytest.raises(ValueError, match=r"scale and zero_point must have shape \(4,\)"):
        npc.dequantize(codes, scale, zero_point, axis=1)
    with pytest.raises(TypeError, match="codes must be integers"):
        npc.dequantize(codes.astype(np.float32), scale, zero_point, axis=0)


# ---- pruning --------------------------------------------------------------------------------------------


def torch_mask(method, x: np.ndarray, **kwargs) -> np.ndarray:
    module = torch.nn.Module()
    module.weight = torch.nn.Parameter(torch.from_numpy(x.copy()))
    method(module, "weight", **kwargs)
    return module.weight_mask.numpy().astype(bool)


@settings(max_examples=50, deadline=None)
@given(shape=shapes, sparsity=st.floats(0.0, 0.99), seed=st.integers(0, 2**32 - 1))
def test_unstructured_mask_matches_torch_l1_unstructured(shape, sparsity, seed):
    w = spread_array(seed, shape)
    mask = npc.magnitude_prune(w, sparsity)
    np.testing.assert_array_equal(mask, torch_mask(prune.l1_unstructured, w, amount=sparsity))
    np.testing.assert_array_equal(mask, tcc.magnitude_prune(torch.from_numpy(w), sparsity).numpy())
    assert (~mask).sum() == round(sparsity * w.size)
    if mask.any() and (~mask).any():  # every kept weight is at least as large as every removed one
        assert np.abs(w[mask]).min() >= np.abs(w[~mask]).max()


@settings(max_examples=50, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=2, max_size=4).map(tuple),
    sparsity=st.floats(0.0, 0.99),
    axis_draw=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_structured_mask_matches_torch_ln_structured(shape, sparsity, axis_draw, seed):
    w = spread_array(seed, shape)
    axis = axis_draw % len(shape)
    mask = npc.magnitude_prune(w, sparsity, structured=True, axis=axis)
    np.testing.assert_array_equal(mask, torch_mask(prune.ln_structured, w, amount=sparsity, n=2, dim=axis))
    np.testing.assert_array_equal(mask, tcc.magnitude_prune(torch.from_numpy(w), sparsity, True, axis).numpy())
    removed = ~np.moveaxis(mask, axis, 0).reshape(shape[axis], -1)
    assert np.all(removed.all(axis=1) | ~removed.any(axis=1))  # whole slices, or nothing
    assert removed.all(axis=1).sum() == round(sparsity * shape[axis])


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
def test_global_masks_match_torch_global_unstructured(sparsity, rng):
    weights = {"a": rng.normal(size=(6, 7)).astype(np.float32), "b": 4 * rng.normal(size=(3, 2, 5)).astype(np.float32)}
    masks = npc.global_magnitude_prune(weights, sparsity)
    modules = []
    for value in weights.values():
        module = torch.nn.Module()
        module.weight = torch.nn.Parameter(torch.from_numpy(value.copy()))
        modules.append(module)
    prune.global_unstructured([(m, "weight") for m in modules], pruning_method=prune.L1Unstructured, amount=sparsity)
    for (name, mask), module in zip(masks.items(), modules, strict=True):
        np.testing.assert_array_equal(mask, module.weight_mask.numpy().astype(bool), err_msg=name)
    twin = tcc.global_magnitude_prune({k: torch.from_numpy(v) for k, v in weights.items()}, sparsity)
    for name in weights:
        np.testing.assert_array_equal(masks[name], twin[name].numpy())
    if sparsity > 0:  # the layer of small weights loses a larger share
        assert (~masks["a"]).mean() > (~masks["b"]).mean()


def test_ties_still_remove_exactly_the_requested_number():
    w = np.ones((4, 5))
    mask = npc.magnitude_prune(w, 0.35)
    assert (~mask).sum() == 7 and np.array_equal(mask, tcc.magnitude_prune(torch.from_numpy(w), 0.35).numpy())
    assert npc.magnitude_prune(w, 0.5, structured=True).sum() == 10


def test_negative_control_pruning_by_signed_value_differs_from_torch(rng):
    w = rng.normal(size=(10, 10))
    by_value = np.ones(w.size, dtype=bool)
    by_value[np.argsort(w, axis=None)[:50]] = False  # forgot the absolute value
    assert not np.array_equal(by_value.reshape(w.shape), torch_mask(prune.l1_unstructured, w, amount=0.5))


def test_pruning_errors_say_what_was_expected():
    w = np.ones((3, 4))
    for sparsity in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"sparsity must lie in \[0, 1\)"):
            npc.magnitude_prune(w, sparsity)
    with pytest.raises(ValueError, match=r"axis must lie in \[-2, 2\)"):
        npc.magnitude_prune(w, 0.5, structured=True, axis=2)
    with pytest.raises(ValueError, match=r"sparsity must lie in \[0, 1\)"):
        tcc.magnitude_prune(torch.ones(3), 1.0)
    with pytest.raises(ValueError, match="structured pruning removes whole slices: it needs at least 2 dimensions"):
        npc.magnitude_prune(np.ones(3), 0.5, structured=True)
    with pytest.raises(TypeError, match="weights must be a non-empty dict"):
        npc.global_magnitude_prune([w], 0.5)


# ---- distillation ---------------------------------------------------------------------------------------


def distillation_case(rng, n=6, k=5):
    student = rng.normal(size=(n, k)) * 2
    teacher = rng.normal(size=(n, k)) * 3
    return student, teacher, rng.integers(0, k, size=n)


@pytest.mark.parametrize(("temperature", "alpha"), [(1.0, 0.5), (4.0, 0.9), (0.5, 0.1), (10.0, 1.0), (2.0, 0.0)])
def test_distillation_loss_and_gradient_equal_torch_autograd(temperature, alpha, rng):
    student, teacher, targets = distillation_case(rng)
    loss, grad = npc.distillation_loss(student, teacher, targets, temperature, alpha)
    student_t = torch.tensor(student, requires_grad=True)
    teacher_t = torch.tensor(teacher, requires_grad=True)
    torch_loss = tcc.distillation_loss(student_t, teacher_t, torch.from_numpy(targets), temperature, alpha)
    torch_loss.backward()
    np.testing.assert_allclose(loss, torch_loss.item(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, student_t.grad.numpy(), rtol=RTOL, atol=ATOL)
    assert teacher_t.grad is None  # no gradient reaches the teacher


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 5),
    k=st.integers(2, 12),
    temperature=st.floats(0.3, 20.0),
    alpha=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_distillation_gradient_equals_central_differences(n, k, temperature, alpha, seed):
    student, teacher, targets = distillation_case(np.random.default_rng(seed), n, k)
    _, grad = npc.distillation_loss(student, teacher, targets, temperature, alpha)
    numerical = numerical_gradient(lambda s: npc.distillation_loss(s, teacher, targets, temperature, alpha)[0], student)
    np.testing.assert_allclose(grad, numerical, rtol=0, atol=FD_TOLERANCE * max(1.0, temperature))


def test_distillation_special_cases(rng):
    student, teacher, targets = distillation_case(rng)
    loss, _ = npc.distillation_loss(student, teacher, targets, 3.0, 0.0)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(student), torch.from_numpy(targets)).item()
    assert loss == pytest.approx(expected, rel=1e-13)  # alpha = 0: the ordinary loss
    loss, grad = npc.distillation_loss(teacher, teacher, targets, 3.0, 1.0)
    assert abs(loss) < 1e-14 and np.abs(grad).max() < 1e-15  # the student is the teacher: nothing to learn
    kl = torch.nn.functional.kl_div(
        torch.log_softmax(torch.from_numpy(student) / 5, 1),
        torch.softmax(torch.from_numpy(teacher) / 5, 1),
        reduction="batchmean",
    ).item()
    loss, _ = npc.distillation_loss(student, teacher, targets, 5.0, 1.0)
    assert loss == pytest.approx(25 * kl, rel=1e-12)  # the T^2 factor
    assert loss != pytest.approx(kl, rel=1e-3)  # negative control: forgetting it is caught


def test_distillation_errors_say_what_was_expected(rng):
    student, teacher, targets = distillation_case(rng)
    with pytest.raises(ValueError, match=r"temperature must be > 0, got 0\.0"):
        npc.distillation_loss(student, teacher, targets, 0.0, 0.5)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\], got 1.5"):
        npc.distillation_loss(student, teacher, targets, 2.0, 1.5)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 5\)"):
        npc.distillation_loss(student, teacher, targets + 5, 2.0, 0.5)
    with pytest.raises(ValueError, match=r"teacher_logits must have the student's shape \(6, 5\)"):
        npc.distillation_loss(student, teacher[:, :4], targets, 2.0, 0.5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        tcc.distillation_loss(
            torch.from_numpy(student), torch.from_numpy(teacher), torch.from_numpy(targets), -1.0, 0.5
        )
