"""Multi-GPU, multi-machine and mixed-precision training through Hugging Face Accelerate.

:class:`AcceleratedClassifier` is skorch's :class:`~skorch.hf.AccelerateMixin` over
:class:`skscale.ScaleEquivariantClassifier`. It needs the ``accelerate`` extra::

    pip install "skscale[accelerate]"

The mixin (``AcceleratedClassifier -> AccelerateMixin -> ScaleEquivariantClassifier ->
ScaleNetworkMixin -> NeuralNetClassifier``) replaces two of skorch's methods without
calling the classifier's versions: ``initialize`` (where the classifier checks its
hyper-parameters and the image shape) and ``train_step_single`` (where it applies
``scale_augmentation``); this class puts those steps back, and takes the accelerator's
device as the one the network computes on when ``device=None``. The classifier's other
hooks (the optimiser group of the scale parameters, seeding, ``evaluation_step``
splitting, whose output the mixin gathers, the scale callbacks) are reached through the
method resolution order unchanged. For the processes to stay in step, this class also
wraps the network again for a ``partial_fit`` after an unwrapped fit, and averages the
batch-norm statistics after every epoch.
"""

from __future__ import annotations

import torch
from skorch.callbacks import LRScheduler, PrintLog
from skorch.hf import AccelerateMixin

try:
    from accelerate.optimizer import AcceleratedOptimizer
    from accelerate.scheduler import AcceleratedScheduler
except ImportError as error:
    raise ImportError(
        'skscale.accelerate needs the accelerate package: pip install "skscale[accelerate]".'
    ) from error

from .classifier import ScaleEquivariantClassifier

__all__ = ["AcceleratedClassifier"]


class _PrintLogIfVerbose(PrintLog):
    """skorch's per-epoch table, printed only when the net's ``verbose`` is set."""

    def on_epoch_end(self, net, **kwargs):
        if net.verbose:
            super().on_epoch_end(net, **kwargs)


class AcceleratedClassifier(AccelerateMixin, ScaleEquivariantClassifier):
    """:class:`~skscale.ScaleEquivariantClassifier` trained through an ``accelerate.Accelerator``.

    Launch a script that fits it with ``accelerate launch`` or ``torchrun``: every
    process trains the same network on its own share of each epoch's batches, and
    :class:`torch.nn.parallel.DistributedDataParallel` averages the gradients of all
    parameters, the internal scales' included (they are parameters of the network like
    any other), so every process ends with the same weights and the same scales.
    Without a launcher it trains in one process (e.g. with mixed precision).

    Parameters
    ----------
    *args
        The positional arguments of :class:`~skscale.ScaleEquivariantClassifier`
        (``architecture``, ``n_scales``, ...).
    accelerator : accelerate.Accelerator
        Decides the devices, the distribution and the precision. Create it once per
        process, before the estimator.
    device : None, default=None
        Leave the devices to the accelerator (skorch refuses a device when the
        accelerator places the tensors).
    unwrap_after_train : bool, default=True
        Unwrap the network after training (needed to pickle the estimator). A later
        ``partial_fit`` wraps it again, so that the processes stay in step.
    callbacks__print_log__sink : "auto" or callable, default="auto"
        ``"auto"`` prints through the accelerator: once, from the main process.
    **kwargs
        The keyword arguments of :class:`~skscale.ScaleEquivariantClassifier`.

    Attributes
    ----------
    classes_, n_features_in_, input_shape_, scales_, sigma_basis_, isr_, module_, history
        As for :class:`~skscale.ScaleEquivariantClassifier`. ``module_`` is wrapped by
        the accelerator during training and unwrapped after it (by default).

    Notes
    -----
    ``random_state`` gives every process the same seed: the same initial network (the
    accelerator also copies the main process's parameters and buffers to the others
    when it wraps the network), and the same batch order, of which each process takes
    its share. Prediction splits the images among the processes and gathers the
    outputs, so every process returns the predictions for all images. Layers cache
    their basis only in eval mode, keyed on the version counters of the scale
    parameters, which every optimiser step and the copy made at wrapping bump: no
    process keeps a basis of scales it no longer has. Floating-point buffers (batch
    norm) are averaged over the processes after every epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from accelerate import Accelerator
    >>> from skscale.accelerate import AcceleratedClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 12, 12).astype("float32")
    >>> y = np.where(X[:, 4:8, 4:8].mean(axis=(1, 2)) > 0.5, "bright", "dark")
    >>> clf = AcceleratedClassifier(n_filters=4, init_sigma_basis=1.0, init_isr=2.0, max_epochs=2,
    ...                             random_state=0, accelerator=Accelerator(cpu=True)).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    def initialize(self):
        """Check the hyper-parameters and the image shape, then let the mixin build and wrap.

        :meth:`skorch.hf.AccelerateMixin.initialize` rebuilds skorch's sequence
        without calling the classifier's ``initialize``, so its checks run here first.
        """
        self._check_ready_to_build()
        return super().initialize()

    def train_step_single(self, batch, **fit_params):
        """The mixin's step (autocast, ``accelerator.backward``) on the augmented batch."""
        return super().train_step_single(self._augmented(batch), **fit_params)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Wrap the network again if an earlier training call unwrapped it.

        Otherwise a ``partial_fit`` after ``fit`` would train each process's unwrapped
        copy on its own batches, and the processes would drift apart.
        """
        self._initialize_accelerator()
        return super().on_train_begin(net, X=X, y=y, **kwargs)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Average the floating-point buffers (batch-norm statistics) over the processes.

        DistributedDataParallel averages the gradients, so the parameters agree, but
        each process updates its running statistics from its own batches. Done before
        the callbacks run, so that checkpoints and early stopping see the common values.
        """
        self._average_buffers()
        return super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)

    def _recalibrate_batchnorm(self, X, y):
        """Precise BN on each process's share of the training batches, then averaged."""
        super()._recalibrate_batchnorm(X, y)
        self._average_buffers()

    def _average_buffers(self):
        if self.accelerator.num_processes < 2:
            return
        with torch.no_grad():
            for name in self._modules:
                module = getattr(self, name + "_")
                if not isinstance(module, torch.nn.Module):
                    continue
                for buffer in module.buffers():
                    if buffer.is_floating_point():
                        buffer.copy_(self.accelerator.reduce(buffer, reduction="mean"))

    def _initialize_accelerator(self):
        # The mixin's version, with two changes: a module without trainable parameters
        # (the loss) is only moved to the device, since DistributedDataParallel refuses
        # it (accelerate wraps it anyway between CPU processes); and an optimiser or
        # scheduler prepared before is not wrapped a second time when the modules are
        # wrapped again (after unwrap_after_train, save_params or load_params).
        if self._wrapped_with_accelerator:
            return self
        for name in self._modules + self._criteria:
            component = getattr(self, name + "_")
            if isinstance(component, torch.nn.Module):
                setattr(self, name + "_", self._prepare_module(component))
        for name in self._optimizers:
            optimizer = getattr(self, name + "_")
            if isinstance(optimizer, torch.optim.Optimizer) and not isinstance(
                optimizer, AcceleratedOptimizer
            ):
                setattr(self, name + "_", self.accelerator.prepare(optimizer))
        for _, callback in self.callbacks_:
            policy = getattr(callback, "policy_", None)
            if isinstance(callback, LRScheduler) and not isinstance(policy, AcceleratedScheduler):
                callback.policy_ = self.accelerator.prepare(policy)
        self._wrapped_with_accelerator = True
        return self

    def _prepare_module(self, module):
        if any(parameter.requires_grad for parameter in module.parameters()):
            return self.accelerator.prepare(module)
        return module.to(self.accelerator.device) if self.accelerator.device_placement else module

    @property
    def _default_callbacks(self):
        # skorch's PrintLog prints to any sink but ``print`` even at verbose=0, and the
        # mixin's "auto" sink is the accelerator's print: keep verbose=0 silent.
        return [
            (name, _PrintLogIfVerbose(**callback.get_params()) if name == "print_log" else callback)
            for name, callback in super()._default_callbacks
        ]

    def _compute_device(self):
        """The accelerator's device when it places the tensors, else ``device``."""
        if self.device is None and self.accelerator.device_placement:
            return str(self.accelerator.device)
        return super()._compute_device()
