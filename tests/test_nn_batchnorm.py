"""skscale.nn.batchnorm: running statistics recomputed on the current weights."""

import torch
from torch import nn

from skscale.nn.batchnorm import batchnorm_layers, recalibrate_batchnorm


def network():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2), nn.BatchNorm1d(2)
    )


def test_statistics_become_those_of_the_data_on_the_current_weights():
    net = network()
    data = torch.randn(96, 3) * 4 + 3
    net(data)  # one training step's worth of exponential averaging: far from the data's statistics
    assert recalibrate_batchnorm(net, data.split(32)) == 96
    features = net[0](data)
    torch.testing.assert_close(net[1].running_mean, features.mean(0), rtol=1e-4, atol=1e-4)
    batch_variances = torch.stack([piece.var(0) for piece in features.split(32)])
    torch.testing.assert_close(net[1].running_var, batch_variances.mean(0), rtol=1e-4, atol=1e-4)
    # The second layer saw the first one normalised with batch statistics and dropout off.
    assert net[4].num_batches_tracked == 3


def test_modes_and_momentum_are_restored_and_weights_untouched():
    net = network().train()
    weights = [p.clone() for p in net.parameters()]
    recalibrate_batchnorm(net, torch.randn(20, 3).split(10))
    assert net.training and all(layer.training for layer in net.modules())
    assert all(layer.momentum == 0.1 for layer in batchnorm_layers(net))
    assert all(torch.equal(a, b) for a, b in zip(weights, net.parameters()))
    net.eval()
    recalibrate_batchnorm(net, torch.randn(20, 3).split(10))
    assert not any(layer.training for layer in net.modules())


def test_single_sample_batches_are_skipped_and_no_batch_keeps_the_statistics():
    net = network()
    before = net[1].running_mean.clone()
    assert recalibrate_batchnorm(net, torch.randn(3, 3).split(1)) == 0
    torch.testing.assert_close(net[1].running_mean, before, rtol=0, atol=0)
    assert recalibrate_batchnorm(net, torch.randn(5, 3).split(4)) == 4


def test_a_network_without_batchnorm_is_left_alone():
    assert recalibrate_batchnorm(nn.Linear(3, 2), [torch.randn(4, 3)]) == 0
