"""The GPT of `dlbook.torch.gpt`, for GPT-2-like and Llama-like configurations and their mixtures.

It is causal: a token never changes the logits of the tokens before it, and does change its own and
later ones. Its loss is the cross-entropy of its logits and starts at that of a uniform guess. Its
KV cache changes nothing: a sequence fed in pieces gives the logits of the whole, and cached
generation gives the tokens of uncached generation, greedy or sampled, also past the context
length, while feeding one token per step. Its rotary positions and RMSNorm are the book's and
torch's. With learned or rotary positions it learns a toy sequence in a few steps. Bad inputs fail
with a message saying what was expected.

Comparisons run in float64 (cache or no cache, the same products summed in another order: 1e-10),
except the training runs and the initial-loss check, which are statistical.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 (torch's own spelling)
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_close
from dlbook.scaling import TransformerConfig
from dlbook.torch import attention
from dlbook.torch.gpt import GPT, RMSNorm, apply_rotary, rotary_tables

SIZES = {"n_layer": 2, "d_model": 32, "n_head": 4, "vocab_size": 23, "context_length": 16}
LLAMA = {"norm": "rmsnorm", "mlp": "swiglu", "bias": False, "tied_embeddings": False, "positions": "rotary"}
CONFIGS = {
    "gpt2-like": TransformerConfig(**SIZES),
    "llama-like": TransformerConfig(**SIZES, **LLAMA, d_ff=48, n_kv_head=2),
    "rotary-multi-head": TransformerConfig(**SIZES, positions="rotary", mlp="swiglu"),
    "learned-grouped-query": TransformerConfig(**SIZES, norm="rmsnorm", bias=False, n_kv_head=1),
}
ATOL = 1e-10  # float64, the same products summed in another order


@pytest.fixture(autouse=True)
def one_thread():
    """The models here are tiny: one thread runs them in a millisecond, where two threads waiting on
    each other (under pytest -n 2 on two cores) take tens of milliseconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(config: TransformerConfig, dtype: torch.dtype = torch.float64, seed: int = 0) -> GPT:
    """GPT(config) initialised from its own seed, leaving torch's global generator as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return GPT(config).to(dtype)


def tokens(config: TransformerConfig, shape: tuple[int, int], seed: int = 0) -> torch.Tensor:
    return torch.randint(0, config.vocab_size, shape, generator=torch.Generator().manual_seed(seed))


# ---- the forward pass ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_have_one_row_per_token_and_the_loss_is_their_cross_entropy(name):
    config = CONFIGS[name]
    model = make_model(config)
    idx, targets = tokens(config, (3, 10)), tokens(config, (3, 10), seed=1)
    logits, loss = model(idx)
    assert logits.shape == (3, 10, config.vocab_size) and logits.dtype == torch.float64 and loss is None
    logits, loss = model(idx, targets)
    assert loss == F.cross_entropy(logits.reshape(-1, config.vocab_size), targets.reshape(-1))
    picked = logits.log_softmax(dim=-1).gather(-1, targets[..., None])  # log p(target) per token
    assert_close(loss, -picked.mean(), rtol=0, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(list(CONFIGS)), position=st.integers(0, 11))
def test_a_token_changes_no_earlier_logit_and_its_own_and_later_ones(name, position):
    config = CONFIGS[name]
    model = make_model(config)
    idx = tokens(config, (2, 12))
    changed = idx.clone()
    changed[:, position] = (idx[:, position] + 1) % config.vocab_size
    before, after = model(idx)[0], model(changed)[0]
    assert_close(after[:, :position], before[:, :position], rtol=0, atol=1e-12)
    # negative control: the change does reach the logits at its position and after it
    assert (after[:, position:] - before[:, position:]).abs().amax(dim=-1).min() > 1e-6


def test_the_initial_loss_is_that_of_a_uniform_guess():
    """Weights of standard deviation 0.02 make logits of about 0.02 sqrt(d_model) = 0.16: nearly
    uniform, so the loss starts near ln V, above it by about var(logits) / 2 = 0.013."""
    config = TransformerConfig(2, 64, 4, vocab_size=100, context_length=32)
    model = make_model(config, torch.float32)
    _, loss = model(tokens(config, (8, 32)), tokens(config, (8, 32), seed=1))
    assert abs(loss.item() - math.log(100)) < 0.05


@pytest.mark.parametrize("tied", [True, False])
def test_weights_start_as_in_gpt2(tied):
    """Standard deviation 0.02, and 0.02 / sqrt(2 n_layer) for the two projections into the
    residual stream; a standard deviation from 8192 draws is within 3% with near certainty."""
    config = TransformerConfig(4, 64, 4, vocab_size=50, context_length=8, tied_embeddings=tied)
    model = make_model(config, torch.float32)
    block = model.blocks[0]
    assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.03)
    for weight in (block.attn.proj.weight, block.mlp.down.weight):
        assert weight.std().item() == pytest.approx(0.02 / math.sqrt(8), rel=0.03)
    assert torch.all(block.mlp.up.bias == 0) and torch.all(block.norm1.weight == 1)
    assert (model.head.weight is model.wte.weight) == tied


# ---- the KV cache and generation ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_sequence_fed_in_pieces_with_the_cache_gives_the_logits_of_the_whole(name):
    config = CONFIGS[name]
    model = make_model(config)
    idx = tokens(config, (2, 16))
    whole, _ = model(idx)
    pieces, cache, start = [], None, 0
    for length in (5, 1, 7, 3):  # a prompt, one token, then chunks that attend to the cache and themselves
        logits, cache = model.forward_with_cache(idx[:, start : start + length], cache)
        pieces.append(logits)
        start += length
    assert_close(torch.cat(pieces, dim=1), whole, rtol=0, atol=ATOL)
    keys, values = cache[0]  # grouped-query attention caches n_kv_head heads, not n_head
    assert keys.shape == values.shape == (2, config.n_kv_head, 16, config.head_dim)
    assert len(cache) == config.n_layer


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize(
    "sampling", [{"temperature": 0.0}, {"temperature": 1.0}, {"temperature": 0.7, "top_k": 5}], ids=str
)
def test_cached_generation_gives_the_tokens_of_uncached_generation(name, sampling):
    """20 new tokens after 4 take the sequence past the context of 16, where both recompute."""
    config = CONFIGS[name]
    model = make_model(config)
    prompt = tokens(config, (3, 4))
    cached, uncached = (
        model.generate(prompt, 20, **sampling, use_kv_cache=use, generator=torch.Generator().manual_seed(7))
        for use in (True, False)
    )
    assert cached.shape == (3, 24)
    assert torch.equal(cached[:, :4], prompt)
    assert torch.equal(cached, uncached)


def test_sampling_depends_on_the_generator_and_top_k_1_is_greedy():
    """Negative control for the test above: another seed draws other tokens, so equal tokens there
    are not an accident of a generator being ignored."""
    model = make_model(CONFIGS["gpt2-like"])
    prompt = tokens(CONFIGS["gpt2-like"], (3, 4))

    def sample(seed: int, **options) -> torch.Tensor:
        return model.generate(prompt, 12, **options, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1), sample(2))
    assert torch.equal(sample(1, top_k=1), sample(2, temperature=0.0))


def test_the_cache_feeds_one_token_per_step_until_the_context_is_full():
    model = make_model(CONFIGS["llama-like"])
    fed: list[int] = []
    model.wte.register_forward_pre_hook(lambda module, inputs: fed.append(inputs[0].shape[1]))
    prompt = tokens(CONFIGS["llama-like"], (1, 4))
    model.generate(prompt, 14, use_kv_cache=True)
    assert fed == [4] + [1] * 12 + [16]  # past 16 tokens, the last 16 are recomputed
    fed.clear()
    model.generate(prompt, 14, use_kv_cache=False)
    assert fed == [*range(4, 17), 16]


# ---- the pieces ---------------------------------------------------------------------------------


def test_rotary_is_the_books_rotary():
    """apply_rotary works on (N, T, heads, head_dim) with tables; dlbook.torch.attention.rotary on
    (..., T, head_dim) with positions. Same pairs (2i, 2i + 1), same angles."""
    x = torch.randn(2, 7, 3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = apply_rotary(x, *rotary_tables(7, 8, dtype=torch.float64))
    books = attention.rotary(x.transpose(1, 2), torch.arange(7)).transpose(1, 2)
    assert_close(ours, books, rtol=0, atol=1e-12)


def test_rotary_scores_depend_only_on_the_distance_between_positions():
    q, k = torch.randn(2, 1, 1, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    cos, sin = rotary_tables(20, 8, dtype=torch.float64)

    def score(m: int, n: int) -> torch.Tensor:  # query at position m, key at position n
        return (apply_rotary(q, cos[m : m + 1], sin[m : m + 1]) * apply_rotary(k, cos[n : n + 1], sin[n : n + 1])).sum()

    assert_close(score(3, 1), score(15, 13), rtol=0, atol=1e-12)
    assert abs(score(3, 1) - score(3, 2)) > 1e-3  # negative control: the distance matters


def test_rms_norm_equals_torchs():
    norm = RMSNorm(6, eps=1e-5).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert_close(norm(x), F.rms_norm(x, (6,), norm.weight, eps=1e-5), rtol=0, atol=1e-12)


# ---- training -----------------------------------------------------------------------------------


def test_learned_and_rotary_positions_both_learn_a_toy_sequence():
    """Counting modulo 7 from a random start (each token is the previous one plus 1): 30 Adam steps
    take the loss from about ln 23 = 3.1 to under a quarter of that (below 0.2, in fact). One
    test for both models, because creating the first torch optimizer takes seconds (it imports
    torch._dynamo)."""
    for name in ("gpt2-like", "llama-like"):  # learned and rotary positions
        model = make_model(CONFIGS[name], torch.float32)
        generator = torch.Generator().manual_seed(0)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(30):
            start = torch.randint(0, 7, (16, 1), generator=generator)
            sequence = (start + torch.arange(17)) % 7
            _, loss = model(sequence[:, :-1], sequence[:, 1:])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[0] == pytest.approx(math.log(23), abs=0.1), name
        assert max(losses[-5:]) < 0.25 * losses[0], (name, losses[::5])


# ---- errors -------------------------------------------------------------------------------------


def test_bad_inputs_say_what_was_expected():
    config = CONFIGS["gpt2-like"]
    model = make_model(config)
    idx = tokens(config, (2, 8))
    with pytest.raises(ValueError, match=r"idx holds 17 tokens per sequence, more than context_length = 16; "):
        model(tokens(config, (2, 17)))
    with pytest.raises(TypeError, match=r"idx must be an int64 tensor \(N, T\) of token ids, got dtype torch.float32"):
        model(idx.float())
    with pytest.raises(TypeError, match=r"got dtype torch.int64 and shape \(8,\); a 1-D sequence becomes one row"):
        model(idx[0])
    with pytest.raises(TypeError, match=r"idx must be an int64 tensor .* got list"):
        model([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"idx must hold token ids in \[0, 23\), got values from 0 to 23"):
        model(torch.tensor([[0, 23]]))
    with pytest.raises(ValueError, match=r"idx must hold at least one token, got shape \(2, 0\)"):
        model(idx[:, :0])
    with pytest.raises(ValueError, match=r"targets must have the shape of idx, \(2, 8\), got \(2, 7\)"):
        model(idx, idx[:, :7])
    with pytest.raises(ValueError, match=r"targets must hold token ids in \[0, 23\), got values from -1 to"):
        model(idx, idx - 1)
    _, cache = model.forward_with_cache(idx)
    with pytest.raises(ValueError, match=r"9 tokens per sequence after 8 cached ones, .* crop it to idx\[:, -8:\]"):
        model.forward_with_cache(tokens(config, (2, 9)), cache)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        model.generate(idx, 3, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k must be >= 1, got 0"):
        model.generate(idx, 3, top_k=0)
    with pytest.raises(TypeError, match="max_new_tokens must be an integer"):
        model.generate(idx, 2.5)
    with pytest.raises(TypeError, match=r"config must be a dlbook\.scaling\.TransformerConfig, got dict"):
        GPT(dict(SIZES))
    with pytest.raises(ValueError, match=r"d_model must be a multiple of n_head"):
        GPT(TransformerConfig(**{**SIZES, "n_head": 5}))
    with pytest.raises(ValueError, match=r"norm must be one of 'layernorm', 'rmsnorm', got 'LayerNorm'"):
        GPT(TransformerConfig(**SIZES, norm="LayerNorm"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_model_runs_on_the_gpu_as_on_the_cpu():
    config = CONFIGS["llama-like"]
    model = make_model(config, torch.float32)
    idx = tokens(config, (2, 16))
    on_cpu, _ = model(idx)
    on_gpu, _ = model.to("cuda")(idx.to("cuda"))
    assert_close(on_gpu.cpu(), on_cpu, rtol=1e-4, atol=1e-5)  # TF32 and other kernels
    generated = model.generate(idx[:, :4].cuda(), 5, generator=torch.Generator("cuda").manual_seed(0))
    assert generated.device.type == "cuda" and generated.shape == (2, 9)
