"""
The figures of the demo, from a small run
=========================================

``make demo`` (``python -m skscale demo``) compares fixed and learned internal scale
ranges on MNIST-Scale by a cross-validated grid search and draws three figures: the
tolerance model of the training scales (the paper's Fig. 2), the ISR of the learned
runs after every epoch (Fig. 6) and the test error per data scale (Fig. 4). Every step
of the demo is a function of :mod:`skscale.demo`; this example runs them on a much
smaller configuration than the full demo's (a few hundred digits, three epochs), so its
numbers are only an illustration.
"""

# %%
# A small run
# -----------
# :func:`~skscale.demo.compute_demo` loads the data, fits the tolerance model, runs the
# search and refits the best configurations, printing its progress as it goes.
import io
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt

from skscale.datasets import DatasetSizeWarning
from skscale.demo import DemoConfig, compute_demo, format_report, make_figures, write_files

warnings.simplefilter("ignore", DatasetSizeWarning)
config = DemoConfig(n_train=300, n_test=300, cv=2, max_epochs=3, init_isr=(4.0,), error_bins=4)
progress = io.StringIO()  # the per-fit progress lines; the report below sums them up
result = compute_demo(config, n_jobs=2, random_state=0, stream=progress)
print(format_report(result))

# %%
# The files
# ---------
# :func:`~skscale.demo.write_files` saves the figures and the tables, as ``make demo``
# does into ``skscale-demo/``; the CSV files hold values rounded to 6 significant digits.
folder = Path(tempfile.mkdtemp())
write_files(result, folder)
print(sorted(path.name for path in folder.iterdir()))
print((folder / "results.csv").read_text())

# %%
# The three figures
# -----------------
# :func:`~skscale.demo.make_figures` returns them as matplotlib figures, by the file
# name the demo saves them under; here each is shown as saved.
for name, figure in make_figures(result).items():
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    buffer.seek(0)
    shown = plt.figure(figsize=(figure.get_figwidth(), figure.get_figheight()))
    ax = shown.add_axes((0, 0, 1, 1))
    ax.imshow(plt.imread(buffer, format="png"))
    ax.set_axis_off()
    ax.set_title(name, fontsize=9, loc="left")
plt.show()
