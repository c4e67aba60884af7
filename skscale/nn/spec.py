"""The scale hyper-parameters, declared once: :class:`ScaleSpec` and its constraint table.

Every place that takes the internal scales' settings reads them from here: the
classifier's arguments and their validation, the registered networks (each keeps its own
defaults as a ``ScaleSpec``), the DISCO network and :class:`~skscale.nn.InternalScales`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

from ..utils.validation import Integer, Options, Real, check_params
from .parameterisations import FORMS

__all__ = ["ScaleSpec", "resolve_scale_spec"]


@dataclasses.dataclass(frozen=True)
class ScaleSpec:
    """How a network's internal scales start and move (Eq. 2, 5 and 6).

    Parameters
    ----------
    n_scales : int, default=3
        Number of internal scales ``N_S``.
    parameterisation : str, default="isr"
        How the scales are learned, a key of
        :data:`skscale.nn.parameterisations.FORMS` (see
        :class:`~skscale.nn.InternalScales`); ``"fixed"`` learns nothing.
    init_sigma_basis : float, default=2.0
        Initial smallest internal scale, in pixels.
    init_isr : float, default=3.0
        Initial internal scale range, largest over smallest scale (> 1).
    kernel_extent : float, default=2.0
        ``k`` of Eq. 6: kernels span ``2 ceil(k sigma) + 1`` pixels.

    Examples
    --------
    >>> spec = ScaleSpec(n_scales=4, init_sigma_basis=1.5, init_isr=2.0)
    >>> spec.replace(n_scales=5, init_isr=None).n_scales
    5
    >>> ScaleSpec(init_isr=1.0)
    Traceback (most recent call last):
    ...
    ValueError: init_isr must be a finite number > 1, got 1.0.
    """

    n_scales: int = 3
    parameterisation: str = "isr"
    init_sigma_basis: float = 2.0
    init_isr: float = 3.0
    kernel_extent: float = 2.0

    #: The one constraint table of the scale hyper-parameters.
    CONSTRAINTS: ClassVar[dict] = {
        "n_scales": Integer(low=1),
        "parameterisation": Options(FORMS),
        "init_sigma_basis": Real(low=0, closed="neither"),
        "init_isr": Real(low=1, closed="neither"),
        "kernel_extent": Real(low=0, closed="neither"),
    }

    def __post_init__(self):
        for name, value in check_params(self.as_dict(), self.CONSTRAINTS).items():
            object.__setattr__(self, name, value)

    @classmethod
    def names(cls):
        """The hyper-parameter names, in declaration order."""
        return tuple(field.name for field in dataclasses.fields(cls))

    def as_dict(self):
        """``{name: value}`` of the five hyper-parameters."""
        return {name: getattr(self, name) for name in self.names()}

    def replace(self, **values):
        """A copy with the given values; a value of None keeps this spec's own.

        Raises ``TypeError`` for a name that is not a scale hyper-parameter.
        """
        unknown = sorted(set(values) - set(self.names()))
        if unknown:
            raise TypeError(
                f"{unknown[0]!r} is not a scale hyper-parameter; they are {', '.join(self.names())}."
            )
        given = {name: value for name, value in values.items() if value is not None}
        return dataclasses.replace(self, **given) if given else self


def resolve_scale_spec(scale_spec, defaults):
    """The spec a network builds from: ``defaults`` updated by the user's ``scale_spec``.

    Parameters
    ----------
    scale_spec : ScaleSpec, mapping or None
        A full spec (used as it is), a mapping of some hyper-parameters (the others from
        ``defaults``), or None (``defaults``).
    defaults : ScaleSpec
        The network's own defaults.

    Returns
    -------
    ScaleSpec
    """
    if scale_spec is None:
        return defaults
    if isinstance(scale_spec, ScaleSpec):
        return scale_spec
    if isinstance(scale_spec, Mapping):
        return defaults.replace(**scale_spec)
    raise TypeError(
        f"scale_spec must be a ScaleSpec, a mapping of its hyper-parameters or None, got {scale_spec!r}."
    )
