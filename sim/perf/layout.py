"""Automatic choice of a training layout when a scenario gives GPUs but no parallelism.

The search is the one an engineer does by hand, pruned so it runs in milliseconds: tensor
parallel inside the scale-up domain (powers of two that divide the heads), pipeline parallel
over divisors of the remaining GPUs, context parallel only for long sequences, expert parallel
for MoE models, a few virtual-stage and micro-batch options. Every candidate is scored by the
performance model itself; the fastest one that fits in memory wins. Ties go to the simpler
layout (fewer model-parallel ranks), because the list is walked simplest first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

from sim.catalog.hardware import HardwareSpec
from sim.catalog.models import ModelShape
from sim.perf.common import PerfError

if TYPE_CHECKING:
    from sim.perf.training import TrainingLayout

__all__ = ["COLUMNS", "candidate_layouts", "candidate_table", "choose_layout"]


class _HasStep(Protocol):
    @property
    def step_time_s(self) -> float: ...


T = TypeVar("T", bound=_HasStep)


def _pow2_upto(n: int) -> list[int]:
    out, k = [], 1
    while k <= n:
        out.append(k)
        k *= 2
    return out


#: Columns of the candidate table: one row per layout, in this order.
COLUMNS = ("tp", "pp", "vp", "cp", "dp", "ep", "microbatch", "zero_stage")


def candidate_table(
    model: ModelShape, hw: HardwareSpec, gpus: int, seq_len: int, global_batch: int
) -> np.ndarray:
    """All layouts worth scoring for this job, simplest first, as an int array (:data:`COLUMNS`)."""
    from sim.perf.training import default_vp

    blocks: list[np.ndarray] = []
    tps = [t for t in _pow2_upto(min(hw.domain_gpus, 64)) if model.heads % t == 0 and gpus % t == 0]
    cps = [1] + [c for c in (2, 4, 8, 16, 32) if seq_len // c >= 4096]
    eps = [1]
    if model.is_moe:
        eps = [e for e in _pow2_upto(model.experts) if model.experts % e == 0]
    # the innermost loops (EP, micro-batch, ZeRO stage) as one array, in loop order
    grid = np.array(np.meshgrid(eps, (1, 2), (1, 3), indexing="ij")).reshape(3, -1)
    ep_g, mbs_g, zero_g = grid
    for tp in tps:
        for cp in cps:
            if gpus % (tp * cp):
                continue
            rest = gpus // (tp * cp)
            pps = [p for p in range(1, min(rest, model.layers) + 1) if rest % p == 0]
            pps = [p for p in pps if p <= 8 or p % 4 == 0][:24]
            for pp in pps:
                dp = rest // pp
                ok = (dp % ep_g == 0) & (global_batch % (dp * mbs_g) == 0)
                ok &= (zero_g == 1) | (dp > 1)
                if not ok.any():
                    continue
                vps = [1] if pp == 1 else sorted({1, default_vp(model, pp)})
                for vp in vps:
                    if pp * vp > model.layers:
                        continue
                    n = int(ok.sum())
                    block = np.empty((n, len(COLUMNS)), dtype=np.int64)
                    block[:, :5] = (tp, pp, vp, cp, dp)
                    block[:, 5], block[:, 6], block[:, 7] = ep_g[ok], mbs_g[ok], zero_g[ok]
                    blocks.append(block)
    if not blocks:
        return np.empty((0, len(COLUMNS)), dtype=np.int64)
    return np.concatenate(blocks)


def _layout(row: np.ndarray) -> TrainingLayout:
    from sim.perf.training import TrainingLayout as Layout

    tp, pp, vp, cp, dp, ep, mbs, zero = (int(v) for v in row)
    return Layout(tp=tp, pp=pp, vp=vp, cp=cp, dp=dp, ep=ep, microbatch=mbs, zero_stage=zero)


def candidate_layouts(
    model: ModelShape, hw: HardwareSpec, gpus: int, seq_len: int, global_batch: int
) -> list[TrainingLayout]:
    """All layouts worth scoring for this job, simplest first."""
    return [_layout(r) for r in candidate_table(model, hw, gpus, seq_len, global_batch)]


def choose_layout(
    evaluate: Callable[[TrainingLayout], T],
    model: ModelShape,
    hw: HardwareSpec,
    gpus: int,
    seq_len: int,
    global_batch: int,
    lower_bounds: Callable[[np.ndarray], np.ndarray] | None = None,
) -> T:
    """The candidate with the shortest step time; PerfError if none fits.

    With ``lower_bounds`` (for the candidate table, a step time per row that no evaluation of
    that layout can beat) the search is a branch and bound: candidates are evaluated in order
    of their bound and the search stops at the first whose bound exceeds the best step found.
    That returns the same layout as scoring every candidate (ties still go to the simpler
    layout, the earlier row) while evaluating a few percent of them.
    """
    table = candidate_table(model, hw, gpus, seq_len, global_batch)
    n = len(table)
    bounds = np.zeros(n) if lower_bounds is None or n == 0 else lower_bounds(table)
    order = np.lexsort((np.arange(n), bounds))
    best: T | None = None
    best_step = float("inf")
    best_i = -1
    reasons: list[str] = []
    for i in order.tolist():
        if bounds[i] > best_step * (1 + 1e-9):
            break
        try:
            est = evaluate(_layout(table[i]))
        except PerfError as exc:
            if i > best_i or not reasons:  # keep the most model-parallel failure
                reasons[:] = [str(exc)]
            continue
        step = est.step_time_s
        better = step < best_step * (1 - 1e-9)
        tie = not better and step <= best_step * (1 + 1e-9) and i < best_i
        if better or tie:
            best, best_step, best_i = est, step, i
    if best is None:
        why = f" (e.g. {reasons[0]})" if reasons else ""
        raise PerfError(
            f"no layout of {gpus} {hw.display_name} GPUs fits {model.display_name or 'the model'}"
            f" with global batch {global_batch} at sequence {seq_len}{why}"
        )
    return best
