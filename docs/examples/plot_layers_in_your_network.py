"""
The layers in your own network
==============================

The estimators are built from torch modules that work on their own
(:mod:`skscale.nn`): :class:`~skscale.nn.InternalScales` holds the internal scales,
:class:`~skscale.nn.ScaleConvT2H` lifts an image to a stack of responses over the
scales (Eq. 3), :class:`~skscale.nn.ScaleConvH2H` convolves such stacks (Eq. 4) and
:class:`~skscale.nn.ScaleProjection` pools over the scale axis. This example builds a
small network from them, trains it for a few steps with plain torch, and measures its
scale equivariance.
"""

# %%
# The kernels: one basis at every internal scale
# ----------------------------------------------
# Every kernel is a weighted sum of Hermite-Gaussian basis functions evaluated at each
# internal scale (:func:`~skscale.basis.hermite_basis`); the kernel size follows the
# largest scale (Eq. 6).
import matplotlib.pyplot as plt
import torch
from torch import nn

from skscale.basis import hermite_basis, kernel_size
from skscale.metrics import scale_equivariance_error
from skscale.nn import InternalScales, ScaleConvH2H, ScaleConvT2H, ScaleProjection

torch.manual_seed(0)
scales = torch.tensor([1.0, 2.0, 4.0])
size = kernel_size(float(scales.max()), kernel_extent=2.0)
basis = hermite_basis(scales, size)  # (n_functions, n_scales, size, size)
print("basis:", tuple(basis.shape))

fig, axes = plt.subplots(3, 4, figsize=(6, 4.6), layout="constrained")
for row, scale in enumerate(scales):
    for column in range(4):
        function = basis[column, row]
        limit = float(function.abs().max())  # zero is white
        axes[row, column].imshow(function, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes[row, column].set_axis_off()
    axes[row, 0].set_title(f"scale {scale:g}", fontsize=9, loc="left")
fig.suptitle("The first four basis functions at three internal scales")
plt.show()

# %%
# A network of scale convolutions
# -------------------------------
# One :class:`~skscale.nn.InternalScales` is shared by all layers; with
# ``parameterisation="isr"`` its sigma_basis and ISR are torch parameters.
internal_scales = InternalScales(n_scales=3, parameterisation="isr", init_sigma_basis=1.0, init_isr=3.0)
net = nn.Sequential(
    ScaleConvT2H(1, 8, internal_scales),  # (B, 1, H, W) -> (B, 8, 3, H, W)
    nn.ReLU(),
    ScaleConvH2H(8, 8, internal_scales, scale_size=2),  # (B, 8, 3, H, W) -> same
    ScaleProjection("max"),  # -> (B, 8, H, W)
    nn.AdaptiveMaxPool2d(1),
    nn.Flatten(),
    nn.Linear(8, 2),
)
print(net(torch.randn(2, 1, 28, 28)).shape)


# %%
# Training it like any torch module: a toy task, telling small discs from large ones.
# The internal scales move with the weights.
def discs(radii):
    grid = torch.arange(28.0) - 13.5
    distance = (grid[:, None] ** 2 + grid[None, :] ** 2).sqrt()
    return (distance < radii[:, None, None]).float()[:, None]


optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
for step in range(30):
    large = torch.rand(32) < 0.5
    radii = torch.where(large, 7 + 4 * torch.rand(32), 2 + 3 * torch.rand(32))
    loss = nn.functional.cross_entropy(net(discs(radii)), large.long())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 10 == 9:
        print(f"step {step + 1}: loss {loss.item():.3f}, ISR {internal_scales.isr:.3f}")

# %%
# Scale equivariance (Eq. 1)
# --------------------------
# Rescaling the input by 2 shifts the lifting layer's responses by one internal scale
# when neighbouring scales differ by a factor 2; a plain convolution has no such axis.
lifting = ScaleConvT2H(1, 4, [1.0, 2.0, 4.0])
plain = nn.Conv2d(1, 4, 9, padding=4)
images = nn.functional.avg_pool2d(torch.randn(4, 1, 96, 96), 9, 1, 4)  # smooth noise
print(f"lifting layer: {scale_equivariance_error(lifting, images, factor=2, scale_shift=1):.3f}")
print(f"plain convolution: {scale_equivariance_error(plain, images, factor=2):.3f}")
