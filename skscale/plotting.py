"""Matplotlib figures for skscale (needs the ``plot`` extra).

Every function imports matplotlib when it is called, so ``import skscale`` works
without it; a missing matplotlib raises an :class:`ImportError` that names the
extra to install.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .callbacks import scale_history
from .utils.validation import Integer

__all__ = ["plot_error_per_scale", "plot_isr_trajectory", "plot_tolerance"]


def _data_density_label(model):
    """Legend entry of the black curve: the data scale density the model assumes."""
    inside = "kernel estimate" if model.density == "kde" else "flat"
    return f"data scale density\n({inside} over the observed\nrange, half-normal tails)"


def _import_pyplot():
    """Return ``matplotlib.pyplot`` or raise an ImportError naming the extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skscale.plotting needs matplotlib; install it with "
            "`pip install 'skscale[plot]'` (the `plot` extra)."
        ) from exc
    return plt


def _safe_log2(scales):
    """log2 that maps non-positive scale factors to a very low octave."""
    return np.log2(np.maximum(scales, np.finfo(np.float64).tiny))


def _dashed_verticals(ax, positions, *, colour, label, gid):
    """Dashed vertical lines at ``positions`` sharing one legend entry."""
    for index, position in enumerate(positions):
        ax.axvline(
            position,
            color=colour,
            linestyle="--",
            linewidth=1.0,
            label=label if index == 0 else "_nolegend_",
            gid=gid,
        )


def _legend_beside(ax):
    """The legend right of the axes, top-aligned, so that it covers none of the curves.

    A figure with constrained layout (or ``savefig(bbox_inches="tight")``) makes room for it.
    """
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small")


def plot_tolerance(
    model,
    ax=None,
    *,
    group=None,
    X=None,
    n_points=512,
    show_components=True,
    legend=True,
):
    """Plot a fitted Internal Scale Tolerance Model (paper Fig. 2 and Fig. 5).

    Draws, against log2 of the scale (octaves): the data scale density (black: flat
    in log2 over the observed range, or a kernel estimate for ``density="kde"``, with
    half-normal tails), each internal scale's weighted
    tolerance, their mixture (the tolerance model), a dashed vertical line at every
    internal scale and a red dashed line at each boundary of the observed scale range.
    A second axis on top shows the scale factors. The legend stands right of the axes,
    outside the data area: a figure created here uses constrained layout to make room
    for it; for your own ``ax`` use ``layout="constrained"`` or ``savefig(...,
    bbox_inches="tight")``.

    Parameters
    ----------
    model : ToleranceModel
        A fitted :class:`skscale.ToleranceModel`.

    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; a new figure is created when None.

    group : label, default=None
        Which data distribution to draw when ``model`` was fitted with ``y``;
        one of ``model.groups_``. May be omitted when there is a single group.

    X : array-like of shape (n_samples,) or (n_samples, 1), default=None
        Observed scale factors to overlay as a density histogram in octaves.

    n_points : int, default=512
        Number of points at which the curves are evaluated.

    show_components : bool, default=True
        Whether to draw each internal scale's tolerance.

    legend : bool, default=True
        Whether to add a legend.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on. Artists carry a ``gid``: ``"data_density"``,
        ``"tolerance_component"``, ``"tolerance_model"``, ``"internal_scale"``,
        ``"data_boundary"`` and, with ``X``, ``"data_histogram"``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skscale import ToleranceModel
    >>> from skscale.plotting import plot_tolerance
    >>> scales = 2.0 ** np.linspace(np.log2(0.6), 1.0, 200)  # Fig. 2: [0.6, 2.0]
    >>> model = ToleranceModel(isr=2.0).fit(scales)
    >>> ax = plot_tolerance(model, X=scales)
    >>> ax.get_xlabel()
    'log2(scale) [octaves]'
    """
    plt = _import_pyplot()
    check_is_fitted(model)
    n_points = Integer(low=2).check(n_points, "n_points")

    index = model.group_index(group)
    data_range = np.log2(model.data_range_[index])
    internal_scales = np.log2(model.internal_scales_[index])
    reach = 3.0 * max(model.tail_std, model.tau_)
    lower = min(data_range[0], internal_scales[0]) - reach
    upper = max(data_range[1], internal_scales[-1]) + reach
    log2_scales = np.linspace(lower, upper, n_points)

    if ax is None:
        # constrained layout makes room for the legend beside the axes
        _, ax = plt.subplots(figsize=(8.0, 4.2), layout="constrained")

    if X is not None:
        observed = model.log2_scales(X)
        _, _, patches = ax.hist(observed, bins="auto", density=True, color="0.85", label="observed scales")
        for patch in patches:
            patch.set_gid("data_histogram")

    density = model.data_density(log2_scales, group=group)
    ax.plot(log2_scales, density, color="k", label=_data_density_label(model), gid="data_density")
    if show_components:
        components = model.tolerance_pdf(log2_scales, group=group, components=True)
        for i in range(components.shape[1]):
            label = "tolerance per internal scale" if i == 0 else "_nolegend_"
            ax.plot(
                log2_scales,
                components[:, i],
                color="C0",
                linestyle=":",
                linewidth=1.0,
                label=label,
                gid="tolerance_component",
            )
    mixture = model.tolerance_pdf(log2_scales, group=group)
    ax.plot(log2_scales, mixture, color="C0", label="tolerance model", gid="tolerance_model")
    _dashed_verticals(ax, internal_scales, colour="C0", label="internal scales", gid="internal_scale")
    _dashed_verticals(ax, data_range, colour="C3", label="observed range", gid="data_boundary")

    title = f"ISR = {model.isr_[index]:.3g}, tau = {model.tau_:.3g}"
    if model.groups_ is not None:
        title = f"group {model.groups_[index]}: {title}"
    ax.set_title(title)
    ax.set_xlabel("log2(scale) [octaves]")
    ax.set_ylabel("density per octave")
    ax.set_xlim(lower, upper)
    ax.set_ylim(bottom=0.0)
    top = ax.secondary_xaxis("top", functions=(np.exp2, _safe_log2))
    octaves = np.arange(np.ceil(lower), np.floor(upper) + 1.0)
    top.set_xticks(2.0**octaves, labels=[f"{scale:g}" for scale in 2.0**octaves])
    top.set_xlabel("scale factor")
    if legend:
        _legend_beside(ax)
    return ax


def plot_isr_trajectory(
    histories,
    ax=None,
    *,
    labels=None,
    reference_isr=None,
    key="isr",
    first_epoch=1,
    legend=True,
):
    """Plot the internal scale range over the training epochs (paper Fig. 6).

    Draws one line per training run, the value after each epoch against the epoch.
    Runs that share a label share a colour and a legend entry, so several
    cross-validation folds of one configuration read as one band.

    Parameters
    ----------
    histories : sequence
        One item per run: a fitted :class:`~skscale.ScaleEquivariantClassifier` (or
        any object with a skorch ``history``), a :class:`skorch.history.History`, or
        a 1-D sequence of values per epoch.

    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; a new figure is created when None.

    labels : sequence of str, default=None
        Label of each run, e.g. its initial ISR; None draws every run in its own
        colour without a legend entry.

    reference_isr : float or mapping of str to float, default=None
        Values to mark with horizontal dashed lines, e.g.
        ``{"tolerance model": model.isr_[0]}``; a float is labelled ``"reference"``.

    key : str, default="isr"
        History column to draw; ``"sigma_basis"`` draws the smallest internal scale.

    first_epoch : int, default=1
        Epoch of the first value: skorch records the scales after each epoch, from
        epoch 1; pass 0 when the initial value leads each run.

    legend : bool, default=True
        Whether to add a legend (when anything is labelled).

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on. Lines carry a ``gid``: ``"isr_trajectory"`` for the runs
        and ``"reference_isr"`` for the reference values.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skscale.plotting import plot_isr_trajectory
    >>> ax = plot_isr_trajectory([[3.0, 3.4, 3.6], [1.5, 2.1, 2.4]], labels=["3.0", "1.5"],
    ...                          reference_isr={"tolerance model": 2.4})
    >>> ax.get_xlabel(), len(ax.lines)
    ('epoch', 3)
    """
    plt = _import_pyplot()
    if isinstance(histories, (str, bytes)) or not hasattr(histories, "__len__"):
        raise ValueError(f"histories must be a sequence of runs, got {type(histories).__name__}.")
    runs = [scale_history(history, key) for history in histories]
    if not runs:
        raise ValueError("histories must hold at least one run, got an empty sequence.")
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != len(runs):
            raise ValueError(
                f"labels must have one entry per run: got {len(labels)} labels for {len(runs)} runs."
            )
    if reference_isr is None:
        references = {}
    elif isinstance(reference_isr, dict):
        references = {str(name): float(value) for name, value in reference_isr.items()}
    else:
        references = {"reference": float(reference_isr)}

    if ax is None:
        _, ax = plt.subplots()

    colours = {}
    for index, values in enumerate(runs):
        if labels is None:
            colour, label = f"C{index % 10}", "_nolegend_"
        else:
            label = labels[index]
            if label in colours:
                colour, label = colours[label], "_nolegend_"
            else:
                colour = colours[label] = f"C{len(colours) % 10}"
        ax.plot(
            np.arange(first_epoch, first_epoch + values.size),
            values,
            color=colour,
            linewidth=1.2,
            alpha=0.8,
            label=label,
            gid="isr_trajectory",
        )
    for index, (name, value) in enumerate(references.items()):
        ax.axhline(
            value,
            color="k",
            linestyle=("--", ":", "-.")[index % 3],
            linewidth=1.0,
            label=f"{name} ({value:.3g})",
            gid="reference_isr",
        )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel({"isr": "internal scale range (ISR)", "sigma_basis": "sigma_basis [pixels]"}.get(key, key))
    ax.set_title(f"{'ISR' if key == 'isr' else key} during training")
    if legend and (labels is not None or references):
        ax.legend(loc="best", fontsize="small")
    return ax


def plot_error_per_scale(curves, ax=None, *, percent=True, legend=True):
    """Plot the test error per data scale of one or more classifiers (paper Fig. 4).

    Parameters
    ----------
    curves : tuple or mapping of str to tuple
        The result of :func:`skscale.metrics.error_per_scale`
        (``(bin_scales, errors, counts)``, or just ``(bin_scales, errors)``), or a
        mapping from a label (e.g. ``"learned ISR"``) to such a result.

    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; a new figure is created when None.

    percent : bool, default=True
        Show the error in percent rather than as a fraction.

    legend : bool, default=True
        Whether to add a legend (for a mapping).

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on; each curve is a line with ``gid="error_per_scale"``. The
        x axis is logarithmic (base 2), as scales act multiplicatively.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skscale.plotting import plot_error_per_scale
    >>> ax = plot_error_per_scale({"fixed ISR": ([0.4, 0.6, 0.9], [0.3, 0.1, 0.05]),
    ...                            "learned ISR": ([0.4, 0.6, 0.9], [0.2, 0.1, 0.06])})
    >>> ax.get_ylabel(), len(ax.lines)
    ('test error [%]', 2)
    """
    plt = _import_pyplot()
    if isinstance(curves, dict):
        items = [(str(name), curve) for name, curve in curves.items()]
        if not items:
            raise ValueError("curves must hold at least one curve, got an empty mapping.")
    else:
        items = [("_nolegend_", curves)]
    parsed = []
    for name, curve in items:
        try:
            bin_scales, errors = (np.asarray(part, dtype=np.float64) for part in tuple(curve)[:2])
        except (TypeError, ValueError):
            raise ValueError(
                f"each curve must be (bin_scales, errors[, counts]) as returned by error_per_scale, "
                f"got {curve!r}."
            ) from None
        if bin_scales.ndim != 1 or bin_scales.shape != errors.shape or bin_scales.size == 0:
            raise ValueError(
                "bin_scales and errors must be non-empty 1-D arrays of the same length, got "
                f"shapes {bin_scales.shape} and {errors.shape}."
            )
        if not (bin_scales > 0).all():
            raise ValueError(f"bin_scales must be positive, got {bin_scales.tolist()!r}.")
        parsed.append((name, bin_scales, errors))

    if ax is None:
        _, ax = plt.subplots()
    factor = 100.0 if percent else 1.0
    for index, (name, bin_scales, errors) in enumerate(parsed):
        ax.plot(
            bin_scales,
            factor * errors,
            marker="o",
            color=f"C{index % 10}",
            label=name,
            gid="error_per_scale",
        )
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log", base=2)
    low = min(bin_scales.min() for _, bin_scales, _ in parsed)
    high = max(bin_scales.max() for _, bin_scales, _ in parsed)
    ticks = np.unique(np.round(np.geomspace(low, high, 5), 2)) if high > low else np.array([low])
    ax.set_xticks(ticks, labels=[f"{tick:g}" for tick in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("data scale")
    ax.set_ylabel("test error [%]" if percent else "test error")
    ax.set_ylim(bottom=0.0)
    ax.set_title("Test error per data scale")
    if legend and isinstance(curves, dict):
        ax.legend(loc="best", fontsize="small")
    return ax
