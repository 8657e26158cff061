"""Lightning callbacks, each switched on or off in ``conf/callbacks/default.yaml``.

- :mod:`gan.callbacks.training`: sample grids, the checkpoint cadence, the progress bar, the stop on a signal;
- :mod:`gan.callbacks.evaluation`: FID and the other metrics during training, ``best_fid.ckpt``;
- :mod:`gan.callbacks.diagnostics`: warnings when D has won or the modes collapse, ``curves.png``.
"""
