"""Utilities shared by every layer of skscale: argument validation and the version report."""

from ._show_versions import machine_line, show_versions, system_info, versions_line
from .validation import Integer, Options, Real, check_params, validate

__all__ = [
    "Integer",
    "Options",
    "Real",
    "check_params",
    "machine_line",
    "show_versions",
    "system_info",
    "validate",
    "versions_line",
]
