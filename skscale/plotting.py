"""Matplotlib figures for skscale (needs the ``plot`` extra).

Every function imports matplotlib when it is called, so ``import skscale`` works
without it; a missing matplotlib raises an :class:`ImportError` that names the
extra to install.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_tolerance"]


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

    Draws, against log2 of the scale (octaves): the data scale density with its
    half-normal tails, each internal scale's weighted tolerance, their mixture
    (the tolerance model), a dashed vertical line at every internal scale and a
    red dashed line at each boundary of the observed scale range. A second axis
    on top shows the scale factors.

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
    if not isinstance(n_points, (int, np.integer)) or n_points < 2:
        raise ValueError(
            f"n_points must be an integer >= 2; got n_points={n_points!r}."
        )

    index = model._group_index(group)
    data_range = np.log2(np.atleast_2d(model.data_range_)[index])
    internal_scales = np.log2(np.atleast_2d(model.internal_scales_)[index])
    reach = 3.0 * max(model.tail_std, model.tau_)
    lower = min(data_range[0], internal_scales[0]) - reach
    upper = max(data_range[1], internal_scales[-1]) + reach
    log2_scales = np.linspace(lower, upper, n_points)

    if ax is None:
        _, ax = plt.subplots()

    if X is not None:
        observed = np.log2(model._validate_scales(X, reset=False))
        _, _, patches = ax.hist(
            observed,
            bins="auto",
            density=True,
            color="0.85",
            label="observed scales",
        )
        for patch in patches:
            patch.set_gid("data_histogram")

    ax.plot(
        log2_scales,
        model.data_density(log2_scales, group=group),
        color="k",
        label="data density",
        gid="data_density",
    )
    if show_components:
        components = model.tolerance_pdf(log2_scales, group=group, components=True)
        for i in range(components.shape[1]):
            ax.plot(
                log2_scales,
                components[:, i],
                color="C0",
                linestyle=":",
                linewidth=1.0,
                label="tolerance per internal scale" if i == 0 else "_nolegend_",
                gid="tolerance_component",
            )
    ax.plot(
        log2_scales,
        model.tolerance_pdf(log2_scales, group=group),
        color="C0",
        label="tolerance model",
        gid="tolerance_model",
    )
    for i, centre in enumerate(internal_scales):
        ax.axvline(
            centre,
            color="C0",
            linestyle="--",
            linewidth=1.0,
            label="internal scales" if i == 0 else "_nolegend_",
            gid="internal_scale",
        )
    for i, boundary in enumerate(data_range):
        ax.axvline(
            boundary,
            color="C3",
            linestyle="--",
            linewidth=1.0,
            label="observed range" if i == 0 else "_nolegend_",
            gid="data_boundary",
        )

    isr = np.atleast_1d(model.isr_)[index]
    title = f"ISR = {isr:.3g}, tau = {model.tau_:.3g}"
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
        ax.legend(loc="best", fontsize="small")
    return ax
