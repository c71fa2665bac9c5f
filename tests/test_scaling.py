"""The calculator of `dlbook.scaling`, checked against the model it describes and the papers it cites.

Parameter counts equal the parameters of `dlbook.torch.gpt.GPT` for every combination of options,
part by part, and reproduce the published counts of GPT-2 and Llama 2 exactly. The matmul FLOPs
equal torch.utils.flop_counter's count of the same model, and a training step costs three forward
passes. The activation memory equals, byte for byte, what autograd saves for the backward pass. The
closed-form Chinchilla optimum is the minimum a grid search finds.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from dlbook import scaling
from dlbook.scaling import (
    GPT2_SMALL,
    HOFFMANN_2022,
    LLAMA2_7B,
    PRESETS,
    TransformerConfig,
    activation_bytes,
    chinchilla_loss,
    chinchilla_optimal,
    count_params,
    count_params_breakdown,
    forward_flops_breakdown,
    forward_flops_per_token,
    korthikanti_activation_bytes,
    memory_bytes,
    training_days,
    training_flops,
)
from dlbook.torch.gpt import GPT

# Published parameter counts: `sum(p.numel() for p in model.parameters())` of the released
# checkpoints as Hugging Face transformers loads them (GPT2LMHeadModel, whose tied head counts
# once, and LlamaForCausalLM), the exact figures usually quoted for "124M" ... "70B".
PUBLISHED = {
    "gpt2-small": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "llama2-7b": 6_738_415_616,
    "llama2-13b": 13_015_864_320,
    "llama2-70b": 68_976_648_192,
}

# Every option of the config, on tiny sizes: d_model 16 with 4 heads; n_kv_head 4 is plain
# multi-head attention, 2 is grouped-query attention.
OPTIONS = list(
    itertools.product(
        ("layernorm", "rmsnorm"), ("gelu", "swiglu"), (True, False), (True, False), ("learned", "rotary"), (4, 2)
    )
)


def option_id(option: tuple) -> str:
    return "-".join(map(str, option))


OPTION_IDS = [option_id(option) for option in OPTIONS]


@pytest.fixture(autouse=True)
def one_thread():
    """The models here are tiny: one thread runs them in a millisecond, where two threads waiting on
    each other (under pytest -n 2 on two cores) take tens of milliseconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(option: tuple, **sizes: int) -> TransformerConfig:
    norm, mlp, bias, tied, positions, n_kv_head = option
    shape = {"n_layer": 2, "d_model": 16, "n_head": 4, "vocab_size": 11, "context_length": 8, "d_ff": 24, **sizes}
    return TransformerConfig(
        **shape, norm=norm, mlp=mlp, bias=bias, tied_embeddings=tied, positions=positions, n_kv_head=n_kv_head
    )


def part_of(name: str) -> str:
    """The key of count_params_breakdown that a parameter of GPT belongs to."""
    if name.startswith(("wte.", "wpe.")):
        return "embeddings"
    if name.startswith("head."):
        return "head"
    if ".attn." in name:
        return "attention"
    if ".mlp." in name:
        return "mlp"
    assert "norm" in name, name
    return "norms"


# ---- configurations and parameter counts --------------------------------------------------------


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_parameter_counts_are_reproduced_exactly(name):
    breakdown = count_params_breakdown(PRESETS[name])
    assert count_params(PRESETS[name]) == PUBLISHED[name]
    assert sum(breakdown.values()) == PUBLISHED[name]


def test_the_presets_are_the_published_shapes():
    assert (GPT2_SMALL.n_layer, GPT2_SMALL.d_model, GPT2_SMALL.d_ff, GPT2_SMALL.head_dim) == (12, 768, 3072, 64)
    assert scaling.LLAMA2_70B.kv_dim == 1024  # 8 key/value heads of 128 features for 64 query heads
    assert {c.vocab_size for name, c in PRESETS.items() if name.startswith("llama")} == {32000}
    assert all(c.tied_embeddings and c.positions == "learned" for n, c in PRESETS.items() if n.startswith("gpt2"))
    # GPT-2 small's embeddings are a third of its parameters, Llama 2 70B's under 1%
    assert count_params_breakdown(GPT2_SMALL)["embeddings"] / PUBLISHED["gpt2-small"] == pytest.approx(0.3165, abs=1e-4)
    assert count_params_breakdown(scaling.LLAMA2_70B)["embeddings"] / PUBLISHED["llama2-70b"] < 0.01


def test_an_untied_head_or_the_mask_buffers_would_miss_gpt2s_published_count():
    """Negative control: the two usual miscounts of GPT-2 small are off, by V d and by 12 (1024, 1024) masks."""
    untied = dataclasses.replace(GPT2_SMALL, tied_embeddings=False)
    assert count_params(untied) - PUBLISHED["gpt2-small"] == 50257 * 768
    with_mask_buffers = count_params(GPT2_SMALL) + 12 * 1024 * 1024
    assert with_mask_buffers == 137_022_720 != PUBLISHED["gpt2-small"]


@pytest.mark.parametrize("option", OPTIONS, ids=OPTION_IDS)
def test_count_params_equals_the_models_parameters_part_by_part(option):
    config = tiny(option)
    model = GPT(config)
    parts = dict.fromkeys(count_params_breakdown(config), 0)
    for name, parameter in model.named_parameters():  # a tied head appears once, as wte.weight
        parts[part_of(name)] += parameter.numel()
    assert parts == count_params_breakdown(config)
    assert count_params(config) == sum(p.numel() for p in model.parameters())


@settings(max_examples=15, deadline=None)
@given(
    n_layer=st.integers(1, 3),
    n_kv_head=st.integers(1, 3),
    groups=st.integers(1, 3),
    head_dim=st.sampled_from([2, 4, 6]),
    vocab_size=st.integers(1, 40),
    context_length=st.integers(1, 20),
    option=st.sampled_from(OPTIONS),
)
def test_count_params_holds_for_any_shape(n_layer, n_kv_head, groups, head_dim, vocab_size, context_length, option):
    n_head = n_kv_head * groups
    config = dataclasses.replace(
        tiny(option),
        n_layer=n_layer,
        d_model=n_head * head_dim,
        n_head=n_head,
        n_kv_head=n_kv_head,
        vocab_size=vocab_size,
        context_length=context_length,
        d_ff=None,
    )
    assert config.d_ff == 4 * config.d_model
    assert count_params(config) == sum(p.numel() for p in GPT(config).parameters())


def test_config_fills_in_d_ff_and_n_kv_head():
    config = TransformerConfig(2, 64, 4, 100, 32)
    assert (config.d_ff, config.n_kv_head, config.head_dim, config.kv_dim) == (256, 4, 16, 64)
    assert config == TransformerConfig(2, 64, 4, 100, 32, d_ff=256, n_kv_head=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_layer = 3


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"n_head": 5}, ValueError, r"d_model must be a multiple of n_head .* got d_model=64, n_head=5"),
        ({"n_kv_head": 3}, ValueError, r"n_head must be a multiple of n_kv_head .* got n_head=4, n_kv_head=3"),
        ({"norm": "batchnorm"}, ValueError, r"norm must be one of 'layernorm', 'rmsnorm', got 'batchnorm'"),
        ({"mlp": "relu"}, ValueError, r"mlp must be one of 'gelu', 'swiglu', got 'relu'"),
        ({"positions": "sinusoidal"}, ValueError, r"positions must be one of 'learned', 'rotary'"),
        ({"n_layer": 0}, ValueError, r"n_layer must be >= 1, got 0"),
        ({"vocab_size": 10.0}, TypeError, r"vocab_size must be an integer, got float 10.0"),
        ({"d_ff": -1}, ValueError, r"d_ff must be >= 1, got -1"),
        ({"bias": "yes"}, TypeError, r"bias must be True or False, got str 'yes'"),
        (
            {"d_model": 12, "n_head": 4, "positions": "rotary"},
            ValueError,
            r"d_model / n_head must be even, got 12 / 4 = 3",
        ),
    ],
)
def test_bad_configs_say_what_was_expected(changes, error, message):
    fields = {"n_layer": 2, "d_model": 64, "n_head": 4, "vocab_size": 100, "context_length": 32, **changes}
    with pytest.raises(error, match=message):
        TransformerConfig(**fields)


def test_the_calculator_does_not_import_torch():
    """A reader can size a model on a machine without PyTorch."""
    code = "import sys, dlbook.scaling; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_functions_refuse_what_is_not_a_config():
    with pytest.raises(TypeError, match="config must be a TransformerConfig, got dict"):
        count_params({"n_layer": 12})
    with pytest.raises(TypeError, match=r"config must be a dlbook\.scaling\.TransformerConfig, got dict"):
        GPT({"n_layer": 12})


# ---- FLOPs --------------------------------------------------------------------------------------


def test_training_flops_are_six_n_d():
    assert training_flops(70e9, 1.4e12) == 6 * 70e9 * 1.4e12 == pytest.approx(5.88e23)
    assert training_flops(1, 1) == 6.0
    with pytest.raises(ValueError, match=r"n_tokens must be > 0, got 0\.0"):
        training_flops(1e9, 0)


def test_forward_flops_equal_torchs_flop_counter_and_a_training_step_costs_three_forward_passes():
    """torch.utils.flop_counter counts every mm, addmm and bmm (2 FLOPs per multiply-add). The math
    backend of scaled_dot_product_attention spells attention out as two batched matmuls that it can
    see; the CPU's fused kernel is not in its table and would count 0. The backward pass multiplies
    every matrix twice (for the gradient of its input and of its weight): 2 forward passes more.
    (One test, because the flop counter's first use takes seconds.)"""
    batch, generator = 3, torch.Generator().manual_seed(0)
    for option in (  # each value of each option that changes the matmuls, all four MLP/attention pairs
        ("layernorm", "gelu", True, True, "learned", 4),
        ("layernorm", "gelu", True, False, "rotary", 2),
        ("rmsnorm", "swiglu", False, True, "rotary", 4),
        ("rmsnorm", "swiglu", False, False, "learned", 2),
    ):
        config = tiny(option)
        seq_len = 8 if option[0] == "layernorm" else 5  # the full context of 8, or less
        idx = torch.randint(0, config.vocab_size, (batch, seq_len), generator=generator)
        model = GPT(config)
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as forward:
            _, loss = model(idx, idx)
        assert forward.get_total_flops() == forward_flops_per_token(config, seq_len) * idx.numel(), option
        if option[1] == "swiglu" and option[-1] == 2:
            with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as backward:
                loss.backward()
            assert backward.get_total_flops() == 2 * forward.get_total_flops()


@pytest.mark.parametrize("name", ["llama2-7b", "llama2-13b", "llama2-70b"])
def test_forward_flops_are_two_per_multiplied_parameter_plus_attention(name):
    """Without biases or tied embeddings, every parameter outside the embedding and the norms is
    multiplied once per token: 2 FLOPs each, plus attention's 4 n_layer s d_model."""
    config = PRESETS[name]
    parts = count_params_breakdown(config)
    flops = forward_flops_breakdown(config)
    multiplied = count_params(config) - parts["embeddings"] - parts["norms"]
    attention = flops["attention_scores"] + flops["attention_values"]
    assert forward_flops_per_token(config) - attention == 2 * multiplied
    assert attention == 4 * config.n_layer * config.context_length * config.d_model


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_six_n_underestimates_three_forward_passes_by_under_a_fifth(name):
    """6N leaves out attention (4 L s d) and counts the embedding: 3 x forward / 6N at the full
    context is 1.07 (Llama 2 70B) to 1.14 (GPT-2 small)."""
    config = PRESETS[name]
    ratio = 3 * forward_flops_per_token(config) / training_flops(count_params(config), 1)
    assert 1.05 < ratio < 1.15


# ---- memory -------------------------------------------------------------------------------------


def test_weights_gradients_and_optimizer_state_bytes():
    n = count_params(GPT2_SMALL)
    fp32 = memory_bytes(GPT2_SMALL, 1)  # float32 Adam
    assert (fp32.weights, fp32.gradients, fp32.master_weights, fp32.optimizer_state) == (4 * n, 4 * n, 0, 8 * n)
    bf16 = memory_bytes(GPT2_SMALL, 1, "bfloat16", optimizer="sgd")
    assert (bf16.weights, bf16.gradients, bf16.optimizer_state) == (2 * n, 2 * n, 0)
    assert memory_bytes(GPT2_SMALL, 1, "float16", optimizer="sgd_momentum").optimizer_state == 2 * n
    # mixed precision: 16-bit weights and gradients, float32 master weights and Adam moments:
    # 2 + 2 + 4 + 8 = 16 bytes per parameter (ZeRO's count)
    mixed = memory_bytes(GPT2_SMALL, 1, "bfloat16", mixed_precision=True)
    assert (mixed.weights, mixed.gradients, mixed.master_weights, mixed.optimizer_state) == (2 * n, 2 * n, 4 * n, 8 * n)
    assert mixed.total - mixed.activations == 16 * n
    assert mixed.activations == activation_bytes(GPT2_SMALL, 1, "bfloat16")
    assert mixed.as_dict()["total"] == mixed.total == sum(dataclasses.astuple(mixed))


def test_a_7b_model_needs_more_than_one_80_gb_gpu_to_train_with_adam():
    state = memory_bytes(LLAMA2_7B, 1, "bfloat16", mixed_precision=True)
    assert state.total - state.activations == 16 * PUBLISHED["llama2-7b"]  # 108 GB before any activation
    assert state.total > 80e9


def test_memory_errors_say_what_was_expected():
    with pytest.raises(ValueError, match=r"mixed_precision keeps 16-bit weights .* got dtype='float32'"):
        memory_bytes(GPT2_SMALL, 1, mixed_precision=True)
    with pytest.raises(ValueError, match=r"dtype must be one of 'float32', 'bfloat16', 'float16', got 'fp8'"):
        memory_bytes(GPT2_SMALL, 1, "fp8")
    with pytest.raises(ValueError, match=r"optimizer must be one of 'sgd', 'sgd_momentum', 'adam', got 'adamw'"):
        memory_bytes(GPT2_SMALL, 1, optimizer="adamw")
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        activation_bytes(GPT2_SMALL, 0)


def saved_tensor_bytes(model: GPT, idx: torch.Tensor) -> int:
    """The bytes of the floating-point tensors autograd saves during model(idx, idx): each storage
    once (a view saved by several operations keeps one block of memory alive), leaving out the
    model's parameters and buffers and the 0-d normaliser of the loss."""
    own = {t.untyped_storage().data_ptr() for t in itertools.chain(model.parameters(), model.buffers())}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if tensor.is_floating_point() and tensor.dim() > 0 and storage.data_ptr() not in own:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(idx, idx)
    return sum(storages.values())


@pytest.mark.parametrize("option", OPTIONS, ids=OPTION_IDS)
def test_activation_bytes_equal_what_autograd_saves_in_float32(option):
    config = tiny(option)
    model = GPT(config)
    for batch, seq_len in ((2, 8), (3, 5)):
        idx = torch.randint(0, config.vocab_size, (batch, seq_len), generator=torch.Generator().manual_seed(batch))
        assert saved_tensor_bytes(model, idx) == activation_bytes(config, batch, seq_len=seq_len)


@pytest.mark.parametrize("option", [o for o in OPTIONS if o[2] and o[3]], ids=option_id)
def test_activation_bytes_equal_what_autograd_saves_in_bfloat16(option):
    """In bfloat16 everything is 2 bytes but the attention kernel's log-sum-exp, kept in float32."""
    config = tiny(option)
    idx = torch.randint(0, config.vocab_size, (2, 8), generator=torch.Generator().manual_seed(0))
    assert saved_tensor_bytes(GPT(config).to(torch.bfloat16), idx) == activation_bytes(config, 2, "bfloat16")


def test_unfused_attention_saves_the_score_matrices_the_formula_leaves_out():
    """Negative control: the math backend keeps (s, s) matrices per head, as Korthikanti et al.
    count them; the fused kernel the formula describes does not."""
    config = TransformerConfig(2, 32, 4, 20, 32, d_ff=64)
    idx = torch.randint(0, 20, (2, 32), generator=torch.Generator().manual_seed(0))
    model = GPT(config)
    with sdpa_kernel(SDPBackend.MATH):
        unfused = saved_tensor_bytes(model, idx)
    scores = config.n_layer * 2 * config.n_head * 32 * 32 * 4  # one (s, s) float32 matrix per sequence and head
    log_sum_exp = config.n_layer * 2 * config.n_head * 32 * 4  # which it keeps instead
    assert saved_tensor_bytes(model, idx) == activation_bytes(config, 2)
    assert unfused >= activation_bytes(config, 2) + scores - log_sum_exp


def test_activation_checkpointing_keeps_block_inputs_and_one_block():
    config = dataclasses.replace(GPT2_SMALL, n_layer=1)
    full, checkpointed = activation_bytes(config, 4), activation_bytes(config, 4, activation_checkpointing=True)
    assert checkpointed - full == 4 * 1024 * 768 * 4  # one layer: its input is kept on top of the block
    # 12 layers: checkpointing keeps about a third; what remains is mostly the loss's log-softmax,
    # V = 50257 numbers per token, four times a layer's 12,304
    deep = activation_bytes(GPT2_SMALL, 4, "bfloat16", activation_checkpointing=True)
    assert 0.3 < deep / activation_bytes(GPT2_SMALL, 4, "bfloat16") < 0.4


def test_korthikanti_formula_and_the_gpt2_small_activations():
    """Korthikanti et al.'s 34 s b h + 5 a s^2 b bytes per 16-bit layer. For GPT-2 small at 1024
    tokens their s^2 term is bigger than all the rest; this model, with fused attention and no
    dropout, saves 8d + 2f + 4 + a = 16.02 d numbers per token and layer, their 17 d + 2.5 a s."""
    s, d, heads = 1024, 768, 12
    assert korthikanti_activation_bytes(GPT2_SMALL, 1) == 12 * (34 * s * d + 5 * heads * s * s)
    per_layer = (8 * d + 2 * 3072 + 4) * 2 + heads * 4  # bfloat16 numbers, float32 log-sum-exp
    after = (2 * d + 2 + 50257) * 2
    assert activation_bytes(GPT2_SMALL, 1, "bfloat16") == (12 * per_layer + after) * s


# ---- compute-optimal training -------------------------------------------------------------------


def grid_optimum(compute: float, fit=HOFFMANN_2022) -> float:
    """The N that minimises the fitted loss along 6 N D = C, on a grid of 20,001 sizes."""
    n = np.logspace(3, 16, 20_001)
    loss = fit.E + fit.A / n**fit.alpha + fit.B / (compute / (6 * n)) ** fit.beta
    return float(n[np.argmin(loss)])


@settings(max_examples=25, deadline=None)
@given(log_compute=st.floats(17, 27))
def test_closed_form_optimum_is_the_grid_minimum(log_compute):
    compute = 10.0**log_compute
    n_opt, d_opt = chinchilla_optimal(compute)
    assert 6 * n_opt * d_opt == pytest.approx(compute, rel=1e-12)
    # the grid's spacing is 13 / 20,000 decades, a factor 1.0015
    assert abs(math.log10(grid_optimum(compute) / n_opt)) <= 13 / 20_000
    for factor in (0.99, 1.01):  # a 1% step either way along the budget raises the loss
        assert chinchilla_loss(n_opt * factor, d_opt / factor) > chinchilla_loss(n_opt, d_opt)


def test_a_wrong_exponent_misses_the_grid_minimum():
    """Negative control: swapping alpha and beta in the closed form lands two decades off at 1e23."""
    fit = HOFFMANN_2022
    g = (fit.beta * fit.B / (fit.alpha * fit.A)) ** (1 / (fit.alpha + fit.beta))
    wrong = g * (1e23 / 6) ** (fit.alpha / (fit.alpha + fit.beta))
    assert abs(math.log10(grid_optimum(1e23) / wrong)) > 1


def test_chinchillas_budget_under_the_fitted_law():
    """Chinchilla, 70e9 parameters on 1.4e12 tokens, sized for C = 5.76e23 as the paper quotes. The
    printed (rounded) approach-3 fit puts the optimum at a smaller model on more data: about 93
    tokens per parameter, not Chinchilla's 20, in a valley so flat that the two losses differ by
    0.006 nats."""
    n_opt, d_opt = chinchilla_optimal(5.76e23)
    assert 3.1e10 < n_opt < 3.3e10 and 2.9e12 < d_opt < 3.1e12
    assert 90 < d_opt / n_opt < 95
    assert chinchilla_loss(70e9, 1.4e12) - chinchilla_loss(n_opt, d_opt) == pytest.approx(0.0059, abs=1e-4)
    assert chinchilla_loss(70e9, 1.4e12) == pytest.approx(1.937, abs=1e-3)


def test_the_optimal_size_grows_as_c_to_the_0_45():
    fit = HOFFMANN_2022
    (n1, d1), (n2, d2) = chinchilla_optimal(1e21), chinchilla_optimal(1e23)
    assert n2 / n1 == pytest.approx(100 ** (fit.beta / (fit.alpha + fit.beta)), rel=1e-12)  # 100^0.452
    assert d2 / d1 == pytest.approx(100 ** (fit.alpha / (fit.alpha + fit.beta)), rel=1e-12)  # 100^0.548


def test_chinchilla_fit_and_loss_errors():
    with pytest.raises(ValueError, match=r"alpha must be > 0, got -0\.34"):
        scaling.ChinchillaFit(E=1.69, A=406.4, B=410.7, alpha=-0.34, beta=0.28)
    with pytest.raises(ValueError, match="n_params must be > 0"):
        chinchilla_loss(0, 1e9)
    with pytest.raises(TypeError, match="compute_flops must be a real number"):
        chinchilla_optimal("1e23")


def test_training_days_and_llama_2_7bs_utilisation():
    """Llama 2 7B: 2e12 tokens in 184,320 A100 hours (Touvron et al. 2023, Table 2); at the A100's
    312e12 bfloat16 FLOP/s that is a model FLOPs utilisation of 0.39."""
    assert training_days(1e9, 1e9, 6e18 / 86400) == pytest.approx(1 / 0.4)
    hours_at_full_speed = training_days(PUBLISHED["llama2-7b"], 2e12, 312e12, utilisation=1.0) * 24
    assert hours_at_full_speed == pytest.approx(71_987, rel=1e-4)
    assert hours_at_full_speed / 184_320 == pytest.approx(0.39, abs=0.005)
    with pytest.raises(ValueError, match=r"utilisation must lie in \(0, 1\], got 1.5"):
        training_days(1e9, 1e9, 1e15, utilisation=1.5)
