"""Internal scales of a scale-equivariant network, fixed or learnable (paper Eqs. 2 and 5)."""

from __future__ import annotations

import torch
from torch import nn

from .._scales import gamma_from_isr, isr_from_gamma, log_uniform_scales
from ..utils.validation import Integer, Options, Real

__all__ = ["InternalScales", "PARAMETERISATIONS", "find_internal_scales"]

PARAMETERISATIONS = ("fixed", "isr", "spacing", "direct")
_POSITIVE = Real(low=0, closed="neither")


class InternalScales(nn.Module):
    """The internal scales ``S`` of a scale-equivariant network.

    ``S = [sigma_basis * ISR ** (i / (N_S - 1)) for i in 0..N_S - 1]`` (Eq. 2) at
    initialisation; how the scales may move during training depends on
    ``parameterisation``. Every parameterisation starts from the same scales for the same
    ``init_sigma_basis`` and ``init_isr``, so configurations are comparable.

    One instance is normally shared by all layers of a network: pass it as ``scales`` to
    :class:`~skscale.nn.ScaleConvT2H` and :class:`~skscale.nn.ScaleConvH2H`.

    Parameters
    ----------
    n_scales : int, default=3
        Number of internal scales ``N_S`` (1 is valid: a single scale).
    parameterisation : {"fixed", "isr", "spacing", "direct"}, default="isr"
        - ``"fixed"``: nothing is trainable (the SESN baseline); the scales are a buffer.
        - ``"isr"``: ``sigma_basis`` and ``gamma`` are trainable with
          ``ISR = 1 + gamma**2`` (Eq. 5), so the range stays above 1 without a ReLU.
        - ``"spacing"``: ``sigma_basis`` and the ``N_S - 1`` gaps between neighbouring
          scales are trainable, each gap kept positive as the square of a parameter.
        - ``"direct"``: every scale is a free parameter (no ordering or positivity
          constraint).
    init_sigma_basis : float, default=2.0
        Initial smallest scale ``sigma_basis``, in pixels.
    init_isr : float, default=3.0
        Initial internal scale range (largest / smallest scale). Must exceed 1 when
        ``n_scales > 1``; ignored when ``n_scales == 1``.

    Attributes
    ----------
    sigma_basis : float
        Current smallest scale (the first scale for ``"direct"``).
    isr : float
        Current internal scale range; ``1 + gamma**2`` for ``"isr"``, last / first scale
        otherwise, 1.0 for a single scale.

    Examples
    --------
    >>> scales = InternalScales(n_scales=3, parameterisation="isr", init_sigma_basis=2.0, init_isr=4.0)
    >>> [round(s, 3) for s in scales().tolist()]
    [2.0, 4.0, 8.0]
    >>> round(scales.isr, 3)
    4.0
    """

    def __init__(self, n_scales=3, parameterisation="isr", init_sigma_basis=2.0, init_isr=3.0):
        super().__init__()
        self.n_scales = Integer(low=1).check(n_scales, "n_scales")
        self.parameterisation = Options(PARAMETERISATIONS).check(parameterisation, "parameterisation")
        self.init_sigma_basis = _POSITIVE.check(init_sigma_basis, "init_sigma_basis")
        # More than one scale: the scales must differ, so the range exceeds 1.
        init_isr = Real(low=1 if self.n_scales > 1 else None, closed="neither").check(init_isr, "init_isr")
        self.init_isr = init_isr if self.n_scales > 1 else 1.0

        # Saved with the state: the "isr" parameters have the same shapes for every number of
        # scales, so only this count tells a checkpoint of another n_scales apart.
        self.register_buffer("scale_count", torch.tensor(self.n_scales))
        initial = torch.as_tensor(
            log_uniform_scales(self.n_scales, self.init_sigma_basis, self.init_isr),
            dtype=torch.get_default_dtype(),
        )
        if parameterisation == "fixed":
            self.register_buffer("fixed_scales", initial)
        elif parameterisation == "direct":
            self.direct_scales = nn.Parameter(initial.clone())
        else:
            self.sigma = nn.Parameter(initial[:1].clone())
            if self.n_scales > 1 and parameterisation == "isr":
                self.gamma = nn.Parameter(torch.tensor(gamma_from_isr(self.init_isr)).to(initial))
            elif self.n_scales > 1:
                self.gap_roots = nn.Parameter(torch.sqrt(torch.diff(initial)))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + "scale_count"
        saved = state_dict.get(key)
        if saved is not None and int(saved) != self.n_scales:
            error_msgs.append(
                f"{key}: the state holds n_scales={int(saved)} internal scales, but this InternalScales "
                f"has n_scales={self.n_scales}; build the module with n_scales={int(saved)} to load it."
            )
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if saved is None and key in missing_keys:
            missing_keys.remove(key)  # a state saved before the count was: nothing to check against

    @property
    def trainable(self):
        """Whether any scale parameter exists (``parameterisation != "fixed"``)."""
        return self.parameterisation != "fixed"

    def forward(self):
        """Return the current internal scales, a 1-D tensor of length ``n_scales``."""
        if self.parameterisation == "fixed":
            return self.fixed_scales
        if self.parameterisation == "direct":
            return self.direct_scales
        if self.n_scales == 1:
            return self.sigma
        if self.parameterisation == "isr":
            return log_uniform_scales(self.n_scales, self.sigma, isr_from_gamma(self.gamma))  # Eqs. 2, 5
        gaps = self.gap_roots**2
        return torch.cat([self.sigma, self.sigma + torch.cumsum(gaps, dim=0)])

    def state_key(self):
        """A hashable key that changes whenever a parameter or buffer is modified.

        Used by the layers to reuse a cached basis (``torch`` bumps a tensor's version
        counter on every in-place update, e.g. an optimiser step or ``load_state_dict``).
        """
        return tuple(
            (tensor.data_ptr(), tensor._version, tensor.dtype, tensor.device)
            for tensor in (*self.parameters(), *self.buffers())
        )

    @property
    def sigma_basis(self):
        with torch.no_grad():
            return float(self()[0])

    @property
    def isr(self):
        if self.n_scales == 1:
            return 1.0
        with torch.no_grad():
            if self.parameterisation == "isr":
                return float(isr_from_gamma(self.gamma))
            scales = self()
            return float(scales[-1] / scales[0])

    @classmethod
    def from_values(cls, values, trainable=False):
        """Internal scales at arbitrary given values.

        Parameters
        ----------
        values : sequence of float
            Positive scales, e.g. SESN's ``[1.5, 1.89, 2.38, 3.0]``.
        trainable : bool, default=False
            ``False`` gives ``parameterisation="fixed"``, ``True`` gives ``"direct"``.

        Returns
        -------
        scales : InternalScales
        """
        values = [float(v) for v in torch.as_tensor(values, dtype=torch.float64).reshape(-1)]
        if not values:
            raise ValueError("values must hold at least one scale, got an empty sequence.")
        for value in values:
            _POSITIVE.check(value, "values")
        if len(values) > 1 and len(set(values)) != len(values):
            raise ValueError(f"values must be distinct scales, got {values!r}.")
        isr = values[-1] / values[0] if len(values) > 1 and values[-1] > values[0] else 2.0
        module = cls(len(values), "direct" if trainable else "fixed", values[0], isr)
        target = module.direct_scales if trainable else module.fixed_scales
        with torch.no_grad():
            target.copy_(torch.tensor(values, dtype=target.dtype))
        return module

    def extra_repr(self):
        return (
            f"n_scales={self.n_scales}, parameterisation={self.parameterisation!r}, "
            f"init_sigma_basis={self.init_sigma_basis}, init_isr={self.init_isr}"
        )


def find_internal_scales(module):
    """All distinct :class:`InternalScales` modules inside ``module``, in order (none: ``[]``)."""
    return [m for m in module.modules() if isinstance(m, InternalScales)]
