"""skscale.nn.checkpoints: the differences between a saved state and a network."""

from skscale.nn import ScaleSpec, Table1Net
from skscale.nn.checkpoints import state_differences


def test_the_same_network_has_no_differences():
    differences = state_differences(Table1Net(10), Table1Net(10).state_dict())
    assert differences == {
        "missing": [],
        "unexpected": [],
        "shapes": [],
        "scale_count": None,
        "scales": False,
        "outputs": None,
    }


def test_differences_are_named_by_the_layers_they_touch():
    here = Table1Net(10, n_filters=4)
    assert state_differences(here, Table1Net(3, n_filters=4).state_dict())["outputs"] == (3, 10)
    wider = state_differences(here, Table1Net(10, n_filters=5).state_dict())
    assert ("norm.weight", (5,), (4,)) in wider["shapes"] and not wider["scales"]
    fixed = state_differences(
        here, Table1Net(10, scale_spec={"parameterisation": "fixed"}, n_filters=4).state_dict()
    )
    assert fixed["scales"] and fixed["outputs"] is None
    more = state_differences(here, Table1Net(10, scale_spec=ScaleSpec(n_scales=5), n_filters=4).state_dict())
    assert more["scale_count"] == (5, 3)
