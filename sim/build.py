"""Build phase: turn a validated scenario into a plain, immutable :class:`Plan` for the engine.

This is where names meet data: hardware names are looked up in the catalog (or the scenario's
inline ``hardware:`` entries), model names in the model catalog, halls are laid out ("fill to the
power budget"), and every job and service gets its rate from the performance model
(:mod:`sim.perf`) once, here, not during the run. Cross-reference errors (unknown hardware, a
job larger than the factory, a layout that does not fit in memory) are reported with the key
path and line of the scenario, like schema errors.

Units: seconds, watts, FLOP/s, tokens/s, USD.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from sim.catalog.hardware import HardwareSpec, Precision, catalog, parse_entry
from sim.catalog.models import ModelShape, get_model
from sim.catalog.prices import domain_price
from sim.catalog.switches import switch_catalog
from sim.config.climate import (
    DEFAULT_ARCHETYPE,
    HYBRID_AIR_SHARE,
    ConstantWeather,
    CsvWeather,
    SyntheticWeather,
)
from sim.config.grid import RandomDemandResponse
from sim.config.loader import LoadedScenario, Loc, Problem, ScenarioError
from sim.config.power_control import PowerControlConfig
from sim.config.schema import (
    LLAMA3_CAUSES,
    MAX_DOMAINS,
    ChoiceSize,
    DurationDist,
    ExponentialSteps,
    FixedSize,
    FixedSteps,
    InferenceService,
    LognormalSteps,
    NetworkFailures,
    PosttrainingStream,
    PretrainingJob,
    RLWork,
    Scenario,
    SchedulerConfig,
)
from sim.facility.cooling import ARCHETYPES, CoolingPart, HallCooling
from sim.facility.grid import (
    PlannedGrid,
    cap_changes,
    carbon_series,
    event_problems,
    planned_events,
    price_series,
    random_events,
)
from sim.facility.grid_csv import GridFileError
from sim.facility.weather import (
    Weather,
    constant_weather,
    csv_weather,
    hours_for,
    synthetic_weather,
)
from sim.facility.weather_csv import WeatherFileError
from sim.network import Fabric, FabricHall, build_fabric, check_fabric, fabric_capex_usd
from sim.perf import (
    DomainMix,
    InferenceEstimate,
    PerfError,
    TrainingLayout,
    estimate_domain,
    estimate_inference,
    estimate_training,
    prefill_costs,
)
from sim.perf.common import to_precision, weight_bytes_per_param
from sim.perf.training import default_vp
from sim.rng import RandomStreams
from sim.serving.capacity import AttainmentTable, attainment_table
from sim.serving.shape import ServiceShape, shape_of_service
from sim.serving.steps import decode_iteration_s
from sim.serving.workload import SessionShape, context_clipped_share, session_mix
from sim.units import DAY_S, YEAR_S

__all__ = [
    "BYTES_PER_PARAM_TRAINING_STATE",
    "WORKLOAD_KINDS",
    "ActivityFractions",
    "ElasticShrink",
    "Hall",
    "Plan",
    "PlannedAsset",
    "PlannedCause",
    "PlannedCorrelated",
    "PlannedCosts",
    "PlannedFacility",
    "PlannedGrid",
    "PlannedJob",
    "PlannedPrice",
    "PlannedReliability",
    "PlannedRun",
    "PlannedScheduler",
    "PlannedService",
    "PlannedStream",
    "ReplicaKind",
    "build",
    "replica_kinds",
    "unknown_prices",
    "with_natural_precision",
]

#: Most control ticks or logged checkpoints one workload may have over a run (memory bound).
MAX_STEPS = 2_000_000
#: Most post-training arrivals one stream may expect over a run, and most failures the fleet
#: may expect: each is an event the engine handles and a row it records (time and memory).
MAX_ARRIVALS = 1_000_000
MAX_FAILURES = 2_000_000
#: Highest request rate a service's demand may reach (growth compounded over the run): 1e10
#: requests/s is 100,000 times web search; beyond it the numbers are a typo and overflow.
MAX_PEAK_REQUESTS_PER_S = 1e10

#: Workload kinds, in the order used for trace columns.
WORKLOAD_KINDS = ("pretraining", "posttraining", "inference")

#: Model and optimizer state per parameter in mixed-precision Adam training: bf16 weights (2) and
#: gradients (2), fp32 master weights (4) and two fp32 Adam moments (8) = 16 bytes (Rajbhandari
#: et al., ZeRO, SC 2020, §3.1). A full checkpoint writes all of it.
BYTES_PER_PARAM_TRAINING_STATE = 16.0

#: Device-to-host copy bandwidth per GPU for an asynchronous checkpoint's snapshot: one direction
#: of PCIe Gen5 x16, 64 GB/s (PCI-SIG Gen5, 32 GT/s x 16 lanes; the H100 SXM's host interface,
#: NVIDIA H100 datasheet "PCIe Gen5 128 GB/s" both ways). GB200's NVLink-C2C is 450 GB/s each
#: way (NVIDIA GB200 NVL72 datasheet, 900 GB/s bidirectional), so this is conservative there.
#: Not in reference/hardware.md; the snapshot is short either way (a GPU's share of the state).
SNAPSHOT_BYTES_PER_S = 64e9


@dataclass(frozen=True)
class Hall:
    name: str
    hw_index: int
    n_domains: int
    first_domain: int
    it_power_capacity_w: float
    #: heat the hall rejects at design conditions: ``cooling_capacity`` or its IT capacity
    cooling_capacity_w: float = math.nan


@dataclass(frozen=True)
class ElasticShrink:
    """What a pre-training job can run on after losing domains (``reliability.recovery:
    shrink_elastic``): whole data-parallel replicas only, each ``tp x pp x cp`` GPUs of its
    layout, at the same global batch (docs/reliability.md).

    Called with the domains it still holds, it returns ``(replicas, domains, rate factor)``:
    the replicas that fit (``held x usable GPUs per domain // replica GPUs``, at most the full
    DP degree, rounded down to a multiple of EP, which must divide DP), the domains they
    occupy, and the rate at that size over the full rate, in tokens per second:

    * ``global`` batch (``elastic_batch``, the default): the global batch B is kept, as
      Oobleck does and DeepSpeed's elasticity is built to allow; each replica runs
      ``ceil(B / (replicas x micro-batch))`` micro-batches (the slowest sets the step), so the
      step is the performance model's at that many replicas with the batch padded to a whole
      number of micro-batches per replica, and a step still trains B sequences. With few
      micro-batches per replica the rounding dominates: 2 per replica become 3 when one
      replica of thousands is lost (a rate factor near 2/3, not near 1);
    * ``per_replica``: each replica keeps its micro-batches, so the global batch shrinks with
      the replicas (a step trains ``replicas / DP`` of B, in about the same time).

    The estimates are on the flat network path, as the full rate's is (the fabric's network
    factor multiplies both). ``(0, 0, 0.0)`` when no replica fits or the layout does not fit
    in memory at that size (ZeRO shards the optimizer over fewer ranks)."""

    model: ModelShape
    spec: HardwareSpec
    precision: Any
    seq_len: int
    layout: TrainingLayout
    global_batch: int
    step_time_s: float
    usable_gpus: int  # per domain
    keep_global_batch: bool = True
    cache: dict[int, tuple[int, int, float]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def replica_gpus(self) -> int:
        return self.layout.tp * self.layout.pp * self.layout.cp

    @property
    def dp(self) -> int:
        return self.layout.dp

    def __call__(self, held_domains: int) -> tuple[int, int, float]:
        lay = self.layout
        r = self.replica_gpus
        kept = min(lay.dp, held_domains * self.usable_gpus // r)
        kept -= kept % lay.ep
        if kept < 1:
            return 0, 0, 0.0
        hit = self.cache.get(kept)
        if hit is not None:
            return hit
        domains = math.ceil(kept * r / self.usable_gpus)
        if kept == lay.dp:
            out = (kept, domains, 1.0)
        else:
            if self.keep_global_batch:
                per = math.ceil(self.global_batch / (kept * lay.microbatch))
            else:
                per = self.global_batch // (lay.dp * lay.microbatch)
            batch = per * kept * lay.microbatch  # sequences the step time is for
            trained = self.global_batch if self.keep_global_batch else batch
            try:
                est = _training_estimate(
                    self.model,
                    self.spec,
                    kept * r,
                    self.precision,
                    self.seq_len,
                    batch,
                    replace(lay, dp=kept, recompute="auto"),
                )
            except PerfError:
                out = (0, 0, 0.0)
            else:
                speed = trained / self.global_batch * self.step_time_s / est.step_time_s
                out = (kept, domains, min(1.0, speed))
        self.cache[kept] = out
        return out


@dataclass(frozen=True)
class PlannedJob:
    """A pre-training job with its rate fixed by the performance model."""

    name: str
    hw_index: int
    domains: int
    gpus: int  # GPUs the job computes on (it holds domains x domain_gpus)
    class_rank: int
    preemptible: bool
    submit_at_s: float
    work: float  # training tokens
    rate: float  # tokens/s while running
    model_flops_per_s: float  # achieved model FLOP/s of the whole job while running
    peak_flops_per_s: float  # dense peak of the allocated GPUs at the job's precision
    checkpoint_interval_s: float
    checkpoint_write_s: float
    estimate: dict[str, Any]
    #: the stall per checkpoint (the write under sync, the snapshot under async)
    checkpoint_stall_s: float = 0.0
    #: after a snapshot, until the checkpoint is durable (async: the write; sync: 0)
    checkpoint_persist_s: float = 0.0
    checkpoint_restore_s: float = 0.0
    checkpoint_mode: str = "sync"
    #: the performance model's estimate object: its step time on any network path (the
    #: engine's fabric turns a placement into a path and a rate factor)
    model: Any = field(default=None, repr=False, compare=False)
    #: the same job on the site's other hardware types, next best first by the scheduler's
    #: hardware policy (empty: it named its hardware, or the site has one type)
    alternatives: tuple[PlannedJob, ...] = ()
    #: what it runs on after losing domains under ``recovery: shrink_elastic`` (None: not
    #: elastic, another recovery policy)
    elastic: ElasticShrink | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class PlannedStream:
    """A post-training arrival stream on one hardware type (``options``: on each type it may
    run on, in the halls' order; the scheduler's hardware policy ranks them per job).
    ``size_values`` are domains per job on this type, ``size_gpus`` the GPUs they come from;
    each job's work is in ``work_unit`` and it runs at ``rates[k]`` units/s with size ``k``."""

    name: str
    kind: str
    hw_index: int
    class_rank: int
    preemptible: bool
    arrival_rate_per_s: float
    size_values: tuple[int, ...]
    size_weights: tuple[float, ...]
    duration: DurationDist | None
    start_at_s: float
    stop_at_s: float
    checkpoint_interval_s: float
    #: stall per checkpoint and read-back per restart, from the model trained (16 bytes/param
    #: over the storage bandwidths); 0 when the stream names no model
    checkpoint_write_s: float = 0.0
    checkpoint_restore_s: float = 0.0
    size_gpus: tuple[int, ...] = ()
    domain_gpus: int = 0
    rates: tuple[float, ...] = ()
    work_unit: str = "run_seconds"
    #: each job's work in ``work_unit`` when the stream is work-based (``duration`` is None);
    #: the mean of ``work_draw`` when each job draws its own
    work: float = 0.0
    options: tuple[PlannedStream, ...] = ()
    #: each job draws its work at arrival (``rl.steps`` given as a distribution); None: every
    #: job's work is ``work``
    work_draw: WorkDraw | None = None


@dataclass(frozen=True)
class WorkDraw:
    """The distribution a post-training job draws its work from at arrival: ``kind``
    ``exponential`` or ``lognormal`` (by its ``mean`` and ``cv``) in the stream's work unit,
    rounded to whole units, at least 1 (RL steps; ``sim.engine.arrivals.draw_work``)."""

    kind: Literal["exponential", "lognormal"]
    mean: float
    cv: float = 0.0


@dataclass(frozen=True)
class PlannedService:
    name: str
    hw_index: int
    class_rank: int
    preemptible: bool
    tokens_per_request: float  # output + reasoning tokens generated per request
    capacity_tokens_per_s_per_domain: float
    model_flops_per_token: float  # 2 x active params (forward pass), prompt tokens included
    prompt_tokens_per_request: float
    max_load: float
    min_domains: int
    control_interval_s: float
    autoscale_tolerance: float
    scale_down_stabilization_s: float
    mean_requests_per_s: float
    peak_to_trough: float
    peak_hour: float
    weekend_factor: float
    noise_cv: float
    growth_per_year: float
    estimate: dict[str, Any]
    #: share of prompt tokens the prompt cache serves (given, or from the agentic sessions'
    #: structure, :func:`_request_mix`), and serving replicas per domain (the capacity per
    #: domain over a replica's; fractional when a companion prefill part limits the rack)
    prompt_cache_hit: float
    replicas_per_domain: float
    #: SLO attainment of a replica against its load from the request-level simulator (None
    #: for a service without latency targets: there every served token meets them)
    slo: AttainmentTable | None = None
    #: targets set but no request-level table (companion prefill: the request level does not
    #: model disaggregation): its attainment is not estimated (n/a), never a number
    slo_unmeasured: bool = False
    #: where its prompts are prefilled (sim/perf/inference.py mix_domain): colocated, companion
    #: (on the domain's companion parts) or hybrid (companion parts and GPUs)
    prefill: str = "colocated"
    #: the domain's arrangement of replicas (None for a plan made without one)
    mix: DomainMix | None = None
    #: reasoning tokens per request at multiplier 1, and the multiplier's ramp (factor, start,
    #: duration in s; None: constant); the capacity per domain is planned at the ramp's highest
    #: multiplier (:func:`reasoning_multiplier`)
    reasoning_tokens_per_request: float = 0.0
    reasoning_ramp: tuple[float, float, float] | None = None
    #: share of its requests (at the run's longest reasoning) whose prompt and generation
    #: exceed the model's context: the request level cuts them to fit
    context_clipped_share: float = 0.0
    #: the fluid backlog's give-up wait (s; sim.engine.backlog) and the TTFT target (s; None
    #: without one): no request meets it while the backlog's wait exceeds it
    client_timeout_s: float = 600.0
    ttft_s: float | None = None

    def tokens_factor(self, t_s: np.ndarray) -> np.ndarray:
        """Generated tokens per request at times ``t_s`` over those at multiplier 1."""
        if self.reasoning_ramp is None:
            return np.ones_like(t_s)
        extra = self.reasoning_tokens_per_request * (
            reasoning_multiplier(self.reasoning_ramp, t_s) - 1.0
        )
        return 1.0 + extra / self.tokens_per_request


def reasoning_multiplier(ramp: tuple[float, float, float], t_s: np.ndarray) -> np.ndarray:
    """The reasoning multiplier at times ``t_s``: 1 before ``start``, ``factor`` after
    ``start + over``, linear between."""
    factor, start, over = ramp
    return 1.0 + (factor - 1.0) * np.clip((t_s - start) / over, 0.0, 1.0)


@dataclass(frozen=True)
class PlannedRun:
    name: str
    duration_s: float
    sample_interval_s: float
    seed: int


@dataclass(frozen=True)
class ActivityFractions:
    """A domain's IT power by activity, as fractions of its ``domain_power_w``; ``source`` says
    where they come from (the generation's catalog entry or the scenario's override)."""

    idle: float
    training: float
    inference_full_load: float
    failed: float
    source: str


@dataclass(frozen=True)
class PlannedFacility:
    """The site. ``pue_model`` is ``constant`` (``pue`` holds at every instant; ``weather`` and
    ``hall_cooling`` are empty) or ``weather``: each hall's PUE and heat-rejection capacity
    follow ``weather`` (hourly, over the run) through ``hall_cooling[k]`` (aligned with
    ``Plan.halls``), and ``pue`` is the sizing PUE the halls were laid out with (the highest
    hall's :meth:`~sim.facility.cooling.HallCooling.design_pue`); until the engine reads the
    weather it is also the live PUE. The weather was drawn from the run seed's ``weather``
    stream at build time: the engine must not draw from a stream of that name."""

    grid_power_w: float
    pue: float
    it_overhead_fraction: float
    activity: tuple[ActivityFractions, ...]  # per hardware type
    pue_model: str = "constant"
    weather: Weather | None = None
    hall_cooling: tuple[HallCooling, ...] = ()
    power_control: PowerControlConfig = field(default_factory=PowerControlConfig)


@dataclass(frozen=True)
class PlannedCause:
    """One cause of failure, resolved: ``rate_per_gpu_s`` per GPU per second; ``effect`` is
    ``domain`` (the domain leaves service), ``tray`` (its compute tray does, on a rack-scale
    domain; the whole domain on a server), ``restart`` (nothing leaves: the job restarts) or
    ``maintenance`` (planned: the job checkpoints, the domain is drained)."""

    name: str
    rate_per_gpu_s: float
    effect: str
    detection_s: float
    repair_time: DurationDist | None


@dataclass(frozen=True)
class PlannedCorrelated:
    name: str
    rate_per_hall_s: float
    share: float
    repair_time: DurationDist


@dataclass(frozen=True)
class PlannedReliability:
    enabled: bool
    causes: tuple[PlannedCause, ...]
    node_gpus: int
    repair_time: DurationDist
    restart_overhead_s: float
    #: switch and link failures (None: reliability off, a non-blocking fabric, or disabled)
    network_failures: NetworkFailures | None = None
    correlated: tuple[PlannedCorrelated, ...] = ()
    #: GPUs per compute tray per hardware type (None: the domain is one server)
    tray_gpus: tuple[int | None, ...] = ()
    tray_failure: str = "rack_down"
    spare_trays_per_rack: int = 0
    recovery: str = "wait_for_repair"
    #: shrink_elastic: the fewest DP replicas a run continues on, as a share of its full DP
    elastic_min_share: float = 0.5
    waiting_warning_share: float = 0.05
    #: hot spares held apart per hall (recovery ``take_spare``; empty: none)
    hot_spares: tuple[int, ...] = ()

    @property
    def failure_rate_per_1000_node_days(self) -> float:
        """The unplanned causes' total rate per 1,000 nodes of ``node_gpus`` GPUs a day."""
        per_gpu = sum(c.rate_per_gpu_s for c in self.causes if c.effect != "maintenance")
        return per_gpu * self.node_gpus * DAY_S * 1000.0


@dataclass(frozen=True)
class PlannedScheduler:
    policy: str
    class_names: tuple[str, ...]
    spare_domains: int
    #: how work that names no hardware chooses a type (sim.engine.scheduler.HARDWARE_POLICIES)
    hardware_policy: str = "fastest_completion"
    #: per hardware type: capital amortisation and training energy of one domain, USD/s
    #: (:func:`cost_per_domain_s`; NaN without a sourced price)
    cost_per_domain_s: tuple[float, ...] = ()


@dataclass(frozen=True)
class PlannedAsset:
    """One asset class of the factory's capital: what it cost up front and over what life it
    is repaid (an annuity at ``PlannedCosts.wacc``). ``note`` says where the figure comes from."""

    kind: str  # compute, network, storage, facility_shell, facility_electrical, ...mechanical
    capital_usd: float
    life_s: float
    note: str


@dataclass(frozen=True)
class PlannedPrice:
    """The price used for one domain of a generation in the factory (sim.catalog.prices)."""

    hardware: str
    usd: float
    basis: str  # catalog, scenario or estimate
    note: str


@dataclass(frozen=True)
class PlannedCosts:
    """Prices and capital. ``energy_price_usd_per_mwh`` is the time mean of
    ``Plan.grid.price_usd_per_mwh`` over the run (the constant price itself when the price is
    constant); the hourly price and carbon intensity are in ``Plan.grid``. ``assets`` is the
    factory's capital by class; the rest are the operating costs of ``costs`` (schema)."""

    energy_price_usd_per_mwh: float
    facility_capex_usd_per_w: float
    network_capex_fraction: float
    it_amortization_s: float
    facility_amortization_s: float
    wacc: float = 0.0
    assets: tuple[PlannedAsset, ...] = ()
    prices: tuple[PlannedPrice, ...] = ()
    maintenance_per_year: float = 0.0
    fixed_opex_usd_per_w_year: float = 0.0
    repair_usd_per_failure: float = 0.0
    software_usd_per_gpu_year: float = 0.0
    #: IT capacity the facility was built for (the halls' it_power capacities), W
    facility_capacity_w: float = 0.0


@dataclass(frozen=True)
class Plan:
    """Everything the engine needs, resolved and typed. Arrays are per domain.

    The engine reads the typed sections only; ``scenario`` is kept for the run folder's resolved
    ``scenario.yaml`` and for reports.
    """

    scenario: Scenario
    run: PlannedRun
    facility: PlannedFacility
    reliability: PlannedReliability
    scheduler: PlannedScheduler
    costs: PlannedCosts
    hw_names: tuple[str, ...]
    hw_specs: tuple[HardwareSpec, ...]
    halls: tuple[Hall, ...]
    domain_hw: np.ndarray  # int16 hardware index of each domain
    domain_hall: np.ndarray  # int16 hall index of each domain
    jobs: tuple[PlannedJob, ...]
    streams: tuple[PlannedStream, ...]
    services: tuple[PlannedService, ...]
    #: hourly price and carbon intensity, and the grid import cap over time (demand response)
    grid: PlannedGrid
    #: the scale-out fabric: tiers of groups of domains and their uplinks (sim.network)
    fabric: Fabric

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.scheduler.class_names

    @property
    def n_domains(self) -> int:
        return int(self.domain_hw.shape[0])

    def domains_of(self, hw_index: int) -> int:
        return sum(h.n_domains for h in self.halls if h.hw_index == hw_index)

    @property
    def total_gpus(self) -> int:
        return sum(h.n_domains * self.hw_specs[h.hw_index].domain_gpus for h in self.halls)

    @property
    def provisioned_it_power_w(self) -> float:
        """Domain power plus the fabric/storage overhead, at full provisioned draw."""
        dom = sum(h.n_domains * self.hw_specs[h.hw_index].domain_power_w for h in self.halls)
        return dom * (1.0 + self.facility.it_overhead_fraction)


class _Errors:
    def __init__(self, loaded: LoadedScenario) -> None:
        self.loaded = loaded
        self.problems: list[Problem] = []
        self.bad_hardware: set[str] = set()  # inline entries with their own errors

    def add(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(loc, message))

    def scratch(self) -> _Errors:
        """An empty list for one try (a workload planned on one of several hardware types):
        its problems count only if no type can run the workload."""
        out = _Errors(self.loaded)
        out.bad_hardware = self.bad_hardware
        return out

    def raise_if_any(self) -> None:
        if self.problems:
            raise ScenarioError(self.loaded.source, self.problems, self.loaded.lines)


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; known: {', '.join(sorted(known))}"


def unknown_prices(sc: Scenario, hardware: Iterable[str]) -> list[Problem]:
    """A problem for each ``costs.prices`` key that names neither a generation in ``hardware``
    (the catalog and the scenario's inline entries) nor a switch in the switch catalog."""
    known = [*hardware, *switch_catalog()]
    return [
        Problem(
            ("costs", "prices", name),
            f"unknown hardware or switch '{name}'"
            + _suggest(name, known).replace("; known:", "; known hardware and switches:"),
        )
        for name in sc.costs.prices
        if name not in known
    ]


def _hardware_table(sc: Scenario, err: _Errors) -> dict[str, HardwareSpec]:
    table = catalog()
    for name, raw in sc.hardware.items():
        try:
            table[name] = parse_entry(raw)
        except ValidationError as exc:
            err.bad_hardware.add(name)
            for e in exc.errors(include_url=False):
                loc = ("hardware", name, *[p for p in e["loc"] if isinstance(p, str | int)])
                msg = str(e["msg"]).removeprefix("Value error, ")
                err.add(loc, "unknown key" if e["type"] == "extra_forbidden" else msg)
        except (TypeError, ValueError, AttributeError, KeyError):
            # a provenance leaf of the wrong shape ({value: .., range: 5}) fails before pydantic
            err.bad_hardware.add(name)
            err.add(
                ("hardware", name),
                "an entry of the wrong shape: each field is a value, or a mapping"
                " {value, source, range: [low, high], weak, note}",
            )
    return table


def _layout_halls(
    sc: Scenario,
    table: dict[str, HardwareSpec],
    hw_index: dict[str, int],
    err: _Errors,
    pue: float,
) -> list[Hall]:
    f = sc.facility
    it_budget = f.grid_power_w / pue
    explicit = sum(h.it_power_w for h in f.halls if h.it_power_w is not None)
    fixed_draw = 0.0
    for h in f.halls:
        if h.it_power_w is None and h.racks != "fill" and h.hardware in table:
            fixed_draw += int(h.racks) * table[h.hardware].domain_power_w
    fixed_draw *= 1.0 + f.it_overhead_fraction
    shared = [h for h in f.halls if h.it_power_w is None and h.racks == "fill"]
    remaining = it_budget - explicit - fixed_draw
    halls: list[Hall] = []
    first = 0
    for i, h in enumerate(f.halls):
        loc: Loc = ("facility", "halls", i)
        spec = table.get(h.hardware)
        if spec is None and h.hardware in err.bad_hardware:
            continue  # its own error is reported under hardware:
        if spec is None:
            err.add(
                (*loc, "hardware"),
                f"unknown hardware '{h.hardware}'" + _suggest(h.hardware, list(table)),
            )
            continue
        per_domain = spec.domain_power_w * (1.0 + f.it_overhead_fraction)
        if h.it_power_w is not None:
            cap = h.it_power_w
        elif h.racks == "fill":
            cap = remaining / len(shared) if shared else 0.0
        else:
            cap = int(h.racks) * per_domain
        # oversubscription: more domains than the hall's power on nameplate, on expected draw;
        # the power controller keeps the hall and the grid within their caps
        over = f.oversubscription
        if h.racks == "fill":
            n = math.floor(cap * over / per_domain + 1e-9)
            if n <= 0:
                err.add(
                    (*loc, "racks"),
                    f"no {h.hardware} domain fits: the hall's IT budget is {cap / 1e6:.3f} MW and"
                    f" one domain needs {per_domain / 1e3:.1f} kW",
                )
                continue
        else:
            n = int(h.racks)
            if n * per_domain > cap * over * (1 + 1e-9):
                err.add(
                    (*loc, "racks"),
                    f"{n} domains need {n * per_domain / 1e6:.2f} MW of IT power but the hall has"
                    f" {cap / 1e6:.2f} MW",
                )
        if h.cooling_capacity_w is not None and h.cooling_capacity_w * over < n * per_domain:
            err.add(
                (*loc, "cooling_capacity"),
                f"{h.cooling_capacity_w / 1e6:.2f} MW cannot remove the heat of {n} domains at full"
                f" power ({n * per_domain / 1e6:.2f} MW)",
            )
        if first + n > MAX_DOMAINS:
            err.add(
                (*loc, "racks"),
                f"the factory would have {first + n:,} domains; at most {MAX_DOMAINS:,} are"
                " simulated (the engine keeps arrays per domain): lower grid_power or set racks",
            )
            return halls
        halls.append(
            Hall(
                h.name,
                hw_index.setdefault(h.hardware, len(hw_index)),
                n,
                first,
                cap,
                h.cooling_capacity_w or cap,
            )
        )
        first += n
    return halls


def _model(ref: str | dict[str, Any], loc: Loc, err: _Errors) -> ModelShape | None:
    try:
        return get_model(ref)
    except KeyError as exc:
        err.add(loc, str(exc.args[0]) if exc.args else "unknown model")
    except ValueError as exc:  # get_model words an invalid inline shape itself
        err.add(loc, str(exc))
    return None


def _pick_hw(want: str | None, loc: Loc, hw_index: dict[str, int], err: _Errors) -> int | None:
    if want is None:
        return 0 if hw_index else None
    if want not in hw_index:
        err.add(loc, f"no hall has hardware '{want}'" + _suggest(want, list(hw_index)))
        return None
    return hw_index[want]


def with_natural_precision(
    loaded: LoadedScenario, precision: Precision | str | None = None
) -> LoadedScenario:
    """``loaded`` with each inference service that names no precision run at its hardware's
    natural one: FP4 where the hardware has an FP4 rate (Blackwell and later, MI355X), else
    FP8. ``precision`` (fp8, fp4, bf16) forces one on every service whose hardware has it. A
    service that names its precision keeps it. Used by ``aifactory compare`` and the
    commitment question, so each generation is compared at the precision it would serve in."""
    sc = loaded.scenario
    table = catalog()
    for name, raw in sc.hardware.items():
        with contextlib.suppress(ValidationError, TypeError, ValueError, AttributeError, KeyError):
            table[name] = parse_entry(raw)
    first = sc.facility.halls[0].hardware if sc.facility.halls else None
    services = []
    for v in sc.workloads.inference:
        spec = table.get(v.hardware or first or "")
        want: Precision | None = None
        if precision is not None:
            want = Precision(precision)
        elif "precision" not in v.model_fields_set:
            want = Precision.FP4 if spec is not None and Precision.FP4 in spec.peak_flops else None
        if want is not None and spec is not None and want in spec.peak_flops:
            v = v.model_copy(update={"precision": want})
        services.append(v)
    workloads = sc.workloads.model_copy(update={"inference": tuple(services)})
    return replace(loaded, scenario=sc.model_copy(update={"workloads": workloads}))


def build(loaded: LoadedScenario) -> Plan:
    """Resolve ``loaded`` into a :class:`Plan`; raises :class:`ScenarioError` on bad input."""
    sc = loaded.scenario
    err = _Errors(loaded)
    table = _hardware_table(sc, err)
    weather = _plan_weather(loaded, err)
    grid = _plan_grid(loaded, err)
    err.raise_if_any()
    assert grid is not None  # its errors were raised
    parts = _cooling_parts(sc, table, weather, err) if weather is not None else []
    err.raise_if_any()
    sizing_pue = _sizing_pue(sc, parts)
    hw_index: dict[str, int] = {}
    halls = _layout_halls(sc, table, hw_index, err, sizing_pue)
    err.raise_if_any()
    hw_names = tuple(sorted(hw_index, key=hw_index.__getitem__))
    specs = tuple(table[n] for n in hw_names)
    hot = _hot_spares(sc, halls, err)
    # (the domains left to run on are counted after the spares: too many spares is the one
    # error to show, not its consequences)
    err.raise_if_any()
    if (
        sc.reliability.enabled
        and sc.reliability.recovery == "shrink_elastic"
        and not sc.workloads.pretraining
    ):
        err.add(
            ("reliability", "recovery"),
            "shrink_elastic shrinks pre-training runs, and this scenario has none (post-training"
            " jobs wait for repair): use wait_for_repair (and drop elastic_*)",
        )
    # hot spares are held apart: no job or service runs on them
    domains_by_hw = [
        sum(h.n_domains - k for h, k in zip(halls, hot, strict=True) if h.hw_index == i)
        for i in range(len(specs))
    ]
    f = sc.facility
    if sum(h.n_domains * specs[h.hw_index].domain_power_w for h in halls) * (
        1 + f.it_overhead_fraction
    ) * sizing_pue > f.grid_power_w * f.oversubscription * (1 + 1e-9):
        err.add(
            ("facility", "grid_power"),
            "the halls draw more than the grid power at full load"
            + (" times the oversubscription" if f.oversubscription > 1 else ""),
        )

    classes = sc.scheduler.classes
    rank = {c.name: i for i, c in enumerate(classes)}
    preemptible = {c.name: c.preemptible for c in classes}
    groups: list[tuple[str, tuple[Any, ...]]] = [
        ("pretraining", sc.workloads.pretraining),
        ("posttraining", sc.workloads.posttraining),
        ("inference", sc.workloads.inference),
    ]
    for group, items in groups:
        for i, w in enumerate(items):
            if w.priority_class not in rank:
                err.add(
                    ("workloads", group, i, "class"),
                    f"unknown class '{w.priority_class}'" + _suggest(w.priority_class, list(rank)),
                )
    spare = sc.scheduler.spare_domains
    for i, n in enumerate(domains_by_hw):
        if spare >= n:
            err.add(
                ("scheduler", "spare_domains"),
                f"{spare:,} spare domains per hardware type leave no {specs[i].display_name}"
                f" domain to run on: the factory has {n:,}",
            )
    _check_failures(
        sc, sum(n * specs[i].domain_gpus for i, n in enumerate(domains_by_hw)), specs, err
    )
    err.raise_if_any()

    policy = sc.scheduler.hardware_policy
    prices = [sc.costs.prices.get(name) for name in hw_names]  # the scenario's overrides
    cost = tuple(
        cost_per_domain_s(sc, spec, _activity(sc, spec).training, grid, sizing_pue, usd)
        for spec, usd in zip(specs, prices, strict=True)
    )
    cost_inference = tuple(
        cost_per_domain_s(sc, spec, _activity(sc, spec).inference_full_load, grid, sizing_pue, usd)
        for spec, usd in zip(specs, prices, strict=True)
    )
    _check_hardware_policy(sc, specs, cost, err)

    def candidates(want: str | None, loc: Loc) -> list[int]:
        if want is None:
            return list(range(len(hw_names)))
        hw = _pick_hw(want, loc, hw_index, err)
        return [] if hw is None else [hw]

    jobs: list[PlannedJob] = []
    for i, j in enumerate(sc.workloads.pretraining):
        loc: Loc = ("workloads", "pretraining", i)
        model = _model(j.model, (*loc, "model"), err)
        if model is None:
            continue
        options_j: list[PlannedJob] = []
        first: _Errors | None = None
        for jobs_hw in candidates(j.hardware, (*loc, "hardware")):
            scratch = err.scratch()
            planned = _plan_job(
                j,
                loc,
                jobs_hw,
                specs[jobs_hw],
                model,
                domains_by_hw[jobs_hw],
                spare,
                sc,
                scratch,
                rank[j.priority_class],
                preemptible[j.priority_class],
            )
            first = first or scratch
            if planned is not None:
                options_j.append(planned)
        if not options_j:
            if first is not None:
                err.problems.extend(first.problems)
            continue
        ranked = _rank_jobs(policy, options_j, cost)
        jobs.append(replace(ranked[0], alternatives=tuple(ranked[1:])))

    streams: list[PlannedStream] = []
    for i, s in enumerate(sc.workloads.posttraining):
        loc = ("workloads", "posttraining", i)
        s_model = None if s.model is None else _model(s.model, (*loc, "model"), err)
        if s.model is not None and s_model is None:
            continue
        options_s: list[PlannedStream] = []
        first = None
        for s_hw in candidates(s.hardware, (*loc, "hardware")):
            scratch = err.scratch()
            planned_st = _plan_stream(
                s,
                loc,
                s_hw,
                specs[s_hw],
                s_model,
                domains_by_hw[s_hw],
                sc,
                scratch,
                rank[s.priority_class],
                preemptible[s.priority_class],
            )
            first = first or scratch
            if planned_st is not None:
                options_s.append(planned_st)
        if not options_s:
            if first is not None:
                err.problems.extend(first.problems)
            continue
        streams.append(replace(options_s[0], options=tuple(options_s)))

    services: list[PlannedService] = []
    held_need = [0.0] * len(specs)  # mean domains of the services placed on each type
    for i, v in enumerate(sc.workloads.inference):
        loc = ("workloads", "inference", i)
        g = v.reasoning_growth
        if g is not None and g.start_s >= sc.run.duration_s:
            # as a heat wave or a demand-response call after the end: refused, not ignored
            err.add(
                (*loc, "reasoning_growth", "start"),
                f"the reasoning ramp starts at {g.start_s / DAY_S:g} d, at or after the end of"
                f" the run ({sc.run.duration_s / DAY_S:g} d): it would change nothing; run"
                " longer, or start it within the run (--set"
                f" workloads.inference.{i}.reasoning_growth.start=...), or drop reasoning_growth",
            )
            continue
        model = _model(v.model, (*loc, "model"), err)
        if model is None:
            continue
        options_v: list[PlannedService] = []
        first = None
        kinds = candidates(v.hardware, (*loc, "hardware"))
        for v_hw in kinds:
            scratch = err.scratch()
            planned_s = _plan_service(
                v,
                loc,
                v_hw,
                hw_names[v_hw],
                specs[v_hw],
                model,
                sc,
                scratch,
                rank[v.priority_class],
                preemptible[v.priority_class],
                with_slo=len(kinds) == 1,
            )
            if planned_s is not None and v.min_domains > domains_by_hw[v_hw] - spare:
                scratch.add(
                    (*loc, "min_domains"),
                    f"{v.min_domains:,} domains cannot be held: the factory has"
                    f" {domains_by_hw[v_hw] - spare:,} {specs[v_hw].display_name} domains"
                    f" (after {spare} spares)",
                )
                planned_s = None
            first = first or scratch
            if planned_s is not None:
                options_v.append(planned_s)
        if not options_v:
            if first is not None:
                err.problems.extend(first.problems)
            continue
        by_policy = _rank_services(policy, options_v, cost_inference)
        # the best type by the policy whose domains hold this service's mean need with the
        # services placed on it before (a service does not spill over to another type when
        # its own is full, so a type the earlier ones fill is passed over); the best one
        # when none has the room
        best = next(
            (
                o
                for o in by_policy
                if held_need[o.hw_index] + _mean_need(o) <= domains_by_hw[o.hw_index] - spare
            ),
            by_policy[0],
        )
        held_need[best.hw_index] += _mean_need(best)
        if len(kinds) > 1:  # the chosen type, now with its request-level attainment table
            w = best.hw_index
            best_slo = _plan_service(
                v,
                loc,
                w,
                hw_names[w],
                specs[w],
                model,
                sc,
                err,
                rank[v.priority_class],
                preemptible[v.priority_class],
            )
            if best_slo is None:
                continue
            best = best_slo
        services.append(best)
    err.raise_if_any()

    domain_hw = np.empty(sum(h.n_domains for h in halls), dtype=np.int16)
    domain_hall = np.empty_like(domain_hw)
    for k, h in enumerate(halls):
        domain_hw[h.first_domain : h.first_domain + h.n_domains] = h.hw_index
        domain_hall[h.first_domain : h.first_domain + h.n_domains] = k
    _check_defer(sc, grid, err)
    fabric = _plan_fabric(sc, halls, specs, err)
    f_cfg = sc.facility
    if f_cfg.oversubscription > 1 and all(
        h.racks != "fill" and h.it_power_w is None for h in f_cfg.halls
    ):
        err.add(
            ("facility", "oversubscription"),
            "no hall can take more racks: oversubscription fills 'racks: fill' halls and halls"
            " with an it_power beyond their nameplate; every hall here gives its racks",
        )
    planned_costs = _plan_costs(sc, table, halls, specs, hw_names, fabric, grid, err)
    err.raise_if_any()
    assert fabric is not None  # its errors were raised
    assert planned_costs is not None
    return Plan(
        scenario=sc,
        run=PlannedRun(sc.name, sc.run.duration_s, sc.run.sample_interval_s, sc.run.seed),
        facility=PlannedFacility(
            grid_power_w=f.grid_power_w,
            pue=sizing_pue,
            it_overhead_fraction=f.it_overhead_fraction,
            activity=tuple(_activity(sc, spec) for spec in specs),
            pue_model="constant" if weather is None else "weather",
            weather=weather,
            hall_cooling=_hall_cooling(sc, halls, parts),
            power_control=f.power_control,
        ),
        reliability=replace(
            _plan_reliability(sc, specs), hot_spares=tuple(hot) if any(hot) else ()
        ),
        scheduler=PlannedScheduler(
            policy=sc.scheduler.policy,
            class_names=tuple(c.name for c in classes),
            spare_domains=sc.scheduler.spare_domains,
            hardware_policy=policy,
            cost_per_domain_s=cost,
        ),
        costs=planned_costs,
        hw_names=hw_names,
        hw_specs=specs,
        halls=tuple(halls),
        domain_hw=domain_hw,
        domain_hall=domain_hall,
        jobs=tuple(jobs),
        streams=tuple(streams),
        services=tuple(services),
        grid=grid,
        fabric=fabric,
    )


def _plan_fabric(
    sc: Scenario, halls: list[Hall], specs: tuple[HardwareSpec, ...], err: _Errors
) -> Fabric | None:
    """The scale-out fabric of the laid-out halls (None after an error, reported with its key
    path). Halls keep their scenario order, so hall ``i`` is ``facility.halls[i]``."""
    places = {h.name: h for h in sc.facility.halls}
    fab_halls = [
        FabricHall(
            h.name,
            specs[h.hw_index],
            h.first_domain,
            h.n_domains,
            places[h.name].building,
            places[h.name].site,
        )
        for h in halls
    ]
    problems = check_fabric(sc.network, fab_halls)
    nf = sc.network.failures
    if sc.network.kind != "non_blocking" and not (nf.enabled and sc.reliability.enabled):
        defaults = NetworkFailures()
        for key in (
            "switch_annual_failure_rate",
            "link_failures_per_1000_gpu_years",
            "repair_time",
        ):
            if getattr(nf, key) != getattr(defaults, key):
                why = (
                    "network.failures.enabled is false"
                    if not nf.enabled
                    else ("reliability.enabled is false")
                )
                problems.append(
                    (("network", "failures", key), f"{why}, so this rate would change nothing")
                )
    for loc, message in problems:
        err.add(loc, message)
    return None if problems else build_fabric(sc.network, fab_halls)


def _plan_grid(loaded: LoadedScenario, err: _Errors) -> PlannedGrid | None:
    """The run's hourly price and carbon intensity and its import cap over time (None after an
    error, which is reported with its key path). Random calls come from the ``grid`` stream."""
    sc = loaded.scenario
    duration = sc.run.duration_s
    power = sc.facility.grid_power_w
    hours = hours_for(duration)
    out: dict[str, tuple[np.ndarray, str]] = {}
    try:
        out["energy_price"] = price_series(
            sc.costs.energy_price_usd_per_mwh, hours, loaded.base_dir
        )
    except GridFileError as exc:
        err.add(("costs", "energy_price", "path"), str(exc))
    try:
        out["carbon_intensity"] = carbon_series(
            sc.costs.carbon_intensity_g_per_kwh, hours, loaded.base_dir
        )
    except GridFileError as exc:
        err.add(("costs", "carbon_intensity", "path"), str(exc))
    dr = sc.facility.demand_response
    if isinstance(dr, RandomDemandResponse):
        events = random_events(dr, power, duration, RandomStreams(sc.run.seed)["grid"])
    else:
        problems = event_problems(dr, power, duration)
        for i, key, message in problems:
            err.add(("facility", "demand_response", i, key), message)
        events = () if problems else planned_events(dr)
    if len(out) < 2 or err.problems:
        return None
    return PlannedGrid(
        grid_power_w=power,
        price_usd_per_mwh=out["energy_price"][0],
        carbon_g_per_kwh=out["carbon_intensity"][0],
        cap_changes=cap_changes(power, events, duration),
        events=events,
        price_source=out["energy_price"][1],
        carbon_source=out["carbon_intensity"][1],
    )


def _plan_weather(loaded: LoadedScenario, err: _Errors) -> Weather | None:
    """The run's weather when ``facility.pue`` is ``weather``; None for a constant PUE, where
    every weather and cooling key would change nothing and is therefore an error."""
    sc = loaded.scenario
    f = sc.facility
    if f.pue != "weather":
        why = f"the PUE is the constant {f.pue:g} here, so it would change nothing"
        if f.weather is not None:
            err.add(
                ("facility", "weather"),
                f"weather drives the PUE only with facility.pue: weather ({why}): set pue:"
                " weather or remove weather",
            )
        for i, h in enumerate(f.halls):
            given = {"cooling": h.cooling, "design_ambient": h.design_ambient_c}
            given["air_share"] = h.air_share
            for key, value in given.items():
                if value is not None:
                    err.add(
                        ("facility", "halls", i, key),
                        f"{key} is used only with facility.pue: weather ({why}): set pue:"
                        f" weather or remove {key}",
                    )
        return None
    cfg = f.weather
    if cfg is None:
        err.add(
            ("facility", "pue"),
            "pue: weather needs facility.weather, e.g. {kind: synthetic, site: abilene},"
            " {kind: csv, path: weather/abilene.csv} or {kind: constant, dry_bulb: 20 C,"
            " wet_bulb: 15 C}",
        )
        return None
    duration = sc.run.duration_s
    if not isinstance(cfg, ConstantWeather):
        for i, w in enumerate(cfg.heat_waves):
            if w.start_s >= duration:
                err.add(
                    ("facility", "weather", "heat_waves", i, "start"),
                    f"the heat wave starts at {w.start_s / DAY_S:g} d, after the run ends"
                    f" ({duration / DAY_S:g} d): it would change nothing",
                )
    if isinstance(cfg, SyntheticWeather):
        return synthetic_weather(cfg, duration, RandomStreams(sc.run.seed)["weather"])
    if isinstance(cfg, CsvWeather):
        try:
            return csv_weather(cfg, duration, loaded.base_dir)
        except WeatherFileError as exc:
            err.add(("facility", "weather", "path"), str(exc))
            return None
    return constant_weather(cfg, duration)


def _cooling_parts(
    sc: Scenario, table: dict[str, HardwareSpec], weather: Weather, err: _Errors
) -> list[tuple[CoolingPart, ...] | None]:
    """Per hall (None where its hardware is unknown): its cooling archetype (given, or from the
    catalog's cooling of its hardware), the air share of hybrid racks, the design temperatures."""
    out: list[tuple[CoolingPart, ...] | None] = []
    design = {"dry_bulb": weather.design_dry_bulb_c, "wet_bulb": weather.design_wet_bulb_c}
    air = ARCHETYPES["air_chiller_econ"]
    for i, h in enumerate(sc.facility.halls):
        loc: Loc = ("facility", "halls", i)
        spec = table.get(h.hardware)
        if spec is None:
            out.append(None)  # the layout reports it
            continue
        arch = ARCHETYPES[h.cooling or DEFAULT_ARCHETYPE[spec.cooling.value]]
        share = h.air_share
        if share is None:
            share = HYBRID_AIR_SHARE if spec.cooling.value == "hybrid" else 0.0
        if arch is air:
            if h.air_share:
                err.add(
                    (*loc, "air_share"),
                    "an air_chiller_econ hall sends all its heat to air already: air_share"
                    " applies to a liquid-cooled hall",
                )
            share = 0.0
        x_design = h.design_ambient_c if h.design_ambient_c is not None else design[arch.x]
        if x_design >= arch.return_c:
            given = h.design_ambient_c is not None
            err.add(
                (*loc, "design_ambient") if given else ("facility", "weather"),
                f"the design {arch.x.replace('_', '-')} temperature {x_design:.1f} °C"
                + ("" if given else " (the 99.6th percentile of the weather)")
                + f" is not below the {arch.return_c:g} °C at which {arch.name} rejects heat:"
                " the plant cannot work at this site",
            )
            out.append(None)
            continue
        parts = [CoolingPart(arch, 1.0 - share, x_design)]
        if share > 0:
            # the air part is designed for the hall's design_ambient when that is a dry-bulb
            # temperature (the main plant's X), else for the weather's design dry-bulb
            air_design = (
                h.design_ambient_c
                if h.design_ambient_c is not None and arch.x == "dry_bulb"
                else weather.design_dry_bulb_c
            )
            parts.append(CoolingPart(air, share, air_design))
        out.append(tuple(parts))
    return out


def _sizing_pue(sc: Scenario, parts: list[tuple[CoolingPart, ...] | None]) -> float:
    """The PUE the halls are laid out with: the constant one, or the highest hall's design PUE."""
    if sc.facility.pue != "weather":
        return float(sc.facility.pue)
    designs = [HallCooling(p, 0.0, 0.0).design_pue() for p in parts if p is not None]
    return max(designs, default=1.0)


def _hall_cooling(
    sc: Scenario, halls: list[Hall], parts: list[tuple[CoolingPart, ...] | None]
) -> tuple[HallCooling, ...]:
    """Each planned hall's cooling (empty for a constant PUE): design capacity ``cooling_capacity``
    or, unset, the hall's IT power capacity."""
    if not parts:
        return ()
    out = []
    for h, cfg, p in zip(halls, sc.facility.halls, parts, strict=True):
        assert p is not None  # errors were raised before
        design = cfg.cooling_capacity_w or h.it_power_capacity_w
        out.append(HallCooling(p, design, h.it_power_capacity_w))
    return tuple(out)


def _check_defer(sc: Scenario, grid: PlannedGrid, err: _Errors) -> None:
    """``power_control.defer`` names known classes and follows a signal that varies (a constant
    price or intensity would defer nothing: the key would change nothing)."""
    d = sc.facility.power_control.defer
    if d is None:
        return
    loc: Loc = ("facility", "power_control", "defer")
    names = [c.name for c in sc.scheduler.classes]
    training = {w.priority_class for w in sc.workloads.pretraining}
    training |= {w.priority_class for w in sc.workloads.posttraining}
    for i, c in enumerate(d.classes):
        if c not in names:
            err.add((*loc, "classes", i), f"unknown class '{c}'" + _suggest(c, names))
        elif c not in training:
            err.add(
                (*loc, "classes", i),
                f"class '{c}' has no training work to defer (inference services are never"
                " deferred)",
            )
    values = grid.price_usd_per_mwh if d.signal == "price" else grid.carbon_g_per_kwh
    if values.size and float(values.min()) == float(values.max()):
        key = "costs.energy_price" if d.signal == "price" else "costs.carbon_intensity"
        err.add(
            (*loc, "signal"),
            f"the {d.signal} is the same in every hour, so nothing would be deferred: give"
            f" {key} a profile or a CSV",
        )


def _plan_costs(
    sc: Scenario,
    table: dict[str, HardwareSpec],
    halls: list[Hall],
    specs: tuple[HardwareSpec, ...],
    hw_names: tuple[str, ...],
    fabric: Fabric | None,
    grid: PlannedGrid,
    err: _Errors,
) -> PlannedCosts | None:
    """The factory's capital by asset class and its operating-cost rates (docs/costs.md).

    Compute: each hall's domains at their price (:func:`sim.catalog.prices.domain_price`: the
    scenario's ``costs.prices``, the catalog's, or a flagged estimate). Network: the fabric's
    switches and transceivers at their prices, or ``network_capex_fraction`` of compute where
    no fabric is modelled. Storage: ``storage_capex_fraction`` of compute. Facility:
    ``facility_capex`` per W of the halls' IT capacity, split into shell, electrical and
    mechanical, each with its life."""
    c = sc.costs
    switches = switch_catalog()
    for problem in unknown_prices(sc, table):
        err.add(problem.loc, problem.message)
    if fabric is None or err.problems:
        return None
    sourced = catalog()
    quotes = {
        name: domain_price(name, spec, sourced, c.prices.get(name))
        for name, spec in zip(hw_names, specs, strict=True)
    }
    compute = sum(h.n_domains * quotes[hw_names[h.hw_index]].usd for h in halls)
    it_life = c.it_amortization_s
    if fabric.kind == "non_blocking":
        network = compute * c.network_capex_fraction
        net_note = f"costs.network_capex_fraction ({c.network_capex_fraction:.3g}) of compute"
    else:
        sw_prices = {k: v for k, v in c.prices.items() if k in switches}
        parts = fabric_capex_usd(fabric.switches, fabric.optics_ends, sw_prices)
        network = parts["switches"] + parts["optics"]
        net_note = (
            f"{fabric.switch_count:,} switches (${parts['switches'] / 1e6:,.1f}M) and"
            f" {sum(a + b for a, b in fabric.optics_ends.values()):,} transceivers"
            f" (${parts['optics'] / 1e6:,.1f}M), sim/catalog/switches.yaml"
        )
    capacity = sum(h.it_power_capacity_w for h in halls)
    facility = c.facility_capex_usd_per_w * capacity
    split = c.facility_split
    assets = (
        PlannedAsset("compute", compute, it_life, "domains x price (catalog, scenario, estimate)"),
        PlannedAsset("network", network, it_life, net_note),
        PlannedAsset(
            "storage",
            compute * c.storage_capex_fraction,
            it_life,
            f"costs.storage_capex_fraction ({c.storage_capex_fraction:.3g}) of compute",
        ),
        PlannedAsset(
            "facility_shell", facility * split.shell, c.shell_amortization_s, "facility_split.shell"
        ),
        PlannedAsset(
            "facility_electrical",
            facility * split.electrical,
            c.facility_amortization_s,
            "facility_split.electrical",
        ),
        PlannedAsset(
            "facility_mechanical",
            facility * split.mechanical,
            c.facility_amortization_s,
            "facility_split.mechanical",
        ),
    )
    return PlannedCosts(
        energy_price_usd_per_mwh=grid.mean_price_usd_per_mwh(sc.run.duration_s),
        facility_capex_usd_per_w=c.facility_capex_usd_per_w,
        network_capex_fraction=c.network_capex_fraction,
        it_amortization_s=it_life,
        facility_amortization_s=c.facility_amortization_s,
        wacc=c.wacc,
        assets=assets,
        prices=tuple(PlannedPrice(name, q.usd, q.basis, q.note) for name, q in quotes.items()),
        maintenance_per_year=c.maintenance_per_year,
        fixed_opex_usd_per_w_year=c.fixed_opex_usd_per_w_year,
        repair_usd_per_failure=c.repair_usd_per_failure,
        software_usd_per_gpu_year=c.software_usd_per_gpu_year,
        facility_capacity_w=capacity,
    )


def _activity(sc: Scenario, spec: HardwareSpec) -> ActivityFractions:
    """Activity power of one generation: the scenario's ``facility.activity_power`` if it sets
    one (for every generation), else the generation's catalog entry."""
    ap = sc.facility.activity_power
    if ap is not None:
        return ActivityFractions(
            ap.idle, ap.training, ap.inference_full_load, ap.failed, "facility.activity_power"
        )
    cat = spec.activity_power
    return ActivityFractions(cat.idle, cat.training, cat.inference_full_load, cat.failed, "catalog")


def _plan_job(
    j: PretrainingJob,
    loc: Loc,
    hw: int,
    spec: HardwareSpec,
    model: ModelShape,
    domains_available: int,
    spare: int,
    sc: Scenario,
    err: _Errors,
    class_rank: int,
    preemptible: bool,
) -> PlannedJob | None:
    domains = math.ceil(j.gpus / usable_gpus(sc, spec))
    if domains > domains_available - spare:
        err.add(
            (*loc, "gpus"),
            f"{j.gpus} GPUs need {domains} {spec.display_name} domains of"
            f" {usable_gpus(sc, spec)} GPUs"
            f" but the factory has {domains_available - spare} (after {spare} spares)",
        )
        return None
    # The job runs on the GPUs it asks for; it holds whole domains (gang scheduling is by
    # domain), so GPUs left over in its last domain are held but idle.
    gpus = j.gpus
    n_ckpt = sc.run.duration_s / j.checkpoint_interval_s
    if n_ckpt > MAX_STEPS:
        err.add(
            (*loc, "checkpoint_interval"),
            f"{j.checkpoint_interval_s:g} s gives {n_ckpt:,.0f} checkpoints over the run; at most"
            f" {MAX_STEPS:,} are logged (use a longer interval or a shorter run)",
        )
        return None
    try:
        est = _training_estimate(
            model, spec, gpus, j.precision, j.seq_len, j.global_batch, _layout(j, model, gpus)
        )
    except (PerfError, KeyError, ValueError, ArithmeticError) as exc:
        err.add(loc, f"cannot run on {spec.display_name}: {exc.args[0] if exc.args else exc}")
        return None
    state = BYTES_PER_PARAM_TRAINING_STATE * model.total_params
    if j.checkpoint_write_s == "auto":
        write_s = state / sc.facility.storage_bandwidth_bytes_per_s
    else:
        write_s = float(j.checkpoint_write_s)
    if j.checkpoint_restore_s == "auto":
        restore_s = state / read_bandwidth(sc)
    else:
        restore_s = float(j.checkpoint_restore_s)
    stall_s, persist_s = write_s, 0.0
    if j.checkpoint_mode == "async":
        snap = j.checkpoint_snapshot_s
        stall_s = state / gpus / SNAPSHOT_BYTES_PER_S if snap in (None, "auto") else float(snap)
        persist_s = write_s
        if persist_s > j.checkpoint_interval_s:
            err.add(
                (*loc, "checkpoint_mode"),
                f"an asynchronous write of {write_s:,.0f} s is longer than the checkpoint"
                f" interval ({j.checkpoint_interval_s:,.0f} s): each checkpoint would start"
                " before the last is durable; use a longer interval or sync",
            )
            return None
    return PlannedJob(
        name=j.name,
        hw_index=hw,
        domains=domains,
        gpus=gpus,
        class_rank=class_rank,
        preemptible=preemptible,
        submit_at_s=j.submit_at_s,
        work=float(j.tokens),
        rate=float(est.tokens_per_s),
        model_flops_per_s=float(est.model_flops_per_s_per_gpu) * gpus,
        peak_flops_per_s=spec.peak(j.precision) * gpus,
        checkpoint_interval_s=j.checkpoint_interval_s,
        checkpoint_write_s=write_s,
        checkpoint_stall_s=stall_s,
        checkpoint_persist_s=persist_s,
        checkpoint_restore_s=restore_s,
        checkpoint_mode=j.checkpoint_mode,
        estimate=_as_dict(est),
        model=est,
        elastic=ElasticShrink(
            model,
            spec,
            j.precision,
            j.seq_len,
            est.layout,
            est.global_batch,
            est.step_time_s,
            usable_gpus(sc, spec),
            sc.reliability.elastic_batch == "global",
        )
        if sc.reliability.enabled and sc.reliability.recovery == "shrink_elastic"
        else None,
    )


_TRAINING_CACHE: dict[str, Any] = {}


def _layout(j: PretrainingJob, model: ModelShape, gpus: int) -> TrainingLayout | None:
    """The scenario's layout with the data-parallel width filled in (what is left)."""
    lay = j.layout
    if lay is None:
        return None
    split = lay.tp * lay.pp * lay.cp
    if gpus % split:
        raise PerfError(
            f"layout tp x pp x cp = {lay.tp} x {lay.pp} x {lay.cp} = {split} does not divide the"
            f" job's {gpus} GPUs"
        )
    return TrainingLayout(
        tp=lay.tp,
        pp=lay.pp,
        vp=lay.vp if lay.vp is not None else default_vp(model, lay.pp),
        cp=lay.cp,
        dp=gpus // split,
        ep=lay.ep,
        microbatch=lay.microbatch,
        zero_stage=lay.zero_stage,
        recompute=lay.recompute,
    )


def _training_estimate(
    model: ModelShape,
    spec: HardwareSpec,
    gpus: int,
    precision: Any,
    seq: int,
    batch: int | None,
    layout: TrainingLayout | None = None,
) -> Any:
    """``estimate_training`` memoised on its inputs: identical jobs (a scenario with several
    runs of one model, a sweep) search the layout space once. The key is the full JSON of the
    model and hardware, so an inline entry that shares a name cannot collide."""
    key = "|".join(
        (
            model.model_dump_json(),
            spec.model_dump_json(),
            str(gpus),
            str(precision),
            str(seq),
            str(batch),
            repr(layout),
        )
    )
    if key not in _TRAINING_CACHE:
        if len(_TRAINING_CACHE) > 256:
            _TRAINING_CACHE.clear()
        _TRAINING_CACHE[key] = estimate_training(
            model, spec, gpus, precision, seq_len=seq, global_batch=batch, layout=layout
        )
    return _TRAINING_CACHE[key]


def read_bandwidth(sc: Scenario) -> float:
    """Checkpoint read bandwidth: ``storage_read_bandwidth``, else the write bandwidth."""
    f = sc.facility
    r = f.storage_read_bandwidth_bytes_per_s
    return r if r is not None else f.storage_bandwidth_bytes_per_s


def _plan_stream(
    s: PosttrainingStream,
    loc: Loc,
    hw: int,
    spec: HardwareSpec,
    model: ModelShape | None,
    domains_available: int,
    sc: Scenario,
    err: _Errors,
    class_rank: int,
    preemptible: bool,
) -> PlannedStream | None:
    if isinstance(s.gpus, FixedSize):
        values: tuple[int, ...] = (s.gpus.value,)
        weights: tuple[float, ...] = (1.0,)
    else:
        assert isinstance(s.gpus, ChoiceSize)
        values = s.gpus.values
        weights = s.gpus.weights or tuple(1.0 for _ in values)
    biggest = max(math.ceil(v / usable_gpus(sc, spec)) for v in values)
    spare = sc.scheduler.spare_domains
    if biggest > domains_available - spare:
        err.add(
            (*loc, "gpus"),
            f"a job of {max(values)} GPUs needs {biggest} domains but the factory has"
            f" {domains_available - spare} {spec.display_name} domains (after {spare} spares)",
        )
        return None
    params = float(model.total_params) if model is not None else 0.0
    total = sum(weights)
    rates: tuple[float, ...] = tuple(1.0 for _ in values)
    unit, work = "run_seconds", 0.0
    draw: WorkDraw | None = None
    if model is not None:
        if s.rl is not None and (why := _rl_context_problem(s.rl, model)) is not None:
            err.add((*loc, "rl"), why)
            return None
        try:
            rates = tuple(_posttraining_rate(s, model, spec, v) for v in values)
        except (PerfError, KeyError, ValueError, ArithmeticError) as exc:
            err.add(loc, f"cannot run on {spec.display_name}: {exc.args[0] if exc.args else exc}")
            return None
        if s.rl is not None:
            unit, work, draw = "rl_steps", *_rl_steps(s.rl)
        else:
            assert s.tokens is not None
            unit, work = "tokens", float(s.tokens)
    stop = s.stop_at_s if s.stop_at_s is not None else sc.run.duration_s
    if stop <= s.start_at_s:
        err.add((*loc, "stop_at"), "stop_at must be later than start_at")
        return None
    expected = s.arrival_rate_per_s * (min(stop, sc.run.duration_s) - s.start_at_s)
    if expected > MAX_ARRIVALS:
        err.add(
            (*loc, "arrival_rate"),
            f"{s.arrival_rate_per_s * DAY_S:,.4g} jobs a day give {expected:,.0f} arrivals over"
            f" the run; at most {MAX_ARRIVALS:,} are simulated (a lower rate or a shorter run)",
        )
        return None
    return PlannedStream(
        name=s.name,
        kind=s.kind,
        hw_index=hw,
        class_rank=class_rank,
        preemptible=preemptible,
        arrival_rate_per_s=s.arrival_rate_per_s,
        size_values=tuple(math.ceil(v / usable_gpus(sc, spec)) for v in values),
        size_weights=tuple(w / total for w in weights),
        duration=s.duration,
        start_at_s=s.start_at_s,
        stop_at_s=stop,
        checkpoint_interval_s=s.checkpoint_interval_s,
        checkpoint_write_s=BYTES_PER_PARAM_TRAINING_STATE
        * params
        / sc.facility.storage_bandwidth_bytes_per_s,
        checkpoint_restore_s=BYTES_PER_PARAM_TRAINING_STATE * params / read_bandwidth(sc),
        size_gpus=tuple(values),
        domain_gpus=spec.domain_gpus,
        rates=rates,
        work_unit=unit,
        work=work,
        work_draw=draw,
    )


def _rl_rollout_lengths(rl: RLWork) -> tuple[int, ...]:
    """The rollout lengths an RL job's step is priced at (:data:`RL_POINTS`, linear from
    ``rollout_tokens`` at the first step to ``x rollout_growth`` at the last)."""
    last = RL_POINTS - 1
    return tuple(
        max(1, round(rl.rollout_tokens * (1.0 + (rl.rollout_growth - 1.0) * k / last)))
        for k in range(RL_POINTS)
    )


def _rl_context_problem(rl: RLWork, model: ModelShape) -> str | None:
    """Why an RL job's longest sequence (its prompt and its longest rollout: at the last step,
    or at the first when the rollouts shorten) does not fit the policy model's context window,
    or None when it does; said in the RL block's words, not as a serving request."""
    lengths = _rl_rollout_lengths(rl)
    longest = max(lengths)
    total = rl.prompt_tokens + longest
    if total <= model.max_seq_len:
        return None
    if rl.rollout_growth > 1.0:
        where = (
            f"at the last step: rl.prompt_tokens {rl.prompt_tokens:,} + a rollout of"
            f" {longest:,} tokens (rl.rollout_tokens {rl.rollout_tokens:,} x rl.rollout_growth"
            f" {rl.rollout_growth:g})"
        )
    else:
        where = (
            f"at the first step: rl.prompt_tokens {rl.prompt_tokens:,} + a rollout of"
            f" {longest:,} tokens (rl.rollout_tokens)"
        )
    return (
        f"an RL rollout reaches {total:,} tokens {where}, more than the policy model's context"
        f" window of {model.max_seq_len:,} tokens: shorten the prompts or the rollouts, or lower"
        " rollout_growth"
    )


def _rl_steps(rl: RLWork) -> tuple[float, WorkDraw | None]:
    """An RL stream's steps per job: the fixed count, or the mean of the distribution each job
    draws from and that distribution."""
    st = rl.steps
    if isinstance(st, FixedSteps):
        return float(st.value), None
    if isinstance(st, ExponentialSteps):
        return st.mean, WorkDraw("exponential", st.mean)
    assert isinstance(st, LognormalSteps)
    return st.mean, WorkDraw("lognormal", st.mean, st.cv)


#: A preference (DPO) step costs the policy's forward and backward (6N per token) plus the frozen
#: reference model's forward (2N per token) on the same chosen and rejected sequences (Rafailov
#: et al., DPO, NeurIPS 2023, eq. 7 needs both models' log-probabilities): 6 / 8 of SFT's rate.
PREFERENCE_RATE_OF_SFT = 6.0 / 8.0
#: Rollout lengths at which an RL job's step is priced (start to end of its growth): the step
#: time is the mean over these points (the trapezoid rule over a linear growth, 5 points).
RL_POINTS = 5


def _posttraining_rate(
    s: PosttrainingStream, model: ModelShape, spec: HardwareSpec, gpus: int
) -> float:
    """Work units per second of one post-training job of ``gpus`` GPUs on ``spec``: training
    tokens/s (SFT; preference at :data:`PREFERENCE_RATE_OF_SFT` of it), or RL steps/s."""
    if s.rl is None:
        est = _training_estimate(model, spec, gpus, s.precision, s.seq_len, None)
        rate = float(est.tokens_per_s)
        return rate * PREFERENCE_RATE_OF_SFT if s.kind == "preference" else rate
    return 1.0 / _rl_step_s(s, model, spec, gpus)


def _rl_step_s(s: PosttrainingStream, model: ModelShape, spec: HardwareSpec, gpus: int) -> float:
    """Mean wall time of one RL step on ``gpus`` GPUs of ``spec``, colocated generation and
    training (the hybrid engine of veRL and OpenRLHF: the same GPUs generate, then train):

    * generation: the step's rollouts (prompts x samples, each ``prompt_tokens`` in and the
      step's rollout length out) at the performance model's offline serving throughput
      (:func:`sim.perf.estimate_inference` without latency targets: the largest batch the KV
      cache holds) over the job's GPUs, decode-heavy as rollouts are; and never less than the
      rollout's length in *sequential* decode iterations (a token needs the one before it), each
      the iteration time of the batch a replica actually runs (its share of the rollouts, at most
      the estimate's batch) at the rollouts' mean context
      (:func:`sim.serving.steps.decode_iteration_s`). Throughput alone assumes every replica full,
      which a step with fewer rollouts than batch slots, or long reasoning rollouts, is not:
      there the floor governs. It is a lower bound: it takes the mean length, and a real step
      waits for its longest rollout;
    * policy update: the same sequences (prompt + rollout) at the training estimate's tokens/s
      for that sequence length;
    * weight sync: the policy's weights at the serving precision from the trainer to every
      generator replica, each GPU receiving its shard over its scale-out NIC (an NCCL
      broadcast, as veRL and OpenRLHF do; over NVLink it is faster: an upper bound).

    Rollout length grows linearly from ``rollout_tokens`` to ``x rollout_growth``; the step time
    is averaged over :data:`RL_POINTS` lengths."""
    rl = s.rl
    assert rl is not None
    seqs = rl.prompts_per_step * rl.samples_per_prompt
    total = 0.0
    for length in _rl_rollout_lengths(rl):
        gen, inf = _rollout_s(model, spec, s.precision, gpus, seqs, rl, length)
        seq = rl.prompt_tokens + length
        tr = _training_estimate(model, spec, gpus, s.precision, seq, None)
        train = seqs * seq / float(tr.tokens_per_s)
        weights = model.total_params * weight_bytes_per_param(to_precision(s.precision))
        sync = weights / inf.replica_gpus / (spec.scaleout_bandwidth_bits_per_s / 8.0)
        total += gen + train + sync
    return total / RL_POINTS


def _rollout_s(
    model: ModelShape,
    spec: HardwareSpec,
    precision: str,
    gpus: int,
    seqs: int,
    rl: RLWork,
    length: int,
) -> tuple[float, InferenceEstimate]:
    """Time ``seqs`` rollouts of ``length`` tokens take on ``gpus`` GPUs, and the serving layout
    that takes it: for each tensor-parallel width that fits (as the performance model tries
    them), the longer of the throughput time (``seqs x length`` tokens at the offline tokens/s
    per GPU) and the sequential floor (:func:`_rollout_floor_s`); the width that finishes
    soonest (the engine may choose a wider, lower-latency layout for few long rollouts)."""
    best: tuple[float, InferenceEstimate] | None = None
    error: PerfError | None = None
    tp = 1
    while tp <= min(spec.domain_gpus, gpus):
        if model.heads % tp == 0:
            try:
                inf = estimate_inference(
                    model,
                    spec,
                    precision,
                    input_tokens=rl.prompt_tokens,
                    output_tokens=length,
                    tp=tp,
                )
            except PerfError as exc:
                error = error or exc
            else:
                gen = seqs * length / (inf.output_tokens_per_s_per_gpu * gpus)
                gen = max(
                    gen, _rollout_floor_s(model, spec, precision, inf, gpus, seqs, rl, length)
                )
                if best is None or gen < best[0]:
                    best = (gen, inf)
        tp *= 2
    if best is None:
        raise error or PerfError(
            f"no tensor-parallel width fits {gpus} GPUs of {spec.display_name}"
        )
    return best


def _rollout_floor_s(
    model: ModelShape,
    spec: HardwareSpec,
    precision: str,
    inf: InferenceEstimate,
    gpus: int,
    seqs: int,
    rl: RLWork,
    length: int,
) -> float:
    """Shortest time ``seqs`` rollouts of ``length`` tokens take on ``gpus`` GPUs: ``length``
    sequential decode iterations of the batch each replica runs (``seqs`` spread over the
    ``gpus // replica`` replicas, at most the estimate's batch), at the mean context of a
    rollout (prompt + half the rollout)."""
    replicas = max(1, gpus // inf.replica_gpus)
    batch = max(1, min(inf.batch, -(-seqs // replicas)))
    context = batch * (rl.prompt_tokens + length / 2.0)
    t_iter = decode_iteration_s(
        model, spec, precision, tp=inf.tp, ep=inf.ep, seqs=batch, context_tokens=context
    )
    return length * t_iter


def cost_per_domain_s(
    sc: Scenario,
    spec: HardwareSpec,
    activity: float,
    grid: PlannedGrid,
    pue: float,
    price_usd: float | None = None,
) -> float:
    """What one domain of ``spec`` costs per second of work, USD/s: its price (with the
    network's share) over the IT amortisation period, its facility capital (per watt of its
    provisioned power) over the facility's, and the energy it draws at ``activity`` (a share of
    its provisioned power), with the IT overhead and PUE, at the run's mean price. The price is
    ``price_usd`` (the scenario's ``costs.prices`` override) if given, else the catalog's; NaN
    when neither has one (unknown, not free). The scheduler's ``lowest_cost`` policy ranks
    hardware types by it (:data:`sim.engine.scheduler.HARDWARE_POLICIES`)."""
    c = sc.costs
    price_usd = spec.domain_price_usd if price_usd is None else price_usd
    if price_usd is None:
        return math.nan
    capital = price_usd * (1.0 + c.network_capex_fraction) / c.it_amortization_s
    capital += c.facility_capex_usd_per_w * spec.domain_power_w / c.facility_amortization_s
    energy_w = spec.domain_power_w * activity * (1.0 + sc.facility.it_overhead_fraction) * pue
    price = grid.mean_price_usd_per_mwh(sc.run.duration_s)
    return capital + energy_w * price / 3.6e9


def _chooses(sc: Scenario) -> bool:
    """Does any workload leave its hardware to the scheduler?"""
    w = sc.workloads
    return any(
        x.hardware is None for group in (w.pretraining, w.posttraining, w.inference) for x in group
    )


def _check_hardware_policy(
    sc: Scenario, specs: tuple[HardwareSpec, ...], cost: tuple[float, ...], err: _Errors
) -> None:
    """``scheduler.hardware_policy`` must act: a site of several types with work that names no
    hardware; ``lowest_cost`` needs a price for every type."""
    policy = sc.scheduler.hardware_policy
    loc = ("scheduler", "hardware_policy")
    if policy == SchedulerConfig.model_fields["hardware_policy"].default:
        pass
    elif len(specs) < 2 or not _chooses(sc):
        why = "the site has one hardware type" if len(specs) < 2 else "every workload names one"
        err.add(loc, f"{why}, so '{policy}' would change nothing")
        return
    if policy == "lowest_cost" and len(specs) > 1 and _chooses(sc):
        unpriced = [sp.display_name for sp, c in zip(specs, cost, strict=True) if math.isnan(c)]
        if unpriced:
            err.add(
                loc,
                "lowest_cost needs a domain price for every hardware type; none is sourced for "
                + ", ".join(unpriced)
                + " (give one with costs.prices.<hardware>, or choose another policy)",
            )


def _rank_jobs(policy: str, options: list[PlannedJob], cost: tuple[float, ...]) -> list[PlannedJob]:
    """A pre-training job's plans on each type, best first by ``policy`` (stable: ties keep
    the halls' order); the engine re-ranks nothing, a job's plans do not change."""
    if policy == "first_fit":
        return options
    if policy == "fastest_completion":
        return sorted(options, key=lambda p: p.work / p.rate)
    return sorted(options, key=lambda p: p.work / p.rate * p.domains * cost[p.hw_index])


def _mean_need(p: PlannedService) -> float:
    """Domains ``p`` holds on average at the start of the run: its mean demand over its
    capacity per domain at the autoscaler's ``max_load`` (at least ``min_domains``)."""
    per = p.capacity_tokens_per_s_per_domain * p.max_load
    mean = p.mean_requests_per_s * p.tokens_per_request / per if per > 0 else math.inf
    return max(mean, float(p.min_domains))


def _rank_services(
    policy: str,
    options: list[PlannedService],
    cost: tuple[float, ...],
) -> list[PlannedService]:
    """A service's plans on each type, best first by ``policy``: the most tokens/s per domain
    at its latency targets (``fastest_completion``), the lowest cost per token at full load
    (``lowest_cost``: ``cost``, per domain-second at full inference power, over tokens/s per
    domain), or the halls' order. A service holds one type for the run: it does not spill over
    to another when its type is full (known limitation), so the plan passes over a type whose
    domains the services placed before it already need (:func:`_mean_need`)."""
    if policy == "first_fit":
        return options
    if policy == "fastest_completion":
        return sorted(options, key=lambda p: -p.capacity_tokens_per_s_per_domain)
    return sorted(options, key=lambda p: cost[p.hw_index] / p.capacity_tokens_per_s_per_domain)


def _plan_service(
    v: InferenceService,
    loc: Loc,
    hw: int,
    hw_name: str,
    spec: HardwareSpec,
    model: ModelShape,
    sc: Scenario,
    err: _Errors,
    class_rank: int,
    preemptible: bool,
    with_slo: bool = True,
) -> PlannedService | None:
    """``with_slo`` False skips the request-level attainment table (a candidate type being
    ranked; the chosen one is planned again with it)."""
    n_ticks = sc.run.duration_s / v.control_interval_s
    if n_ticks > MAX_STEPS:
        err.add(
            (*loc, "control_interval"),
            f"{v.control_interval_s:g} s gives {n_ticks:,.0f} control ticks over the run; at most"
            f" {MAX_STEPS:,} (use a longer interval or a shorter run)",
        )
        return None
    input_tokens, cache_hit = _request_mix(v)
    ramp = None
    peak_reasoning = 1.0
    if v.reasoning_growth is not None:
        g = v.reasoning_growth
        ramp = (g.factor, g.start_s, g.over_s)
        # the latency targets must hold at the longest reasoning the run reaches
        peak_reasoning = max(
            1.0, float(reasoning_multiplier(ramp, np.array([sc.run.duration_s]))[0])
        )
    companion = spec.prefill_accelerator
    if v.prefill in ("companion", "hybrid") and companion is None:
        err.add(
            (*loc, "prefill"),
            f"{spec.display_name} has no companion prefill accelerator (its catalog entry has"
            f" no prefill_accelerator): use colocated",
        )
        return None
    prefill = v.prefill
    if (
        prefill == "auto"
        and v.sessions is not None
        and (v.ttft_s is not None or v.tpot_s is not None)
    ):
        # the request level does not simulate agentic sessions behind a prefill pool, so auto
        # keeps them co-located, where their SLO attainment is measured (`companion` or
        # `hybrid`, named, still run them disaggregated, with the attainment n/a)
        prefill = "colocated"
    try:
        # backend "measured": aiconfigurator's database, checked here at load time, never mid-run;
        # where prompts are prefilled and how many replicas of each kind a domain runs come from
        # the one function `aifactory estimate serve` calls too (sim/perf/inference.py,
        # mix_domain): auto takes the arrangement with the most capacity at the targets
        mix = estimate_domain(
            model,
            spec,
            v.precision,
            gpus=usable_gpus(sc, spec),
            prefill=prefill,
            parts=None if companion is None else float(companion.count_per_domain),
            backend=v.backend,
            model_name=v.model.strip().lower() if isinstance(v.model, str) else None,
            hardware_name=hw_name,
            input_tokens=input_tokens,
            output_tokens=v.output_tokens,
            reasoning_tokens=round(v.reasoning_tokens * peak_reasoning),
            prompt_cache_hit=cache_hit,
            ttft_s=v.ttft_s,
            tpot_s=v.tpot_s,
            tp=v.tensor_parallel,
            ep=v.expert_parallel,
            kv_cache=v.kv_cache,
            runtime=v.serving_runtime,
            # the request level caps its running batch at the same (shape_of_service) and draws
            # prompts with this spread (agentic sessions: their calls' lengths follow from the
            # session structure, taken at their mean)
            max_seqs=v.serving.max_seqs,
            input_cv=v.serving.input_cv if v.sessions is None else 0.0,
            # every call draws its generated length with this spread, sessions too
            output_cv=v.serving.output_cv,
            # the chunks a co-located prompt is prefilled in (its p99 TTFT), as the request
            # level chunks them
            max_batched_tokens=v.serving.max_batched_tokens,
        )
    except (PerfError, KeyError, ValueError, ArithmeticError) as exc:
        where = (*loc, "backend") if v.backend == "measured" else loc
        err.add(where, f"cannot serve on {spec.display_name}: {exc.args[0] if exc.args else exc}")
        return None
    est = mix.main
    if not est.meets_targets:
        # the key of the target that is missed (ttft when both are)
        ttft_missed = v.ttft_s is not None and est.ttft_s > v.ttft_s
        which = (*loc, "ttft" if ttft_missed or v.tpot_s is None else "tpot")
        err.add(
            which,
            f"no batch on {spec.display_name} meets the latency targets (ttft"
            f" {_target(v.ttft_s)}, tpot {_target(v.tpot_s)}): even one request at a time takes"
            f" ttft {est.ttft_s:.3g} s and tpot {est.tpot_s * 1e3:.3g} ms (p99)",
        )
        return None
    d = v.demand
    years = sc.run.duration_s / YEAR_S
    peak = d.mean_requests_per_s * d.peak_to_trough * (1.0 + d.noise_cv) ** 3
    log_peak = math.log(peak) + years * math.log1p(max(d.growth_per_year, 0.0))
    if log_peak > math.log(MAX_PEAK_REQUESTS_PER_S):
        err.add(
            (*loc, "demand"),
            f"demand grows to more than {MAX_PEAK_REQUESTS_PER_S:.0e} requests/s over the run"
            " (mean x peak_to_trough x growth); lower mean_requests_per_s or growth_per_year",
        )
        return None
    # A replica lives inside one domain (the performance model keeps TP x EP within the
    # scale-up domain); GPUs left over when the replica size does not divide it stay idle. With
    # companion prefill parts the domain may run two kinds of replica (mix_domain): the counts
    # are averages over domains, so fractional.
    replicas = mix.replicas
    per_domain = mix.capacity_tokens_per_s
    slo = None
    slo_unmeasured = False
    if with_slo and (v.ttft_s is not None or v.tpot_s is not None):
        # the share of requests meeting the targets at each load comes from the request level
        # (docs/serving.md, "The fleet's SLO attainment"); the replica's fluid capacity is the
        # load's unit, so the autoscaler's plan and the table speak of the same replica
        try:
            # at the reasoning length the capacity was planned at (the longest of the run)
            at_peak = v.model_copy(
                update={"reasoning_tokens": round(v.reasoning_tokens * peak_reasoning)}
            )
            slo = _mix_attainment(mix, at_peak, model, spec, input_tokens, cache_hit)
        except (PerfError, ValueError) as exc:
            err.add(loc, f"cannot simulate its requests: {exc.args[0] if exc.args else exc}")
            return None
        # agentic sessions behind a separate prefill pool are not simulated (n/a)
        slo_unmeasured = slo is None
    d = v.demand
    return PlannedService(
        name=v.name,
        hw_index=hw,
        class_rank=class_rank,
        preemptible=preemptible,
        tokens_per_request=float(v.output_tokens + v.reasoning_tokens),
        capacity_tokens_per_s_per_domain=float(per_domain),
        model_flops_per_token=2.0 * model.active_params,
        prompt_tokens_per_request=float(input_tokens) * (1.0 - cache_hit),
        max_load=v.max_load,
        min_domains=v.min_domains,
        control_interval_s=v.control_interval_s,
        autoscale_tolerance=v.autoscale_tolerance,
        scale_down_stabilization_s=v.scale_down_stabilization_s,
        mean_requests_per_s=d.mean_requests_per_s,
        peak_to_trough=d.peak_to_trough,
        peak_hour=d.peak_hour,
        weekend_factor=d.weekend_factor,
        noise_cv=d.noise_cv,
        growth_per_year=d.growth_per_year,
        estimate=_as_dict(est),
        prompt_cache_hit=float(cache_hit),
        replicas_per_domain=replicas,
        reasoning_tokens_per_request=float(v.reasoning_tokens),
        reasoning_ramp=ramp,
        context_clipped_share=context_clipped_share(
            input_tokens,
            v.output_tokens + v.reasoning_tokens * peak_reasoning,
            model.max_seq_len,
        ),
        slo=slo,
        client_timeout_s=v.client_timeout_s,
        ttft_s=v.ttft_s,
        slo_unmeasured=slo_unmeasured,
        prefill=mix.mode,
        mix=mix,
    )


@dataclass(frozen=True)
class ReplicaKind:
    """One kind of replica a service's domains run (:class:`~sim.perf.DomainMix`), with the
    request-level shape of one replica: ``companion`` (decode-only behind the companion parts),
    ``colocated`` or ``gpu_prefill`` (decode-only behind prefill instances on GPUs)."""

    name: str
    estimate: InferenceEstimate
    replicas_per_domain: float
    shape: ServiceShape

    @property
    def tokens_per_s_per_domain(self) -> float:
        return self.estimate.output_tokens_per_s_per_replica * self.replicas_per_domain

    @property
    def rate_per_s(self) -> float:
        """Its fluid capacity per replica, requests/s (the attainment table's load unit)."""
        return self.estimate.output_tokens_per_s_per_replica / self.shape.generated_tokens


def replica_kinds(
    mix: DomainMix,
    v: InferenceService,
    model: ModelShape,
    spec: HardwareSpec,
    input_tokens: int,
    cache_hit: float,
) -> list[ReplicaKind]:
    """The kinds of replica in ``mix``, most tokens first, each with its request-level shape.

    A decode-only kind's shape carries its prefill pool (:func:`~sim.perf.prefill_costs`): the
    instances the domain gives one replica, its share of the companion parts in use (exactly
    what it needs when the parts are the limit, more when the GPUs are), or the prefill GPUs
    sized for it. ``v`` at the reasoning length the capacity was planned at."""
    out: list[ReplicaKind] = []
    kinds: list[tuple[str, InferenceEstimate | None, float, Any]] = [
        ("companion", mix.companion, mix.companion_replicas, spec.prefill_accelerator),
        (mix.gpu_kind, mix.gpu, mix.gpu_replicas, spec if mix.gpu_kind == "gpu_prefill" else None),
    ]
    for name, est, n, part in kinds:
        if est is None or n <= 0:
            continue
        shape = shape_of_service(v, model, spec, tp=int(est.tp))
        if part is not None:
            costs = prefill_costs(
                model,
                spec,
                v.precision,
                est,
                prefill_hw=part,
                input_tokens=input_tokens,
                output_tokens=v.output_tokens,
                reasoning_tokens=v.reasoning_tokens,
                prompt_cache_hit=cache_hit,
            )
            if name == "companion":
                share = mix.parts / n / costs.devices
                costs = replace(
                    costs, instances_per_replica=max(costs.instances_per_replica, share)
                )
            shape = replace(shape, prefill=costs)
        out.append(ReplicaKind(name, est, n, shape))
    return sorted(out, key=lambda k: -k.tokens_per_s_per_domain)


def _mix_attainment(
    mix: DomainMix,
    v: InferenceService,
    model: ModelShape,
    spec: HardwareSpec,
    input_tokens: int,
    cache_hit: float,
) -> AttainmentTable | None:
    """The request level's SLO attainment table of a domain's mix of replicas.

    Each kind of replica the domain runs (:func:`replica_kinds`) gets its own table, at loads of
    its own fluid capacity; the router is taken to load every replica to the same share of its
    capacity, so the domain's attainment at a load is the kinds' attainments weighted by the
    tokens each serves, and its latency percentiles the worse kind's (pessimistic). None when a
    kind cannot be simulated (agentic sessions behind a separate prefill pool: a call's arrival
    follows its parent's completion, which the pool's path does not model)."""
    kinds = replica_kinds(mix, v, model, spec, input_tokens, cache_hit)
    if v.sessions is not None and any(k.shape.prefill is not None for k in kinds):
        return None
    tables = [
        (
            attainment_table(k.shape, ttft_s=v.ttft_s, tpot_s=v.tpot_s, rate_per_s=k.rate_per_s),
            k.tokens_per_s_per_domain,
        )
        for k in kinds
    ]
    if len(tables) == 1:
        return tables[0][0]
    total = sum(w for _, w in tables)
    first = tables[0][0]
    return AttainmentTable(
        first.rate_per_s,
        first.loads,
        tuple(sum(t.attainment[i] * w for t, w in tables) / total for i in range(len(first.loads))),
        *(
            tuple(max(getattr(t, k)[i] for t, _ in tables) for i in range(len(first.loads)))
            for k in ("ttft_p99_s", "tpot_p99_s", "ttft_p50_s", "tpot_p50_s")
        ),
    )


def _request_mix(v: InferenceService) -> tuple[int, float]:
    """Mean prompt tokens per request and prompt-cache hit rate of ``v``: as given, or, for
    agentic sessions, those of the sessions' calls (:func:`sim.serving.workload.session_mix`)."""
    if v.sessions is None:
        return v.input_tokens, v.prompt_cache_hit
    s = v.sessions
    shape = SessionShape(
        calls=s.calls,
        tool_latency_s=s.tool_latency_s,
        tool_output_tokens=s.tool_output_tokens,
        cache_ttl_s=s.cache_ttl_s,
        shared_prefix_tokens=s.shared_prefix_tokens,
        share=s.share,
    )
    prompt, hit = session_mix(shape, v.input_tokens, v.output_tokens)
    # the perf model takes a hit rate in [0, 1): a fully cached prompt still prefills a token
    return max(1, round(prompt)), min(hit, 1.0 - 1.0 / max(prompt, 2.0))


def _target(seconds: float | None) -> str:
    return "none" if seconds is None else f"{seconds:g} s"


def usable_gpus(sc: Scenario, spec: HardwareSpec) -> int:
    """GPUs of a domain that work runs on: all of them, less the idle spare trays of a rack
    under ``reliability.tray_failure: spare_tray`` (the rack draws its full power: the spares
    are counted as powered, an overestimate of a few percent)."""
    rel = sc.reliability
    if rel.enabled and rel.tray_failure == "spare_tray" and spec.tray_gpus is not None:
        return max(spec.tray_gpus, spec.domain_gpus - rel.spare_trays_per_rack * spec.tray_gpus)
    return spec.domain_gpus


def _fabric_fails(sc: Scenario) -> bool:
    """Does the fabric model switch and link failures (they replace ``network_link`` causes)?"""
    return (
        sc.reliability.enabled and sc.network.kind != "non_blocking" and sc.network.failures.enabled
    )


def _cause_scale(sc: Scenario) -> float:
    """``failure_rate_per_1000_node_days`` over the unplanned causes' own total (1 if unset)."""
    rel = sc.reliability
    total = sum(_per_node_day(c, rel.node_gpus) for c in rel.causes) * 1000.0
    if rel.failure_rate_per_1000_node_days is None or total == 0.0:
        return 1.0
    return rel.failure_rate_per_1000_node_days / total


def _per_node_day(c: Any, node_gpus: int) -> float:
    """A cause's failures per node of ``node_gpus`` GPUs per day."""
    if c.rate_per_1000_node_days is not None:
        return float(c.rate_per_1000_node_days) / 1000.0
    return node_gpus * DAY_S / float(c.gpu_mtbf_s)


def _hot_spares(sc: Scenario, halls: list[Hall], err: _Errors) -> list[int]:
    """Hot spares per hall (``reliability.hot_spares``: one number for every hall, or by hall
    name); each hall keeps at least one domain to run on."""
    rel = sc.reliability
    spec = rel.hot_spares
    if not rel.enabled or not spec:
        return [0] * len(halls)
    if isinstance(spec, int):
        hot = [spec] * len(halls)
    else:
        names = [h.name for h in halls]
        for name in spec:
            if name not in names:
                err.add(
                    ("reliability", "hot_spares", name),
                    f"unknown hall '{name}'" + _suggest(name, names),
                )
        hot = [spec.get(h.name, 0) for h in halls]
    full = [(h, k) for h, k in zip(halls, hot, strict=True) if k >= h.n_domains]
    if isinstance(spec, int) and full:
        # one count for every hall: one message naming the halls it empties
        named = ", ".join(f"hall {h.name} has {h.n_domains:,}" for h, _ in full)
        err.add(
            ("reliability", "hot_spares"),
            f"{spec:,} hot spares per hall leave no domain to run on ({named}): give fewer, or"
            " a count per hall ({hall: n})",
        )
    elif full:
        for h, k in full:
            err.add(
                ("reliability", "hot_spares", h.name),
                f"{k:,} hot spares leave hall {h.name} no domain to run on: it has {h.n_domains:,}",
            )
    if not sc.workloads.pretraining and not sc.workloads.posttraining:
        # only a training job takes a spare (a service replaces a lost replica from the free
        # domains): on an inference-only site they would sit idle, whatever the failure rate
        err.add(
            ("reliability", "hot_spares"),
            "hot spares replace the failed domains of training jobs, and this scenario has"
            " none (inference only): they would sit idle; drop hot_spares (services replace"
            " lost replicas from the free domains)",
        )
    return hot


def _plan_reliability(sc: Scenario, specs: tuple[HardwareSpec, ...]) -> PlannedReliability:
    """Causes with their rates per GPU-second (scaled to ``failure_rate_per_1000_node_days``
    when it is given); ``network_link`` causes give way to the fabric's own switch and link
    failures where it models them (the defaults are calibrated to the same Llama 3 rows)."""
    rel = sc.reliability
    scale = _cause_scale(sc)
    fabric_fails = _fabric_fails(sc)
    per_gpu = 1.0 / (rel.node_gpus * DAY_S)
    causes: list[PlannedCause] = []
    for c in rel.causes:
        if fabric_fails and c.scope == "network_link":
            continue
        effect = (
            "restart"
            if c.action == "restart"
            else ("tray" if c.scope in ("gpu", "host", "compute_tray") else "domain")
        )
        causes.append(
            PlannedCause(
                name=c.name,
                rate_per_gpu_s=_per_node_day(c, rel.node_gpus) * scale * per_gpu,
                effect=effect,
                detection_s=c.detection_s,
                repair_time=None if c.action == "restart" else (c.repair_time or rel.repair_time),
            )
        )
    if rel.maintenance is not None and rel.maintenance.rate_per_1000_node_days > 0:
        causes.append(
            PlannedCause(
                name="maintenance",
                rate_per_gpu_s=rel.maintenance.rate_per_1000_node_days / 1000.0 * per_gpu,
                effect="maintenance",
                detection_s=0.0,
                repair_time=rel.maintenance.duration,
            )
        )
    return PlannedReliability(
        enabled=rel.enabled,
        causes=tuple(causes),
        node_gpus=rel.node_gpus,
        repair_time=rel.repair_time,
        restart_overhead_s=rel.restart_overhead_s,
        network_failures=sc.network.failures if fabric_fails else None,
        correlated=tuple(
            PlannedCorrelated(e.name, e.rate_per_hall_s, e.share, e.repair_time)
            for e in rel.correlated
        ),
        tray_gpus=tuple(s.tray_gpus for s in specs),
        tray_failure=rel.tray_failure,
        spare_trays_per_rack=rel.spare_trays_per_rack,
        recovery=rel.recovery,
        elastic_min_share=rel.elastic_min_share,
        waiting_warning_share=rel.waiting_warning_share,
    )


def _check_failures(sc: Scenario, gpus: int, specs: tuple[HardwareSpec, ...], err: _Errors) -> None:
    """The fleet-wide failure stream must stay a countable number of events over the run; a
    key that would change nothing is an error."""
    rel = sc.reliability
    if not rel.enabled:
        return
    # the default causes' network_link rows give way to the fabric quietly, also when they are
    # written out, as in a run folder's resolved scenario.yaml (which must run again as it is)
    if "causes" in rel.model_fields_set and rel.causes != LLAMA3_CAUSES and _fabric_fails(sc):
        for i, c in enumerate(rel.causes):
            if c.scope == "network_link":
                err.add(
                    ("reliability", "causes", i, "scope"),
                    f"network.kind {sc.network.kind} models switch and link failures itself"
                    " (network.failures), so a network_link cause would change nothing; drop it"
                    " or set network.failures.enabled: false",
                )
    if rel.tray_failure == "spare_tray":
        trays = [s for s in specs if s.tray_gpus is not None]
        if not trays:
            err.add(
                ("reliability", "tray_failure"),
                "spare_tray needs rack-scale hardware with compute trays (tray_gpus in the"
                " catalog); no hardware here has them",
            )
        for s in trays:
            assert s.tray_gpus is not None
            if rel.spare_trays_per_rack >= s.domain_gpus // s.tray_gpus:
                err.add(
                    ("reliability", "spare_trays_per_rack"),
                    f"{rel.spare_trays_per_rack} spare trays leave no tray of"
                    f" {s.display_name}'s {s.domain_gpus // s.tray_gpus} to run on",
                )
    node_days = gpus / rel.node_gpus * sc.run.duration_s / DAY_S
    scale = _cause_scale(sc)
    expected = sum(_per_node_day(c, rel.node_gpus) for c in rel.causes) * scale * node_days
    if rel.maintenance is not None:
        expected += rel.maintenance.rate_per_1000_node_days / 1000.0 * node_days
    if expected > MAX_FAILURES:
        total = rel.failure_rate_per_1000_node_days
        where, what = (
            (("reliability", "causes"), "the causes' rates give")
            if total is None
            else (
                ("reliability", "failure_rate_per_1000_node_days"),
                f"{total:g} per 1,000 node-days gives",
            )
        )
        err.add(
            where,
            f"{what} {expected:,.0f} failures over the run on {gpus / rel.node_gpus:,.0f}"
            f" nodes; at most {MAX_FAILURES:,} are simulated (lower rates or a shorter run)",
        )


def _as_dict(est: Any) -> dict[str, Any]:
    """A JSON-friendly view of a perf estimate (dataclass) for the jobs table."""
    out: dict[str, Any] = {}
    for k, v in vars(est).items():
        if isinstance(v, int | float | str | bool) or v is None:
            out[k] = v
        elif hasattr(v, "__dict__"):
            out[k] = {kk: vv for kk, vv in vars(v).items() if isinstance(vv, int | float | str)}
    return out
