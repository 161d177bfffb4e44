"""Result rows (one per training job) for ``jobs.parquet``; column meanings in
:data:`sim.contract.JOB_COLUMNS`. Service rows come from the traces (:mod:`sim.analysis`)."""

from __future__ import annotations

import json
import math
from typing import Any

from sim.contract import RATE_FACTORS, slowdown_column
from sim.engine.workloads import Job, Phase
from sim.units import HOUR_S

__all__ = ["COMM_POWER_OF_TDP", "COMPUTE_POWER_OF_TDP", "POWER_FLOOR_OF_TDP", "job_rows"]

#: A training step alternates a compute phase near TDP with a communication phase near idle;
#: per GPU, 0.95 and 0.30 of TDP (facility.md §5 simulator default, derived from [F48]).
COMPUTE_POWER_OF_TDP = 0.95
COMM_POWER_OF_TDP = 0.30
#: GPU power smoothing holds a floor of 0.6-0.8 x TDP on GB200/GB300 (facility.md §5, §3.3
#: [F39], assumption): the middle.
POWER_FLOOR_OF_TDP = 0.7

#: the fabric tiers whose spans the jobs table reports (sim.network)
SPAN_TIERS = ("unit", "pod", "building", "site")

_STATE = {
    Phase.DONE: "finished",
    Phase.RUNNING: "running",
    Phase.RESTARTING: "running",
    Phase.PAUSED: "running",
    Phase.WAITING: "waiting",
    Phase.AWAITING: "waiting",
    Phase.PENDING: "not_submitted",
}


def job_rows(
    jobs: list[Job],
    hw_names: tuple[str, ...],
    domain_gpus: tuple[int, ...],
    gpu_tdp_w: tuple[float, ...],
    class_names: tuple[str, ...],
    end_s: float,
    tier_names: tuple[str, ...] = (),
    failure_rate_per_gpu_s: float = 0.0,
) -> list[dict[str, Any]]:
    """``failure_rate_per_gpu_s``: the unplanned failure causes' rate per GPU (for the
    expected MTBF of each job and its Young/Daly checkpoint interval)."""
    rows: list[dict[str, Any]] = []
    for job in jobs:
        useful_s = job.done_work / job.base_rate  # compute time at the base rate that was kept
        end = job.finish_s if job.phase == Phase.DONE else end_s
        started = not math.isnan(job.first_start)
        elapsed = end - job.first_start if started else 0.0
        held_gpus = job.domains * domain_gpus[job.hw]
        rate = failure_rate_per_gpu_s * held_gpus
        mtbf = 1.0 / rate if rate > 0 else math.nan
        row = {
            "name": job.name,
            "workload": job.kind,
            "stream": job.stream,
            "class": class_names[job.class_rank],
            "hardware": hw_names[job.hw],
            "gpus": job.gpus,
            "domains": job.domains,
            "submit_s": job.submit_at_s,
            "first_start_s": job.first_start,
            "finish_s": job.finish_s,
            "state": _STATE[job.phase],
            "work": job.work,
            "work_unit": job.work_unit,
            "work_done": job.done_work,
            "work_lost": job.lost_work,
            "interruptions": job.interruptions,
            "preemptions": job.preemptions,
            "restarts": max(0, job.starts - 1),
            "checkpoints": job.checkpoints,
            "planned_interruptions": job.planned_interruptions,
            "interruptions_by_cause": json.dumps(job.interruptions_by_cause, sort_keys=True),
            "detection_lost_s": job.detection_lost_s,
            "restart_lost_s": job.restart_lost_s,
            "restore_lost_s": job.restore_lost_s,
            "checkpoint_restore_s": job.restore_s,
            "recompute_lost_s": job.recompute_lost_s,
            "domain_wait_s": job.domain_wait_s,
            "shrinks": job.shrinks,
            "reshrinks": job.reshrinks,
            "shrunk_s": job.shrunk_s,
            "shrunk_share": job.shrunk_s / elapsed if elapsed > 0 else math.nan,
            "checkpoint_interval_s": job.ckpt_interval_s,
            "checkpoint_write_s": job.ckpt_write_s,
            "expected_mtbf_s": mtbf,
            "young_daly_interval_s": math.sqrt(2.0 * job.ckpt_write_s * mtbf)
            if job.ckpt_write_s > 0 and math.isfinite(mtbf)
            else math.nan,
            "wait_s": (job.first_start - job.submit_at_s) if started else math.nan,
            "held_gpu_hours": job.held_domain_s * domain_gpus[job.hw] / HOUR_S,
            "useful_gpu_hours": useful_s * job.gpus / HOUR_S,
            "ettr": useful_s / elapsed if elapsed > 0 else math.nan,
            "rate_per_s": job.base_rate,
            "mfu_when_running": (
                job.model_flops_per_s / job.peak_flops_per_s
                if job.peak_flops_per_s > 0
                else math.nan
            ),
        }
        for i, f in enumerate(RATE_FACTORS):
            row[slowdown_column(f)] = job.slowdown_s[i]
        for tier in SPAN_TIERS:
            t = tier_names.index(tier) if tier in tier_names else -1
            row[f"span_{tier}s"] = job.spans[t] if job.spans and t >= 0 else math.nan
        tdp_mw = gpu_tdp_w[job.hw] * job.gpus / 1e6
        row["power_swing_mw"] = (COMPUTE_POWER_OF_TDP - COMM_POWER_OF_TDP) * tdp_mw
        row["power_swing_with_floor_mw"] = (COMPUTE_POWER_OF_TDP - POWER_FLOOR_OF_TDP) * tdp_mw
        rows.append(row)
    return rows
