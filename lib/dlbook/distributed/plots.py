"""Pictures of distributed training: the timeline of a pipeline and the steps of a ring all-reduce."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from dlbook.distributed.costs import PipelineEvent
from dlbook.distributed.ring import RingTrace
from dlbook.viz import COLOURS

__all__ = ["draw_ring_step", "plot_pipeline"]


def plot_pipeline(ax: Axes, events: Sequence[PipelineEvent], unit: str = "s", scale: float = 1.0) -> None:
    """A Gantt chart of a pipeline step: one row per stage (stage 0 at the top), a box per event,
    forward passes in blue and backward passes in orange, labelled with the micro-batch. Times are
    multiplied by `scale` and the x axis is labelled in `unit`."""
    if not events:
        raise ValueError("events must hold at least one PipelineEvent")
    stages = max(e.stage for e in events) + 1
    for e in events:
        colour = COLOURS[0] if e.kind == "forward" else COLOURS[1]
        start, width = e.start * scale, (e.end - e.start) * scale
        ax.add_patch(Rectangle((start, e.stage - 0.4), width, 0.8, facecolor=colour, edgecolor="white", lw=0.8))
        if width > 0.02 * max(x.end for x in events) * scale:
            ax.text(start + width / 2, e.stage, str(e.micro_batch), ha="center", va="center", color="white", fontsize=8)
    ax.set_xlim(0, max(e.end for e in events) * scale * 1.01)
    ax.set_ylim(stages - 0.5, -0.5)
    ax.set_yticks(range(stages), [f"stage {s}" for s in range(stages)])
    ax.set_xlabel(f"time ({unit})")
    ax.grid(False)
    ax.add_patch(Rectangle((0, 0), 0, 0, facecolor=COLOURS[0], label="forward"))
    ax.add_patch(Rectangle((0, 0), 0, 0, facecolor=COLOURS[1], label="backward"))


def draw_ring_step(fig: Figure, trace: RingTrace, step: int) -> None:
    """The state of a ring all-reduce after `step` steps (0: the start): on the left the workers on
    their ring, with the chunk each sent at this step; on the right, for every worker and chunk,
    whose contributions the worker's copy of the chunk holds (a full column of colour: complete)."""
    p = trace.holds.shape[1]
    if not 0 <= step <= trace.steps:
        raise ValueError(f"step must lie in [0, {trace.steps}], got {step}")
    ring, grid = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    angles = np.pi / 2 - 2 * np.pi * np.arange(p) / p
    xy = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    for i, (x, y) in enumerate(xy):
        box = {"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "black"}
        ring.text(x, y, f"worker {i}", ha="center", va="center", fontsize=9, zorder=3, bbox=box)
        if step > 0:
            chunk = trace.sends[step - 1][i][0]
            target = xy[(i + 1) % p]
            ring.add_patch(
                FancyArrowPatch(
                    (x, y), tuple(target), connectionstyle="arc3,rad=-0.25", arrowstyle="-|>", mutation_scale=12,
                    color=COLOURS[1], shrinkA=22, shrinkB=22, lw=1.5,
                )
            )  # fmt: skip
            middle = (xy[i] + target) / 2 * 1.25
            ring.text(*middle, f"chunk {chunk}", ha="center", va="center", fontsize=9, color=COLOURS[1])
    ring.set_xlim(-1.6, 1.6)
    ring.set_ylim(-1.6, 1.6)
    ring.set_aspect("equal")
    ring.axis("off")
    phase = "start" if step == 0 else "reduce-scatter" if step <= p - 1 else "all-gather"
    ring.set_title(f"step {step} of {trace.steps}: {phase}", fontsize=10)
    holds = trace.holds[step]  # (worker, chunk, contribution)
    received = np.zeros((p, p), dtype=bool)
    if step > 0:
        for i, (chunk, _) in enumerate(trace.sends[step - 1]):
            received[(i + 1) % p, chunk] = True
    count = holds.sum(axis=-1)
    grid.imshow(count, cmap="Blues", vmin=0, vmax=p * 1.4)
    for i in range(p):
        for c in range(p):
            label = "all" if count[i, c] == p else "+".join(str(j) for j in np.flatnonzero(holds[i, c]))
            grid.text(c, i, label, ha="center", va="center", fontsize=9, color="white" if count[i, c] == p else "black")
            if received[i, c]:
                grid.add_patch(Rectangle((c - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=COLOURS[1], lw=2.5))
    grid.set_xticks(range(p), [str(c) for c in range(p)])
    grid.set_yticks(range(p), [f"worker {i}" for i in range(p)])
    grid.set_xlabel("chunk of the array")
    grid.set_title("contributions held (orange: just received)", fontsize=10)
    grid.grid(False)
