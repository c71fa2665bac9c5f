"""The floating-point formats and the loss scaler of `dlbook.np.precision` equal PyTorch's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dlbook.np import precision as np_precision
from dlbook.torch import precision as torch_precision

FORMATS = list(np_precision.FORMATS)

# every float32, NaN, infinities and subnormals included, as bit patterns
BIT_PATTERNS = hnp.arrays(np.uint32, st.integers(1, 64), elements=st.integers(0, 2**32 - 1))
FLOAT32S = hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(width=32, allow_nan=True, allow_infinity=True))


def bits(values: np.ndarray) -> np.ndarray:
    """The float32 bit patterns, with every NaN written as one canonical NaN (a NaN's payload is not a
    value: torch's vectorised kernel writes 0xFFFF, its scalar code 0x7FC0)."""
    values = np.where(np.isnan(values), np.float32(np.nan), values).astype(np.float32)
    return values.view(np.uint32)


def torch_round(x: np.ndarray, dtype: str) -> np.ndarray:
    return torch_precision.round_to(torch.from_numpy(x), dtype).numpy()


def edge_values() -> np.ndarray:
    """Zeros, the extremes of every format, the halfway points between bfloat16 neighbours (ties to
    even and to odd), float16's overflow threshold 65520 and the float32 subnormals."""
    patterns = [
        0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x00008000, 0x00018000,
        0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0x7F7F7FFF, 0x7F7F8000, 0x7F7FFFFF, 0xFF7FFFFF,
        0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x007F8000, 0x00FF8000,
    ]  # fmt: skip
    specials = [65504.0, 65519.996, 65520.0, -65520.0, 2.0**-24, 2.0**-25, 1.5 * 2.0**-25, 2.0**-25 + 2.0**-40, 6.1e-5]
    return np.concatenate([np.array(patterns, dtype=np.uint32).view(np.float32), np.array(specials, np.float32)])


# ---- rounding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FORMATS)
def test_round_to_equals_torch_bit_for_bit_on_the_edge_values(dtype):
    x = edge_values()
    np.testing.assert_array_equal(bits(np_precision.round_to(x, dtype)), bits(torch_round(x, dtype)))


@pytest.mark.parametrize("dtype", FORMATS)
@settings(deadline=None)
@given(patterns=BIT_PATTERNS)
def test_round_to_equals_torch_bit_for_bit_on_every_kind_of_float32(dtype, patterns):
    x = patterns.view(np.float32)
    np.testing.assert_array_equal(bits(np_precision.round_to(x, dtype)), bits(torch_round(x, dtype)))


@settings(deadline=None)
@given(x=FLOAT32S)
def test_to_bfloat16_equals_torch_and_is_the_upper_half_of_a_float32(x):
    rounded = np_precision.to_bfloat16(x)
    np.testing.assert_array_equal(bits(rounded), bits(torch_round(x, "bfloat16")))
    assert np.all(rounded.view(np.uint32)[~np.isnan(rounded)] & 0xFFFF == 0)


def test_to_bfloat16_on_a_million_random_bit_patterns(rng):
    x = rng.integers(0, 2**32, size=1_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    np.testing.assert_array_equal(bits(np_precision.to_bfloat16(x)), bits(torch_round(x, "bfloat16")))


def test_ties_go_to_the_even_neighbour_and_the_largest_numbers_to_infinity():
    one_plus_half = np.float32(1 + 2.0**-8)  # halfway between 1 and 1 + 2^-7: to the even 1
    three_halves = np.float32(1 + 3 * 2.0**-8)  # halfway between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6
    assert np_precision.to_bfloat16(one_plus_half) == 1.0
    assert np_precision.to_bfloat16(three_halves) == 1 + 2.0**-6
    assert np_precision.to_bfloat16(np.float32(1 + 2.0**-8 + 2.0**-20)) == 1 + 2.0**-7
    assert np.isinf(np_precision.to_bfloat16(np.finfo(np.float32).max))
    assert np_precision.round_to(65519.0, "float16") == 65504.0 and np.isinf(np_precision.round_to(65520.0, "float16"))


def test_float64_is_rounded_twice_through_float32_as_torch_does():
    x = 1 + 2.0**-8 + 2.0**-30  # float32: 1 + 2^-8, a bfloat16 tie, to the even 1.0
    assert np_precision.round_to(np.float64(x), "bfloat16") == 1.0
    assert torch_precision.round_to(torch.tensor(x, dtype=torch.float64), "bfloat16").item() == 1.0
    y = 1 + 2.0**-11 + 2.0**-40  # the same in float16: NumPy's own float64 -> float16 rounds once
    assert np_precision.round_to(y, "float16") == 1.0 != np.float16(y)
    assert torch_precision.round_to(torch.tensor(y, dtype=torch.float64), "float16").item() == 1.0


def test_truncating_instead_of_rounding_fails_the_same_comparison(rng):
    # Negative control: chopping the lower 16 bits is a bfloat16 too, but not the nearest one.
    x = rng.normal(size=1000).astype(np.float32)
    chopped = (x.view(np.uint32) & 0xFFFF0000).view(np.float32)
    assert (bits(chopped) != bits(torch_round(x, "bfloat16"))).mean() > 0.4


def test_round_to_keeps_the_shape_and_accepts_python_numbers():
    assert np_precision.round_to(np.zeros((2, 3)), "float16").shape == (2, 3)
    assert np_precision.round_to(np.zeros((2, 3)), "float16").dtype == np.float32
    assert float(np_precision.round_to(1 + 1e-3, "float16")) == 1 + 2.0**-10
    assert float(np_precision.round_to(1 + 1e-3, "bfloat16")) == 1.0


def test_bad_inputs_say_what_was_expected():
    with pytest.raises(ValueError, match=r"dtype must be one of 'float32', 'float16', 'bfloat16', got 'fp8'"):
        np_precision.round_to(1.0, "fp8")
    with pytest.raises(ValueError, match=r"dtype must be one of .* got 'float64'"):
        torch_precision.round_to(1.0, "float64")
    with pytest.raises(TypeError, match=r"x must be a real number or a float array, got an array of dtype int64"):
        np_precision.round_to(np.arange(3), "float16")
    with pytest.raises(TypeError, match=r"x must be a real number or a float array, got str"):
        np_precision.to_bfloat16("1.0")
    with pytest.raises(ValueError, match=r"values must be a 1-D array, got shape \(2, 2\)"):
        np_precision.running_sum(np.zeros((2, 2)), "float16")
    with pytest.raises(TypeError, match=r"values must be a real number or a float array, got list"):
        np_precision.running_sum([0.1, 0.2], "float16")


# ---- the formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FORMATS)
def test_format_info_from_the_bit_layout_equals_torch_finfo(dtype):
    assert np_precision.format_info(dtype) == torch_precision.format_info(dtype)


@pytest.mark.parametrize("dtype, native", [("float32", np.float32), ("float16", np.float16)])
def test_format_info_equals_numpy_finfo(dtype, native):
    info, finfo = np_precision.format_info(dtype), np.finfo(native)
    assert (info.max, info.smallest_normal, info.eps) == (float(finfo.max), float(finfo.tiny), float(finfo.eps))
    assert info.smallest_subnormal == float(finfo.smallest_subnormal)
    assert info.bits == finfo.bits and info.fraction_bits == finfo.nmant and info.exponent_bits == finfo.nexp


@pytest.mark.parametrize("dtype", FORMATS)
def test_the_extremes_are_numbers_of_the_format_and_their_neighbours_are_not(dtype):
    info = np_precision.format_info(dtype)
    for value in (info.max, info.smallest_normal, info.smallest_subnormal, 1 + info.eps):
        assert np_precision.round_to(value, dtype) == np.float32(value)
    assert np.isinf(np_precision.round_to(info.max * (1 + info.eps), dtype))
    assert np_precision.round_to(info.smallest_subnormal * 0.49, dtype) == 0.0
    assert np_precision.round_to(1 + 0.49 * info.eps, dtype) == 1.0


@pytest.mark.parametrize("dtype", FORMATS)
@settings(deadline=None)
@given(patterns=BIT_PATTERNS)
def test_ulp_equals_torch_nextafter(dtype, patterns):
    x = patterns.view(np.float32)
    np.testing.assert_array_equal(np_precision.ulp(x, dtype), torch_precision.ulp(torch.from_numpy(x), dtype).numpy())


@pytest.mark.parametrize("dtype", FORMATS)
def test_ulp_is_eps_at_one_and_the_smallest_subnormal_at_zero(dtype):
    info = np_precision.format_info(dtype)
    assert np_precision.ulp(1.0, dtype) == info.eps and np_precision.ulp(1.5, dtype) == info.eps
    assert np_precision.ulp(0.0, dtype) == info.smallest_subnormal
    assert np_precision.ulp(info.smallest_normal / 4, dtype) == info.smallest_subnormal
    assert np_precision.ulp(2**10 * 1.25, dtype) == 2**10 * info.eps
    assert np.isinf(np_precision.ulp(info.max, dtype))


# ---- sums ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FORMATS)
def test_running_sum_equals_adding_in_torch_tensors_of_the_format(dtype, rng):
    values = np.concatenate([rng.normal(size=300), np.full(300, 0.01), rng.normal(scale=1e-6, size=100)])
    ours = np_precision.running_sum(values, dtype)
    theirs = torch_precision.running_sum(torch.from_numpy(values), dtype).numpy()
    np.testing.assert_array_equal(bits(ours), bits(theirs))


def test_adding_a_hundredth_stalls_where_half_the_spacing_exceeds_it():
    values = np.full(10_000, 0.01)
    assert np_precision.running_sum(values, "float16")[-1] == 32.0  # spacing 1/32 above 32
    assert np_precision.running_sum(values, "bfloat16")[-1] == 4.0  # spacing 1/32 above 4
    assert abs(np_precision.running_sum(values, "float32")[-1] - 100.0) < 0.01


# ---- loss scaling --------------------------------------------------------------------------------


SCALER_SETTINGS = [
    dict(),
    dict(init_scale=2.0**24, growth_interval=3),
    dict(init_scale=1.0, growth_interval=1),
    dict(init_scale=3.3, growth_factor=1.7, backoff_factor=0.3, growth_interval=2),
    dict(init_scale=2.0**120, growth_factor=4.0, growth_interval=1),  # growth stops below float32's max
]


@pytest.mark.parametrize("settings", SCALER_SETTINGS, ids=str)
@settings(max_examples=40, deadline=None)
@given(found_inf=st.lists(st.booleans(), max_size=40))
def test_scale_history_equals_torch_grad_scaler(settings, found_inf):
    assert np_precision.scale_history(found_inf, **settings) == torch_precision.scale_history(found_inf, **settings)


def test_the_scale_halves_on_overflow_and_doubles_after_growth_interval_good_steps():
    scales = np_precision.scale_history([True, True, False, False, False, True, False], growth_interval=3)
    assert scales == [2.0**16, 2.0**15, 2.0**14, 2.0**14, 2.0**14, 2.0**15, 2.0**14, 2.0**14]


def test_growth_stops_at_the_largest_power_of_two_of_float32():
    scales = np_precision.scale_history([False] * 10, init_scale=2.0**124, growth_interval=1)
    assert scales[-1] == 2.0**127 and scales == torch_precision.scale_history([False] * 10, 2.0**124, growth_interval=1)


def test_a_scaler_that_forgets_to_reset_its_count_disagrees_with_torch():
    # Negative control: without the reset on overflow, the scale grows one step early.
    flags = [False, False, True, False]
    scaler, state, scales = np_precision.DynamicLossScaler(growth_interval=3), None, []
    state = scaler.init()
    for flag in flags:
        tracker = state.growth_tracker
        state = scaler.update(state, flag)
        if flag:  # the bug: keep counting through the overflow
            state = np_precision.LossScalerState(state.scale, tracker)
        scales.append(state.scale)
    assert [scaler.init().scale, *scales] != torch_precision.scale_history(flags, growth_interval=3)


def test_unscale_divides_by_the_scale_and_finds_inf_and_nan():
    scaler = np_precision.DynamicLossScaler(init_scale=1024.0)
    state = scaler.init()
    grads = [np.array([1024.0, -2048.0], np.float32), np.array([[3.0]])]
    unscaled, found_inf = scaler.unscale(grads, state)
    assert not found_inf
    np.testing.assert_array_equal(unscaled[0], [1.0, -2.0])
    assert unscaled[0].dtype == np.float32 and unscaled[1].dtype == np.float64
    for bad in (np.inf, -np.inf, np.nan):
        assert scaler.unscale([np.array([1.0, bad])], state)[1]


def test_unscale_uses_the_float32_reciprocal_like_torch():
    scaler = np_precision.DynamicLossScaler(init_scale=3.0)
    grads = np.array([1.0, 7.0, 1e-3], np.float32)
    (ours,), _ = scaler.unscale([grads], scaler.init())
    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([weight], lr=0.0)
    grad_scaler = torch.amp.GradScaler("cpu", init_scale=3.0)
    grad_scaler.scale((weight * 0).sum()).backward()  # initialises the scaler
    weight.grad = torch.from_numpy(grads.copy())
    grad_scaler.unscale_(optimizer)
    np.testing.assert_array_equal(ours, weight.grad.numpy())


def test_scaler_settings_are_checked():
    with pytest.raises(ValueError, match=r"growth_factor must be > 1, got 1.0"):
        np_precision.DynamicLossScaler(growth_factor=1.0)
    with pytest.raises(ValueError, match=r"backoff_factor must lie in \(0, 1\), got 1.5"):
        np_precision.DynamicLossScaler(backoff_factor=1.5)
    with pytest.raises(ValueError, match=r"growth_interval must be >= 1, got 0"):
        np_precision.DynamicLossScaler(growth_interval=0)
    with pytest.raises(ValueError, match=r"init_scale must be a positive float32 number, got -1.0"):
        np_precision.DynamicLossScaler(init_scale=-1.0)
    with pytest.raises(TypeError, match=r"found_inf must be True or False, got int"):
        np_precision.DynamicLossScaler().update(np_precision.DynamicLossScaler().init(), 1)


def test_both_scale_histories_check_their_settings_and_flags_alike():
    for module in (np_precision, torch_precision):
        with pytest.raises(ValueError, match=r"growth_interval must be >= 1, got 0"):
            module.scale_history([False], growth_interval=0)
        with pytest.raises(ValueError, match=r"backoff_factor must lie in \(0, 1\), got 2.0"):
            module.scale_history([False], backoff_factor=2.0)
        with pytest.raises(TypeError, match=r"found_inf.* must be True or False, got int"):
            module.scale_history([True, 0])
