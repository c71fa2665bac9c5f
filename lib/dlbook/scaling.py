"""A calculator for transformer language models: parameters, FLOPs, memory and compute-optimal sizes
(chapter "Scaling up"). Pure Python: nothing here imports torch, and every count is exact integer
arithmetic unless its docstring says otherwise.

- `TransformerConfig`: the shape of a decoder-only transformer, with presets of published ones
  (`GPT2_SMALL` ... `GPT2_XL`, `LLAMA2_7B` ... `LLAMA2_70B`, all in `PRESETS`).
  `dlbook.torch.gpt.GPT(config)` builds the model; the tests check that the counts here are its counts.
- `count_params`, `count_params_breakdown`: exact, and equal to the published counts of GPT-2 and Llama 2.
- `training_flops` (6 N D), `forward_flops_per_token`, `forward_flops_breakdown` (every matmul).
- `memory_bytes`, `activation_bytes`, `korthikanti_activation_bytes`: the memory of a training step.
- `chinchilla_loss`, `chinchilla_optimal`: Hoffmann et al.'s (2022) fitted loss and its
  compute-optimal model size and token count, in closed form.
- `training_days`: how long 6 N D FLOPs take at a given speed.

Notation: N parameters, D training tokens, C = 6 N D training FLOPs, L layers (n_layer), d = d_model,
V = vocab_size, s = sequence length, b = batch size, h = n_head.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from dlbook._validation import require_bool, require_int, require_positive, require_real

__all__ = [
    "GPT2_LARGE",
    "GPT2_MEDIUM",
    "GPT2_SMALL",
    "GPT2_XL",
    "HOFFMANN_2022",
    "LLAMA2_7B",
    "LLAMA2_13B",
    "LLAMA2_70B",
    "PRESETS",
    "ChinchillaFit",
    "MemoryBreakdown",
    "TransformerConfig",
    "activation_bytes",
    "chinchilla_loss",
    "chinchilla_optimal",
    "count_params",
    "count_params_breakdown",
    "forward_flops_breakdown",
    "forward_flops_per_token",
    "korthikanti_activation_bytes",
    "memory_bytes",
    "training_days",
    "training_flops",
]

NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu")
POSITIONS = ("learned", "rotary")
BYTES_PER_ELEMENT = {"float32": 4, "bfloat16": 2, "float16": 2}
OPTIMIZER_BUFFERS = {"sgd": 0, "sgd_momentum": 1, "adam": 2}  # state tensors per parameter tensor


def _require_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


# ---- configurations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TransformerConfig:
    """The shape of a decoder-only transformer (see `dlbook.torch.gpt` for what each option builds).

    The defaults are GPT-2's choices. Two fields are filled in when the config is made: d_ff = None
    becomes 4 * d_model and n_kv_head = None becomes n_head (plain multi-head attention). Because
    they are filled in, `dataclasses.replace(config, d_model=...)` keeps the old d_ff: pass
    d_ff=None as well to have it recomputed.
    """

    n_layer: int
    d_model: int
    n_head: int
    vocab_size: int
    context_length: int
    d_ff: int | None = None  # hidden units of the MLP
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    mlp: Literal["gelu", "swiglu"] = "gelu"
    bias: bool = True  # biases in the linear layers and LayerNorms
    tied_embeddings: bool = True  # the output head reuses the token embedding matrix
    positions: Literal["learned", "rotary"] = "learned"
    n_kv_head: int | None = None  # key/value heads; fewer than n_head is grouped-query attention

    def __post_init__(self) -> None:
        for name in ("n_layer", "d_model", "n_head", "vocab_size", "context_length"):
            object.__setattr__(self, name, require_int(name, getattr(self, name), minimum=1))
        d_ff = 4 * self.d_model if self.d_ff is None else require_int("d_ff", self.d_ff, minimum=1)
        n_kv_head = self.n_head if self.n_kv_head is None else require_int("n_kv_head", self.n_kv_head, minimum=1)
        object.__setattr__(self, "d_ff", d_ff)
        object.__setattr__(self, "n_kv_head", n_kv_head)
        _require_choice("norm", self.norm, NORMS)
        _require_choice("mlp", self.mlp, MLPS)
        _require_choice("positions", self.positions, POSITIONS)
        object.__setattr__(self, "bias", require_bool("bias", self.bias))
        object.__setattr__(self, "tied_embeddings", require_bool("tied_embeddings", self.tied_embeddings))
        if self.d_model % self.n_head:
            raise ValueError(
                f"d_model must be a multiple of n_head (each head gets d_model / n_head features), "
                f"got d_model={self.d_model}, n_head={self.n_head}"
            )
        if self.n_head % self.n_kv_head:
            raise ValueError(
                f"n_head must be a multiple of n_kv_head (each key/value head serves a whole group of "
                f"query heads), got n_head={self.n_head}, n_kv_head={self.n_kv_head}"
            )
        if self.positions == "rotary" and self.head_dim % 2:
            raise ValueError(
                f"rotary positions turn pairs of features, so d_model / n_head must be even, "
                f"got {self.d_model} / {self.n_head} = {self.head_dim}"
            )

    @property
    def head_dim(self) -> int:
        """Features per attention head, d_model / n_head."""
        return self.d_model // self.n_head

    @property
    def kv_dim(self) -> int:
        """Features of the keys (and of the values) of one token: n_kv_head * head_dim."""
        return self.n_kv_head * self.head_dim


def _gpt2(n_layer: int, d_model: int, n_head: int) -> TransformerConfig:
    """GPT-2 (Radford et al. 2019), as released in the Hugging Face checkpoints `gpt2` ... `gpt2-xl`."""
    return TransformerConfig(n_layer, d_model, n_head, vocab_size=50257, context_length=1024)


def _llama2(n_layer: int, d_model: int, n_head: int, d_ff: int, n_kv_head: int | None = None) -> TransformerConfig:
    """Llama 2 (Touvron et al. 2023), as in Hugging Face's LlamaConfig of the released checkpoints."""
    return TransformerConfig(
        n_layer,
        d_model,
        n_head,
        vocab_size=32000,
        context_length=4096,
        d_ff=d_ff,
        norm="rmsnorm",
        mlp="swiglu",
        bias=False,
        tied_embeddings=False,
        positions="rotary",
        n_kv_head=n_kv_head,
    )


GPT2_SMALL = _gpt2(12, 768, 12)
GPT2_MEDIUM = _gpt2(24, 1024, 16)
GPT2_LARGE = _gpt2(36, 1280, 20)
GPT2_XL = _gpt2(48, 1600, 25)
LLAMA2_7B = _llama2(32, 4096, 32, d_ff=11008)
LLAMA2_13B = _llama2(40, 5120, 40, d_ff=13824)
LLAMA2_70B = _llama2(80, 8192, 64, d_ff=28672, n_kv_head=8)
PRESETS = {
    "gpt2-small": GPT2_SMALL,
    "gpt2-medium": GPT2_MEDIUM,
    "gpt2-large": GPT2_LARGE,
    "gpt2-xl": GPT2_XL,
    "llama2-7b": LLAMA2_7B,
    "llama2-13b": LLAMA2_13B,
    "llama2-70b": LLAMA2_70B,
}


def _require_config(config: object) -> TransformerConfig:
    if not isinstance(config, TransformerConfig):
        raise TypeError(f"config must be a TransformerConfig, got {type(config).__name__}")
    return config


# ---- parameters ---------------------------------------------------------------------------------


def count_params_breakdown(config: TransformerConfig) -> dict[str, int]:
    """The parameters of `GPT(config)` by where they sit; the values sum to `count_params(config)`.

    With d = d_model, f = d_ff, k = kv_dim (= d without grouped-query attention), b = 1 with biases
    and 0 without:

    - embeddings: V d for the tokens, plus context_length * d for learned positions (rotary: none);
    - attention, per layer: d (d + 2k) + b (d + 2k) for the queries, keys and values, d^2 + b d for
      the output projection;
    - mlp, per layer: d f + b f for `up` (twice, with `gate`, for SwiGLU), f d + b d for `down`;
    - norms, 2 per layer and a final one: d scales each, plus d shifts for a LayerNorm with bias;
    - head: V d when untied; 0 when it shares the token embedding (GPT-2). It has no bias.

    Only parameters count, never buffers. GPT-2's Hugging Face checkpoint also stores, per layer,
    a (1024, 1024) causal-mask buffer `attn.bias`: counting it would add 12,582,912 to GPT-2 small.
    The published 124,439,808 counts the tied matrix once.
    """
    config = _require_config(config)
    d, f, k, v = config.d_model, config.d_ff, config.kv_dim, config.vocab_size
    b = int(config.bias)
    attention = d * (d + 2 * k) + b * (d + 2 * k) + d * d + b * d
    matrices_in = 2 if config.mlp == "swiglu" else 1
    mlp = matrices_in * (d * f + b * f) + f * d + b * d
    norm = 2 * d if config.norm == "layernorm" and config.bias else d
    return {
        "embeddings": v * d + (config.context_length * d if config.positions == "learned" else 0),
        "attention": config.n_layer * attention,
        "mlp": config.n_layer * mlp,
        "norms": (2 * config.n_layer + 1) * norm,
        "head": 0 if config.tied_embeddings else v * d,
    }


def count_params(config: TransformerConfig) -> int:
    """The exact number of parameters of `GPT(config)` (see `count_params_breakdown`)."""
    return sum(count_params_breakdown(config).values())


# ---- FLOPs --------------------------------------------------------------------------------------


def training_flops(n_params: float, n_tokens: float) -> float:
    """C = 6 N D, the usual estimate of the FLOPs to train N parameters on D tokens.

    A weight matrix (m, n) applied to one token's vector is m n multiply-adds: 2 FLOPs per
    parameter in the forward pass. The backward pass does two such products per matrix, one for
    the gradient of its input and one for the gradient of the weight: 4 FLOPs per parameter. So
    2 + 4 = 6 FLOPs per parameter per token.

    What it leaves out: attention's scores and weighted values, 4 n_layer s d_model FLOPs forward
    per token at sequence length s, which no parameter accounts for (about s / (6 d_model) of the
    2N of the layers' parameters when d_ff = 4 d_model: 22% for GPT-2 small at s = 1024); the norms,
    softmaxes and activations (a few FLOPs per element, not per parameter); and activation
    recomputation, if used (another forward pass). It counts, in turn, parameters that are looked
    up, not multiplied: the position embeddings, and the token embeddings unless tied to the head.
    `forward_flops_per_token` counts the matmuls exactly.
    """
    return 6.0 * require_positive("n_params", n_params) * require_positive("n_tokens", n_tokens)


def forward_flops_breakdown(config: TransformerConfig, seq_len: int | None = None) -> dict[str, int]:
    """The FLOPs of every matrix product in the forward pass, per token, at sequence length
    seq_len (default context_length); 2 FLOPs per multiply-add, as in Kaplan et al. (2020, Table 1)
    and Hoffmann et al. (2022, Appendix F).

    Per layer and token, with d = d_model, f = d_ff, k = kv_dim, s = seq_len:

    - attention_projections: 2 d (d + 2k) for queries, keys and values, 2 d^2 for the output;
    - attention_scores: 2 s d, the token's query against s keys in every head (q k^T);
    - attention_values: 2 s d, the weighted sum of s values in every head;
    - mlp: 2 d f per matrix, 2 matrices (3 for SwiGLU);

    and once per token, head: 2 d V for the logits. The embedding lookup is not a product: 0 FLOPs.

    Like torch.utils.flop_counter and the papers, this counts the full (s, s) score matrix: a causal
    kernel that skips the masked half does about half of the attention terms. Kaplan et al.'s
    2 n_layer n_ctx d_attn counts the scores only; Hoffmann et al. count the values too, as here.
    Not counted: biases, norms, softmax and activations (a few FLOPs per element).
    """
    config = _require_config(config)
    s = config.context_length if seq_len is None else require_int("seq_len", seq_len, minimum=1)
    d, f, k, layers = config.d_model, config.d_ff, config.kv_dim, config.n_layer
    matrices = 3 if config.mlp == "swiglu" else 2
    return {
        "attention_projections": layers * (2 * d * (d + 2 * k) + 2 * d * d),
        "attention_scores": layers * 2 * s * d,
        "attention_values": layers * 2 * s * d,
        "mlp": layers * matrices * 2 * d * f,
        "head": 2 * d * config.vocab_size,
    }


def forward_flops_per_token(config: TransformerConfig, seq_len: int | None = None) -> int:
    """The matmul FLOPs of the forward pass per token (see `forward_flops_breakdown`); the backward
    pass costs twice as much, so a training step costs about 3 times this per token."""
    return sum(forward_flops_breakdown(config, seq_len).values())


# ---- memory -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes held during a training step, by what holds them (see `memory_bytes`)."""

    weights: int
    gradients: int
    master_weights: int
    optimizer_state: int
    activations: int

    @property
    def total(self) -> int:
        return sum(getattr(self, field.name) for field in fields(self))

    def as_dict(self) -> dict[str, int]:
        """The fields and the total, for a table."""
        return {**{field.name: getattr(self, field.name) for field in fields(self)}, "total": self.total}


def _require_dtype(dtype: object) -> int:
    return BYTES_PER_ELEMENT[_require_choice("dtype", dtype, tuple(BYTES_PER_ELEMENT))]


def _saved_by_norm(config: TransformerConfig) -> int:
    """Numbers a norm and the matmul after it save per token: LayerNorm its input, mean and 1/std;
    RMSNorm (spelled out in dlbook.torch.gpt) its input, 1/rms and x / rms; then the output."""
    d = config.d_model
    return 3 * d + 1 if config.norm == "rmsnorm" else 2 * d + 2


def _saved_per_layer_per_token(config: TransformerConfig) -> int:
    """Numbers autograd saves per token in one block of `GPT(config)`, apart from the attention
    kernel's log-sum-exp (n_head numbers, always float32); see `activation_bytes`."""
    d, f, k = config.d_model, config.d_ff, config.kv_dim
    rotary, grouped = config.positions == "rotary", k < d
    # The attention kernel saves its q, k and v. Each is either a view of the qkv matmul's output,
    # which then stays alive whole (d + 2k), or a new tensor: rotated (d for q, k for k) or repeated
    # for every query head (d for k and for v).
    q_new = d if rotary else 0
    k_new = d if grouped else k if rotary else 0
    v_new = d if grouped else 0
    qkv_alive = not (rotary and grouped)
    attention = (d + 2 * k if qkv_alive else 0) + q_new + k_new + v_new + d  # + the kernel's output
    mlp = 4 * f if config.mlp == "swiglu" else 2 * f  # gelu: input, output; swiglu: gate, silu(gate), up, product
    return 2 * _saved_by_norm(config) + attention + mlp


def activation_bytes(
    config: TransformerConfig,
    batch_size: int,
    dtype: str = "float32",
    seq_len: int | None = None,
    activation_checkpointing: bool = False,
) -> int:
    """The bytes of the tensors autograd saves for the backward pass of `GPT(config)`, with its
    weights in `dtype`, on batch_size sequences of seq_len tokens (default context_length), loss
    included.

    An exact count for this book's model (`dlbook.torch.gpt`), which the tests compare with the
    tensors torch saves (`torch.autograd.graph.saved_tensors_hooks`), in float32 and bfloat16.
    Per layer and token, with d = d_model, f = d_ff, k = kv_dim, h = n_head:

    - each of the two norms: its input and output (the output saved by the matmul after it), plus
      the mean and 1/std for LayerNorm (2d + 2), or 1/rms and x / rms for RMSNorm (3d + 1);
    - attention: the kernel's q, k and v. Without rotary positions or grouped-query attention they
      are views of the qkv matmul's output, d + 2k, which then stays alive whole; rotary makes new
      rotated queries (d) and keys (k); grouped-query attention makes new keys and values repeated
      for every head (d each), and with both the qkv output is no longer needed. Then the kernel's
      output, d, and the log-sum-exp of each head's scores, h, in float32: a fused kernel
      (FlashAttention, which torch's scaled_dot_product_attention uses) keeps no (s, s) matrix;
    - mlp: GELU's input and output, 2f; SwiGLU's gate, silu(gate), up projection and product, 4f;

    and once per token after the layers: the final norm, as above, and the loss's log-softmax, V.
    For GPT-2 small that is 8d + 2f + 4 + h = 12,304 numbers per layer and token, about 16 d.
    Not counted: the token ids (int64), the logits (the caller holds them, not autograd),
    parameters, and the rotary tables (buffers). On a GPU, LayerNorm keeps its mean and 1/std in
    float32 for 16-bit inputs, 4 bytes per token and norm more than counted here; torch.autocast
    saves more still (float32 norm inputs, a 16-bit copy of every weight).

    With activation checkpointing, each block keeps only its input, d numbers per token, and
    recomputes the rest in the backward pass one block at a time: the peak holds L d per token plus
    one block's activations, plus the part after the layers.

    Korthikanti et al. (2022) count s b d (34 + 5 h s / d) bytes per layer for 16-bit GPT training
    with dropout and unfused attention: their 5 h s / d is the (s, s) scores, softmax and dropout
    mask of each head, which a fused kernel does not store, and their 34 includes dropout masks,
    which this model does not have. See `korthikanti_activation_bytes`.
    """
    config = _require_config(config)
    size = _require_dtype(dtype)
    batch_size = require_int("batch_size", batch_size, minimum=1)
    s = config.context_length if seq_len is None else require_int("seq_len", seq_len, minimum=1)
    layer = _saved_per_layer_per_token(config) * size + config.n_head * 4  # the log-sum-exp is float32
    if require_bool("activation_checkpointing", activation_checkpointing):
        layers = config.n_layer * config.d_model * size + layer
    else:
        layers = config.n_layer * layer
    after_layers = (_saved_by_norm(config) + config.vocab_size) * size
    return (layers + after_layers) * batch_size * s


def korthikanti_activation_bytes(config: TransformerConfig, batch_size: int, seq_len: int | None = None) -> int:
    """s b d (34 + 5 h s / d) bytes per layer, times n_layer (Korthikanti et al. 2022, eq. 1): the
    activations of a 16-bit GPT layer with dropout and unfused attention, no tensor parallelism.
    For comparison with `activation_bytes`, which counts this book's model exactly."""
    config = _require_config(config)
    batch_size = require_int("batch_size", batch_size, minimum=1)
    s = config.context_length if seq_len is None else require_int("seq_len", seq_len, minimum=1)
    d, h = config.d_model, config.n_head
    return config.n_layer * (34 * s * batch_size * d + 5 * h * s * s * batch_size)


def memory_bytes(
    config: TransformerConfig,
    batch_size: int,
    dtype: str = "float32",
    optimizer: str = "adam",
    mixed_precision: bool = False,
    activation_checkpointing: bool = False,
    seq_len: int | None = None,
) -> MemoryBreakdown:
    """The bytes of one training step of `GPT(config)` on batch_size sequences of seq_len tokens
    (default context_length), by what holds them. With N = count_params(config) and p the bytes of
    `dtype` (4 for float32, 2 for bfloat16 and float16):

    - weights: p N;
    - gradients: p N, one per weight;
    - master_weights: 0, or with mixed_precision 4 N: a float32 copy that the optimizer updates
      (small updates vanish when added to 16-bit weights), rounded to the 16-bit weights each step;
    - optimizer_state: k buffers per weight, k = 0 for "sgd", 1 for "sgd_momentum" (the velocity),
      2 for "adam" (the running mean and mean square); p bytes each, or 4 with mixed_precision;
    - activations: `activation_bytes(config, batch_size, dtype, seq_len, activation_checkpointing)`.

    So mixed-precision Adam holds 2 + 2 + 4 + 8 = 16 bytes per parameter, the count of Rajbhandari
    et al. (2020, ZeRO), who put the master copy in the optimizer state (their K = 12).
    mixed_precision needs a 16-bit dtype. (torch.autocast keeps float32 weights and gradients
    instead, 4 + 4 + 8 = 16 bytes per parameter for Adam too; its backward pass also keeps a 16-bit
    copy of every weight matrix and some float32 activations, which `activation_bytes` leaves out.)

    The total adds everything as if held at once. In a real step the gradients appear while the
    backward pass frees the activations (zero_grad sets them to None by default), so the total
    overestimates the peak by up to the gradients; not counted, in turn, are the logits the caller
    holds, temporary buffers, the allocator's fragmentation and the CUDA context.
    """
    config = _require_config(config)
    size = _require_dtype(dtype)
    buffers = OPTIMIZER_BUFFERS[_require_choice("optimizer", optimizer, tuple(OPTIMIZER_BUFFERS))]
    if require_bool("mixed_precision", mixed_precision) and size != 2:
        raise ValueError(
            f"mixed_precision keeps 16-bit weights next to a float32 master copy: give dtype='bfloat16' "
            f"or 'float16', got dtype={dtype!r}"
        )
    n = count_params(config)
    state_size = 4 if mixed_precision else size
    return MemoryBreakdown(
        weights=size * n,
        gradients=size * n,
        master_weights=4 * n if mixed_precision else 0,
        optimizer_state=buffers * state_size * n,
        activations=activation_bytes(config, batch_size, dtype, seq_len, activation_checkpointing),
    )


# ---- compute-optimal training (Chinchilla) ------------------------------------------------------


@dataclass(frozen=True)
class ChinchillaFit:
    """The parameters of L(N, D) = E + A / N^alpha + B / D^beta."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def __post_init__(self) -> None:
        for field in fields(self):
            object.__setattr__(self, field.name, require_positive(field.name, getattr(self, field.name)))


# Hoffmann et al. (2022), approach 3, eq. 10, with the rounded values printed in the paper.
HOFFMANN_2022 = ChinchillaFit(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def chinchilla_loss(n_params: float, n_tokens: float, fit: ChinchillaFit = HOFFMANN_2022) -> float:
    """The fitted loss L(N, D) = E + A / N^alpha + B / D^beta (nats per token on their data set):
    E is the entropy of text no model removes, A / N^alpha what a finite model adds, B / D^beta
    what finite data adds."""
    n, d = require_positive("n_params", n_params), require_positive("n_tokens", n_tokens)
    return fit.E + fit.A / n**fit.alpha + fit.B / d**fit.beta


def chinchilla_optimal(compute_flops: float, fit: ChinchillaFit = HOFFMANN_2022) -> tuple[float, float]:
    """(N_opt, D_opt): the parameters and tokens that minimise `chinchilla_loss` for a budget of
    C = 6 N D FLOPs.

    Put D = C / (6N) into L and set dL/dN = 0: alpha A N^-alpha = beta B (C/6)^-beta N^beta, so

        N_opt = G (C/6)^(beta / (alpha + beta)),  D_opt = (C/6)^(alpha / (alpha + beta)) / G,
        G = (alpha A / (beta B))^(1 / (alpha + beta)).

    So N_opt grows as C^0.45 and D_opt as C^0.55 with the printed exponents. At the budget of
    Gopher, C = 5.76e23 FLOPs, for which Chinchilla (70e9 parameters, 1.4e12 tokens) was sized, the
    printed fit gives N_opt = 3.2e10 parameters and D_opt = 3.0e12 tokens: about 93 tokens per
    parameter, not the 20 that Chinchilla was trained with and that Hoffmann et al.'s approaches 1
    and 2 recommend. The valley is flat: the fitted loss of Chinchilla itself, 1.937, is only 0.006
    above the optimum's 1.931. Besiroglu et al. (2024) found the printed estimates inconsistent
    with approaches 1 and 2, traced this to their rounding and to a fit stopped before it had
    converged, and refitted approach 3 to results compatible with approaches 1 and 2. Read this fit
    for the shape of the trade-off, not for the ratio of tokens to parameters.
    """
    c = require_positive("compute_flops", compute_flops) / 6.0
    alpha, beta = fit.alpha, fit.beta
    g = (alpha * fit.A / (beta * fit.B)) ** (1.0 / (alpha + beta))
    n_opt = g * c ** (beta / (alpha + beta))
    return n_opt, c / n_opt


def training_days(n_params: float, n_tokens: float, flops_per_second: float, utilisation: float = 0.4) -> float:
    """Days to train N parameters on D tokens: 6 N D / (flops_per_second * utilisation) / 86400.

    flops_per_second is the peak of all the accelerators together (an A100 does 312e12 in bfloat16);
    utilisation is the share of that peak the training reaches (model FLOPs utilisation, MFU),
    typically 0.3 to 0.5. For example, Llama 2 7B (2e12 tokens) reported 184,320 A100 hours:
    6 N D = 8.1e22 FLOPs, which at 312e12 FLOP/s is 72,000 hours at full speed, so its utilisation
    was about 0.39.
    """
    seconds = training_flops(n_params, n_tokens) / require_positive("flops_per_second", flops_per_second)
    utilisation = require_real("utilisation", utilisation)
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation must lie in (0, 1], got {utilisation}")
    return seconds / utilisation / 86400.0
