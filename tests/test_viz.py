"""The plotting helpers: a kernel-free slider carries one frame per value, contours draw."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from dlbook.np import surfaces
from dlbook.viz import contour, plot_trajectory, show_source, slider_animation, surface_grid


def draw_line(fig, slope):
    ax = fig.subplots()
    ax.plot([0, 1], [0, slope])


def test_slider_animation_embeds_one_frame_per_value_and_a_slider():
    html = slider_animation(draw_line, [0.5, 1.0, 2.0], figsize=(2, 2), dpi=30).data
    assert len(re.findall(r"frames\[\d+\] = \"data:image/png;base64,", html)) == 3
    assert 'type="range"' in html  # the slider that moves without a kernel


def test_slider_animation_frames_differ_when_the_figure_does():
    html = slider_animation(draw_line, [0.0, 2.0], figsize=(2, 2), dpi=30).data
    frames = re.findall(r'frames\[\d+\] = "(data:image/png;base64,[^"]+)"', html)
    assert len(frames) == 2 and frames[0] != frames[1]


def test_slider_animation_closes_its_figure():
    before = len(plt.get_fignums())
    slider_animation(draw_line, [1.0], figsize=(2, 2), dpi=30)
    assert len(plt.get_fignums()) == before


def test_slider_animation_rejects_no_values():
    with pytest.raises(ValueError, match="at least one"):
        slider_animation(draw_line, [])


def test_surface_grid_evaluates_the_function_at_each_grid_point():
    X, Y, Z = surface_grid(surfaces.rosenbrock, (-1, 1), (0, 2), resolution=7)
    assert X.shape == Y.shape == Z.shape == (7, 7)
    assert np.allclose(Z[3, 5], surfaces.rosenbrock(np.array([X[3, 5], Y[3, 5]])))


def test_contour_and_trajectory_draw_on_the_given_axes():
    fig, ax = plt.subplots()
    contour(ax, surfaces.double_well, (-1.5, 1.5), (-1.5, 1.5), resolution=30)
    plot_trajectory(ax, np.array([[1.0, 0.1], [0.5, 0.5], [0.0, 1.0]]), label="path")
    assert ax.collections and len(ax.lines) == 3  # contour set; path, start marker, end marker
    assert ax.get_xlim() == (-1.5, 1.5)
    plt.close(fig)


def test_show_source_shows_the_library_code():
    assert "def rosenbrock_grad" in show_source(surfaces.rosenbrock_grad).data
