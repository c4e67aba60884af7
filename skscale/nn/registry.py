"""Networks registered by name for ``ScaleEquivariantClassifier(architecture=...)``.

An architecture is any callable ``builder(n_classes, in_channels, **arguments)`` that
returns a ``torch.nn.Module`` mapping ``(B, in_channels, H, W)`` images to ``(B,
n_classes)`` logits: a network class or a function. :func:`build_module` routes the
arguments by the builder's signature, once, for every architecture:

- ``defaults`` (the classifier's shared hyper-parameters: ``scale_spec``, a
  :class:`~skscale.nn.ScaleSpec`, its fields by name, ``n_filters``) reach a builder
  only where its signature names them; a network without internal scales simply does
  not name them;
- every other argument (the user's ``module__*``) must be accepted, or a ``ValueError``
  names it and the accepted ones.

This module imports nothing of the networks: they register themselves with
:func:`register_architecture` where they are defined, and :mod:`skscale.nn` imports them.
"""

from __future__ import annotations

import inspect

from .spec import ScaleSpec, resolve_scale_spec

__all__ = [
    "ARCHITECTURES",
    "register_architecture",
    "build_module",
    "builder_arguments",
    "count_parameters",
    "get_builder",
    "look_up_builder",
    "registering",
    "scale_defaults",
]

ARCHITECTURES = {}

_POSITIONAL = ("n_classes", "in_channels")


def register_architecture(name):
    """Register a network builder under ``name`` (a decorator for classes and functions).

    Parameters
    ----------
    name : str
        The value users pass as ``architecture=``.

    Examples
    --------
    >>> from torch import nn
    >>> @register_architecture("tiny-linear")
    ... def tiny(n_classes, in_channels, pixels=784):
    ...     return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * pixels, n_classes))
    >>> "tiny-linear" in ARCHITECTURES
    True
    >>> _ = ARCHITECTURES.pop("tiny-linear")
    """
    return registering(ARCHITECTURES, name)


def registering(registry, name, what="an architecture"):
    """A decorator that stores a builder in ``registry`` under ``name`` and returns it unchanged.

    The one registration rule of every registry of networks (:data:`ARCHITECTURES`,
    :data:`~skscale.nn.segmentation.SEGMENTATION_ARCHITECTURES`).

    Parameters
    ----------
    registry : dict
        Builders by name.
    name : str
        The builder's name, non-empty.
    what : str, default="an architecture"
        What a builder is, for the error that refuses one that is not callable.

    Returns
    -------
    decorator : callable
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}.")

    def decorator(builder):
        if not callable(builder):
            raise TypeError(f"{what} must be callable, got {builder!r}.")
        registry[name] = builder
        return builder

    return decorator


def look_up_builder(registry, architecture, what="a registered name"):
    """The builder of ``architecture``: the one ``registry`` holds under that name, or the callable itself.

    Parameters
    ----------
    registry : dict
        Builders by name.
    architecture : str or callable
    what : str, default="a registered name"
        What a name of ``registry`` is, for the error that refuses anything else.

    Returns
    -------
    builder : callable

    Raises
    ------
    ValueError
        For a name ``registry`` does not hold, or a value that is neither a name nor callable.
    """
    if isinstance(architecture, str):
        if architecture not in registry:
            raise ValueError(f"architecture must be one of {sorted(registry)}, got {architecture!r}.")
        return registry[architecture]
    if callable(architecture):
        return architecture
    raise ValueError(f"architecture must be {what} ({sorted(registry)}) or a callable, got {architecture!r}.")


def builder_arguments(builder):
    """Names of the keyword arguments ``builder`` accepts besides ``n_classes`` and ``in_channels``.

    Returns
    -------
    names : list of str, or None
        ``None`` when the builder takes ``**kwargs`` (it accepts any name).
    """
    parameters = inspect.signature(builder).parameters.values()
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return [
        parameter.name
        for parameter in parameters
        if parameter.name not in _POSITIONAL
        and parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]


def _describe(builder):
    return getattr(builder, "__qualname__", None) or type(builder).__name__


def get_builder(architecture):
    """The builder of ``architecture``: a registered name's, or the callable itself."""
    return look_up_builder(ARCHITECTURES, architecture)


def scale_defaults(builder):
    """A builder's own scale hyper-parameters: its ``scale_defaults`` attribute, else ``ScaleSpec()``."""
    defaults = getattr(builder, "scale_defaults", None)
    return defaults if isinstance(defaults, ScaleSpec) else ScaleSpec()


def _fold_scale_arguments(builder, accepted, arguments, defaults):
    """Scale hyper-parameters named in ``defaults`` or ``arguments`` for a builder that takes
    ``scale_spec`` but not them go into that spec (the arguments' over the defaults')."""
    loose = [name for name in ScaleSpec.names() if name not in accepted]
    from_defaults = {name: defaults[name] for name in loose if name in defaults}
    from_arguments = {name: arguments[name] for name in loose if name in arguments}
    if not (from_defaults or from_arguments):
        return arguments
    arguments = {name: value for name, value in arguments.items() if name not in from_arguments}
    given = arguments.get("scale_spec", defaults.get("scale_spec"))
    base = resolve_scale_spec(given, scale_defaults(builder))
    arguments["scale_spec"] = base.replace(**from_defaults).replace(**from_arguments)
    return arguments


def build_module(architecture, *, n_classes, in_channels, defaults=None, **arguments):
    """Build a network: a registered architecture's name, or a builder itself.

    Parameters
    ----------
    architecture : str or callable
        A key of :data:`ARCHITECTURES`, or a builder (e.g. a ``torch.nn.Module`` class).
    n_classes : int
        Number of output logits.
    in_channels : int
        Image channels.
    defaults : dict, optional
        Arguments given to the builder only if its signature names them.
    **arguments
        Arguments the builder must accept (they override ``defaults``). A scale
        hyper-parameter (``n_scales``, ``init_isr``, ...) given by name to a builder that
        takes ``scale_spec`` instead updates that spec.

    Returns
    -------
    module : torch.nn.Module

    Examples
    --------
    >>> net = build_module("cnn", n_classes=10, in_channels=1, defaults={"init_isr": 3.0})
    >>> count_parameters(net)
    494549
    """
    builder = get_builder(architecture)
    accepted = builder_arguments(builder)
    if accepted is not None and "scale_spec" in accepted:
        arguments = _fold_scale_arguments(builder, accepted, arguments, defaults or {})
    if accepted is not None:
        unknown = sorted(set(arguments) - set(accepted))
        if unknown:
            raise ValueError(
                f"module__{unknown[0]} is not an argument of {_describe(builder)} "
                f"(architecture={architecture if isinstance(architecture, str) else _describe(builder)!r}); "
                f"it accepts {', '.join(accepted) or 'none'}."
            )
    kwargs = {
        name: value
        for name, value in (defaults or {}).items()
        if name not in arguments and (accepted is None or name in accepted)
    }
    kwargs.update(arguments)
    return builder(n_classes, in_channels, **kwargs)


def count_parameters(module, trainable_only=True):
    """Number of (trainable) parameters of a module, shared parameters counted once.

    Examples
    --------
    >>> from torch import nn
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
