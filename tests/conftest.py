"""Fixtures and helpers shared by the test modules (import the helpers with ``from .conftest import ...``)."""

import numpy as np
import pytest
import torch
from sklearn.utils import Bunch

from skscale.basis import hermite_basis
from skscale.utils.validation import AnyOf, Boolean, Integer, Options, Pair, Real, Sequence

# A classifier small enough to fit in a fraction of a second on 10- to 12-pixel images; the
# test modules add their own epochs, batch size and skorch arguments.
SMALL = dict(
    n_scales=2,
    n_filters=4,
    init_sigma_basis=0.5,
    init_isr=2.0,
    lr=0.05,
    random_state=0,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def smooth_noise(batch, size, sigma=1.0, channels=1, seed=0):
    """White noise blurred by a Gaussian of ``sigma`` pixels: smooth enough to rescale."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, channels, size, size, generator=generator, dtype=torch.float64)
    gaussian = hermite_basis(torch.tensor([sigma], dtype=torch.float64), 2 * int(3 * sigma) + 1, 0)[0]
    kernel = gaussian.expand(channels, 1, *gaussian.shape[-2:])
    return torch.nn.functional.conv2d(noise, kernel, padding=kernel.shape[-1] // 2, groups=channels).float()


def blobs_images(n=60, size=12, seed=0, noise=0.05):
    """Two classes: a bright blob near the centre at a small (even index) or a large scale (odd)."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    radius = np.where(np.arange(n) % 2 == 0, 1.0, 3.0)
    images = np.exp(-(yy**2 + xx**2)[None] / (2 * radius[:, None, None] ** 2))
    images = images + noise * rng.randn(n, size, size)
    return images.astype(np.float32), (np.arange(n) % 2)


@pytest.fixture
def fake_fetch_openml(monkeypatch):
    """Replace OpenML: ``fake_fetch_openml(data, target)`` makes ``fetch_openml`` return them.

    Returns the list of ``(name, kwargs)`` of every call. Without ``data``, every call fails
    as an unreachable server does (``urllib.error.URLError("no network")``).
    """
    import urllib.error

    from skscale.datasets import _openml

    def install(data=None, target=None):
        calls = []

        def fetch_openml(name, **kwargs):
            calls.append((name, kwargs))
            if data is None:
                raise urllib.error.URLError("no network")
            return Bunch(data=data, target=target)

        monkeypatch.setattr(_openml, "fetch_openml", fetch_openml)
        return calls

    return install


# ---------------------------------------------------------------------------- constraints
# Values derived from the constraint objects of skscale.utils.validation, as scikit-learn's
# generate_valid_param / generate_invalid_param_val derive them from its own constraints:
# a test can then cover every entry of a `_parameter_constraints` table without naming it.
def valid_value(constraint):
    """A typical value ``constraint`` accepts (inside its bounds, not on them)."""
    if isinstance(constraint, Integer):
        value = 0 if constraint.low is None else constraint.low + 1
        if constraint.high is not None:
            value = min(value, constraint.high)
        if constraint.odd and value % 2 == 0:
            value = value + 1 if constraint.high is None or value + 1 <= constraint.high else value - 1
        return value
    if isinstance(constraint, Real):
        low, high = constraint.low, constraint.high
        if low is not None and high is not None:
            return (low + high) / 2
        if low is not None:
            return float(low) + 1.0
        return 0.0 if high is None else float(high) - 1.0
    if isinstance(constraint, Options):
        return constraint.options[0]
    if isinstance(constraint, Boolean):
        return True
    if isinstance(constraint, Pair):
        low = valid_value(constraint.item)
        return (low, _larger_valid(constraint.item, low))
    if isinstance(constraint, Sequence):
        return [valid_value(constraint.item)] * 2
    if isinstance(constraint, AnyOf):
        return valid_value(constraint.constraints[0])
    raise TypeError(f"no valid value known for {type(constraint).__name__}: teach tests/conftest.py")


def _larger_valid(constraint, value):
    """A value of a numeric ``constraint`` above ``value`` (for the high end of a pair)."""
    high = getattr(constraint, "high", None)
    larger = value + 2 if high is None else (value + high) / 2
    return int(larger) if isinstance(constraint, Integer) else float(larger)


def invalid_values(constraint):
    """Values ``constraint`` must refuse: wrong types, the values just outside its bounds, ...

    ``None`` is among them unless the constraint allows it.
    """
    values = [] if constraint.allow_none else [None]
    if isinstance(constraint, Integer):
        values += [1.5, True, str(valid_value(constraint))]
        if constraint.low is not None:
            values.append(constraint.low - 1)
        if constraint.high is not None:
            values.append(constraint.high + 1)
        if constraint.odd:
            values.append(valid_value(constraint) + 1)
    elif isinstance(constraint, Real):
        values += [float("nan"), float("inf"), True, str(valid_value(constraint))]
        closed_low = constraint.closed in ("both", "left")
        closed_high = constraint.closed in ("both", "right")
        if constraint.low is not None:
            values.append(constraint.low - 1 if closed_low else constraint.low)
        if constraint.high is not None:
            values.append(constraint.high + 1 if closed_high else constraint.high)
    elif isinstance(constraint, Options):
        values += ["not " + "/".join(map(str, constraint.options)), [constraint.options[0]]]
    elif isinstance(constraint, Boolean):
        values += [1, "True"]
    elif isinstance(constraint, Pair):
        low, high = valid_value(constraint)
        values += [low, (low, high, high), (high, low), "ab"]
        values += [(bad, high) for bad in invalid_values(constraint.item) if bad is not None]
        if not constraint.allow_equal:
            values.append((low, low))
    elif isinstance(constraint, Sequence):
        values += [[], "ab", valid_value(constraint.item)]
        values += [[valid_value(constraint.item), bad] for bad in invalid_values(constraint.item)]
    elif isinstance(constraint, AnyOf):
        members = constraint.constraints
        candidates = [value for member in members for value in invalid_values(member)]
        values += [
            value for value in candidates if value is not None and not any(m.is_valid(value) for m in members)
        ]
    else:
        raise TypeError(f"no invalid value known for {type(constraint).__name__}: teach tests/conftest.py")
    return values


class Pairs(torch.utils.data.Dataset):
    """A Dataset of ``(image, label)`` pairs, or of bare images when ``labels`` is None."""

    def __init__(self, images, labels=None):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i] if self.labels is None else (self.images[i], self.labels[i])


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a test module of many small convolutions (restored after):
    on a shared 2-core machine OpenMP contention makes them several times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
