"""The output contract: every trace and job column and the summary's shape, in one registry.

The engine, record, analysis and report all name columns through this module, so a column is
spelled once. Site-wide trace columns have fixed names (:data:`TRACE`); columns of a named
entity (a hall, an inference service) come from one family each (:data:`HALL`, :data:`SERVICE`)
and are built and parsed only by :func:`entity_column` and :func:`parse_entity_column`; so are
the per-service columns of the comparison table (:data:`COMPARED_SERVICE`). Job
columns are :data:`JOB_COLUMNS` (with their dtype, so every run's ``jobs.parquet`` has one
schema). The summary is the :class:`Summary` typed dictionary (it is written as
``summary.json`` and read back as a plain dict, so readers need no conversion).

Units are in the names (``_w``, ``_s``, ``_per_s``, ``_usd``, ``_mwh``); each entry also states
its unit and meaning, which ``aifactory report`` and the docs show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "COMPARED_SERVICE",
    "FABRIC_COLUMNS",
    "FABRIC_TIER",
    "HALL",
    "JOB_COLUMNS",
    "JOB_NUMBER_COLUMNS",
    "JOB_TEXT_COLUMNS",
    "PRIORITY_CLASS",
    "RATE_FACTORS",
    "SERVICE",
    "TRACE",
    "TRACE_FAMILIES",
    "AssetFacts",
    "Column",
    "CostFacts",
    "EntityFamily",
    "HallFacts",
    "NetworkFacts",
    "PriceFacts",
    "RunFacts",
    "ServiceFacts",
    "Summary",
    "entity_column",
    "parse_entity_column",
    "slowdown_column",
]


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    meaning: str
    dtype: Literal["float64", "string"] = "float64"


def _registry(*cols: Column) -> dict[str, Column]:
    out = {c.name: c for c in cols}
    if len(out) != len(cols):
        raise ValueError("duplicate column name in a registry")
    return out


# --------------------------------------------------------------------------- traces (site-wide)

#: One row per sample interval; each value is the exact time-weighted mean over the bin.
TRACE: dict[str, Column] = _registry(
    Column("time_s", "s", "start of the bin"),
    Column("interval_s", "s", "length of the bin (the last one may be cut at the run's end)"),
    Column("gpus_total", "GPUs", "installed GPUs"),
    Column("gpus_idle", "GPUs", "GPUs neither held by a workload nor failed"),
    Column("gpus_failed", "GPUs", "GPUs in failed domains (out for repair)"),
    Column("gpus_pretraining", "GPUs", "GPUs held by pre-training jobs"),
    Column("gpus_posttraining", "GPUs", "GPUs held by post-training jobs"),
    Column("gpus_inference", "GPUs", "GPUs held by inference services"),
    Column("gpus_pretraining_running", "GPUs", "GPUs of pre-training jobs making progress"),
    Column("gpus_posttraining_running", "GPUs", "GPUs of post-training jobs making progress"),
    Column("utilization", "1", "share of installed GPUs held by any workload"),
    Column("it_power_w", "W", "IT power of the site (domains by activity plus IT overhead)"),
    Column("facility_power_w", "W", "facility power drawn from the grid (IT x PUE)"),
    Column("pue", "1", "facility energy / IT energy over the bin"),
    Column("grid_import_w", "W", "power drawn from the grid: facility power less battery flow"),
    Column("battery_flow_w", "W", "on-site battery: discharge (+) into the site, charge (-)"),
    Column("grid_cap_w", "W", "the site's grid import cap"),
    Column("cooling_load_w", "W", "heat to reject: all IT power becomes heat"),
    Column("outdoor_dry_bulb_c", "degC", "outdoor dry-bulb temperature (NaN without weather)"),
    Column("outdoor_wet_bulb_c", "degC", "outdoor wet-bulb temperature (NaN without weather)"),
    Column("pretraining_tokens_per_s", "tokens/s", "pre-training throughput, stalls included"),
    Column(
        "pretraining_ettr",
        "1",
        "ETTR of the pre-training runs so far, at each bin's end: work kept by then (their last"
        " checkpoint, finish or end-of-run row) at the base rates over the wall time since each"
        " run's first start; ends at the jobs table's ETTR (NaN before any start;"
        " sim.analysis.pretraining_ettr)",
    ),
    Column("inference_tokens_per_s", "tokens/s", "output tokens served by all services"),
    Column("training_model_flops_per_s", "FLOP/s", "model FLOP/s achieved by pre-training"),
    Column("training_peak_flops_per_s", "FLOP/s", "dense peak of the GPUs running pre-training"),
    Column("training_mfu", "1", "model FLOP/s over dense peak of running pre-training"),
    Column("achieved_flops_per_s", "FLOP/s", "model FLOP/s of pre-training and inference"),
    Column("jobs_waiting_pretraining", "jobs", "pre-training jobs queued for domains"),
    Column("jobs_waiting_posttraining", "jobs", "post-training jobs queued for domains"),
    Column("facility_energy_mwh", "MWh", "facility energy over the bin"),
    Column("energy_price_usd_per_mwh", "USD/MWh", "energy price in force (mean over the bin)"),
    Column("energy_cost_usd", "USD", "energy cost over the bin: facility energy x hourly price"),
    Column("carbon_intensity_g_per_kwh", "gCO2eq/kWh", "grid carbon intensity (mean over the bin)"),
    Column("emissions_tco2", "tCO2eq", "emissions over the bin: facility energy x intensity"),
    Column("capex_cost_usd", "USD", "capital cost over the bin: the annuities of every asset"),
    Column("capital_compute_usd", "USD", "capital cost of the domains over the bin (annuity)"),
    Column("capital_network_usd", "USD", "capital cost of the fabric over the bin (annuity)"),
    Column("capital_storage_usd", "USD", "capital cost of storage over the bin (annuity)"),
    Column(
        "capital_facility_usd", "USD", "capital cost of shell, electrical, mechanical (annuity)"
    ),
    Column("maintenance_usd", "USD", "maintenance: a share of capital a year"),
    Column("fixed_opex_usd", "USD", "staff and other fixed cost per MW of IT capacity"),
    Column("software_usd", "USD", "software licences per installed GPU"),
    Column("repair_usd", "USD", "repair cost of the bin's domain failures"),
    Column("cost_usd", "USD", "every cost over the bin: capital, energy and operations"),
    Column("cost_pretraining_usd", "USD", "cost attributed to pre-training's GPUs and energy"),
    Column("cost_posttraining_usd", "USD", "cost attributed to post-training's GPUs and energy"),
    Column("cost_inference_usd", "USD", "cost attributed to the services' GPUs and energy"),
    Column("cost_idle_usd", "USD", "cost of idle GPUs (not spares) and their energy"),
    Column("cost_spare_usd", "USD", "cost of GPUs held back as hot spares"),
    Column("cost_failed_usd", "USD", "cost of failed GPUs, their energy and repairs"),
    Column("cost_so_far_usd", "USD", "every cost since the start"),
)


# --------------------------------------------------------------------------- entity families


@dataclass(frozen=True)
class EntityFamily:
    """Trace columns ``<prefix>.<entity name>.<quantity>`` for each entity of one kind."""

    prefix: str
    quantities: dict[str, Column]


#: Per data hall (its name in ``facility.halls``); dotted name ``site.<hall>`` as in the engine.
HALL = EntityFamily(
    "site",
    _registry(
        Column("it_power_w", "W", "IT power of the hall"),
        Column("facility_power_w", "W", "facility power of the hall (IT, cooling, losses)"),
        Column(
            "cooling_capacity_w",
            "W",
            "heat the hall can reject now (derated with outdoor temperature under weather)",
        ),
    ),
)

#: Per inference service (its name in ``workloads.inference``).
SERVICE = EntityFamily(
    "service",
    _registry(
        Column("domains", "domains", "domains the service holds"),
        Column("capacity_tokens_per_s", "tokens/s", "output tokens/s the held domains can serve"),
        Column("demand_tokens_per_s", "tokens/s", "output tokens/s demanded"),
        Column(
            "served_tokens_per_s",
            "tokens/s",
            "output tokens/s served: demand within the held capacity, the whole capacity while a"
            " backlog waits (sim.engine.backlog)",
        ),
        Column(
            "dropped_tokens_per_s",
            "tokens/s",
            "output tokens/s given up: demand whose wait in the backlog would pass the"
            " service's client_timeout (per bin, including backlog given up when the capacity"
            " fell)",
        ),
        Column(
            "queued_tokens",
            "tokens",
            "output tokens waiting in the service's backlog at the end of the bin: arrivals +"
            " queued at the bin's start = served + dropped + queued at its end",
        ),
        Column(
            "over_capacity",
            "1",
            "share of the time in which demand exceeded the held capacity at the latency targets"
            " (1 while it does: the excess waits in the backlog or is given up)",
        ),
        Column(
            "arrivals_requests_per_s",
            "requests/s",
            "requests arriving: demand over the generated (output + reasoning) tokens per request"
            " in force",
        ),
        Column(
            "served_requests_per_s",
            "requests/s",
            "requests served: served tokens over the generated tokens per request",
        ),
        Column(
            "dropped_requests_per_s",
            "requests/s",
            "requests given up: their wait in the backlog would pass the client_timeout (per bin)",
        ),
        Column(
            "queued_requests",
            "requests",
            "requests waiting in the fluid backlog at the end of the bin (its tokens over the"
            " generated tokens per request then): arrivals + queued at the bin's start = served"
            " + dropped + queued at its end",
        ),
        Column(
            "replicas",
            "replicas",
            "serving replicas: domains held x replicas per domain (fractional when a companion"
            " prefill part limits a rack)",
        ),
        Column(
            "prompt_cache_hit_rate",
            "1",
            "share of prompt tokens the prompt cache serves: prompt_cache_hit as given, or from"
            " the agentic sessions' structure (sim.serving.workload.session_mix); constant",
        ),
        Column(
            "slo_met_tokens_per_s",
            "tokens/s",
            "output tokens/s of demand whose requests meet the TTFT and TPOT targets (the request"
            " level's attainment at the load on the held capacity)",
        ),
        *(
            Column(
                f"{what}_{q}_s",
                "s",
                f"{q} {label} at the load on the held capacity (request level; services with"
                " latency targets, NaN without; infinite past 1.5x the capacity it plans on)",
            )
            for what, label in (("ttft", "time to first token"), ("tpot", "time per output token"))
            for q in ("p50", "p99")
        ),
    ),
)

#: Per priority class (its name in ``scheduler.classes``).
PRIORITY_CLASS = EntityFamily(
    "class",
    _registry(
        Column(
            "clock",
            "1",
            "clock of the class's running training jobs under power control (mean weighted by"
            " domains; 1: full clock, also when none runs)",
        ),
    ),
)

#: Per fabric tier (``unit``, ``pod``, ``building``, ``site``; :mod:`sim.network`).
FABRIC_TIER = EntityFamily(
    "fabric",
    _registry(
        Column(
            "uplink_load",
            "1",
            "offered load of the tier's uplinks that can bind (oversubscribed, scale-across,"
            " or degraded by a failed switch; a switched tier is traced when its switches can"
            " fail): what the jobs crossing them ask, all of their GPUs sending at once, over"
            " the uplinks' capacity (above 1: contended; 7 on a 1:7 tier crossed by all)",
        ),
    ),
)

#: Per failure cause (``reliability.causes``, ``maintenance``, correlated events, ``network``).
FAILURE_CAUSE = EntityFamily(
    "cause",
    _registry(
        Column(
            "domains_out",
            "domains",
            "domains out of service for this cause, failed and in repair (time-weighted mean"
            " over the bin; sim.analysis.failed_by_cause)",
        ),
    ),
)

#: The families of the trace columns (the default of :func:`parse_entity_column`).
TRACE_FAMILIES = (HALL, SERVICE, PRIORITY_CLASS, FABRIC_TIER, FAILURE_CAUSE)

#: Per inference service in the comparison table (``comparison.csv``, one row per run):
#: ``service.<name>.<quantity>``, named like the trace columns of :data:`SERVICE`.
COMPARED_SERVICE = EntityFamily(
    "service",
    _registry(
        Column(
            "cost_per_million_tokens_usd",
            "USD per million tokens",
            "the service's cost over its output tokens (NaN when a price is unknown)",
        ),
        Column(
            "capacity_tokens_per_day_per_mw",
            "tokens per day per MW",
            "output tokens a day it could sustain at its latency targets per MW of its domains'"
            " provisioned IT power (capacity, not demand)",
        ),
        Column(
            "capacity_tokens_per_day_per_domain",
            "tokens per day",
            "output tokens a day one of its domains could sustain at its latency targets",
        ),
        Column(
            "slo_attainment",
            "1",
            "share of its requests that met its latency targets (NaN where not estimated)",
        ),
        Column(
            "over_capacity_share",
            "1",
            "share of the run its demand exceeded the capacity it held at its targets",
        ),
        Column(
            "precision",
            "",
            "the precision it was served at (fp8, fp4, ...; empty: unknown)",
            dtype="string",
        ),
        Column("kv_cache", "", "the KV-cache policy its capacity was planned with", "string"),
        Column("runtime", "", "the serving runtime its capacity was planned with", "string"),
        Column(
            "limited_by",
            "",
            "what bounds its replicas' batch: kv_cache (memory), max_seqs (the engine's cap"
            " serving.max_seqs, not the hardware), ttft or tpot (the latency targets)",
            dtype="string",
        ),
        Column("batch", "sequences", "sequences in flight per replica in its plan"),
    ),
)


def entity_column(family: EntityFamily, entity: str, quantity: str) -> str:
    """The trace column of ``quantity`` for one hall or service."""
    if quantity not in family.quantities:
        raise KeyError(f"{family.prefix} has no quantity {quantity!r}")
    return f"{family.prefix}.{entity}.{quantity}"


def parse_entity_column(
    column: str, families: tuple[EntityFamily, ...] = TRACE_FAMILIES
) -> tuple[EntityFamily, str, str] | None:
    """``(family, entity, quantity)`` of an entity column, None for a site-wide column.

    ``families``: those of the table the column is in (default: the trace's). Entity names may
    contain dots; the family prefix is the first part and the quantity the last, so the split
    is unambiguous.
    """
    prefix, _, rest = column.partition(".")
    family = next((f for f in families if f.prefix == prefix), None)
    if family is None or "." not in rest:
        return None
    entity, _, quantity = rest.rpartition(".")
    if quantity not in family.quantities:
        return None
    return family, entity, quantity


# --------------------------------------------------------------------------- jobs

#: Named factors of a job's rate (rate = base rate x the product of its factors). Each has a
#: jobs-table column with the wall time it cost the job (:func:`slowdown_column`).
RATE_FACTORS = ("throttle", "network", "degraded", "elastic")


def slowdown_column(factor: str) -> str:
    if factor not in RATE_FACTORS:
        raise KeyError(f"unknown rate factor {factor!r}; known: {', '.join(RATE_FACTORS)}")
    return f"slowdown_{factor}_s"


JOB_COLUMNS: dict[str, Column] = _registry(
    Column("name", "", "job or service name", "string"),
    Column("workload", "", "pretraining, posttraining or inference", "string"),
    Column("stream", "", "post-training stream the job came from", "string"),
    Column("class", "", "priority class", "string"),
    Column("hardware", "", "catalog name of the hardware it runs on", "string"),
    Column("state", "", "finished, running, waiting, not_submitted or serving", "string"),
    Column("work_unit", "", "tokens, run_seconds or output_tokens", "string"),
    Column("gpus", "GPUs", "GPUs the job computes on (a service: the most it held)"),
    Column("domains", "domains", "domains the job holds when running"),
    Column("submit_s", "s", "submission time"),
    Column("first_start_s", "s", "first start"),
    Column("finish_s", "s", "completion time (NaN if unfinished)"),
    Column("work", "work_unit", "work to do (a service: output tokens demanded)"),
    Column("work_done", "work_unit", "work kept: checkpointed, finished or in progress at the end"),
    Column("work_lost", "work_unit", "work lost to failures and preemptions (not checkpointed)"),
    Column("interruptions", "count", "failures that hit the job"),
    Column("preemptions", "count", "times it was preempted"),
    Column("restarts", "count", "restarts after an interruption or a requeue"),
    Column("checkpoints", "count", "checkpoints completed"),
    Column("planned_interruptions", "count", "planned maintenance that stopped the job"),
    Column(
        "interruptions_by_cause",
        "",
        "unplanned interruptions by cause, summing to interruptions (JSON object: cause ->"
        " count); planned maintenance apart, in planned_interruptions",
        "string",
    ),
    Column("detection_lost_s", "s", "wall time from faults to their detection (no progress)"),
    Column("restart_lost_s", "s", "wall time paying restart overheads"),
    Column("restore_lost_s", "s", "wall time reading checkpoints back at restarts"),
    Column("recompute_lost_s", "s", "compute time of the work lost (to be done again)"),
    Column("domain_wait_s", "s", "wall time after its first start waiting for domains"),
    Column(
        "shrinks",
        "count",
        "shrink episodes: times it went from full size to fewer data-parallel replicas after"
        " losing domains (reliability.recovery: shrink_elastic)",
    ),
    Column(
        "reshrinks",
        "count",
        "times a shrunk run lost more domains and shrank again within an episode",
    ),
    Column(
        "shrunk_s",
        "s",
        "wall time from a shrink to growing back to full size (restarts in between included)",
    ),
    Column("shrunk_share", "1", "shrunk_s over wall time since first start"),
    Column("checkpoint_interval_s", "s", "wall time between checkpoints (the one used)"),
    Column(
        "checkpoint_write_s",
        "s",
        "training stall per checkpoint (the write, or an async checkpoint's snapshot)",
    ),
    Column("checkpoint_restore_s", "s", "reading the checkpoint back at each restart"),
    Column(
        "expected_mtbf_s",
        "s",
        "mean time between unplanned interruptions expected from the failure causes' rates"
        " for the GPUs it holds (NaN without failures)",
    ),
    Column(
        "young_daly_interval_s",
        "s",
        "checkpoint interval that minimises lost time, sqrt(2 x write x MTBF) (Young 1974;"
        " Daly 2006 first order), from expected_mtbf_s",
    ),
    Column("wait_s", "s", "first start - submission"),
    Column("held_gpu_hours", "GPU-h", "GPU-hours of domains held"),
    Column("useful_gpu_hours", "GPU-h", "GPU-hours of kept compute at the base rate"),
    Column("ettr", "1", "kept compute time at the base rate / wall time since first start"),
    Column("rate_per_s", "work_unit/s", "base rate while running (a service: per GPU)"),
    Column("mfu_when_running", "1", "model FLOP/s over dense peak at the base rate"),
    Column(
        "slo_attainment",
        "1",
        "share of demanded output tokens whose requests met the TTFT and TPOT targets (services;"
        " served / demanded for a service without targets)",
    ),
    Column(
        "capacity_provenance",
        "",
        "where a service's capacity comes from: measured, fitted, from specs or assumption",
        "string",
    ),
    Column(
        "power_swing_mw",
        "MW",
        "swing of the job's power between compute and communication phases, at the meter:"
        " 0.65 x GPU TDP x GPUs (facility.md §5 [F48], derived)",
    ),
    Column(
        "power_swing_with_floor_mw",
        "MW",
        "the same swing with a GPU power floor at 0.7 x TDP (GB200/GB300 power smoothing,"
        " floor 0.6-0.8 x TDP, facility.md §5, assumption)",
    ),
    *(
        Column(
            f"span_{tier}s",
            tier + "s",
            f"{tier}s of the fabric the job's domains touched at its last start (1: inside one)",
        )
        for tier in ("unit", "pod", "building", "site")
    ),
    *(
        Column(
            slowdown_column(f),
            "s",
            f"wall time the {f} factor of the rate cost the job (negative if it sped it up)",
        )
        for f in RATE_FACTORS
    ),
)
#: ``fabric.parquet``: one row per group of the fabric's innermost tier (a scalable unit on a
#: switched fabric), where it is and who held its domains at the end of the run.
FABRIC_COLUMNS: dict[str, Column] = _registry(
    Column("unit", "", "index of the group (innermost tier)"),
    Column("pod", "", "its pod (-1 on a fabric without pods)"),
    Column("building", "", "its building (-1 on a fabric without buildings)"),
    Column("site", "", "its site"),
    Column("hall", "", "hall of its domains", "string"),
    Column("domains", "domains", "scale-up domains in it"),
    Column("free", "domains", "domains free at the end"),
    Column("failed", "domains", "domains failed at the end"),
    Column("holder", "", "the job or service holding most of its domains at the end", "string"),
    Column("holder_workload", "", "pretraining, posttraining or inference", "string"),
    Column("held", "domains", "domains held by that holder"),
)

JOB_TEXT_COLUMNS = tuple(c.name for c in JOB_COLUMNS.values() if c.dtype == "string")
JOB_NUMBER_COLUMNS = tuple(c.name for c in JOB_COLUMNS.values() if c.dtype == "float64")


# --------------------------------------------------------------------------- facts for analysis


class HallFacts(TypedDict):
    name: str
    hardware: str
    domains: int
    gpus: int
    it_power_capacity_mw: float
    domain_price_usd: float | None


class ServiceFacts(TypedDict):
    name: str
    hardware: str
    priority_class: str
    domain_gpus: int
    capacity_tokens_per_s_per_domain: float
    #: what the request level sustains at the latency targets, as a share of that capacity
    #: (sim.serving.capacity.load_at_slo; 1 without targets, None where not estimated)
    slo_capacity_share: NotRequired[float | None]
    #: model FLOPs per output token, prompt tokens included (2 x active params x tokens)
    flops_per_output_token: float
    #: where the capacity per domain comes from: measured, fitted, from specs or assumption
    #: (sim.perf.serving), and in words (absent for facts made by hand)
    capacity_provenance: NotRequired[str]
    capacity_source: NotRequired[str]
    #: the serving engine the capacity was estimated for: KV-cache policy and runtime
    kv_cache: NotRequired[str]
    runtime: NotRequired[str]
    #: the precision its weights are served at (fp8, fp4, ...), and what bounds the batch of
    #: its replica (the plan's main kind): kv_cache, max_seqs (the engine's cap,
    #: ``serving.max_seqs``), ttft or tpot (sim/perf/inference.py); the batch (sequences in
    #: flight per replica), the engine's cap and the sequences its KV cache holds
    precision: NotRequired[str]
    limited_by: NotRequired[str]
    batch: NotRequired[int]
    max_seqs: NotRequired[int]
    max_batch_kv: NotRequired[int]
    #: share of its requests longer than the model's context (the request level cuts them)
    context_clipped_share: NotRequired[float]
    #: where its prompts are prefilled: colocated, or companion (another pool)
    prefill: NotRequired[str]
    #: provisioned IT power of one of its domains (its capacity per MW divides by it)
    domain_power_w: NotRequired[float]


class ControlFacts(TypedDict):
    """What the power controller did (exact times, from the engine)."""

    policy: str
    actions: int
    site_over_cap_s: float
    hall_over_limit_s: list[float]
    paused_at_end: int
    deferred_jobs: int
    longest_over_s: float
    nothing_left_to_shed: bool
    battery: NotRequired[dict[str, float]]


class NetworkFacts(TypedDict):
    """The fabric of a run (:mod:`sim.network`): its inventory and what the engine did."""

    kind: str
    placement: str
    tiers: list[str]
    bisection_tbps: dict[str, float]  # per tier, terabits/s
    switches: dict[str, dict[str, int]]  # per tier, per switch model
    links: dict[str, int]
    switch_power_w: float
    optics_power_w: float
    capex_usd: float | None
    capex_note: str
    recomputes: int  # times the contention shares were recomputed
    network_failures: NotRequired[dict[str, Any]]


class AssetFacts(TypedDict):
    kind: str  # compute, network, storage, facility_shell, facility_electrical, ...mechanical
    capital_usd: float
    life_s: float
    note: str


class PriceFacts(TypedDict):
    hardware: str
    usd: float
    basis: str  # catalog, scenario or estimate
    note: str


class CostFacts(TypedDict):
    """The factory's capital and operating-cost rates (sim.tco prices a run from them)."""

    wacc: float
    assets: list[AssetFacts]
    prices: list[PriceFacts]
    maintenance_per_year: float
    fixed_opex_usd_per_w_year: float
    repair_usd_per_failure: float
    software_usd_per_gpu_year: float
    facility_capacity_w: float
    #: domain power by activity as fractions of provisioned, GPU-weighted over the halls
    activity: dict[str, float]
    #: GPUs held back as hot spares (scheduler.spare_domains per hardware type)
    spare_gpus: float
    #: model FLOPs per training token of each pre-training job (6 x active params + attention)
    pretraining_flops_per_token: dict[str, float]


class ReliabilityFacts(TypedDict):
    """The run's reliability policies and what the engine counted (sim.engine.reliability)."""

    waiting_warning_share: float
    tray_failure: str
    recovery: str
    tray_swaps: int
    correlated_events: dict[str, int]
    #: hot spares held apart over all halls, and replacements taken from them
    hot_spares: NotRequired[int]
    hot_spares_taken: NotRequired[int]


class RunFacts(TypedDict):
    """Plain data about a run's factory that analysis needs besides the tables (``control``
    is absent for tables made by hand)."""

    scenario: str
    seed: int
    domains: int
    provisioned_it_power_w: float
    grid_power_w: float
    energy_price_usd_per_mwh: float
    facility_capex_usd_per_w: float
    network_capex_fraction: float
    it_amortization_s: float
    facility_amortization_s: float
    halls: list[HallFacts]
    services: list[ServiceFacts]
    control: NotRequired[ControlFacts]
    network: NotRequired[NetworkFacts]
    costs: NotRequired[CostFacts]
    reliability: NotRequired[ReliabilityFacts]


# --------------------------------------------------------------------------- summary


class FactorySummary(TypedDict):
    halls: list[dict[str, Any]]
    gpus: int
    domains: int
    provisioned_it_power_mw: float
    grid_power_mw: float


class EnergySummary(TypedDict):
    it_mwh: float
    facility_mwh: float
    emissions_tco2: float
    average_pue: float | None
    peak_facility_power_mw: float
    average_facility_power_mw: float
    halls: dict[str, dict[str, float]]


class CostSummary(TypedDict):
    """The run's cost (sim.tco): ``total_usd`` is the TCO of the run (capital annuities and
    every operating cost), ``capex_usd`` its capital part; ``capital_usd`` is the capital up
    front. ``components_usd`` and ``by_use_usd`` each sum to ``total_usd``."""

    total_usd: float | None
    capex_usd: float | None
    energy_usd: float
    per_gpu_hour_usd: float | None
    per_busy_gpu_hour_usd: NotRequired[float | None]
    idle_capacity_usd: float | None
    capital_usd: NotRequired[float | None]
    capital_per_gw_usd: NotRequired[float | None]
    annual_capital_usd: NotRequired[float | None]
    wacc: NotRequired[float]
    by_asset: NotRequired[dict[str, dict[str, Any]]]
    components_usd: NotRequired[dict[str, float | None]]
    by_use_usd: NotRequired[dict[str, float | None]]
    prices: NotRequired[dict[str, dict[str, Any]]]
    estimated_prices: NotRequired[list[str]]


class PretrainingRunSummary(TypedDict):
    name: str
    state: str
    gpus: int
    hardware: str
    tokens: float
    tokens_done: float
    completion_days: float | None
    ettr: float | None
    interruptions: int
    mfu_when_running: float | None
    slowdown_hours: dict[str, float]
    power_swing_mw: float
    power_swing_with_floor_mw: float
    power_swing_with_battery_mw: NotRequired[float]
    #: its attributed cost so far, that cost over the fraction done, and per 1e24 model FLOP
    cost_usd: NotRequired[float | None]
    projected_cost_usd: NotRequired[float | None]
    cost_per_1e24_flop_usd: NotRequired[float | None]
    #: goodput: interruptions by cause and the wall hours lost to each part of them
    planned_interruptions: int
    interruptions_by_cause: dict[str, int]
    hours_lost: dict[str, float]
    #: shrink_elastic: shrink episodes (full -> shrunk), shrinks again within one, wall hours
    #: shrunk and their share since first start
    shrinks: NotRequired[int]
    reshrinks: NotRequired[int]
    shrunk_hours: NotRequired[float]
    shrunk_share: NotRequired[float | None]
    checkpoint_interval_minutes: float
    young_daly_interval_minutes: float | None
    expected_mtbf_hours: float | None


class PosttrainingSummary(TypedDict):
    submitted: int
    finished: int
    mean_wait_hours: float | None
    preemptions: int
    waiting_at_end: int


class ServiceSummary(TypedDict):
    name: str
    output_tokens: float
    tokens_per_day: float
    slo_attainment: float | None
    gpu_hours: float
    #: what it used (its GPU-hours and their energy); its share of idle capacity apart
    cost_usd: NotRequired[float | None]
    cost_per_million_tokens_usd: float | None
    idle_share_usd: NotRequired[float | None]
    cost_per_million_tokens_with_idle_usd: NotRequired[float | None]
    #: provenance of the serving capacity (measured, fitted, from specs, assumption) and its source
    capacity_provenance: NotRequired[str]
    capacity_source: NotRequired[str]
    #: the serving engine its capacity was estimated for: KV-cache policy and runtime
    kv_cache: NotRequired[str]
    runtime: NotRequired[str]
    #: the precision it is served at, and what bounds its replicas' batch: ``kv_cache`` (the
    #: memory), ``max_seqs`` (the engine's cap ``serving.max_seqs``, not the hardware), ``ttft``
    #: or ``tpot`` (the latency targets); ``batch`` sequences in flight per replica, the
    #: engine's ``max_seqs`` and ``max_batch_kv``, the sequences its KV cache holds
    precision: NotRequired[str]
    limited_by: NotRequired[str]
    batch: NotRequired[int]
    max_seqs: NotRequired[int]
    max_batch_kv: NotRequired[int]
    #: where its prompts are prefilled: colocated, or companion (SLO attainment then n/a)
    prefill: NotRequired[str]
    #: what it could sustain at its latency targets (capacity, not demand): output tokens a day
    #: per domain, per MW of provisioned IT power of its domains, and with the most domains it
    #: held in the run: the planned capacity as far as the request level still meets the p99
    #: targets on it (:func:`sim.analysis.summarize`; absent where that is not estimated)
    capacity_tokens_per_day_per_domain: NotRequired[float]
    capacity_tokens_per_day_per_mw: NotRequired[float]
    capacity_tokens_per_day_at_peak_domains: NotRequired[float]
    #: facility energy attributed to it (its share of the modelled activity power, as
    #: :mod:`sim.tco` attributes the energy cost) and its output tokens over that energy
    energy_mwh: NotRequired[float]
    tokens_per_mwh: NotRequired[float | None]
    #: requests arrived, served, given up and still in the backlog at the end of the run
    #: (fluid level: arrived = served + dropped + queued)
    requests_arrived: NotRequired[float]
    requests_served: NotRequired[float]
    requests_dropped: NotRequired[float]
    requests_queued: NotRequired[float]
    prompt_cache_hit_rate: NotRequired[float]
    #: share of the run in which its demand exceeded the capacity it held at its targets
    over_capacity_share: NotRequired[float]


class ReliabilitySummary(TypedDict):
    failures: int  # unplanned (planned maintenance drains apart)
    #: planned maintenance: drains and domain-hours drained (never among the failure causes)
    maintenance_drains: NotRequired[int]
    maintenance_domain_hours: NotRequired[float]
    repairs: int
    #: unplanned interruptions of jobs (domain failures, tray swaps, restart-only faults);
    #: the jobs stopped by planned maintenance drains apart
    job_interruptions: int
    planned_job_interruptions: NotRequired[int]
    failures_per_day: float
    #: domain failures, tray swaps and restart-only interruptions by cause (unplanned only)
    failures_by_cause: dict[str, int]
    #: domain-hours out of service by failure cause (mean domains out x hours; unplanned only)
    domain_hours_failed_by_cause: dict[str, float]
    tray_failure: NotRequired[str]
    recovery: NotRequired[str]
    tray_swaps: NotRequired[int]
    correlated_events: NotRequired[dict[str, int]]
    hot_spares: NotRequired[int]
    hot_spares_taken: NotRequired[int]


class TokensSummary(TypedDict):
    pretraining_tokens_done: float
    inference_output_tokens: float
    #: each kind of token over the whole site's facility energy (MWh) and emissions (tCO2eq),
    #: apart: a pre-training token (processed: forward and backward) and an inference output
    #: token (generated, its prompt's prefill included) are different work, so their sum is no
    #: figure of merit. The per-service figure over the energy attributed to the service is
    #: ``inference_services[].tokens_per_mwh``.
    inference_output_tokens_per_mwh: float | None
    pretraining_tokens_per_mwh: float | None
    inference_output_tokens_per_tco2: float | None
    pretraining_tokens_per_tco2: float | None


class PowerControlSummary(TypedDict):
    policy: str
    actions: int
    hours_over_grid_cap: float
    hours_over_hall_limit: dict[str, float]
    hours_lost_to_throttle_by_class: dict[str, float]
    #: job wall-hours spent paused by the controller, per class (pause policy)
    hours_paused_by_class: dict[str, float]
    #: hours each class ran below its full clock (its services too: the clock traces)
    hours_below_full_clock_by_class: dict[str, float]
    paused_at_end: int
    deferred_jobs: int
    #: the longest spell above any cap: at most the reaction time unless nothing was left
    longest_minutes_over_a_cap: float
    nothing_left_to_shed: bool
    battery: NotRequired[dict[str, float]]


class Summary(TypedDict):
    """The content of ``summary.json`` (``power_control`` only for engine runs)."""

    scenario: str
    seed: int
    duration_days: float
    factory: FactorySummary
    utilization: float
    utilization_by_workload: dict[str, float]
    availability: float
    training_goodput: float | None
    training_mfu: float | None
    energy: EnergySummary
    tokens: TokensSummary
    cost: CostSummary
    pretraining_runs: list[PretrainingRunSummary]
    posttraining: PosttrainingSummary
    inference_services: list[ServiceSummary]
    reliability: ReliabilitySummary
    #: plain-language warnings (e.g. a training run waiting for domains too long)
    warnings: list[str]
    power_control: NotRequired[PowerControlSummary]
    network: NotRequired[dict[str, Any]]
