"""How close a recipe runs to this CPU's limit: the roof (the best matrix-product rate, measured in
the same bench run), the floating-point work of one real GAN iteration of a recipe (torch's flop
counter), and from those the fraction of the roof an iteration rate uses.

The work is counted on the template's own training step, over ``COUNTED`` consecutive GAN
iterations (so lazy penalties applied every 4th D step are averaged in), forward and backward,
penalties and all. Under bf16 autocast the same operations are counted: fp32-equivalent FLOPs,
compared against the fp32 roof.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, open_dict
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from gan.runtime.precision import cpu_bf16_flags, matmul_rate

ROOF_SIZE = 2048
COUNTED = 4  # GAN iterations counted (a multiple of the default recipe's penalty_every)


def machine_kind(flags: list[str]) -> str:
    """The machine kind, by the bf16 flags: the AVX-512 BF16 machines seen here differ by AMX (a bf16
    matrix product at 6.8x fp32 on one with it, 0.5x on one without; README "Precision")."""
    if "amx_bf16" in flags:
        return "AVX-512 + BF16 + AMX"
    if flags:
        return "AVX-512 + BF16 (no AMX)"
    return "AVX2-only (no bf16 matrix instructions)"


def roof() -> dict:
    """This CPU's capability and its fp32 (and, with bf16 matrix instructions, bf16) matmul roof."""
    flags = cpu_bf16_flags()
    found = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_flags": flags,
             "kind": machine_kind(flags),
             "fp32_gflops": round(matmul_rate(torch.float32, ROOF_SIZE), 1)}
    if flags:
        found["bf16_gflops"] = round(matmul_rate(torch.bfloat16, ROOF_SIZE), 1)
    return found


class FlopCounter(TorchDispatchMode):
    """Adds up torch's FLOP formulas (matmuls, convolutions and their backward passes) of every op
    run inside it. Unlike ``FlopCounterMode`` it tracks no modules, whose hooks do not support the
    double backward of gradient penalties (``autograd.grad`` with ``create_graph``)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


class FlopCount(pl.Callback):
    """Counts the floating-point operations of GAN iterations ``start + 1`` .. ``start + COUNTED``."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.counter: FlopCounter | None = None
        self.flops = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.iteration == self.start:
            self.counter = FlopCounter()
            self.counter.__enter__()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.counter is not None and pl_module.iteration == self.start + COUNTED:
            self.counter.__exit__(None, None, None)
            self.flops = self.counter.total
            self.counter = None


def gflop_per_iteration(cfg: DictConfig, start: int = 4) -> float:
    """GFLOP of one GAN iteration of ``cfg``'s recipe: its training step counted over ``COUNTED``
    iterations after ``start`` warm-up ones, every callback off (they are not the recipe's work)."""
    from gan.train import train

    with open_dict(cfg):
        cfg.iterations = start + COUNTED
        cfg.callbacks = {}
        cfg.logger = {}
    counter = FlopCount(start)
    train(cfg, callbacks=[counter])
    if not counter.flops:
        raise RuntimeError("the flop counter saw no iteration")
    return counter.flops / COUNTED / 1e9


def efficiency(gflop: float, its: float, fp32_roof: float) -> dict:
    """The work rate of ``its`` iterations per second and its share of the fp32 roof."""
    rate = gflop * its
    return {"gflop_per_it": round(gflop, 3), "gflops": round(rate, 1), "of_fp32_roof": round(rate / fp32_roof, 3)}
