import sys

import matplotlib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skscale.plotting import plot_tolerance  # noqa: E402
from skscale.tolerance import ToleranceModel  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def scales(log2_high, n_samples=200):
    return 2.0 ** np.linspace(0.0, log2_high, n_samples)


def x_positions(ax, gid):
    """x of the vertical lines carrying ``gid``."""
    return [line.get_xdata()[0] for line in ax.lines if line.get_gid() == gid]


def artists_by_gid(ax):
    counts = {}
    for artist in [*ax.lines, *ax.patches]:
        counts[artist.get_gid()] = counts.get(artist.get_gid(), 0) + 1
    return counts


@pytest.mark.parametrize("n_scales", [1, 3, 5])
def test_draws_every_part_of_the_figure(n_scales, tmp_path):
    model = ToleranceModel(n_scales=n_scales).fit(scales(3.0))
    ax = plot_tolerance(model)
    assert artists_by_gid(ax) == {
        "data_density": 1,
        "tolerance_component": n_scales,
        "tolerance_model": 1,
        "internal_scale": n_scales,
        "data_boundary": 2,
    }
    internal = x_positions(ax, "internal_scale")
    np.testing.assert_allclose(internal, np.log2(model.internal_scales_[0]))
    np.testing.assert_allclose(x_positions(ax, "data_boundary"), [0.0, 3.0])
    (mixture,) = [line for line in ax.lines if line.get_gid() == "tolerance_model"]
    np.testing.assert_allclose(mixture.get_ydata(), model.tolerance_pdf(mixture.get_xdata()))
    assert ax.get_xlabel() == "log2(scale) [octaves]"
    labels = ax.get_legend_handles_labels()[1]
    assert labels == [
        "data scale density\n(flat over the observed\nrange, half-normal tails)",
        "tolerance per internal scale",
        "tolerance model",
        "internal scales",
        "observed range",
    ]

    path = tmp_path / "tolerance.png"
    ax.figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000


def test_histogram_existing_axes_and_options():
    X = scales(2.0)
    model = ToleranceModel().fit(X)
    _, ax = plt.subplots()
    returned = plot_tolerance(model, ax, X=X, show_components=False, legend=False)
    assert returned is ax
    counts = artists_by_gid(ax)
    assert counts["data_histogram"] > 0
    assert "tolerance_component" not in counts
    assert ax.get_legend() is None
    heights = [patch.get_height() for patch in ax.patches]
    widths = [patch.get_width() for patch in ax.patches]
    assert np.dot(heights, widths) == pytest.approx(1.0)  # density histogram


def test_group_is_chosen_by_keyword():
    X = np.concatenate([scales(1.5), scales(3.0)])
    y = np.repeat(["narrow", "wide"], 200)
    model = ToleranceModel(tau=None).fit(X, y)
    ax = plot_tolerance(model, group="wide")
    internal = x_positions(ax, "internal_scale")
    np.testing.assert_allclose(internal, np.log2(model.internal_scales_[1]))
    assert "wide" in ax.get_title()
    with pytest.raises(ValueError, match="group must be given"):
        plot_tolerance(model)


def test_errors():
    with pytest.raises(NotFittedError):
        plot_tolerance(ToleranceModel())
    model = ToleranceModel().fit(scales(2.0))
    with pytest.raises(ValueError, match="n_points"):
        plot_tolerance(model, n_points=1)


def test_missing_matplotlib_names_the_plot_extra(monkeypatch):
    model = ToleranceModel().fit(scales(2.0))
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"skscale\[plot\]"):
        plot_tolerance(model)


@pytest.mark.parametrize("density", ["loguniform", "kde"])
@pytest.mark.parametrize("own_axes", [False, True])
def test_legend_stands_outside_the_data_area_and_names_the_black_density(density, own_axes):
    X = scales(2.0)
    model = ToleranceModel(n_scales=3, density=density).fit(X)
    if own_axes:
        _, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
        plot_tolerance(model, ax=ax, X=X)
    else:
        ax = plot_tolerance(model, X=X)
    figure = ax.figure
    figure.canvas.draw()  # Agg: constrained layout places the axes and the legend
    renderer = figure.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    data_area = ax.get_window_extent(renderer)  # the axes' patch: where the curves are drawn
    assert not legend.overlaps(data_area)
    # inside the figure, not cut off
    assert figure.bbox.contains(legend.x0, legend.y0) and figure.bbox.contains(legend.x1, legend.y1)

    (black,) = [line for line in ax.lines if line.get_gid() == "data_density"]
    assert black.get_color() == "k"
    kind = "kernel estimate" if density == "kde" else "flat"
    assert black.get_label().startswith(f"data scale density\n({kind} over the observed")
    assert black.get_label() in [text.get_text() for text in ax.get_legend().get_texts()]
