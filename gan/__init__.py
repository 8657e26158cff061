"""gan: a PyTorch Lightning + Hydra template for GANs on MNIST (README.md)."""

import os

# OpenMP's threads wait for each other after every parallel operation. GNU OpenMP (the one torch
# ships on Linux) spins 300000 times before a waiting thread sleeps; on a CPU that another busy
# process shares, those spins take the cores the late thread needs, and training ran 6-12x slower
# beside a second training. A short spin keeps the idle machine's speed and most of it when shared
# (docs/speed.md, "A shared machine"). It must be set before torch loads OpenMP, so here, the first
# thing every `python -m gan.<tool>` imports; a value of the user's own (or OMP_WAIT_POLICY) wins.
if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "1000"
