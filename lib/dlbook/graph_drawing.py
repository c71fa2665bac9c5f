"""Drawing a scalar computational graph with matplotlib alone (chapter 2).

`draw_graph(root)` lays out the graph of a `dlbook.np.autograd.Value` left to right, one box per
value (label, data, grad) and one circle per operation. It needs no system binary such as
Graphviz, so it renders the same on the website, in Colab and on a laptop.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from statistics import mean

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path

from dlbook._validation import require_int
from dlbook.np.autograd import Value, topological_order

# The drawing is laid out in inches: on a figure of its own, 1 data unit is 1 inch, so the
# monospace text's size is known in advance and every box is made to fit it.
_FONT_SIZE = 8.0  # points
_CHAR_WIDTH = 0.61 * _FONT_SIZE / 72  # inches: DejaVu Sans Mono advances 0.602 em per character
_LINE_HEIGHT = 1.2 * _FONT_SIZE / 72
_PAD = 0.08  # around the text in a box
_RADIUS = 0.2  # of an operation's circle
_GAP = 0.3  # between a box and a circle, and between two rows of boxes
_MARGIN = 0.15
_SYMBOLS = {"*": "\u00d7", "/": "\u00f7", "neg": "-", "sigmoid": "\u03c3"}  # x-sign, division sign, sigma


def _number_text(x: float) -> str:
    return f"{x:.3f}" if x == 0 or 1e-3 <= abs(x) < 1e5 else f"{x:.3g}"


def _box_text(node: Value) -> str:
    lines = [node.label] if node.label else []
    return "\n".join([*lines, f"data {_number_text(node.data)}", f"grad {_number_text(node.grad)}"])


def _layout(order: list[Value]) -> tuple[dict[object, tuple[int, float]], list[list[object]]]:
    """Where to draw each node, (column, row) with row 0 in the middle, and the arrows' routes.

    An operation's result goes in column `depth`, the longest path to it from a leaf; a leaf goes
    just left of the first operation that uses it, so that a bias or a constant added late is
    drawn where it is added. An arrow that skips columns runs through a waypoint in each column
    it crosses, which takes a row there like a box, so that no box is drawn over an arrow. Rows:
    a few sweeps that move everything to the mean height of its neighbours, to keep arrows short.
    Returns the places of nodes and waypoints, and each arrow as [input, *waypoints, result].
    """
    depth, consumers = {}, defaultdict(list)
    for node in order:
        depth[node] = max((depth[parent] + 1 for parent in node.parents), default=0)
        for parent in node.parents:
            consumers[parent].append(depth[node])
    column = {node: min(consumers[node]) - 1 if consumers[node] and not node.parents else depth[node] for node in order}
    arrows, before, after = [], defaultdict(list), defaultdict(list)
    for node in order:
        for parent in node.parents:
            arrow = [parent, *(object() for _ in range(column[parent] + 1, column[node])), node]
            for i, waypoint in enumerate(arrow[1:-1]):
                column[waypoint] = column[parent] + 1 + i
            for start, end in itertools.pairwise(arrow):
                after[start].append(end)
                before[end].append(start)
            arrows.append(arrow)
    columns = [[] for _ in range(max(column.values()) + 1)]
    for item in column:
        columns[column[item]].append(item)
    row = dict.fromkeys(column, 0.0)
    for neighbours, sweep in [(before, columns), (after, columns[::-1]), (before, columns)]:
        for items in sweep:
            items.sort(key=lambda item: -mean(row[n] for n in neighbours[item]) if neighbours[item] else -row[item])
            for i, item in enumerate(items):
                row[item] = (len(items) - 1) / 2 - i
    return {item: (column[item], row[item]) for item in column}, arrows


def _arrow(ax: Axes, points: list[tuple[float, float]], bend: float, scale: float) -> None:
    style = dict(arrowstyle="-|>", mutation_scale=8 * scale, color="0.35", lw=0.8 * scale, zorder=1)
    if len(points) == 2:
        arrow = FancyArrowPatch(*points, shrinkA=0, shrinkB=0, connectionstyle=f"arc3,rad={bend}", **style)
    else:
        arrow = FancyArrowPatch(path=Path(points), **style)
    ax.add_patch(arrow)


def draw_graph(root: Value, ax: Axes | None = None, *, max_nodes: int = 100) -> Figure:
    """Draw root's computational graph, inputs on the left and root on the right.

    Each value is a box with its label (if any), data and grad, leaves shaded blue; each
    operation is a circle with its symbol, with arrows from its inputs and to its result. An
    operation's result is drawn in column `depth`, the longest path to it from a leaf (a leaf just
    left of where it is first used); values in one column are spread vertically. matplotlib only.
    ax: draw into these axes instead of a new figure sized to the graph; the text is scaled to
    fit them. max_nodes: larger graphs raise ValueError, since they would not be legible.
    Returns the figure (it is not shown).
    """
    order = topological_order(root)
    max_nodes = require_int("max_nodes", max_nodes, minimum=1)
    if len(order) > max_nodes:
        raise ValueError(f"the graph has {len(order)} value nodes, more than max_nodes={max_nodes} can show legibly")
    texts = {node: _box_text(node) for node in order}
    box_width = max(len(line) for text in texts.values() for line in text.splitlines()) * _CHAR_WIDTH + 2 * _PAD
    box_height = 3 * _LINE_HEIGHT + 2 * _PAD
    column_pitch = box_width + 2 * (_RADIUS + _GAP)
    places, arrows = _layout(order)
    xy = {item: (column * column_pitch, row * (box_height + _GAP)) for item, (column, row) in places.items()}
    half_width = (max(x for x, _ in xy.values()) + box_width) / 2 + _MARGIN
    half_height = (max(abs(y) for _, y in xy.values()) * 2 + box_height) / 2 + _MARGIN

    if ax is None:
        ax = Figure(figsize=(2 * half_width, 2 * half_height), layout="none").add_axes((0, 0, 1, 1))
    axes_width, axes_height = ax.get_position().size * ax.figure.get_size_inches()
    scale = min(axes_width / (2 * half_width), axes_height / (2 * half_height))  # 1 on a figure of its own
    center = half_width - box_width / 2 - _MARGIN
    ax.set_xlim(center - half_width, center + half_width)
    ax.set_ylim(-half_height, half_height)
    ax.set_aspect("equal")
    ax.set_axis_off()

    text_style = dict(ha="center", va="center", family="monospace", zorder=3)
    for node in order:
        x, y = xy[node]
        color = "#dbe9f6" if not node.parents else "#f4f4f4"
        corner = (x - box_width / 2, y - box_height / 2)
        ax.add_patch(FancyBboxPatch(corner, box_width, box_height, "round,pad=0,rounding_size=0.05", fc=color,
                                    ec="0.3", lw=0.8 * scale, zorder=2))
        ax.text(x, y, texts[node], fontsize=_FONT_SIZE * scale, **text_style)
        if node.parents:
            symbol = _SYMBOLS.get(node.op, node.op)
            ax.add_patch(Circle((x - column_pitch / 2, y), _RADIUS, fc="white", ec="0.3", lw=0.8 * scale, zorder=2))
            ax.text(x - column_pitch / 2, y, symbol, fontsize=_FONT_SIZE * scale * min(1.0, 4 / len(symbol)),
                    **text_style)
            _arrow(ax, [(x - column_pitch / 2 + _RADIUS, y), (x - box_width / 2, y)], 0.0, scale)

    uses = Counter()  # x * x: the second arrow from x bends, to be seen
    for parent, *waypoints, node in arrows:
        points = [(xy[parent][0] + box_width / 2, xy[parent][1])]
        for x, y in map(xy.get, waypoints):
            points += [(x - box_width / 2, y), (x + box_width / 2, y)]
        (x0, y0), (x, y) = points[-1], (xy[node][0] - column_pitch / 2, xy[node][1])
        distance = math.dist((x0, y0), (x, y))
        points.append((x - _RADIUS * (x - x0) / distance, y - _RADIUS * (y - y0) / distance))  # on the circle
        _arrow(ax, points, 0.3 * uses[parent, node], scale)
        uses[parent, node] += 1
    return ax.figure


def draw_unrolled_rnn(ax: Axes, steps: int = 4, *, cell: str = "RNN") -> None:
    """An RNN unrolled in time: inputs x_t at the bottom, states h_t in the middle, outputs y_t on top,
    one column per step, the same cell (the same weights) in every column. Draws on `ax`."""
    steps = require_int("steps", steps, minimum=1)
    box = {"boxstyle": "round,pad=0.3", "linewidth": 1.2}
    arrow = {"arrowstyle": "-|>", "color": "0.3", "lw": 1.2, "shrinkA": 14, "shrinkB": 14}
    rows = {"x": 0.0, "h": 1.0, "y": 2.0}
    colors = {"x": "#dbe9f6", "h": "#fde0c5", "y": "#d9f0d3"}
    ax.annotate("", xy=(0, rows["h"]), xytext=(-1, rows["h"]), arrowprops=arrow)
    ax.text(-1, rows["h"], "$h_0$", ha="center", va="center", fontsize=12)
    for t in range(steps):
        for name, height in rows.items():
            label = f"${name}_{{{t + 1}}}$" if name != "h" else f"{cell}\n$h_{{{t + 1}}}$"
            ax.text(t, height, label, ha="center", va="center", fontsize=11, bbox={**box, "facecolor": colors[name]})
        ax.annotate("", xy=(t, rows["h"]), xytext=(t, rows["x"]), arrowprops=arrow)
        ax.annotate("", xy=(t, rows["y"]), xytext=(t, rows["h"]), arrowprops=arrow)
        if t + 1 < steps:
            ax.annotate("", xy=(t + 1, rows["h"]), xytext=(t, rows["h"]), arrowprops=arrow)
    if steps > 1:
        ax.text(0.5, rows["h"] + 0.12, "$W_{hh}$", ha="center", fontsize=10, color="0.3")
    ax.text(0.06, 0.5, "$W_{ih}$", fontsize=10, color="0.3")
    ax.text(0.06, 1.5, "$W_{hy}$", fontsize=10, color="0.3")
    ax.set_xlim(-1.4, steps - 0.3)
    ax.set_ylim(-0.5, 2.5)
    ax.axis("off")
