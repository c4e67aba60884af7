"""Internal scales of a scale-equivariant network, fixed or learnable (paper Eqs. 2 and 5)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._scales import MIN_SCALE_STEP, gamma_from_isr, geometric_scales, isr_from_gamma, log_uniform_scales
from ..utils.validation import Boolean, Integer, Options, Real

__all__ = ["InternalScales", "PARAMETERISATIONS", "SIGMA_SOFTNESS", "find_internal_scales"]

PARAMETERISATIONS = ("fixed", "isr", "spacing", "direct", "authors", "ratios", "log")

#: ``beta`` of the softplus that keeps ``sigma_basis`` positive, per pixel: the softplus is the
#: identity above 1 px (torch switches to it exactly there) and within 3.4e-4 px of it above 0.25 px.
SIGMA_SOFTNESS = 20.0

# Saved with every state since the learned forms were kept positive and ordered by construction;
# a state without it stores "sigma", "gamma" and "gap_roots" in their earlier, unconstrained meaning.
_FORMAT = 2
_POSITIVE = Real(low=0, closed="neither")
_SOFTPLUS_THRESHOLD = 20.0  # torch's default: softplus(x) == x once beta * x exceeds it


def _positive_sigma(raw):
    # Clamped at the smallest normal number: float32 rounds the softplus to 0 below -87 / beta.
    return nn.functional.softplus(raw, beta=SIGMA_SOFTNESS, threshold=_SOFTPLUS_THRESHOLD).clamp_min(
        torch.finfo(raw.dtype).tiny
    )


def _raw_sigma(sigma):
    """Inverse of :func:`_positive_sigma` for a positive tensor (the identity where torch's is)."""
    scaled = SIGMA_SOFTNESS * sigma
    inverse = sigma + torch.log(-torch.expm1(-scaled.clamp_max(_SOFTPLUS_THRESHOLD))) / SIGMA_SOFTNESS
    return torch.where(scaled > _SOFTPLUS_THRESHOLD, sigma, inverse)


def _root_above_floor(value):
    """``r`` with ``MIN_SCALE_STEP + r**2 == value`` (0 where ``value`` is at or below the floor)."""
    return torch.sqrt((value - MIN_SCALE_STEP).clamp_min(0.0))


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
    parameterisation : {"fixed", "isr", "spacing", "direct", "authors", "ratios", "log"}, default="isr"
        How the scales are learned. With ``eps = MIN_SCALE_STEP = 1e-4`` (see
        :mod:`skscale._scales`) and ``softplus`` of sharpness :data:`SIGMA_SOFTNESS`:

        - ``"fixed"``: nothing is trainable (the SESN baseline); the scales are a buffer.
        - ``"isr"`` (the paper, Eq. 5): parameters ``sigma`` and ``gamma``;
          ``sigma_basis = softplus(sigma)``, ``ISR = 1 + eps + gamma**2``, scales log-uniform
          (Eq. 2).
        - ``"authors"`` (the authors' code, learn mode 6 ``SINGLE_RATIO_SQUARED``):
          parameters ``sigma`` and ``step_gamma``; every neighbouring pair of scales is a
          factor ``1 + eps + step_gamma**2`` apart, so ``ISR = (1 + eps + step_gamma**2) **
          (N_S - 1)``: Eq. 5 applied per step, not to the whole range. At ISR 3 with three
          scales ``dISR / dgamma`` is 2.1 times that of ``"isr"`` (2.9 times with four).
        - ``"ratios"`` (the authors' ``RATIO_SQUARED``): parameters ``sigma`` and the
          ``N_S - 1`` ``ratio_roots``; scale ``i + 1`` is scale ``i`` times
          ``1 + eps + ratio_roots[i]**2``, so the spacing need not stay log-uniform.
        - ``"spacing"``: parameters ``sigma`` and the ``N_S - 1`` ``gap_roots``; scale ``i + 1``
          is scale ``i`` plus ``eps + gap_roots[i]**2`` pixels.
        - ``"log"``: parameters ``log_sigma`` and ``log_isr_excess``;
          ``sigma_basis = exp(log_sigma)``, ``ISR = 1 + eps + exp(log_isr_excess)``, scales
          log-uniform (Eq. 2). A unit step of ``log_isr_excess`` multiplies ``ISR - 1 - eps``
          by ``e`` whatever the ISR (``dlog(ISR - 1) / dlog_isr_excess`` is 1 up to ``eps``),
          and a unit step of ``log_sigma`` multiplies ``sigma_basis`` by ``e``. With Eq. 5 the
          same step of ``gamma`` changes the ISR by ``2 gamma``, which vanishes near
          ``ISR = 1``, while ``log(ISR - 1)`` moves by ``2 / gamma``, which diverges: under an
          optimiser that takes steps of a set size (Adam), ``"log"`` approaches an ISR near 1
          geometrically where ``gamma`` jumps across 0. Note that plain SGD scales the step
          of ``log_isr_excess`` by ``ISR - 1`` itself.
        - ``"direct"`` (the paper's Table 4 ablation, after Yang et al. 2023 "without defining
          intervals the internal scales adhere to"): every scale is a free parameter
          ``direct_scales``. It stays unconstrained, since constraining it would make it one
          of the forms above and no longer the ablation the paper measures; instead the
          first forward pass after an update that left a scale not positive or broke the
          order raises a ``ValueError`` naming the scales, rather than training on (or failing
          later in the kernel size with) reversed or negative scales. The order is increasing,
          or the order of the values given to :meth:`from_values`. The check reads the scales
          once per change of the parameters, not once per layer.

        Guarantees, for every parameter value: all learned forms but ``"direct"`` keep
        ``sigma_basis > 0`` and the scales strictly increasing, neighbouring scales at least
        a factor ``1 + eps`` apart (``"ratios"``, ``"authors"``), ``ISR >= 1 + eps``
        (``"isr"``, ``"log"``) or ``eps`` pixels apart (``"spacing"``). The floor ``eps``
        keeps the order in float32; ``sigma_basis`` is at least the dtype's smallest normal
        number. Of the earlier forms only the initial gradient moved: ``softplus`` is the
        identity for ``sigma >= 1`` px (and has slope 0.98 at 0.2 px), and the initial
        ``gamma``/``gap_roots`` absorb ``eps``, which changes their initial gradient by
        less than ``1e-4`` relative at ISR 3.
    init_sigma_basis : float, default=2.0
        Initial smallest scale ``sigma_basis``, in pixels.
    init_isr : float, default=3.0
        Initial internal scale range (largest / smallest scale). Must exceed 1 when
        ``n_scales > 1`` (for a learned form, by the floor: ``1 + eps`` for ``"isr"`` and
        ``"log"``, ``(1 + eps) ** (N_S - 1)`` for ``"authors"`` and ``"ratios"``, and gaps of
        ``eps`` px for ``"spacing"``); ignored when ``n_scales == 1``.

    Attributes
    ----------
    sigma_basis : float
        Current smallest scale (the first scale for ``"direct"``).
    isr : float
        Current internal scale range, last over first scale (1.0 for a single scale).

    Notes
    -----
    Checkpoints: the parameter names of ``"isr"``, ``"spacing"`` and ``"direct"`` did not
    change. A state saved before the constrained forms (it lacks ``parameter_format``) is
    converted on loading: its raw ``sigma`` through the inverse softplus, its ``gamma`` and
    ``gap_roots`` so that ``eps + root**2`` equals the old ``root**2`` (0 where the old
    square was below ``eps``), so it gives the same scales (to within ``eps``); a state whose
    ``sigma`` is not positive cannot be represented and is refused with an error.

    Examples
    --------
    >>> scales = InternalScales(n_scales=3, parameterisation="isr", init_sigma_basis=2.0, init_isr=4.0)
    >>> [round(s, 3) for s in scales().tolist()]
    [2.0, 4.0, 8.0]
    >>> round(scales.isr, 3)
    4.0
    >>> authors = InternalScales(n_scales=3, parameterisation="authors", init_sigma_basis=2.0, init_isr=4.0)
    >>> [round(s, 3) for s in authors().tolist()]  # each step a ratio 1 + eps + step_gamma**2 = 2
    [2.0, 4.0, 8.0]
    """

    def __init__(self, n_scales=3, parameterisation="isr", init_sigma_basis=2.0, init_isr=3.0):
        super().__init__()
        self.n_scales = Integer(low=1).check(n_scales, "n_scales")
        self.parameterisation = Options(PARAMETERISATIONS).check(parameterisation, "parameterisation")
        self.init_sigma_basis = _POSITIVE.check(init_sigma_basis, "init_sigma_basis")
        init_isr = Real(low=self._lowest_init_isr(), closed="neither").check(init_isr, "init_isr")
        self.init_isr = init_isr if self.n_scales > 1 else 1.0

        # Saved with the state: the "isr" parameters have the same shapes for every number of
        # scales, so only this count tells a checkpoint of another n_scales apart.
        self.register_buffer("scale_count", torch.tensor(self.n_scales))
        self.register_buffer("parameter_format", torch.tensor(_FORMAT))
        initial = torch.as_tensor(
            log_uniform_scales(self.n_scales, self.init_sigma_basis, self.init_isr),
            dtype=torch.get_default_dtype(),
        )
        if parameterisation == "fixed":
            self.register_buffer("fixed_scales", initial)
            return
        if parameterisation == "direct":
            self.direct_scales = nn.Parameter(initial.clone())
            # The positions of the scales from smallest to largest: an update must keep them so.
            self.register_buffer("direct_order", torch.arange(self.n_scales), persistent=False)
            self._checked_key = None
            return
        if parameterisation == "log":
            self.log_sigma = nn.Parameter(torch.log(initial[:1]))
        else:
            self.sigma = nn.Parameter(_raw_sigma(initial[:1]))
        if self.n_scales == 1:
            return
        step = initial.new_tensor(self.init_isr ** (1.0 / (self.n_scales - 1)))  # ratio of every step
        if parameterisation == "isr":
            self.gamma = nn.Parameter(initial.new_tensor(gamma_from_isr(self.init_isr - MIN_SCALE_STEP)))
        elif parameterisation == "log":
            excess = math.log(self.init_isr - 1 - MIN_SCALE_STEP)
            self.log_isr_excess = nn.Parameter(initial.new_tensor(excess))
        elif parameterisation == "authors":
            self.step_gamma = nn.Parameter(_root_above_floor(step - 1))
        elif parameterisation == "ratios":
            self.ratio_roots = nn.Parameter(_root_above_floor(step - 1).repeat(self.n_scales - 1))
        else:
            self.gap_roots = nn.Parameter(_root_above_floor(torch.diff(initial)))

    def _lowest_init_isr(self):
        """The ``init_isr`` every initial step must exceed: 1, or the floor of a learned form."""
        steps = self.n_scales - 1
        if steps == 0:
            return None
        if self.parameterisation in ("isr", "log"):
            return 1 + MIN_SCALE_STEP
        if self.parameterisation in ("authors", "ratios"):
            return (1 + MIN_SCALE_STEP) ** steps
        if self.parameterisation == "spacing":  # the first gap is the smallest
            return (1 + MIN_SCALE_STEP / self.init_sigma_basis) ** steps
        return 1

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        key = prefix + "scale_count"
        saved = state_dict.get(key)
        if saved is not None and int(saved) != self.n_scales:
            error_msgs.append(
                f"{key}: the state holds n_scales={int(saved)} internal scales, but this InternalScales "
                f"has n_scales={self.n_scales}; build the module with n_scales={int(saved)} to load it."
            )
            return
        legacy = prefix + "parameter_format" not in state_dict
        if legacy and not self._convert_legacy_state(state_dict, prefix, error_msgs):
            return
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        for name, absent in ((key, saved is None), (prefix + "parameter_format", legacy)):
            if absent and name in missing_keys:
                missing_keys.remove(name)  # a state saved before this buffer existed: loads as before

    def _convert_legacy_state(self, state_dict, prefix, error_msgs):
        """Rewrite, in ``state_dict`` (torch's copy), the raw parameters of an earlier version."""
        sigma = state_dict.get(prefix + "sigma")
        if self.parameterisation not in ("isr", "spacing") or sigma is None:
            return True
        sigma = sigma.detach()
        if not bool(torch.isfinite(sigma).all() and (sigma > 0).all()):
            error_msgs.append(
                f"{prefix}sigma: the state holds sigma_basis={sigma.tolist()!r}, which is not positive; "
                "it was saved before sigma_basis was kept positive and cannot be loaded."
            )
            return False
        state_dict[prefix + "sigma"] = _raw_sigma(sigma)
        for name in ("gamma", "gap_roots"):
            root = state_dict.get(prefix + name)
            if root is not None:
                root = root.detach()
                state_dict[prefix + name] = torch.copysign(_root_above_floor(root**2), root)
        return True

    @property
    def trainable(self):
        """Whether any scale parameter exists (``parameterisation != "fixed"``)."""
        return self.parameterisation != "fixed"

    def forward(self):
        """Return the current internal scales, a 1-D tensor of length ``n_scales``.

        Raises
        ------
        ValueError
            For ``"direct"``, when a scale is not positive or the scales left their order.
        """
        scales = self._scales()
        if self.parameterisation == "direct" and self._checked_key != self.state_key():
            ordered = scales.detach()[self.direct_order]
            if not bool((ordered > 0).all() and (torch.diff(ordered) > 0).all()):
                raise ValueError(
                    f"parameterisation='direct' left the internal scales {scales.detach().tolist()!r}, which "
                    "are not positive and strictly increasing (in the order they started in): the "
                    "unconstrained ablation broke it at the last update. Use a form that keeps it "
                    "('spacing', 'ratios', 'isr', 'authors' or 'log') or a smaller scale learning rate."
                )
            self._checked_key = self.state_key()
        return scales

    def _sigma_basis(self):
        if self.parameterisation == "log":
            return torch.exp(self.log_sigma).clamp_min(torch.finfo(self.log_sigma.dtype).tiny)
        return _positive_sigma(self.sigma)

    def _range(self):
        """The ISR of the forms that parameterise it (``"isr"``, ``"authors"``, ``"log"``)."""
        if self.parameterisation == "isr":
            return isr_from_gamma(self.gamma) + MIN_SCALE_STEP  # Eq. 5 with the floor
        if self.parameterisation == "log":
            return 1 + MIN_SCALE_STEP + torch.exp(self.log_isr_excess)
        return (isr_from_gamma(self.step_gamma) + MIN_SCALE_STEP) ** (self.n_scales - 1)

    def _scales(self):
        """The scales of the current parameters, unchecked."""
        if self.parameterisation == "fixed":
            return self.fixed_scales
        if self.parameterisation == "direct":
            return self.direct_scales
        sigma = self._sigma_basis()
        if self.n_scales == 1:
            return sigma
        if self.parameterisation == "spacing":
            return torch.cat([sigma, sigma + torch.cumsum(MIN_SCALE_STEP + self.gap_roots**2, dim=0)])
        if self.parameterisation == "ratios":
            return geometric_scales(sigma, isr_from_gamma(self.ratio_roots) + MIN_SCALE_STEP)
        if self.parameterisation == "authors":
            step = isr_from_gamma(self.step_gamma) + MIN_SCALE_STEP
            return geometric_scales(sigma, step.expand(self.n_scales - 1))
        return log_uniform_scales(self.n_scales, sigma, self._range())  # Eq. 2

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
            return float(self._scales()[0])

    @property
    def isr(self):
        if self.n_scales == 1:
            return 1.0
        with torch.no_grad():
            if self.parameterisation in ("isr", "authors", "log"):
                return float(self._range())
            scales = self._scales()
            return float(scales[-1] / scales[0])

    @classmethod
    def from_values(cls, values, trainable=False):
        """Internal scales at arbitrary given values.

        Parameters
        ----------
        values : sequence of float
            Positive, distinct scales, e.g. SESN's ``[1.5, 1.89, 2.38, 3.0]``, in any order.
        trainable : bool, default=False
            ``False`` gives ``parameterisation="fixed"``, ``True`` gives ``"direct"``, which
            must then keep the scales positive and in the order of ``values``.

        Returns
        -------
        scales : InternalScales
        """
        trainable = Boolean().check(trainable, "trainable")
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
        if trainable:
            module.direct_order.copy_(torch.argsort(torch.tensor(values)))
        return module

    def extra_repr(self):
        return (
            f"n_scales={self.n_scales}, parameterisation={self.parameterisation!r}, "
            f"init_sigma_basis={self.init_sigma_basis}, init_isr={self.init_isr}"
        )


def find_internal_scales(module):
    """All distinct :class:`InternalScales` modules inside ``module``, in order (none: ``[]``)."""
    return [m for m in module.modules() if isinstance(m, InternalScales)]
