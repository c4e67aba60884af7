"""skscale.model_selection, the documented import, re-exports search_backends and progress."""

import skscale.model_selection
from skscale import progress, search_backends


def test_model_selection_re_exports_the_same_objects():
    for name in skscale.model_selection.__all__:
        source = search_backends if name in search_backends.__all__ else progress
        assert name in source.__all__
        assert getattr(skscale.model_selection, name) is getattr(source, name)
    assert set(skscale.model_selection.__all__) == set(search_backends.__all__) | set(progress.__all__)
