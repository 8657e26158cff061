"""Measuring what a GAN learned, in the feature space of an MNIST classifier the project trains itself.

- :mod:`gan.metrics.classifier`: the feature network, trained once per recipe and cached.
- :mod:`gan.metrics.scores`: the pure metrics (precision/recall, coverage, class KL, classifier score...).
- :mod:`gan.metrics.evaluator`: :class:`~gan.metrics.evaluator.Evaluator`, which scores a sample set
  (FID, KID and the rest) beside the floor real data gets.
- :mod:`gan.metrics.plots`: the learning-curves figure.

The command lines are ``python -m gan.evaluate`` and ``python -m gan.metrics.classifier``; the
callback that evaluates during training is :class:`gan.callbacks.evaluation.Evaluation`.
Submodules import torchmetrics and matplotlib: import them directly, this package stays light.
"""
