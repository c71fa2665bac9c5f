"""A GPT in one file: the decoder-only transformer of GPT-2 and Llama, with every option of
`dlbook.scaling.TransformerConfig` (chapter "Scaling up").

    idx (N, T) token ids
      -> token embedding, plus a learned position embedding                    x (N, T, d_model)
      -> n_layer pre-norm blocks:  x = x + attention(norm(x));  x = x + mlp(norm(x))
      -> final norm -> linear head                                        logits (N, T, vocab_size)

The options, and the published models that chose them:

- norm: "layernorm" (GPT-2; with a bias when config.bias) or "rmsnorm" (Llama; never a bias).
- mlp: "gelu", down(gelu(up(x))) with d_ff hidden units (GPT-2, with GELU's tanh approximation), or
  "swiglu", down(silu(gate(x)) * up(x)) (Shazeer 2020; Llama): three matrices instead of two.
- bias: biases in every linear layer and LayerNorm (GPT-2) or in none (Llama). The head never has one.
- tied_embeddings: the head reuses the token embedding matrix (GPT-2) or has its own (Llama).
- positions: "learned", a table of context_length vectors added to the token embeddings (GPT-2), or
  "rotary", queries and keys rotated by their position in every layer (Su et al. 2021; Llama), with
  no parameters. The rotation pairs features (2i, 2i + 1), as `dlbook.torch.attention.rotary` does.
- n_kv_head < n_head: grouped-query attention (Ainslie et al. 2023; Llama 2 70B). Each key/value head
  serves n_head / n_kv_head query heads, which shrinks the KV cache by that factor.

Attention is `torch.nn.functional.scaled_dot_product_attention`, which picks a fused kernel on the
CPU and the GPU. Weights start as in GPT-2: normal with standard deviation 0.02, biases zero, and the
two projections that write into the residual stream (attn.proj and mlp.down) scaled by
1 / sqrt(2 n_layer), since each block adds two of them to it. There is no dropout: the models of
this chapter train for less than an epoch, where dropout does not help (Llama uses none either).

The model runs where its parameters are: `GPT(config).to(device)`, with idx on the same device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 (torch's own spelling)
from torch import nn

from dlbook._validation import require_bool, require_int, require_nonnegative
from dlbook.scaling import TransformerConfig

__all__ = ["GPT", "KVCache", "RMSNorm", "apply_rotary", "rotary_tables"]

# One (keys, values) pair per layer, each (N, n_kv_head, S, head_dim): the S tokens seen so far.
KVCache = list[tuple[torch.Tensor, torch.Tensor]]


def rotary_tables(
    length: int, head_dim: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, each (length, head_dim / 2): position m turns pair i by
    the angle m * base^(-2i / head_dim). Computed in float64, returned in `dtype`."""
    theta = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * theta
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair of features (2i, 2i + 1) of every head of x (N, T, heads, head_dim) by the
    angles whose cos and sin are (T, head_dim / 2) -> (N, T, heads, head_dim)."""
    cos, sin = cos[:, None, :], sin[:, None, :]  # the same angles for every head
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


class RMSNorm(nn.Module):
    """x / rms(x) * weight over the last axis, rms(x) = sqrt(mean(x^2) + eps) (Zhang and Sennrich
    2019): a LayerNorm that neither subtracts the mean nor adds a bias. (N, T, d) -> (N, T, d);
    the computation of torch.nn.RMSNorm(d, eps), spelled out."""

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


def _norm(config: TransformerConfig) -> nn.Module:
    if config.norm == "layernorm":
        return nn.LayerNorm(config.d_model, eps=1e-5, bias=config.bias)
    return RMSNorm(config.d_model, eps=1e-5)


class CausalSelfAttention(nn.Module):
    """Multi-head (or grouped-query) causal self-attention: x (N, T, d_model) -> (N, T, d_model)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.n_kv_head, config.head_dim
        # one matrix makes the queries (n_head heads) and the keys and values (n_kv_head heads each)
        self.qkv = nn.Linear(config.d_model, config.d_model + 2 * config.kv_dim, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (N, T, d_model), the rotary (cos, sin) of its T positions, the cached keys and values of
        the tokens before it -> (out (N, T, d_model), keys and values of all tokens for the cache)."""
        n, t, _ = x.shape
        kv_dim = self.n_kv_head * self.head_dim
        q, k, v = self.qkv(x).split([self.n_head * self.head_dim, kv_dim, kv_dim], dim=-1)
        q = q.view(n, t, self.n_head, self.head_dim)  # (N, T, n_head, head_dim)
        k = k.view(n, t, self.n_kv_head, self.head_dim)  # (N, T, n_kv_head, head_dim)
        v = v.view(n, t, self.n_kv_head, self.head_dim)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (N, heads, T, head_dim)
        if past is not None:  # the keys and values of the earlier tokens come from the cache
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        present = (k, v)
        groups = self.n_head // self.n_kv_head
        if groups > 1:  # grouped-query attention: each key/value head serves `groups` query heads
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        s = k.shape[2]  # keys: the T new tokens and the S - T cached ones before them
        # query i (at position S - T + i) sees keys 0 .. S - T + i; with no cache, S = T: the causal triangle
        mask = None if s == t else torch.ones(t, s, dtype=torch.bool, device=x.device).tril(s - t)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)
        out = out.transpose(1, 2).reshape(n, t, self.n_head * self.head_dim)  # the heads side by side
        return self.proj(out), present


class MLP(nn.Module):
    """The position-wise feed-forward network: x (N, T, d_model) -> (N, T, d_model)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.swiglu = config.mlp == "swiglu"
        self.up = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.gate = nn.Linear(config.d_model, config.d_ff, bias=config.bias) if self.swiglu else None
        self.down = nn.Linear(config.d_ff, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:  # a gate in (roughly) [0, 1] per hidden unit, computed from x itself
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class Block(nn.Module):
    """A pre-norm transformer block: x (N, T, d_model) -> (N, T, d_model), and the attention's cache."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.norm1, self.attn = _norm(config), CausalSelfAttention(config)
        self.norm2, self.mlp = _norm(config), MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        attended, present = self.attn(self.norm1(x), rope, past)
        x = x + attended  # each sublayer adds to the residual stream x; none replaces it
        x = x + self.mlp(self.norm2(x))
        return x, present


class GPT(nn.Module):
    """A decoder-only transformer language model built from a `TransformerConfig`.

    - forward(idx (N, T) int64, targets (N, T) int64 or None) -> (logits (N, T, vocab_size), the
      mean cross-entropy loss or None): what training calls;
    - forward_with_cache(idx, cache) -> (logits, cache): the same logits, for tokens that follow
      the ones whose keys and values are cached;
    - generate(idx, max_new_tokens, temperature, top_k, use_kv_cache, generator) -> idx with
      max_new_tokens sampled tokens appended.

    `dlbook.scaling.count_params(config)` is its number of parameters, and
    `dlbook.scaling.activation_bytes` the memory its backward pass keeps.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"config must be a dlbook.scaling.TransformerConfig, got {type(config).__name__}")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)  # token embedding
        self.wpe = nn.Embedding(config.context_length, config.d_model) if config.positions == "learned" else None
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = _norm(config)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tied_embeddings:  # one matrix both reads the tokens in and scores them out
            self.head.weight = self.wte.weight
        if config.positions == "rotary":  # tables, not parameters: non-persistent buffers
            cos, sin = rotary_tables(config.context_length, config.head_dim)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:  # the two writes into the residual stream per block
            for weight in (block.attn.proj.weight, block.mlp.down.weight):
                nn.init.normal_(weight, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (N, T) int64 token ids, T <= context_length; targets (N, T) int64 or None ->
        (logits (N, T, vocab_size), the mean cross-entropy of targets under the logits, or None)."""
        logits, _ = self.forward_with_cache(idx)
        if targets is None:
            return logits, None
        self._check_tokens("targets", targets)
        if targets.shape != idx.shape:
            raise ValueError(f"targets must have the shape of idx, {tuple(idx.shape)}, got {tuple(targets.shape)}")
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def forward_with_cache(self, idx: torch.Tensor, cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """The logits (N, T, vocab_size) of tokens idx (N, T) that follow the S tokens whose keys and
        values `cache` holds (none when None), and the cache of all S + T tokens.

        Feeding a sequence in pieces, each with the cache the previous piece returned, gives the
        logits of feeding it whole: this is how `generate` avoids recomputing the past.
        """
        self._check_tokens("idx", idx)
        start, t = (0 if cache is None else cache[0][0].shape[2]), idx.shape[1]
        room = self.config.context_length - start
        if t > room:
            cached = f" after {start} cached ones" if start else ""
            hint = f"crop it to idx[:, -{room}:]" if room > 0 else "the cache is full"
            raise ValueError(
                f"idx holds {t} tokens per sequence{cached}, more than context_length = "
                f"{self.config.context_length}; {hint}"
            )
        x = self.wte(idx)  # (N, T, d_model)
        rope = None
        if self.wpe is not None:  # learned positions: add the vectors of positions start .. start + T - 1
            x = x + self.wpe(torch.arange(start, start + t, device=idx.device))
        else:  # rotary positions: every attention layer turns its queries and keys by these angles
            rope = (self.rope_cos[start : start + t], self.rope_sin[start : start + t])
        present = []
        for layer, block in enumerate(self.blocks):
            x, kv = block(x, rope, None if cache is None else cache[layer])
            present.append(kv)
        return self.head(self.norm(x)), present

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        use_kv_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Append max_new_tokens tokens to idx (N, T), each drawn from the model's next-token
        distribution softmax(logits / temperature), restricted to the top_k likeliest tokens when
        top_k is given; temperature = 0 takes the likeliest token (greedy decoding). `generator`
        (on idx's device) makes the draws reproducible. Returns (N, T + max_new_tokens).

        With use_kv_cache, each step feeds only the newest token and reuses the keys and values of
        the earlier ones; without it, each step runs the whole sequence again. Both give the same
        tokens. Once the sequence is longer than context_length, the model sees its last
        context_length tokens, recomputed each step (cached positions would no longer match), and a
        prompt longer than that is cropped the same way.
        """
        self._check_tokens("idx", idx)
        max_new_tokens = require_int("max_new_tokens", max_new_tokens)
        temperature = require_nonnegative("temperature", temperature)
        if top_k is not None:
            top_k = require_int("top_k", top_k, minimum=1)
        use_kv_cache = require_bool("use_kv_cache", use_kv_cache)
        context = self.config.context_length
        cache = None
        for _ in range(max_new_tokens):
            if use_kv_cache and cache is not None and idx.shape[1] <= context:
                logits, cache = self.forward_with_cache(idx[:, -1:], cache)  # the earlier tokens are cached
            else:
                logits, cache = self.forward_with_cache(idx[:, -context:])  # the whole sequence, at most the context
            next_token = _sample(logits[:, -1], temperature, top_k, generator)  # (N, 1)
            idx = torch.cat((idx, next_token), dim=1)
        return idx

    def _check_tokens(self, name: str, tokens: object) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.int64 or tokens.ndim != 2:
            got = f"dtype {tokens.dtype} and shape {tuple(tokens.shape)}" if isinstance(tokens, torch.Tensor) else None
            raise TypeError(
                f"{name} must be an int64 tensor (N, T) of token ids, got {got or type(tokens).__name__}; "
                f"a 1-D sequence becomes one row with {name}[None], float ids integers with {name}.long()"
            )
        if tokens.numel() == 0:
            raise ValueError(f"{name} must hold at least one token, got shape {tuple(tokens.shape)}")
        low, high = int(tokens.min()), int(tokens.max())
        if low < 0 or high >= self.config.vocab_size:
            raise ValueError(
                f"{name} must hold token ids in [0, {self.config.vocab_size}), got values from {low} to {high}"
            )


def _sample(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
) -> torch.Tensor:
    """One token per row of logits (N, V) -> (N, 1)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth_largest = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_largest, -math.inf)
    return torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
