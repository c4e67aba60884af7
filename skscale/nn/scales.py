"""Internal scales of a scale-equivariant network, fixed or learnable (paper Eqs. 2 and 5).

The forms themselves (``parameterisation``) are in :mod:`skscale.nn.parameterisations`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..utils.validation import Boolean, Real
from .parameterisations import FORMS, PARAMETERISATIONS, SIGMA_SOFTNESS
from .spec import ScaleSpec

__all__ = ["InternalScales", "PARAMETERISATIONS", "SIGMA_SOFTNESS", "find_internal_scales"]

# Saved with every state. 2: the learned forms kept positive and ordered by construction (a
# state without the buffer stores "sigma", "gamma" and "gap_roots" unconstrained); 3: "direct"
# too ("direct_scales" holds raw softplus parameters, no longer the scales themselves).
_FORMAT = 3
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
    parameterisation : {"fixed", "isr", "spacing", "direct", "authors", "ratios", "log"}, default="isr"
        How the scales are learned: a key of :data:`skscale.nn.parameterisations.FORMS`,
        whose classes document each form. With ``eps = MIN_SCALE_STEP = 1e-4`` (see
        :mod:`skscale._scales`) and ``softplus`` of sharpness :data:`SIGMA_SOFTNESS`:

        - ``"fixed"``: nothing is trainable (the SESN baseline); the scales are a buffer.
        - ``"isr"`` (the paper, Eq. 5): parameters ``sigma`` and ``gamma``;
          ``sigma_basis = softplus(sigma)``, ``ISR = 1 + eps + gamma**2``, scales log-uniform
          (Eq. 2).
        - ``"authors"`` (the authors' code, learn mode 6): parameters ``sigma`` and
          ``step_gamma``; neighbouring scales a factor ``1 + eps + step_gamma**2`` apart, so
          ``ISR = (1 + eps + step_gamma**2) ** (N_S - 1)`` (Eq. 5 per step).
        - ``"ratios"`` (the authors' ``RATIO_SQUARED``): parameters ``sigma`` and the
          ``N_S - 1`` ``ratio_roots``; scale ``i + 1`` is scale ``i`` times
          ``1 + eps + ratio_roots[i]**2``.
        - ``"spacing"``: parameters ``sigma`` and the ``N_S - 1`` ``gap_roots``; scale ``i + 1``
          is scale ``i`` plus ``eps + gap_roots[i]**2`` pixels.
        - ``"log"``: parameters ``log_sigma`` and ``log_isr_excess``;
          ``sigma_basis = exp(log_sigma)``, ``ISR = 1 + eps + exp(log_isr_excess)``, scales
          log-uniform (Eq. 2): steps of the same relative size at every ISR.
        - ``"direct"`` (the paper's Table 4 ablation): every scale its own parameter
          ``direct_scales``, no interval imposed; the scales are ``softplus(direct_scales)``
          sorted, neighbours at least a factor ``1 + eps`` apart, so parameters that cross
          swap the scales they stand for. The order is increasing, or the order of the values
          given to :meth:`from_values`.

        Guarantees, for every parameter value: every learned form keeps ``sigma_basis > 0``
        and the scales strictly increasing (in the order given to :meth:`from_values` for
        ``"direct"``), neighbouring scales at least a factor ``1 + eps`` apart (``"ratios"``,
        ``"authors"``, ``"direct"``), ``ISR >= 1 + eps`` (``"isr"``, ``"log"``) or ``eps``
        pixels apart (``"spacing"``). The floor ``eps`` keeps the order in float32;
        ``sigma_basis`` is at least the dtype's smallest normal number. ``softplus`` is the
        identity for values of at least 1 px (and has slope 0.98 at 0.2 px).
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
        Current smallest scale (the first scale for ``"direct"`` and ``"fixed"``).
    isr : float
        Current internal scale range, last over first scale (1.0 for a single scale).
    trainable : bool
        Whether the form has trainable parameters (all but ``"fixed"``).

    Notes
    -----
    Checkpoints keep the parameter names. A state saved before the constrained forms (it
    lacks ``parameter_format``) is converted on loading: its raw ``sigma`` through the inverse
    softplus, its ``gamma`` and ``gap_roots`` so that ``eps + root**2`` equals the old
    ``root**2`` (0 where the old square was below ``eps``), so it gives the same scales (to
    within ``eps``). A ``"direct"`` state saved before format 3 held the scales themselves:
    they go through the inverse softplus. A state whose ``sigma`` or direct scales are not
    positive cannot be represented and is refused with an error.

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
        n_scales, parameterisation, init_sigma_basis, init_isr = self._check_arguments(
            n_scales, parameterisation, init_sigma_basis, init_isr
        )
        self.n_scales = n_scales
        self.parameterisation = parameterisation
        self.init_sigma_basis = init_sigma_basis
        self.init_isr = init_isr
        self._form = FORMS[parameterisation](n_scales)

        # Saved with the state: the "isr" parameters have the same shapes for every number of
        # scales, so only this count tells a checkpoint of another n_scales apart.
        self.register_buffer("scale_count", torch.tensor(n_scales))
        self.register_buffer("parameter_format", torch.tensor(_FORMAT))
        tensors = self._form.initial_tensors(init_sigma_basis, init_isr)
        for name, value in tensors.items():
            if self._form.trainable:
                self.register_parameter(name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)
        unsaved = self._form.unsaved_buffers()
        for name, value in unsaved.items():
            self.register_buffer(name, value, persistent=False)
        self._form_tensor_names = (*tensors, *unsaved)

    @staticmethod
    def _check_arguments(n_scales, parameterisation, init_sigma_basis, init_isr):
        """The validated constructor arguments (``init_isr`` is 1.0 for a single scale).

        ScaleSpec's constraint table checks each; the form adds its own floor of
        ``init_isr`` (the ISR it can represent, just above 1).
        """
        constraints = ScaleSpec.CONSTRAINTS
        n_scales = constraints["n_scales"].check(n_scales, "n_scales")
        parameterisation = constraints["parameterisation"].check(parameterisation, "parameterisation")
        init_sigma_basis = constraints["init_sigma_basis"].check(init_sigma_basis, "init_sigma_basis")
        if n_scales == 1:  # a single scale has no range: any finite init_isr is ignored
            Real().check(init_isr, "init_isr")
            return n_scales, parameterisation, init_sigma_basis, 1.0
        init_isr = constraints["init_isr"].check(init_isr, "init_isr")
        lowest = FORMS[parameterisation].lowest_init_isr(n_scales, init_sigma_basis)
        return (
            n_scales,
            parameterisation,
            init_sigma_basis,
            Real(low=lowest, closed="neither").check(init_isr, "init_isr"),
        )

    @classmethod
    def from_spec(cls, spec):
        """Internal scales starting where a :class:`~skscale.nn.ScaleSpec` says."""
        return cls(spec.n_scales, spec.parameterisation, spec.init_sigma_basis, spec.init_isr)

    def _form_tensors(self):
        """The form's tensors by name (those ``torch.func.functional_call`` swapped in, if any)."""
        return {name: getattr(self, name) for name in self._form_tensor_names}

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
        format_key = prefix + "parameter_format"
        saved_format = int(state_dict[format_key]) if format_key in state_dict else 1
        if saved_format < _FORMAT:
            # Rewritten in torch's copy of the state: the caller's dict stays as it was.
            error = self._form.upgrade_state(state_dict, prefix, saved_format)
            if error is not None:
                error_msgs.append(error)
                return
            state_dict[format_key] = torch.tensor(_FORMAT)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if saved is None and key in missing_keys:
            missing_keys.remove(key)  # a state saved before this buffer existed: loads as before

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_form" not in state:
            self._adopt_earlier_pickle()

    def _adopt_earlier_pickle(self):
        """Give a module pickled before the table of forms its form (and "direct" its format 3)."""
        self._form = FORMS[self.parameterisation](self.n_scales)
        names = tuple(self._form.initial_tensors(self.init_sigma_basis, self.init_isr))
        unsaved = self._form.unsaved_buffers()
        self._form_tensor_names = (*names, *unsaved)
        self.__dict__.pop("_checked_key", None)
        earlier_order = self._buffers.pop("direct_order", None)
        for name, value in unsaved.items():
            self.register_buffer(name, value.to(self.scale_count.device), persistent=False)
        if int(self.parameter_format) < _FORMAT:
            with torch.no_grad():
                if earlier_order is not None:  # "direct_scales" held the scales themselves
                    self._form.set_scales(self._form_tensors(), self.direct_scales.detach().clone())
                self.parameter_format.fill_(_FORMAT)

    @property
    def trainable(self):
        """Whether the form has trainable parameters (every form but ``"fixed"``)."""
        return self._form.trainable

    def forward(self):
        """Return the current internal scales, a 1-D tensor of length ``n_scales``."""
        return self._form.scales(self._form_tensors())

    def _isr(self):
        """The current ISR as a differentiable 0-d tensor (``n_scales > 1``)."""
        return self._form.isr(self._form_tensors())

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
            return float(self._form.sigma_basis(self._form_tensors())[0])

    @property
    def isr(self):
        if self.n_scales == 1:
            return 1.0
        with torch.no_grad():
            return float(self._isr())

    def set_range(self, sigma_basis, isr):
        """Move the scales, in place, to Eq. 2's log-uniform scales from ``sigma_basis`` over ``isr``.

        Works for every parameterisation (``"fixed"`` included): the form's tensors are
        overwritten with those it would start from for ``init_sigma_basis=sigma_basis``
        and ``init_isr=isr``, so a learned form keeps training from there. Used by the
        scale-selection mechanisms that move the scales without gradients
        (:mod:`skscale.selection`). An optimiser's running moments of these parameters are
        left as they are.

        Parameters
        ----------
        sigma_basis : float
            The new smallest scale, in pixels (> 0).
        isr : float
            The new internal scale range (above the form's floor, just over 1); ignored
            for a single scale.

        Returns
        -------
        self : InternalScales
        """
        _, _, sigma_basis, isr = self._check_arguments(self.n_scales, self.parameterisation, sigma_basis, isr)
        with torch.no_grad():
            for name, value in self._form.initial_tensors(sigma_basis, isr).items():
                tensor = getattr(self, name)
                tensor.copy_(value.to(device=tensor.device, dtype=tensor.dtype))
        return self

    @classmethod
    def from_values(cls, values, trainable=False):
        """Internal scales at arbitrary given values.

        Parameters
        ----------
        values : sequence of float
            Positive, distinct scales, e.g. SESN's ``[1.5, 1.89, 2.38, 3.0]``, in any order.
        trainable : bool, default=False
            ``False`` gives ``parameterisation="fixed"``, ``True`` gives ``"direct"``, which
            keeps the scales positive and in the order of ``values`` (their ranks), and
            neighbours in that order at least a factor ``1 + MIN_SCALE_STEP`` apart (closer
            values start that far apart).

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
        with torch.no_grad():
            module._form.set_scales(
                module._form_tensors(), torch.tensor(values, dtype=torch.get_default_dtype())
            )
        return module

    def extra_repr(self):
        return (
            f"n_scales={self.n_scales}, parameterisation={self.parameterisation!r}, "
            f"init_sigma_basis={self.init_sigma_basis}, init_isr={self.init_isr}"
        )


def find_internal_scales(module):
    """All distinct :class:`InternalScales` modules inside ``module``, in order (none: ``[]``)."""
    return [m for m in module.modules() if isinstance(m, InternalScales)]
