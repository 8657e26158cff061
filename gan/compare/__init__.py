"""Compare runs across seeds and sweeps: one table of the settings that differ and the final scores.

    python -m gan.compare PATH... [--format markdown|csv|json] [--sort METRIC] [--plot FID.png]

A PATH is a run folder (it holds ``config.yaml``), or any folder below which run folders lie (a
sweep's ``outputs/multiruns/<date>/<time>/``, ``outputs/``), or a glob of either (quoted or not).

Runs are grouped by their resolved config (``config.yaml``, or the newest ``config.resume-N.yaml``
of a resumed run) without ``seed`` and the keys that only say where files go or how a run is
watched (:data:`gan.compare.config_keys.IGNORED_KEYS`), and by their dataset and the sample count of their final
evaluation (``val/eval_samples``), so FIDs of different counts or datasets never share a group.
Each group's row has the settings that tell it from the others (Hydra's group choices and the
overrides it was launched with, where every run has its ``.hydra`` record; else the differing config
keys), the number of seeds, and mean ± sample standard deviation (n-1; "—" for one seed) and the
best value of FID, KID, precision, recall, coverage and label accuracy (where any run has them),
with the iterations and wall time, all from ``metrics.json``.

Only finished runs are averaged. A run still being written (its ``.lock`` held by a live process),
an interrupted or failed one (``status`` in ``metrics.json``; an older file without it counts as
finished when its ``iteration`` reached the config's ``iterations``), a failed sweep job
(``<sweep dir>/failures/<job>.json``) and a folder without ``metrics.json`` are listed apart, each
with its reason.

``--plot FID.png`` draws FID against GAN iterations for each group: the mean over seeds, a band
from their minimum to their maximum, one marker per sample count and one line per (group, sample
count), so the 1,000-sample points in training and the final 10,000-sample point are never one
line. The points come from ``metrics.json`` ``evaluations``, else from the run's TensorBoard events.

A wrong command line ends with one ``error:`` line and the usage (exit status 2); paths that give
nothing to compare (a missing folder, no runs, no finished run) with one ``error:`` line (status 1).

The modules, in the order a comparison runs: :mod:`~gan.compare.cli` (the command line),
:mod:`~gan.compare.runs` (finding and reading runs), :mod:`~gan.compare.config_keys` (the config keys
that count), :mod:`~gan.compare.groups` (groups, statistics, columns, order),
:mod:`~gan.compare.tables` (markdown, CSV, JSON) and :mod:`~gan.compare.plot` (``--plot``).
"""
