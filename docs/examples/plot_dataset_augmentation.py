"""
Training from a Dataset, with scale augmentation
================================================

``fit``, ``predict`` and ``score`` take any :class:`torch.utils.data.Dataset` yielding
``(image, label)``: the images stream through skorch's iterators and never have to fit
in memory. :class:`~skscale.datasets.DynamicScaleMNIST` (the paper's appendix) renders
each digit at its own scale when it is read. ``scale_augmentation=(low, high)`` rescales
every training batch on the fly (the paper's "+" setting). The test error per data scale
(:func:`~skscale.metrics.error_per_scale`, the paper's Fig. 4) shows how each network
copes with scales it saw rarely or never.
"""

# %%
# A dataset rendered on the fly
# -----------------------------
# Digits on 40 x 40 canvases, scaled by a factor drawn log-uniformly from [1, 1.41]
# (half an octave). The bundled digits are sorted by class: every fifth keeps all
# classes.
import matplotlib.pyplot as plt

from skscale import ScaleEquivariantClassifier
from skscale.datasets import DynamicScaleMNIST, load_mnist, scale_grid
from skscale.metrics import error_per_scale
from skscale.plotting import plot_error_per_scale

mnist = load_mnist()
train = DynamicScaleMNIST(
    mnist.data[::5][:400], mnist.target[::5][:400], canvas_size=40, scale_range=(1, 1.41), random_state=0
)
print(
    len(train), "training digits; scales from", train.scales.min().round(2), "to", train.scales.max().round(2)
)

fig, axes = plt.subplots(1, 6, figsize=(7, 1.6), layout="constrained")
for ax, index in zip(axes, range(6)):
    image, label = train[index]
    ax.imshow(image[0], cmap="gray")
    ax.set_title(f"{label}, x{train.scales[index]:.2f}", fontsize=9)
    ax.set_axis_off()
plt.show()

# %%
# Fit from the Dataset, with and without scale augmentation
# ---------------------------------------------------------
# The classes come from the dataset's ``targets``. The augmentation is reproducible
# with ``random_state`` and never applied at prediction.
settings = {"no augmentation": None, "augmentation (0.7, 1.4)": (0.7, 1.4)}
classifiers = {}
for name, augmentation in settings.items():
    classifiers[name] = ScaleEquivariantClassifier(
        init_sigma_basis=1.0,
        kernel_extent=4,
        lr=0.01,
        max_epochs=8,
        scale_augmentation=augmentation,
        random_state=0,
    ).fit(train)

# %%
# The test error per data scale
# -----------------------------
# A test set with every one of 63 other digits at every scale of a grid from 1 to 2
# (one octave), normalised like the training set: its larger half lies beyond the
# training scales: compare the two curves there. With a few hundred digits and eight
# epochs the numbers are only an illustration.
test = DynamicScaleMNIST.at_scales(
    mnist.data[2::80],
    mnist.target[2::80],
    scale_grid(0.0, 1.0, per_octave=4),
    canvas_size=40,
    normalize=(train.mean, train.std),
)
curves = {}
for name, classifier in classifiers.items():
    curves[name] = error_per_scale(classifier, test, test.targets, test.scales, bins="unique")
    print(f"{name}: test accuracy {classifier.score(test, test.targets):.2f}")

ax = plot_error_per_scale(curves)
ax.axvspan(1, 1.41, color="0.9", zorder=0, label="training scales")
ax.set_title("Test error per data scale")
plt.show()
