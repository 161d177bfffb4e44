"""The scenario schema: one closed, frozen pydantic model that holds every default.

A scenario is YAML with the sections ``run``, ``facility``, ``hardware`` (optional inline catalog
entries), ``network``, ``workloads``, ``scheduler``, ``reliability`` and ``costs``. Keys are the
friendly names users write (``duration: 90 d``); attributes carry the SI unit in their name
(``duration_s``). Quantities accept strings with units and are stored in SI (seconds, watts,
bytes/s) except prices, which keep the unit in the name (``usd_per_mwh``).

Every default is set here and nowhere else. Defaults that are measured facts cite their source
(keys ``[Sxx]`` are in ``sim/catalog/hardware.yaml``; ``validation.md §X`` is
``shared/reference/validation.md``); defaults that are planning assumptions say so.

Cross-references that need the catalog (hardware and model names, a job larger than the
factory) are checked by :mod:`sim.build`, which reports them with the same key paths.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from sim.catalog.hardware import Precision
from sim.config.quantities import (
    BytesPerS,
    Fraction,
    PerSecond,
    PositiveNumber,
    PositiveSeconds,
    Seconds,
    UsdPerMWh,
    UsdPerWatt,
    Watts,
)
from sim.units import DAY_S

__all__ = [
    "CostsConfig",
    "DemandProfile",
    "FacilityConfig",
    "HallConfig",
    "InferenceService",
    "NetworkConfig",
    "PosttrainingStream",
    "PretrainingJob",
    "PriorityClass",
    "ReliabilityConfig",
    "RunConfig",
    "Scenario",
    "SchedulerConfig",
    "WorkloadsConfig",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- distributions


def _scalar_to_fixed(v: Any) -> Any:
    if isinstance(v, int | float | str) and not isinstance(v, bool):
        return {"distribution": "fixed", "value": v}
    return v


class FixedDuration(_Model):
    distribution: Literal["fixed"]
    value_s: PositiveSeconds = Field(alias="value")


class ExponentialDuration(_Model):
    distribution: Literal["exponential"]
    mean_s: PositiveSeconds = Field(alias="mean")


class LognormalDuration(_Model):
    """Lognormal given by its mean and coefficient of variation (std/mean)."""

    distribution: Literal["lognormal"]
    mean_s: PositiveSeconds = Field(alias="mean")
    cv: PositiveNumber = 1.0


DurationDist = Annotated[
    FixedDuration | ExponentialDuration | LognormalDuration,
    BeforeValidator(_scalar_to_fixed),
    Field(discriminator="distribution"),
]


class FixedSize(_Model):
    distribution: Literal["fixed"]
    value: int = Field(gt=0)


class ChoiceSize(_Model):
    """GPU counts drawn from ``values`` with relative ``weights`` (equal if omitted)."""

    distribution: Literal["choice"]
    values: tuple[Annotated[int, Field(gt=0)], ...] = Field(min_length=1)
    weights: tuple[Annotated[float, Field(gt=0)], ...] | None = None

    @model_validator(mode="after")
    def _same_length(self) -> ChoiceSize:
        if self.weights is not None and len(self.weights) != len(self.values):
            raise ValueError(
                f"weights has {len(self.weights)} entries but values has {len(self.values)}"
            )
        return self


SizeDist = Annotated[
    FixedSize | ChoiceSize,
    BeforeValidator(_scalar_to_fixed),
    Field(discriminator="distribution"),
]


# --------------------------------------------------------------------------- run


class RunConfig(_Model):
    duration_s: PositiveSeconds = Field(default=365 * DAY_S, alias="duration")
    sample_interval_s: PositiveSeconds = Field(default=3600.0, alias="sample_interval")
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _interval(self) -> RunConfig:
        if self.sample_interval_s > self.duration_s:
            raise ValueError(
                f"sample_interval ({self.sample_interval_s:g} s) is longer than the run"
                f" duration ({self.duration_s:g} s)"
            )
        if self.duration_s / self.sample_interval_s > 2_000_000:
            raise ValueError("duration / sample_interval gives more than 2,000,000 trace rows")
        return self


# --------------------------------------------------------------------------- facility


class HallConfig(_Model):
    """A data hall of one hardware generation.

    ``racks`` is a number of scale-up domains (racks for NVL systems, 8-GPU servers for HGX) or
    ``fill``: as many as the hall's IT power budget allows. ``it_power`` is the hall's IT power
    capacity; for ``fill`` halls without it the site's IT budget (grid power / PUE, less the
    explicit halls) is shared equally among them.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    hardware: str = Field(min_length=1)
    racks: int | Literal["fill"] = "fill"
    it_power_w: Watts | None = Field(default=None, alias="it_power")
    cooling_capacity_w: Watts | None = Field(default=None, alias="cooling_capacity")

    @field_validator("racks")
    @classmethod
    def _positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v <= 0:
            raise ValueError("racks must be a positive number of domains or 'fill'")
        return v


class ActivityPower(_Model):
    """Domain IT power by activity, as fractions of its provisioned ``domain_power_w``, for
    *every* hardware generation of the scenario. Unset (the default), each generation uses its
    own sourced fractions from the catalog (``aifactory hardware NAME``, ``activity_power``);
    set, it overrides them all. The field defaults are the Hopper 8-GPU measurements: an 8x H200
    server idles at 2.41 kW and draws 6.15 kW in offline LLM inference (validation.md §C.2)
    against ~10.2 kW provisioned, 0.24 and 0.60; 8x H100 nodes in LLM training draw 6.85 kW mean
    (§D.1, 67%) and at most 76% of the rating (Brookhaven, same section), 0.70 is the middle.
    A failed domain is powered down for repair (assumption).
    """

    idle: Fraction = 0.24
    training: Fraction = 0.70
    inference_full_load: Fraction = 0.60
    failed: Fraction = 0.0


class FacilityConfig(_Model):
    grid_power_w: Watts = Field(default=1e9, alias="grid_power")
    pue: Annotated[float, Field(ge=1.0, le=3.0)] = Field(
        default=1.2,
        description="facility power / IT power; 1.2 for a liquid-cooled AI hall, range 1.1-1.4,"
        " industry average 1.56 [S59][S61]",
    )
    it_overhead_fraction: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.10,
        description="network, storage and management IT power as a fraction of domain power"
        " (hardware.md §9 derivation, weak)",
    )
    storage_bandwidth_bytes_per_s: BytesPerS = Field(
        default=2e12,
        alias="storage_bandwidth",
        description="sustained checkpoint write bandwidth; Meta Tectonic 2 TB/s (validation.md"
        " §A.1)",
    )
    activity_power: ActivityPower | None = Field(
        default=None,
        description="override of every generation's activity power; unset: each generation's"
        " catalog values",
    )
    halls: tuple[HallConfig, ...] = Field(min_length=1)

    @field_validator("halls")
    @classmethod
    def _unique(cls, halls: tuple[HallConfig, ...]) -> tuple[HallConfig, ...]:
        names = [h.name for h in halls]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"hall names must be unique; repeated: {', '.join(dup)}")
        return halls


# --------------------------------------------------------------------------- network


class NetworkConfig(_Model):
    """Scale-out fabric. Only a non-blocking fabric exists so far (the network model comes
    later); ``kind`` is kept so scenarios written now stay valid."""

    kind: Literal["non_blocking"] = "non_blocking"


# --------------------------------------------------------------------------- workloads


ModelRef = str | dict[str, Any]


class PretrainingJob(_Model):
    """A large gang-scheduled pre-training run."""

    name: str = Field(min_length=1)
    model: ModelRef
    hardware: str | None = Field(
        default=None, description="catalog name; default: the first hall's hardware"
    )
    gpus: int = Field(gt=0)
    tokens: PositiveNumber = Field(description="training tokens to process")
    precision: Precision = Precision.FP8
    seq_len: int = Field(default=8192, gt=0)
    global_batch: int | None = Field(default=None, gt=0, description="sequences per step")
    submit_at_s: Seconds = Field(default=0.0, alias="submit_at")
    checkpoint_interval_s: PositiveSeconds = Field(
        default=1800.0,
        alias="checkpoint_interval",
        description="wall time between checkpoints (scenario assumption)",
    )
    checkpoint_write_s: Seconds | Literal["auto"] = Field(
        default="auto",
        alias="checkpoint_write",
        description="training stall per checkpoint; auto = 16 bytes/param of model and"
        " optimizer state (bf16 weights and grads, fp32 master and two Adam moments) over the"
        " facility's storage bandwidth",
    )
    priority_class: str = Field(default="pretraining", alias="class")


class PosttrainingStream(_Model):
    """A stream of medium post-training jobs (SFT, preference tuning, RL) arriving over time."""

    name: str = Field(min_length=1)
    kind: Literal["sft", "preference", "rl", "other"] = "rl"
    hardware: str | None = None
    arrival_rate_per_s: PerSecond = Field(alias="arrival_rate", description="e.g. '12 / d'")
    gpus: SizeDist
    duration: DurationDist = Field(description="run time when running uninterrupted")
    start_at_s: Seconds = Field(default=0.0, alias="start_at")
    stop_at_s: Seconds | None = Field(default=None, alias="stop_at")
    checkpoint_interval_s: PositiveSeconds = Field(default=3600.0, alias="checkpoint_interval")
    priority_class: str = Field(default="posttraining", alias="class")


class DemandProfile(_Model):
    """Request arrival rate of a service: a mean, a daily cycle, a weekly cycle and noise.

    rate(t) = mean x daily(t) x weekly(t) x noise. The daily cycle is a sinusoid whose
    peak-to-trough ratio defaults to 2.5, the weekday swing of Azure's conversation trace; the
    weekend level defaults to 0.6 of weekdays (same trace, read from its figure; validation.md
    §F.1). Both cycles are normalised so that the long-run mean is ``mean``. Noise is a
    lognormal factor with mean 1, drawn per control interval.
    """

    mean_requests_per_s: PositiveNumber
    peak_to_trough: Annotated[float, Field(ge=1.0)] = 2.5
    peak_hour: Annotated[float, Field(ge=0, lt=24)] = Field(
        default=14.0, description="local hour of the daily peak (assumption)"
    )
    weekend_factor: Annotated[float, Field(gt=0, le=2)] = 0.6
    noise_cv: Annotated[float, Field(ge=0, le=2)] = 0.05
    growth_per_year: Annotated[float, Field(gt=-1, le=100)] = 0.0


class InferenceService(_Model):
    """A served model tier with its own replicas, demand and latency targets."""

    name: str = Field(min_length=1)
    model: ModelRef
    hardware: str | None = None
    precision: Precision = Precision.FP8
    demand: DemandProfile
    input_tokens: int = Field(gt=0, description="mean prompt tokens per request")
    output_tokens: int = Field(gt=0, description="mean visible output tokens per request")
    reasoning_tokens: int = Field(default=0, ge=0, description="mean hidden reasoning tokens")
    prompt_cache_hit: Fraction = 0.0
    ttft_s: PositiveSeconds | None = Field(default=None, alias="ttft")
    tpot_s: PositiveSeconds | None = Field(default=None, alias="tpot")
    tensor_parallel: int | None = Field(
        default=None, gt=0, description="GPUs per replica for tensor parallelism (auto if unset)"
    )
    expert_parallel: int = Field(default=1, gt=0, description="expert-parallel width (MoE)")
    max_load: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.85,
        description="replicas are added when demand exceeds this share of capacity"
        " (headroom for bursts; planning assumption)",
    )
    min_domains: int = Field(default=1, ge=0)
    control_interval_s: PositiveSeconds = Field(default=300.0, alias="control_interval")
    autoscale_tolerance: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.10,
        description="no scaling while the target is within this fraction of the domains held"
        " (Kubernetes HPA default tolerance, 10%)",
    )
    scale_down_stabilization_s: Seconds = Field(
        default=300.0,
        alias="scale_down_stabilization",
        description="scale down only to the highest target of this trailing window (Kubernetes"
        " HPA default 300 s); scale-up is immediate",
    )
    priority_class: str = Field(default="inference", alias="class")


class WorkloadsConfig(_Model):
    pretraining: tuple[PretrainingJob, ...] = ()
    posttraining: tuple[PosttrainingStream, ...] = ()
    inference: tuple[InferenceService, ...] = ()

    @model_validator(mode="after")
    def _names(self) -> WorkloadsConfig:
        names = [w.name for w in self.pretraining] + [w.name for w in self.posttraining]
        names += [w.name for w in self.inference]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"workload names must be unique; repeated: {', '.join(dup)}")
        return self


# --------------------------------------------------------------------------- scheduler


class PriorityClass(_Model):
    name: str
    preemptible: bool = False


class SchedulerConfig(_Model):
    """Priority gang scheduling. ``classes`` lists priority classes, highest first; a job may
    preempt running work of a *lower*, preemptible class to start or to replace a failed
    domain. Inference services are never preempted (their class sets only whom they may
    preempt). ``policy`` names the scheduling policy in the scheduler registry."""

    policy: Literal["priority_gang"] = "priority_gang"
    classes: tuple[PriorityClass, ...] = (
        PriorityClass(name="inference"),
        PriorityClass(name="pretraining"),
        PriorityClass(name="posttraining", preemptible=True),
    )
    spare_domains: int = Field(
        default=0,
        ge=0,
        description="domains per hardware type held back as hot spares for replacement",
    )

    @field_validator("classes")
    @classmethod
    def _unique(cls, v: tuple[PriorityClass, ...]) -> tuple[PriorityClass, ...]:
        names = [c.name for c in v]
        if len(set(names)) != len(names) or not names:
            raise ValueError("classes must be a non-empty list of unique names")
        return v


# --------------------------------------------------------------------------- reliability


class ReliabilityConfig(_Model):
    """Domain failures: one fleet-wide Poisson stream at the summed rate.

    The rate is given per 1,000 node-days with ``node_gpus`` GPUs per node, the unit of the
    published figures: Llama 3 on H100 3.8 (validation.md §B.1), Meta RSC A100 clusters 2.34
    and 6.50 (§B.2); 4.0 is the hardware.md §9 default. A domain of G GPUs fails at
    rate x G / node_gpus. Repairs take the domain out of service for a lognormal time whose
    3 h mean is a technician swap (hardware.md §7, [S83], weak). A job hit by a failure loses
    the work since its last checkpoint and pays ``restart_overhead`` (5-20 min measured at
    Meta, validation.md §B.2).
    """

    enabled: bool = True
    failure_rate_per_1000_node_days: Annotated[float, Field(ge=0)] = 4.0
    node_gpus: int = Field(default=8, gt=0)
    repair_time: DurationDist = Field(
        default=LognormalDuration(distribution="lognormal", mean_s=3 * 3600.0, cv=1.0)
    )
    restart_overhead_s: Seconds = Field(default=600.0, alias="restart_overhead")


# --------------------------------------------------------------------------- costs


class CostsConfig(_Model):
    energy_price_usd_per_mwh: UsdPerMWh = Field(
        default=80.0,
        alias="energy_price",
        description="US industrial average 2023 $80.6/MWh [S68]",
    )
    facility_capex_usd_per_w: UsdPerWatt = Field(
        default=11.7,
        alias="facility_capex",
        description="shell and M&E per W of IT capacity: US average $11.7M/MW [S66]",
    )
    it_amortization_s: PositiveSeconds = Field(
        default=5 * 365 * DAY_S,
        alias="it_amortization",
        description="straight-line life of IT equipment (planning assumption)",
    )
    facility_amortization_s: PositiveSeconds = Field(
        default=15 * 365 * DAY_S,
        alias="facility_amortization",
        description="straight-line life of the building and plant (planning assumption)",
    )
    network_capex_fraction: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.13 / 0.39,
        description="networking capex as a share of GPU capex: Bernstein 13% vs 39% [S63]",
    )


# --------------------------------------------------------------------------- scenario


class Scenario(_Model):
    """A whole scenario. ``hardware`` holds inline catalog entries (same fields as the catalog)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    run: RunConfig = RunConfig()
    facility: FacilityConfig
    hardware: dict[str, dict[str, Any]] = Field(default_factory=dict)
    network: NetworkConfig = NetworkConfig()
    workloads: WorkloadsConfig = WorkloadsConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    reliability: ReliabilityConfig = ReliabilityConfig()
    costs: CostsConfig = CostsConfig()

    # Cross-references (hardware, models, priority classes) are checked in sim.build, where
    # each problem is reported with its own key path and line.
