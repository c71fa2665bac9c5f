"""Plotting helpers shared by the chapters: the book's look, contour maps, and figures with a
slider that move without a kernel (on the static website) as well as in Jupyter."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, Code
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Okabe and Ito's palette, distinguishable with the common forms of colour blindness.
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

BOOK_STYLE = {
    "axes.prop_cycle": mpl.cycler(color=COLOURS),
    "figure.facecolor": "white",  # opaque, so that figures stay readable in the site's dark mode
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "font.size": 11,
    "figure.constrained_layout.use": True,
}


def use_book_style() -> None:
    """Apply the book's matplotlib settings (call once, in a notebook's first cell)."""
    mpl.rcParams.update(BOOK_STYLE)


def show_source(obj: object) -> Code:
    """Display the library's own source of a function or class, highlighted, so the book shows
    the code that runs rather than a copy of it."""
    return Code(inspect.getsource(obj), language="python")


def surface_grid(
    f: Callable[[np.ndarray], np.ndarray], xlim: tuple[float, float], ylim: tuple[float, float], resolution: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a surface f(p: (..., 2)) on a grid: returns X, Y, Z, each (resolution, resolution)."""
    xs = np.linspace(*xlim, resolution)
    ys = np.linspace(*ylim, resolution)
    X, Y = np.meshgrid(xs, ys)
    return X, Y, f(np.stack([X, Y], axis=-1))


def contour(
    ax: Axes,
    f: Callable[[np.ndarray], np.ndarray],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    levels: int = 25,
    resolution: int = 200,
) -> None:
    """Draw contour lines of f over a rectangle, with levels spread by quantile so that both the
    flat floor and the steep walls of a valley get lines."""
    X, Y, Z = surface_grid(f, xlim, ylim, resolution)
    heights = np.unique(np.quantile(Z, np.linspace(0, 1, levels + 2)[1:-1] ** 2))
    ax.contour(X, Y, Z, levels=heights, cmap="Greys_r", linewidths=0.7, alpha=0.8)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")
    ax.set_aspect("equal", adjustable="box")


def plot_trajectory(ax: Axes, points: np.ndarray, label: str | None = None, color: str | None = None) -> None:
    """Draw an optimizer's path, points: (S + 1, 2), from a hollow start to a filled end."""
    (line,) = ax.plot(points[:, 0], points[:, 1], "-", lw=1.5, color=color, label=label)
    ax.plot(*points[0], "o", mfc="none", color=line.get_color())
    ax.plot(*points[-1], "o", color=line.get_color())


def slider_animation(
    draw: Callable[[Figure, object], None],
    values: Sequence[object],
    figsize: tuple[float, float] = (6.4, 4.0),
    dpi: int = 72,
    fps: float = 2.0,
    frame_format: str = "png",
) -> HTML:
    """A figure as a function of one parameter, with a slider that works without a kernel.

    draw(fig, value) draws the figure for one value on an empty figure. Every frame is rendered
    now and embedded in the output as JavaScript and images (matplotlib's `to_jshtml`), so the
    slider moves on the static website, in Jupyter and in an exported notebook alike. Each frame
    costs roughly 40 kB at the default size: keep to a dozen or so values, or pass
    frame_format="jpeg" for pictures without fine lines.
    """
    if len(values) == 0:
        raise ValueError("values must hold at least one parameter value, got an empty sequence")
    fig = plt.figure(figsize=figsize, dpi=dpi)

    def frame(index: int) -> list:
        fig.clear()
        draw(fig, values[index])
        return []

    animation = FuncAnimation(fig, frame, frames=len(values), blit=False)
    with mpl.rc_context({"animation.frame_format": frame_format}):
        html = animation.to_jshtml(fps=fps, default_mode="once")
    plt.close(fig)
    return HTML(html)


def plot_decision_boundary(
    ax: Axes,
    predict_proba: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    resolution: int = 200,
    margin: float = 0.25,
) -> None:
    """Colour the plane by the class a classifier predicts, and draw the data on top.

    predict_proba: maps points (M, 2) float64 to class probabilities or scores (M, C), anything
        `np.asarray` accepts (a `dlbook.np.tensor.Tensor` too); each point's colour is its argmax.
    X: (N, 2) data points; y: (N,) integer classes. The grid of resolution x resolution points
    covers the data's bounding box widened by `margin` on every side.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (N, 2), got shape {X.shape}")
    if y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be integer classes of shape ({X.shape[0]},), got {y.dtype} of shape {y.shape}")
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    lows, highs = X.min(axis=0) - margin, X.max(axis=0) + margin
    xs, ys = np.linspace(lows[0], highs[0], resolution), np.linspace(lows[1], highs[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)  # (R, R) each
    scores = np.asarray(predict_proba(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)))  # (R * R, C)
    if scores.ndim != 2 or scores.shape[0] != resolution**2:
        raise ValueError(
            f"predict_proba must return scores of shape (M, C) for M = {resolution**2} points, got {scores.shape}"
        )
    n_classes = max(scores.shape[1], int(y.max()) + 1 if y.size else 0)
    colors = [plt.get_cmap("tab10")(k % 10) for k in range(n_classes)]
    light = [mpl.colors.to_rgba(color, alpha=0.25) for color in colors]
    predicted = scores.argmax(axis=1).reshape(grid_x.shape)  # (R, R)
    ax.contourf(grid_x, grid_y, predicted, levels=np.arange(n_classes + 1) - 0.5, colors=light)
    ax.scatter(X[:, 0], X[:, 1], c=[colors[k] for k in y], edgecolors="k", linewidths=0.6, s=20)
    ax.set_xlim(lows[0], highs[0])
    ax.set_ylim(lows[1], highs[1])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal", adjustable="box")
