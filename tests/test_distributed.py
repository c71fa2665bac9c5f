"""Distributed training, `dlbook.distributed`: the collectives, the parallel layers and the scripts.

The ring all-reduce delivers the sum of the workers' arrays to every worker, identical on all of
them, after 2 (p - 1) steps in which each worker sends 2 (p - 1) / p of the array; its PyTorch twin,
run in real processes, equals the NumPy simulation bit for bit and torch.distributed.all_reduce to
rounding. The alpha-beta model is fitted back from its own predictions. GPipe's simulated schedule
respects its dependencies and idles (p - 1) / (m + p - 1) of the time. ZeRO's arithmetic gives the
numbers of Rajbhandari et al.'s Figure 1.

The multi-process tests launch real torchrun runs on the CPU with gloo (a few seconds each, for
start-up): three ranks for the ring, the tensor-parallel MLP and a three-stage pipeline, whose
outputs and gradients equal the single-process ones; two ranks for training the GPT, where
DistributedDataParallel and FSDP2 end with weights bit-identical to one process accumulating the
gradients of the same two half-batches, and within 1e-12 of one process on the whole batch (float64;
the sums are the same numbers added in another order), FSDP holding about half the bytes per rank.
`launch` reports a failed worker's traceback, and on a timeout stops torchrun and every worker.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlbook.distributed import (
    bubble_fraction,
    demos,
    fit_alpha_beta,
    gpipe_schedule,
    idle_fraction,
    init_distributed,
    launch,
    ring_all_reduce,
    ring_all_reduce_,
    ring_all_reduce_seconds,
    ring_all_reduce_trace,
    zero_bytes_per_rank,
)
from dlbook.distributed.pipeline import split_gpt
from dlbook.distributed.tensor_parallel import ColumnParallelLinear, shard_slice
from dlbook.distributed.train import book_config, train
from dlbook.torch.gpt import GPT


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- the ring all-reduce, simulated ------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(p=st.integers(1, 7), n=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_ring_all_reduce_gives_every_worker_the_sum(p, n, seed):
    arrays = list(np.random.default_rng(seed).normal(size=(p, n)))
    outputs = ring_all_reduce(arrays)
    assert len(outputs) == p
    np.testing.assert_allclose(outputs[0], np.sum(arrays, axis=0), rtol=1e-12, atol=1e-12)
    for out in outputs[1:]:  # the all-gather copies: every worker holds the very same numbers
        assert np.array_equal(out, outputs[0])


def test_ring_all_reduce_keeps_shape_and_leaves_the_inputs_alone(rng):
    arrays = [rng.normal(size=(3, 5)) for _ in range(4)]
    copies = [a.copy() for a in arrays]
    outputs = ring_all_reduce(arrays)
    assert all(out.shape == (3, 5) for out in outputs)
    assert all(np.array_equal(a, c) for a, c in zip(arrays, copies, strict=True))


def test_ring_all_reduce_is_exact_on_small_integers(rng):
    arrays = [rng.integers(-1000, 1000, size=37).astype(np.float64) for _ in range(5)]
    assert np.array_equal(ring_all_reduce(arrays)[2], np.sum(arrays, axis=0))


@pytest.mark.parametrize(("p", "n"), [(2, 1000), (4, 1000), (5, 1000), (8, 64)])
def test_each_worker_sends_2_p_minus_1_over_p_of_the_array(p, n, rng):
    trace = ring_all_reduce_trace([rng.normal(size=n) for _ in range(p)])
    assert trace.steps == 2 * (p - 1)
    assert np.all(trace.bytes_sent == 2 * (p - 1) * n * 8 // p)


@settings(max_examples=30, deadline=None)
@given(p=st.integers(1, 6), n=st.integers(1, 30))
def test_all_workers_together_send_2_p_minus_1_arrays_even_for_uneven_chunks(p, n):
    trace = ring_all_reduce_trace([np.ones(n, dtype=np.float32) for _ in range(p)])
    assert trace.bytes_sent.sum() == 2 * (p - 1) * n * 4


def test_reduce_scatter_leaves_one_complete_chunk_per_worker_and_all_gather_all(rng):
    p = 4
    trace = ring_all_reduce_trace([rng.normal(size=12) for _ in range(p)])
    complete = trace.holds.all(axis=-1)  # (steps + 1, worker, chunk): holds every contribution
    assert not complete[0].any()
    assert np.array_equal(complete[p - 1], np.roll(np.eye(p, dtype=bool), 1, axis=1))  # worker i: chunk i + 1
    assert complete[-1].all()


def test_ring_all_reduce_rejects_mismatched_or_missing_arrays():
    with pytest.raises(ValueError, match="same shape"):
        ring_all_reduce([np.ones(3), np.ones(4)])
    with pytest.raises(TypeError, match="non-empty list"):
        ring_all_reduce([])
    with pytest.raises(TypeError, match="floating dtype"):
        ring_all_reduce([np.ones(3, dtype=int)] * 2)


def test_ring_all_reduce_in_torch_needs_a_process_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        ring_all_reduce_(torch.ones(3))


# ---- cost models -------------------------------------------------------------------------------


def test_ring_time_is_its_steps_times_latency_plus_chunk_over_bandwidth(rng):
    p, n, alpha, bandwidth = 4, 4000, 1e-5, 1e9
    trace = ring_all_reduce_trace([rng.normal(size=n // 8) for _ in range(p)])  # n bytes of float64
    expected = trace.steps * alpha + trace.bytes_sent[0] / bandwidth
    assert ring_all_reduce_seconds(n, p, alpha, bandwidth) == pytest.approx(expected, rel=1e-12)
    assert ring_all_reduce_seconds(n, 1, alpha, bandwidth) == 0
    assert ring_all_reduce_seconds(np.array([0, n]), p, alpha, bandwidth).shape == (2,)


def test_fit_alpha_beta_recovers_the_constants_of_its_own_model():
    sizes = 8.0 * 4 ** np.arange(12)
    times = ring_all_reduce_seconds(sizes, 2, 30e-6, 2e9)
    fit = fit_alpha_beta(sizes, times, 2)
    assert fit.alpha == pytest.approx(30e-6, rel=1e-9) and fit.bandwidth == pytest.approx(2e9, rel=1e-9)
    with pytest.raises(ValueError, match="do not grow"):
        fit_alpha_beta(sizes, np.ones(12) - sizes / sizes.max() / 2, 2)  # faster for larger messages


@settings(max_examples=40, deadline=None)
@given(p=st.integers(1, 8), m=st.integers(1, 16), f=st.floats(0.1, 3), b=st.floats(0.1, 6))
def test_gpipe_idles_p_minus_1_over_m_plus_p_minus_1_whatever_the_times(p, m, f, b):
    events = gpipe_schedule(p, m, f, b)
    assert len(events) == 2 * p * m
    assert idle_fraction(events) == pytest.approx(bubble_fraction(p, m), abs=1e-12)


def test_gpipe_schedule_respects_its_dependencies():
    p, m = 3, 4
    events = {(e.stage, e.kind, e.micro_batch): e for e in gpipe_schedule(p, m)}
    for s in range(p):
        ordered = sorted((e for e in events.values() if e.stage == s), key=lambda e: e.start)
        assert all(a.end <= b.start for a, b in itertools.pairwise(ordered))  # one thing at a time
        for j in range(m):
            if s > 0:
                assert events[s, "forward", j].start >= events[s - 1, "forward", j].end
            if s < p - 1:
                assert events[s, "backward", j].start >= events[s + 1, "backward", j].end
            assert events[s, "backward", j].start >= events[p - 1, "forward", m - 1].end


def test_zero_reproduces_figure_1_of_rajbhandari_et_al():
    """7.5 billion parameters on 64 GPUs: 120, 31.4, 16.6 and 1.9 GB per GPU."""
    per_rank = [zero_bytes_per_rank(7.5e9, 64, stage).total / 1e9 for stage in range(4)]
    assert per_rank == pytest.approx([120, 31.4, 16.6, 1.875], abs=0.05)
    assert zero_bytes_per_rank(1e6, 1, 3).total == 16e6  # one rank: nothing to shard
    with pytest.raises(ValueError, match="stage"):
        zero_bytes_per_rank(1e6, 2, 4)


def test_bubble_fraction_rejects_zero_micro_batches():
    with pytest.raises(ValueError, match="micro_batches"):
        bubble_fraction(2, 0)


# ---- the pieces, in one process ----------------------------------------------------------------


def test_the_stages_of_a_split_gpt_compose_to_the_gpt():
    config = dataclasses.replace(book_config(30, n_layer=3, tied_embeddings=False), context_length=16)
    torch.manual_seed(0)
    model = GPT(config).double()
    idx = torch.randint(0, 30, (2, 16), generator=torch.Generator().manual_seed(0))
    stages = split_gpt(model, 2)
    assert [len(stage.blocks) for stage in stages] == [2, 1]
    x = idx
    for stage in stages:
        x = stage(x)
    torch.testing.assert_close(x, model(idx)[0], rtol=0, atol=0)
    own = {id(p) for stage in stages for p in stage.parameters()}
    assert own == {id(p) for p in model.parameters()}  # every parameter in exactly one stage
    assert sum(p.numel() for s in stages for p in s.parameters()) == sum(p.numel() for p in model.parameters())


def test_a_gpt_with_tied_embeddings_cannot_be_split():
    with pytest.raises(ValueError, match="tied"):
        split_gpt(GPT(book_config(30)), 2)


def test_shards_cover_the_features_once():
    slices = [shard_slice(10, r, 3) for r in range(3)]
    assert [(s.start, s.stop) for s in slices] == [(0, 4), (4, 7), (7, 10)]
    with pytest.raises(ValueError, match="rank"):
        shard_slice(10, 3, 3)


def test_parallel_layers_need_a_process_group():
    with pytest.raises(RuntimeError, match="process group"):
        ColumnParallelLinear.from_linear(torch.nn.Linear(4, 4))


def test_init_distributed_without_torchrun_runs_alone(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = init_distributed()
    assert (context.rank, context.world_size, context.backend, context.is_main) == (0, 1, None, True)


def test_train_rejects_what_it_cannot_do():
    with pytest.raises(ValueError, match="strategy"):
        train("zero", steps=1)
    with pytest.raises(RuntimeError, match="torchrun"):
        train("ddp", steps=1)
    with pytest.raises(ValueError, match="multiple"):
        train("single", steps=1, global_batch=6, micro_batches=4)


# ---- real processes ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_ranks(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("demos") / "demos.pt"
    launch("dlbook.distributed.demos", 3, ["--demos", "ring", "tensor", "pipeline", "--micro-batches", "1", "4",
                                           "--out", str(out)])  # fmt: skip
    return demos.load(str(out))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("train") / "train.pt"
    launch("dlbook.distributed.train", 2, ["--strategy", "ddp", "fsdp", "--steps", "3", "--out", str(out)])
    return torch.load(out, weights_only=True)


def test_ring_in_torch_equals_the_numpy_simulation_and_all_reduce(three_ranks):
    ring = three_ranks["ring"]
    assert ring["world_size"] == 3 and ring["equals_numpy_simulation"]
    assert ring["max_difference_from_all_reduce"] < 1e-14  # three summands: the order may differ


def test_tensor_parallel_mlp_equals_the_whole_mlp(three_ranks):
    tensor = three_ranks["tensor"]
    assert max(tensor["differences"].values()) < 1e-12
    assert len(tensor["differences"]) == 6  # the output and five gradients
    assert tensor["parameters_per_rank"] < tensor["parameters_whole"] / 2  # a third, plus the down bias


def test_a_three_stage_gpipe_step_equals_the_step_in_one_process(three_ranks):
    pipeline = three_ranks["pipeline"]
    for m, run in pipeline["runs"].items():
        assert run["gradient_relative_difference"] < 1e-12 and run["loss_difference"] < 1e-12
        assert len(run["events"]) == 2 * 3 * m
        assert {e.stage for e in run["events"]} == {0, 1, 2}


def test_ddp_and_fsdp_equal_one_process_accumulating_the_same_half_batches(trained):
    accumulated = train("single", steps=3, micro_batches=2).parameters
    whole = train("single", steps=3)
    for strategy in ("ddp", "fsdp"):
        parameters = trained[strategy]["parameters"]
        assert parameters.keys() == accumulated.keys()
        for name, value in parameters.items():
            assert torch.equal(value, accumulated[name]), f"{strategy}: {name} differs from accumulation"
            torch.testing.assert_close(value, whole.parameters[name], rtol=0, atol=1e-12)
    np.testing.assert_allclose(trained["ddp"]["losses"].numpy(), whole.losses, rtol=1e-12)


def test_fsdp_holds_half_the_bytes_per_rank_of_ddp(trained):
    ddp, fsdp = trained["ddp"]["bytes"], trained["fsdp"]["bytes"]
    assert len(ddp) == len(fsdp) == 2
    for key in ("parameters", "gradients", "optimizer_state"):
        assert ddp[0][key] == ddp[1][key]  # every rank holds everything
        assert sum(rank[key] for rank in fsdp) == pytest.approx(ddp[0][key], rel=1e-2)  # shards add up to it
        assert all(rank[key] < 0.51 * ddp[0][key] for rank in fsdp)


def test_launch_reports_the_workers_error():
    with pytest.raises(RuntimeError, match="global_batch must be a multiple"):
        launch("dlbook.distributed.train", 1, ["--strategy", "ddp", "--global-batch", "3", "--micro-batches", "2"])


def test_launch_stops_every_worker_when_it_times_out():
    marker = "918273"  # a seed no other run uses: it marks this run's workers on the command line
    with pytest.raises(RuntimeError, match="did not finish within 3 s and was stopped"):
        launch("dlbook.distributed.train", 2, ["--strategy", "ddp", "--steps", "100000", "--seed", marker], timeout=3)
    proc = Path("/proc")
    if not proc.is_dir():
        pytest.skip("no /proc to list the processes")
    left = []
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile
            continue
        if b"dlbook.distributed.train" in words and marker.encode() in words:
            left.append(cmdline.parent.name)
    assert not left, f"workers left running after the timeout: pids {left}"
