"""Measuring what a GAN learned, in the feature space of an MNIST classifier the project trains itself.

- :mod:`gan.evaluation.classifier`: the feature network, trained once per recipe and cached.
- :mod:`gan.evaluation.metrics`: FID, KID, classifier score, precision/recall, coverage, class KL,
  memorisation, and the floor (real data) beside each; :class:`~gan.evaluation.metrics.Evaluator`.
- :mod:`gan.evaluation.callbacks`: evaluation during training, diagnostics, learning curves.
- :mod:`gan.evaluation.plots`: the learning-curves figure.

The command lines are ``python -m gan.evaluate`` and ``python -m gan.evaluation.classifier``.
Submodules import torchmetrics and matplotlib: import them directly, this package stays light.
"""
