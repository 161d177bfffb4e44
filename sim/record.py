"""Recording: levels on change, typed event rows, and binning into fixed intervals.

The engine tells the :class:`Recorder` two kinds of things:

* a **level** changed: ``channel.set(t, value)``. A level holds from its time until the next
  change (a step function), so time-weighted means and integrals are exact (salabim's
  ``Monitor(level=True)``). Only changes are stored: the cost is per event, not per time step.
* an **event** happened: ``recorder.event(t, kind, subject, ...)``, one typed row.

:func:`bin_levels` is the one place where levels become fixed-interval traces: for each bin it
returns the exact time-weighted mean of each channel over that bin. Units: seconds; each channel's
unit is in its name.

This module imports neither SimPy nor the engine; :func:`derive_traces` reads the build
:class:`~sim.build.Plan` for the constants of the power and cost models.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from sim.build import WORKLOAD_KINDS, Plan

__all__ = ["Channel", "EventKind", "Recorder", "bin_levels", "capex_usd_per_s", "derive_traces"]


class EventKind(StrEnum):
    """Names of the rows in ``events.parquet``."""

    SUBMITTED = "submitted"
    STARTED = "started"
    RESTARTED = "restarted"
    CHECKPOINTED = "checkpointed"
    INTERRUPTED = "interrupted"
    PREEMPTED = "preempted"
    FINISHED = "finished"
    UNFINISHED = "unfinished"
    FAILURE = "failure"
    REPAIR = "repair"


@dataclass(slots=True)
class Channel:
    """One level, stored as its change points. ``set`` is on the hot path: keep it tiny."""

    name: str
    times: list[float]
    values: list[float]

    def set(self, t: float, value: float) -> None:
        if value != self.values[-1]:
            if t == self.times[-1]:
                self.values[-1] = value
            else:
                self.times.append(t)
                self.values.append(value)


class Recorder:
    """Collects level channels and event rows during a run; produces tables afterwards."""

    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self._events: list[tuple[float, str, str, str, int, float, str]] = []

    def channel(self, name: str, initial: float = 0.0) -> Channel:
        if name in self.channels:
            raise ValueError(f"channel {name!r} registered twice")
        ch = Channel(name, [0.0], [float(initial)])
        self.channels[name] = ch
        return ch

    def add_level(self, name: str, times: np.ndarray, values: np.ndarray) -> None:
        """Add a whole level computed after the run (change times ascending, first at 0)."""
        if name in self.channels:
            raise ValueError(f"channel {name!r} registered twice")
        self.channels[name] = Channel(name, times.tolist(), values.tolist())

    def event(
        self,
        t: float,
        kind: EventKind,
        subject: str,
        workload: str = "",
        domain: int = -1,
        value: float = float("nan"),
        detail: str = "",
    ) -> None:
        # EventKind is a str: storing it as is avoids an enum property lookup per event
        self._events.append((t, kind, subject, workload, domain, value, detail))

    @property
    def n_events(self) -> int:
        return len(self._events)

    def events_table(self) -> pd.DataFrame:
        """Event rows sorted by time (stable: same-time rows keep the order they happened in)."""
        cols = ["time_s", "event", "subject", "workload", "domain", "value", "detail"]
        df = pd.DataFrame.from_records(self._events, columns=cols)
        df = df.astype(
            {
                "time_s": "float64",
                "event": "string",
                "subject": "string",
                "workload": "string",
                "domain": "int64",
                "value": "float64",
                "detail": "string",
            }
        )
        return df.sort_values("time_s", kind="stable").reset_index(drop=True)

    def levels(self, end_s: float, interval_s: float) -> pd.DataFrame:
        """All channels binned into ``interval_s`` bins up to ``end_s`` (time-weighted means)."""
        return bin_levels(
            {n: (np.asarray(c.times), np.asarray(c.values)) for n, c in self.channels.items()},
            end_s,
            interval_s,
        )


def _bin_edges(end_s: float, interval_s: float) -> np.ndarray:
    n = int(np.ceil(end_s / interval_s - 1e-9))
    edges = np.arange(n + 1, dtype=np.float64) * interval_s
    edges[-1] = end_s
    return edges


def bin_levels(
    levels: dict[str, tuple[np.ndarray, np.ndarray]], end_s: float, interval_s: float
) -> pd.DataFrame:
    """Exact time-weighted mean of each step function over each bin ``[k*dt, (k+1)*dt)``.

    Each level is (change times ascending, value from that time on). The last bin is cut at
    ``end_s``. Method: the running integral of a step function is piecewise linear between
    change points, so it is evaluated at the bin edges by linear interpolation and differenced.
    """
    edges = _bin_edges(end_s, interval_s)
    widths = np.diff(edges)
    out: dict[str, np.ndarray] = {
        "time_s": edges[:-1],
        "interval_s": widths,
    }
    for name, (t, v) in levels.items():
        keep = t <= end_s
        t, v = t[keep], v[keep]
        knots = np.append(t, end_s)
        cum = np.concatenate(([0.0], np.cumsum(v * np.diff(knots))))
        at_edges = np.interp(edges, knots, cum)
        out[name] = np.diff(at_edges) / widths
    return pd.DataFrame(out)


def derive_traces(levels: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Turn binned primitive levels into the trace table of ``traces.parquet``.

    Everything here is a linear function of the recorded levels, so applying it to bin means
    gives exact bin means. Power model (documented in :class:`sim.config.schema.ActivityPower`):
    a domain draws ``domain_power_w`` times a fraction that depends on what it does: training,
    idle (also while a job restarts or waits for a replacement), failed, or serving, where the
    draw rises from idle to ``inference_full_load`` in proportion to the load (served / capacity).
    Network, storage and management add ``it_overhead_fraction`` of the provisioned domain power,
    constantly. Facility power = IT power x PUE; all IT power becomes heat to reject (cooling
    load). Capital cost accrues linearly over the amortization periods; energy cost is facility
    energy x price.
    """
    sc = plan.scenario
    fac = sc.facility
    ap = fac.activity_power
    out = levels[["time_s", "interval_s"]].copy()
    zeros = np.zeros(len(levels))
    gpus = {k: zeros.copy() for k in (*WORKLOAD_KINDS, "failed", "idle", "total")}
    active = {k: zeros.copy() for k in ("pretraining", "posttraining")}
    it_power = zeros.copy()
    provisioned_domain_w = 0.0
    for h, (name, spec) in enumerate(zip(plan.hw_names, plan.hw_specs, strict=True)):
        n = plan.domains_of(h)
        g = spec.domain_gpus
        p = spec.domain_power_w
        provisioned_domain_w += n * p
        failed = levels[f"domains_failed.{name}"].to_numpy()
        held = {k: levels[f"domains_held.{k}.{name}"].to_numpy() for k in WORKLOAD_KINDS}
        act = {k: levels[f"domains_active.{k}.{name}"].to_numpy() for k in active}
        for k in WORKLOAD_KINDS:
            gpus[k] += held[k] * g
        for k in active:
            active[k] += act[k] * g
        gpus["failed"] += failed * g
        gpus["total"] += n * g
        training = act["pretraining"] + act["posttraining"]
        it_power += p * (
            ap.training * training + ap.idle * (n - failed - training) + ap.failed * failed
        )
    for svc in plan.services:
        served = levels[f"service.{svc.name}.served_tokens_per_s"].to_numpy()
        p = plan.hw_specs[svc.hw_index].domain_power_w
        it_power += (
            p * (ap.inference_full_load - ap.idle) * served / (svc.capacity_tokens_per_s_per_domain)
        )
    it_power += fac.it_overhead_fraction * provisioned_domain_w
    gpus["idle"] = gpus["total"] - gpus["failed"] - sum(gpus[k] for k in WORKLOAD_KINDS)
    for k in ("total", "idle", "failed", *WORKLOAD_KINDS):
        out[f"gpus_{k}"] = gpus[k]
    for k in active:
        out[f"gpus_{k}_running"] = active[k]
    # clipped only against float rounding (-1e-18), the counts themselves are exact
    out["utilization"] = np.clip(
        (gpus["total"] - gpus["idle"] - gpus["failed"]) / gpus["total"], 0.0, 1.0
    )
    out["it_power_w"] = it_power
    out["pue"] = fac.pue
    out["facility_power_w"] = it_power * fac.pue
    out["grid_cap_w"] = fac.grid_power_w
    out["cooling_load_w"] = it_power
    # throughput
    out["pretraining_tokens_per_s"] = levels["pretraining_tokens_per_s"]
    inf_tokens = zeros.copy()
    inf_flops = zeros.copy()
    for svc in plan.services:
        prefix = f"service.{svc.name}."
        served = levels[prefix + "served_tokens_per_s"].to_numpy()
        inf_tokens += served
        per_token = svc.model_flops_per_token * (
            1.0 + svc.prompt_tokens_per_request / svc.tokens_per_request
        )
        inf_flops += served * per_token
        for col in ("domains", "demand_tokens_per_s", "served_tokens_per_s"):
            out[prefix + col] = levels[prefix + col]
    out["inference_tokens_per_s"] = inf_tokens
    out["training_model_flops_per_s"] = levels["training_model_flops_per_s"]
    out["achieved_flops_per_s"] = levels["training_model_flops_per_s"].to_numpy() + inf_flops
    peak = levels["training_peak_flops_per_s"].to_numpy()
    out["training_peak_flops_per_s"] = peak
    with np.errstate(invalid="ignore", divide="ignore"):
        out["training_mfu"] = np.where(
            peak > 0, levels["training_model_flops_per_s"].to_numpy() / peak, np.nan
        )
    for k in ("pretraining", "posttraining"):
        out[f"jobs_waiting_{k}"] = levels[f"jobs_waiting.{k}"]
    # energy and cost
    dt = out["interval_s"].to_numpy()
    out["facility_energy_mwh"] = out["facility_power_w"].to_numpy() * dt / 3.6e9
    out["energy_price_usd_per_mwh"] = sc.costs.energy_price_usd_per_mwh
    out["energy_cost_usd"] = out["facility_energy_mwh"] * sc.costs.energy_price_usd_per_mwh
    capex_rate = capex_usd_per_s(plan)
    out["capex_cost_usd"] = capex_rate * dt
    out["cost_so_far_usd"] = np.cumsum(out["energy_cost_usd"] + out["capex_cost_usd"])
    return out


def capex_usd_per_s(plan: Plan) -> float:
    """Amortized capital cost per second: IT (domains plus network share) and facility.

    NaN when a domain has no sourced price (e.g. Rubin Ultra): unknown, not zero.
    """
    c = plan.scenario.costs
    it = 0.0
    for hall in plan.halls:
        price = plan.hw_specs[hall.hw_index].domain_price_usd
        if price is None:
            return float("nan")
        it += hall.n_domains * price
    it *= 1.0 + c.network_capex_fraction
    facility = c.facility_capex_usd_per_w * sum(h.it_power_capacity_w for h in plan.halls)
    return it / c.it_amortization_s + facility / c.facility_amortization_s
