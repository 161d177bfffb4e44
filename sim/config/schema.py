"""The scenario schema: one closed, frozen pydantic model that holds every default.

A scenario is YAML with the sections ``run``, ``facility``, ``hardware`` (optional inline catalog
entries), ``network``, ``workloads``, ``scheduler``, ``reliability`` and ``costs``. Keys are the
friendly names users write (``duration: 90 d``); attributes carry the SI unit in their name
(``duration_s``). Quantities accept strings with units and are stored in SI (seconds, watts,
bytes/s) except prices, which keep the unit in the name (``usd_per_mwh``).

Every default is set here and nowhere else. Defaults that are measured facts cite their source
(keys ``[Sxx]`` are in ``sim/catalog/hardware.yaml``, the network's ``[Nxx]`` in
``sim/catalog/switches.yaml``; ``validation.md §X`` is
``shared/reference/validation.md``); defaults that are planning assumptions say so.

Cross-references that need the catalog (hardware and model names, a job larger than the
factory) are checked by :mod:`sim.build`, which reports them with the same key paths.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim.catalog.hardware import Precision
from sim.catalog.switches import switch_catalog
from sim.config.climate import AirShare, ArchetypeName, Celsius, WeatherConfig
from sim.config.grid import CarbonIntensity, DemandResponse, EnergyPrice
from sim.config.power_control import PowerControlConfig
from sim.config.quantities import (
    YEAR_S,
    BitsPerS,
    BytesPerS,
    Count,
    Metres,
    Number,
    PerSecond,
    Plain,
    Seconds,
    UsdPerWatt,
    Watts,
    within,
)
from sim.units import DAY_S, quantity, short

__all__ = [
    "LATENCY_TARGET_WHY",
    "MAX_LATENCY_TARGET_S",
    "AgenticSessions",
    "CommitmentConfig",
    "CorrelatedEvent",
    "CostsConfig",
    "DemandProfile",
    "FacilityConfig",
    "FailureCause",
    "HallConfig",
    "InferenceService",
    "Maintenance",
    "NetworkConfig",
    "Oversubscription",
    "PosttrainingStream",
    "PretrainingJob",
    "PriorityClass",
    "ReliabilityConfig",
    "RunConfig",
    "ScaleAcross",
    "ScaleAcrossLink",
    "Scenario",
    "SchedulerConfig",
    "ServingEngineConfig",
    "WorkloadsConfig",
]

# --------------------------------------------------------------------------- plausible ranges
# Every number is finite and bounded. The bounds are generous (users model futures) and each
# says why it is where it is; they also keep the engine's memory and time bounded.

#: Most scale-up domains in one factory: 1 million 8-GPU nodes is 8 million GPUs at ~10 GW,
#: ten times the largest campus announced (2025); the engine keeps arrays per domain.
MAX_DOMAINS = 1_000_000
#: Longest run and latest time: a century is beyond any planning horizon.
MAX_TIME_S = 100 * 365.25 * DAY_S  # pint's year is 365.25 d: "100 years" is in range
#: Longest name or reference echoed back in messages and used in folder names.
MAX_NAME = 100
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # no leading dot: never '.' or '..' as a folder

_LONGEST = "a century is beyond any planning horizon"
_GRID = "100 GW is 100 times a gigawatt factory"
_GPUS = "10 million GPUs is beyond any announced factory"

Duration = Annotated[Seconds, within(0, MAX_TIME_S, "s", _LONGEST, lo_open=True)]
Time = Annotated[Seconds, within(0, MAX_TIME_S, "s", _LONGEST)]
Fraction = Annotated[Plain, within(0, 1)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
GpuCount = Annotated[Count, within(1, 10_000_000, "", _GPUS)]
Power = Annotated[Watts, within(0, 100e9, "W", _GRID, lo_open=True)]
_CONTEXT = "100 million tokens is 100 times the longest context window"
Tokens = Annotated[Count, within(1, 100_000_000, "", _CONTEXT)]
#: Longest latency target (TTFT, TPOT) and why; ``aifactory estimate serve`` applies it too.
MAX_LATENCY_TARGET_S = 3600.0
LATENCY_TARGET_WHY = "a latency target above an hour is a typo"
#: most sequences in flight per replica a scenario's ``serving.max_seqs`` (and ``aifactory
#: estimate serve --max-seqs``) takes
MAX_SEQS = 65_536
MAX_SEQS_WHY = "engines cap in-flight sequences at a few thousand"
LatencyTarget = Annotated[
    Seconds, within(0, MAX_LATENCY_TARGET_S, "s", LATENCY_TARGET_WHY, lo_open=True)
]
Parallel = Annotated[Count, within(1, 4096, "", "parallel widths live inside a few domains")]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


# --------------------------------------------------------------------------- distributions


def _scalar_to_fixed(v: Any) -> Any:
    if isinstance(v, int | float | str) and not isinstance(v, bool):
        return {"distribution": "fixed", "value": v}
    return v


JobTime = Annotated[
    Seconds,
    within(0, 10 * YEAR_S, "s", "a job or repair longer than ten years is a typo", lo_open=True),
]


class FixedDuration(_Model):
    distribution: Literal["fixed"]
    value_s: JobTime = Field(alias="value")


class ExponentialDuration(_Model):
    distribution: Literal["exponential"]
    mean_s: JobTime = Field(alias="mean")


class LognormalDuration(_Model):
    """Lognormal given by its mean and coefficient of variation (std/mean)."""

    distribution: Literal["lognormal"]
    mean_s: JobTime = Field(alias="mean")
    cv: Annotated[
        Plain, within(0, 10, "", "heavier tails than cv 10 are not measured", lo_open=True)
    ] = 1.0


DurationDist = Annotated[
    FixedDuration | ExponentialDuration | LognormalDuration,
    BeforeValidator(_scalar_to_fixed),
    Field(discriminator="distribution"),
]


class FixedSize(_Model):
    distribution: Literal["fixed"]
    value: GpuCount


class ChoiceSize(_Model):
    """GPU counts drawn from ``values`` with relative ``weights`` (equal if omitted)."""

    distribution: Literal["choice"]
    values: tuple[GpuCount, ...] = Field(min_length=1, max_length=1000)
    weights: tuple[Annotated[Number, within(0, 1e9, lo_open=True)], ...] | None = Field(
        default=None, max_length=1000
    )

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

#: RL steps in one job: whole steps, at least 1 (``rl.steps``).
_STEPS_WHY = "ten million RL steps is not one job"
StepCount = Annotated[Count, within(1, 10_000_000, "", _STEPS_WHY)]


class FixedSteps(_Model):
    distribution: Literal["fixed"]
    value: StepCount


class ExponentialSteps(_Model):
    distribution: Literal["exponential"]
    mean: Annotated[Plain, within(1, 10_000_000, "", _STEPS_WHY)]


class LognormalSteps(_Model):
    """Lognormal given by its mean and coefficient of variation (std/mean), as
    :class:`LognormalDuration`; each job's draw is rounded to whole steps, at least 1."""

    distribution: Literal["lognormal"]
    mean: Annotated[Plain, within(1, 10_000_000, "", _STEPS_WHY)]
    cv: Annotated[
        Plain, within(0, 10, "", "heavier tails than cv 10 are not measured", lo_open=True)
    ] = 1.0


#: A number of RL steps per job, or a distribution each job draws its own from at arrival
#: (``steps: 1500`` is ``{distribution: fixed, value: 1500}``).
StepsDist = Annotated[
    FixedSteps | ExponentialSteps | LognormalSteps,
    BeforeValidator(_scalar_to_fixed),
    Field(discriminator="distribution"),
]


# --------------------------------------------------------------------------- run


class RunConfig(_Model):
    duration_s: Duration = Field(default=365 * DAY_S, alias="duration")
    sample_interval_s: Annotated[
        Seconds, within(1, MAX_TIME_S, "s", "samples finer than a second say nothing new")
    ] = Field(default=3600.0, alias="sample_interval")
    seed: Annotated[Count, within(0, 2**63 - 1, "", "a 64-bit seed")] = 0

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

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=_NAME_PATTERN)
    hardware: Name
    racks: int | Literal["fill"] = "fill"
    it_power_w: Power | None = Field(default=None, alias="it_power")
    cooling_capacity_w: Power | None = Field(
        default=None,
        alias="cooling_capacity",
        description="heat the plant rejects at the design outdoor temperature; default: the"
        " hall's IT power capacity",
    )
    cooling: ArchetypeName | None = Field(
        default=None,
        description="cooling archetype (facility.md §1.3), used with pue: weather; default: from"
        " the catalog's cooling of the hall's hardware (sim.config.climate.DEFAULT_ARCHETYPE)",
    )
    design_ambient_c: Celsius | None = Field(
        default=None,
        alias="design_ambient",
        description="outdoor temperature (of the archetype's dry- or wet-bulb) at which the plant"
        " rejects cooling_capacity, used with pue: weather; default: the 99.6th percentile of the"
        " weather (the 0.4% design condition, facility.md §1.4, §9)",
    )
    air_share: AirShare | None = Field(
        default=None,
        description="share of the hall's heat rejected to room air by an air_chiller_econ plant,"
        " used with pue: weather; default: 0.15 for hybrid racks (assumption, facility.md §1.3),"
        " 0 otherwise",
    )
    building: str = Field(
        default="building-1",
        min_length=1,
        max_length=MAX_NAME,
        pattern=_NAME_PATTERN,
        description="the building whose fabric the hall joins; halls of one building share its"
        " core switches, halls of different buildings talk over network.scale_across.buildings."
        " Default: one building for every hall, a campus with one flat fabric (Microsoft"
        " Fairwater runs one network per site, network-and-serving.md A2 [N14])",
    )
    site: str = Field(
        default="site-1",
        min_length=1,
        max_length=MAX_NAME,
        pattern=_NAME_PATTERN,
        description="the site (campus) of the hall's building; sites talk over"
        " network.scale_across.sites. Default: one site",
    )

    @field_validator("racks", mode="before")
    @classmethod
    def _positive(cls, v: Any) -> Any:
        if v == "fill" and isinstance(v, str):
            return v
        if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= MAX_DOMAINS:
            raise ValueError(
                f"racks must be 'fill' or a whole number of domains in [1, {MAX_DOMAINS:,}]"
                f" (the engine keeps arrays per domain), got {short(v)}"
            )
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


_PUE_RANGE = within(1.0, 3.0, "", "no facility runs below 1 or above 3")


def _pue_setting(v: Any) -> Any:
    """``weather`` or a number in [1, 3]: one message either way (not one per union branch)."""
    if isinstance(v, str) and v.strip() == "weather":
        return "weather"
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            raise ValueError(f"expected a number in [1, 3] or 'weather', got {short(v)}") from None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected a number in [1, 3] or 'weather', got {short(v)}")
    return _PUE_RANGE.func(float(v))


class FacilityConfig(_Model):
    """The site: grid connection, PUE, halls.

    **PUE.** ``pue`` is a number (a constant PUE; the default 1.2, so every scenario written
    before weather existed runs exactly as before) or ``weather``: each hall's PUE then follows
    the outdoor temperature of ``weather`` and the hall's load through its cooling archetype
    (``halls[].cooling``, facility.md §1.3), and its heat-rejection capacity derates in the
    heat (§1.4). The two are exclusive, and a key that would change nothing is an error:
    ``weather``, ``halls[].cooling``, ``design_ambient`` and ``air_share`` need ``pue:
    weather``, and ``pue: weather`` needs ``weather`` (checked in :mod:`sim.build`). A default
    weather (a constant temperature tuned to give 1.2) was rejected: no single temperature gives
    1.2 for every archetype and load, so it would look weather-driven while being a disguised
    constant. With ``pue: weather`` the halls are laid out for the highest hall PUE at the
    design temperature and full load.
    """

    grid_power_w: Power = Field(
        default=1e9,
        alias="grid_power",
        description="steady grid import cap (facility power); demand_response lowers it for a"
        " while",
    )
    demand_response: DemandResponse = Field(
        default=(),
        description="demand-response calls, each lowering the grid import cap by its shed for"
        " its length (the power controller keeps the facility under the lowered cap, and may use"
        " the notice to prepare): a list [{start, length, shed, notice}] or {kind: random, ...}"
        " (sim.config.grid); default: none",
    )
    pue: Annotated[float | Literal["weather"], BeforeValidator(_pue_setting)] = Field(
        default=1.2,
        description="facility power / IT power; 1.2 for a liquid-cooled AI hall, range 1.1-1.4,"
        " industry average 1.56 [S59][S61]; or 'weather': per hall, from weather and cooling",
    )
    weather: WeatherConfig | None = Field(
        default=None,
        description="outdoor weather (synthetic site, CSV file or constant), with pue: weather",
    )
    oversubscription: Annotated[
        Plain, within(1, 2, "", "twice the racks a hall's power allows is beyond any published")
    ] = Field(
        default=1.0,
        description="domains per hall as a multiple of what its IT power allows on nameplate"
        " (1: filled on nameplate; 1.25: 25% more racks under the same power, kept within the"
        " caps by power_control). Published: Google >= 25% over years [F44], Microsoft Flex up"
        " to 33% [F45], POLCA 30% for LLM inference [F30] (facility.md §4)",
    )
    power_control: PowerControlConfig = Field(
        default=PowerControlConfig(),
        description="the policy that acts when power or heat would exceed a cap"
        " (sim/config/power_control.py)",
    )
    it_overhead_fraction: Fraction = Field(
        default=0.10,
        description="network, storage and management IT power as a fraction of domain power"
        " (hardware.md §9 derivation, weak)",
    )
    storage_bandwidth_bytes_per_s: Annotated[
        BytesPerS, within(0, 1e16, "byte/s", "10 PB/s is 5,000 times Meta's Tectonic", lo_open=True)
    ] = Field(
        default=2e12,
        alias="storage_bandwidth",
        description="sustained checkpoint write bandwidth; Meta Tectonic 2 TB/s (validation.md"
        " §A.1)",
    )
    storage_read_bandwidth_bytes_per_s: (
        Annotated[
            BytesPerS,
            within(0, 1e16, "byte/s", "10 PB/s is 5,000 times Meta's Tectonic", lo_open=True),
        ]
        | None
    ) = Field(
        default=None,
        alias="storage_read_bandwidth",
        description="checkpoint read bandwidth for restores; unset: storage_bandwidth (Tectonic's"
        " 2 TB/s sustained is not split by direction; assumption)",
    )
    activity_power: ActivityPower | None = Field(
        default=None,
        description="override of every generation's activity power; unset: each generation's"
        " catalog values",
    )
    halls: tuple[HallConfig, ...] = Field(min_length=1, max_length=1000)

    @field_validator("halls")
    @classmethod
    def _unique(cls, halls: tuple[HallConfig, ...]) -> tuple[HallConfig, ...]:
        names = [h.name for h in halls]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"hall names must be unique; repeated: {', '.join(dup)}")
        return halls


# --------------------------------------------------------------------------- network


#: GPUs in NVIDIA's scalable unit (SU) of rack-scale systems: 8 GB200 NVL72 racks = 576 GPUs
#: [S20][N4] (the DGX B300-XDR SU of 72 eight-GPU nodes is 576 GPUs too [N3]). The default
#: ``unit_domains`` of a rail-optimized fabric of racks with more than 8 GPUs.
RACK_SCALE_UNIT_GPUS = 576
#: Default oversubscription (downlink:uplink) by fabric kind. fat_tree is the ToR-wired Clos of
#: Meta's Llama 3 clusters: rack switches not oversubscribed (their uplinks are 2x their
#: downlinks), 3,072-GPU pods non-blocking, 1:7 between pods (network-and-serving.md A2 and C
#: [N9][N10]). rail_optimized is NVIDIA's SuperPOD: non-blocking at every tier, core included
#: (64 SU: 512 leaf, 512 spine, 256 core switches [N1]).
DEFAULT_OVERSUBSCRIPTION: dict[str, dict[str, float]] = {
    "fat_tree": {"unit": 1.0, "pod": 7.0},
    "rail_optimized": {"unit": 1.0, "pod": 1.0},
}
#: Keys of ``network`` that only a switched fabric (fat_tree, rail_optimized) reads.
SWITCHED_ONLY_KEYS = (
    "placement",
    "failures",
    "switch",
    "link_speed",
    "unit_domains",
    "pod_units",
    "oversubscription",
    "scale_across",
)


def _ratio(value: Any) -> Any:
    """``"1:7"`` (uplink to downlink, as the references write it) or ``"7:1"`` is 7: an
    oversubscription is at least 1 whichever way round it is written."""
    if isinstance(value, str) and ":" in value:
        a, _, b = value.partition(":")
        try:
            x, y = float(a), float(b)
        except ValueError:
            raise ValueError(
                f"expected a ratio such as 1:7 or a number such as 7, got {value!r}"
            ) from None
        if not (x > 0 and y > 0):
            raise ValueError(f"both sides of the ratio {value!r} must be positive")
        return max(x, y) / min(x, y)
    return value


Ratio = Annotated[
    Plain,
    BeforeValidator(_ratio),
    within(1, 100, "", "1:100 is beyond any published fabric (Meta: 1:7)"),
]
LinkSpeed = Annotated[
    BitsPerS,
    within(1e9, 1e14, "bit/s", "the fastest NIC announced carries 1.6 Tb/s per GPU"),
]
ScaleAcrossBandwidth = Annotated[
    BitsPerS,
    within(
        0, 1e18, "bit/s", "an exabit per second is 10,000 times a 100 Tb/s DCI link", lo_open=True
    ),
]
Distance = Annotated[
    Metres, within(0, 2e7, "m", "20,000 km is half the Earth's circumference", lo_open=True)
]


class Oversubscription(_Model):
    """Downlink : uplink ratio of the traffic leaving a group at each switched tier (1 is
    non-blocking; 7 is 1:7, network-and-serving.md §0): ``unit`` at the leaf switches (leaf to
    spine), ``pod`` at the spines (spine to core). Traffic leaving a building or a site crosses
    ``scale_across`` links instead."""

    unit: Ratio
    pod: Ratio


class ScaleAcrossLink(_Model):
    """The links from each building (or site) to the others."""

    bandwidth_bits_per_s: ScaleAcrossBandwidth = Field(
        alias="bandwidth",
        description="each building's (site's) link capacity to the others, one direction, e.g."
        " 100 Tb/s. Required: the capacity of long-haul AI links is not published"
        " (network-and-serving.md D: Microsoft's AI WAN capacity)",
    )
    distance_m: Distance = Field(
        alias="distance",
        description="fibre route length between buildings (sites): 5 µs/km one way"
        " (hardware.md §5). Campuses span ~2 km (OCI Abilene [N16]); Fairwater sites ~1,100 km",
    )


class ScaleAcross(_Model):
    buildings: ScaleAcrossLink | None = Field(
        default=None, description="links between the buildings of a site"
    )
    sites: ScaleAcrossLink | None = Field(default=None, description="links between sites")


class NetworkFailures(_Model):
    """Switch and link failures of a switched fabric (:mod:`sim.engine.fabric`).

    * A **leaf** switch fails at ``switch_annual_failure_rate``: on a ``fat_tree`` (a unit is
      the domains under one leaf) its unit's domains are cut off until repair; on
      ``rail_optimized`` it is one rail of its unit: the jobs there are interrupted (NCCL
      times out; Llama 3 counts switch failures as interruptions, validation.md B.1) and the
      unit's GPUs keep ``1 - 1/leaves`` of their links until repair.
    * A **spine** switch fails at the same rate: its pod's leaf-to-spine and spine-to-core
      capacity falls by ``1/spines`` until repair (traffic reroutes; no interruption).
    * A **link** (cable, optic) fails at ``link_failures_per_1000_gpu_years``: the job holding
      the domain is interrupted and the domain keeps ``1 - 1/GPUs`` of its links until repair.
    """

    enabled: bool = Field(
        default=True, description="off: no switch or link fails (also off with reliability)"
    )
    switch_annual_failure_rate: Annotated[Plain, within(0, 1, "", "a share of switches a year")] = (
        Field(
            default=0.078,
            description="Microsoft, 180,000 data-centre switches: 2% failed within 3 months of"
            " deployment, 7.8% a year (network-and-serving.md A5 [N19])",
        )
    )
    link_failures_per_1000_gpu_years: Annotated[
        Plain, within(0, 1000, "", "a link failure per GPU a year is beyond any fleet")
    ] = Field(
        default=12.0,
        description="Llama 3's switch/cable interruptions, 14.4 per 1,000 GPU-years (A5 [D] from"
        " validation.md B.1), less the 2.4 its 512 leaf switches account for at 7.8% a year",
    )
    repair_time: DurationDist = Field(
        default=LognormalDuration.model_validate(
            {"distribution": "lognormal", "mean": "2 d", "cv": 1.0}
        ),
        description="until the switch or link is back: link MTTR 1-3 days physical, hours for"
        " packet corruption (A5 [N20]); the middle of 1-3 days",
    )


class NetworkConfig(_Model):
    """The scale-out fabric that joins the scale-up domains (sim/network, docs/network.md).

    ``kind``:

    * ``non_blocking`` (default): an ideal fabric, full bisection between any domains, no
      switches counted; every scenario written before the fabric model runs exactly as before.
      It takes no switch, placement or failure keys (they would change nothing) and one building.
    * ``fat_tree``: a ToR-wired leaf/spine/core Clos (Meta's Llama 3 clusters, [N9][N10]): a
      *unit* is the domains under one leaf switch, a *pod* the units under one spine group (a
      2-tier fat tree of radix k holds k^2/2 endpoints), the core joins a building's pods.
    * ``rail_optimized``: NVIDIA's SuperPOD (NIC i of every node on leaf i, [N1][N3][N4]): a
      *unit* is a scalable unit (SU) of ``unit_domains`` domains, otherwise as fat_tree.

    Tiers, innermost first: unit, pod, building, site. Units never span halls, pods never span
    halls (a spine group's cables stay in its hall), buildings never span sites.
    """

    kind: Literal["non_blocking", "fat_tree", "rail_optimized"] = "non_blocking"
    placement: Literal["pack", "spread", "random"] = Field(
        default="pack",
        description="where a job's domains go: pack (fill a unit, then a pod, then a building:"
        " topology-aware, DESIGN.md), spread (across groups), random",
    )
    switch: Name | None = Field(
        default=None,
        description="switch catalog name (sim/catalog/switches.yaml, every hall); default per"
        " hall from its link speed (its hardware's NIC rate unless link_speed is set), NVIDIA's"
        " reference fabric: quantum2_qm9700 up to 400G [N1][N4], quantum_x800_q3400 above [N3]"
        " (sim.catalog.switches.DEFAULT_SWITCH_BY_NIC)",
    )
    link_speed_bits_per_s: LinkSpeed | None = Field(
        default=None,
        alias="link_speed",
        description="line rate per GPU on the fabric (every hall), at most the NIC's; default:"
        " each hall's hardware scaleout_bandwidth_bits_per_s",
    )
    unit_domains: Annotated[Count, within(1, MAX_DOMAINS)] | None = Field(
        default=None,
        description="domains per unit (every hall). Default, fat_tree: the domains one leaf's"
        " downlinks hold, at least one; rail_optimized: NVIDIA's SU, as many 8-GPU nodes as a leaf"
        " has downlinks (32 on radix 64 = DGX H100/B200 SU [S24][N1], 72 on radix 144 = DGX"
        " B300-XDR SU [N3]) or RACK_SCALE_UNIT_GPUS (576) of GPUs in racks (8 NVL72, [S20][N4])",
    )
    pod_units: Annotated[Count, within(1, MAX_DOMAINS)] | None = Field(
        default=None,
        description="units per pod (every hall); default: as many as a 2-tier fat tree of the"
        " switch holds, k x (leaf downlinks) endpoints = k^2/2 when non-blocking"
        " (network-and-serving.md A1: 8 SU of 256 GPUs on radix 64, 18 SU of 576 on radix 144)",
    )
    oversubscription: Oversubscription | None = Field(
        default=None,
        description="per-tier downlink:uplink ratios {unit, pod}; default by kind:"
        " DEFAULT_OVERSUBSCRIPTION (fat_tree 1 and 7, Meta [N9][N10]; rail_optimized 1 and 1,"
        " NVIDIA [N1])",
    )
    scale_across: ScaleAcross | None = Field(
        default=None,
        description="links between buildings and between sites {buildings: {bandwidth,"
        " distance}, sites: {...}}; required when halls are in several buildings or sites",
    )
    failures: NetworkFailures = Field(
        default=NetworkFailures(),
        description="switch and link failures of a switched fabric (NetworkFailures)",
    )

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        """A switched fabric's oversubscription: the kind's defaults under the keys given. (A
        partial one under another kind is completed too, so that the message is that the key
        does not apply, not that half of it is missing.)"""
        if not isinstance(data, dict):
            return data
        defaults = DEFAULT_OVERSUBSCRIPTION.get(str(data.get("kind")))
        given = data.get("oversubscription")
        if isinstance(given, dict) or (defaults is not None and given is None):
            base = defaults or DEFAULT_OVERSUBSCRIPTION["rail_optimized"]
            data = {**data, "oversubscription": {**base, **(given or {})}}
        return data

    @field_validator("oversubscription", mode="before")
    @classmethod
    def _per_tier(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, dict | Oversubscription):
            raise ValueError(
                "takes a ratio per switched tier, a mapping such as {unit: 1, pod: 7} (each"
                " a number or a ratio such as '1:7'; a tier left out keeps its default),"
                f" got {short(v)}"
            )
        return v

    @field_validator("switch")
    @classmethod
    def _known_switch(cls, v: str | None) -> str | None:
        known = list(switch_catalog())
        if v is not None and v not in known:
            close = difflib.get_close_matches(v, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"unknown switch {short(v)}{hint}; known: {', '.join(sorted(known))}")
        return v


# --------------------------------------------------------------------------- workloads


ModelRef = Name | dict[str, Any]


class TrainingLayoutConfig(_Model):
    """A training job's parallel layout, as published (e.g. Llama 3 405B: TP 8, PP 16, DP 128,
    validation.md A.1); the data-parallel width is what is left: gpus / (tp x pp x cp). Without
    it the performance model picks the fastest layout that fits (sim/perf/layout.py)."""

    tp: Parallel = 1
    pp: Parallel = 1
    vp: Parallel | None = Field(
        default=None,
        description="virtual pipeline stages per GPU (interleaving); default: about two layers"
        " per chunk (sim/perf/training.py default_vp)",
    )
    cp: Parallel = Field(default=1, description="context-parallel width")
    ep: Parallel = Field(default=1, description="expert-parallel width (divides the data width)")
    microbatch: Parallel = Field(default=1, description="sequences per micro-batch")
    zero_stage: Annotated[Count, within(0, 3)] = Field(
        default=1, description="1: optimizer states sharded, 2: also gradients, 3: also weights"
    )
    recompute: Literal["auto", "none", "selective", "full"] = "auto"


class PretrainingJob(_Model):
    """A large gang-scheduled pre-training run."""

    name: Name
    model: ModelRef
    hardware: Name | None = Field(
        default=None, description="catalog name; default: the first hall's hardware"
    )
    gpus: GpuCount
    tokens: Annotated[
        Plain, within(0, 1e17, "", "100 times the largest corpus in sight (1e15)", lo_open=True)
    ] = Field(description="training tokens to process")
    precision: Precision = Precision.FP8
    seq_len: Annotated[Count, within(1, 100_000_000, "", "100M-token context")] = 8192
    global_batch: Annotated[Count, within(1, 1e9, "", "a billion sequences per step")] | None = (
        Field(default=None, description="sequences per step")
    )
    submit_at_s: Time = Field(default=0.0, alias="submit_at")
    checkpoint_interval_s: Duration = Field(
        default=1800.0,
        alias="checkpoint_interval",
        description="wall time between checkpoints (scenario assumption)",
    )
    checkpoint_write_s: (
        Literal["auto"]
        | Annotated[Seconds, within(0, 30 * DAY_S, "s", "a stall longer than a month is a typo")]
    ) = Field(
        default="auto",
        alias="checkpoint_write",
        description="time to write a checkpoint; auto = 16 bytes/param of model and"
        " optimizer state (bf16 weights and grads, fp32 master and two Adam moments) over the"
        " facility's storage bandwidth; a stall under checkpoint_mode sync",
    )
    checkpoint_mode: Literal["sync", "async"] = Field(
        default="sync",
        description="sync: the job stalls for the write; async: it stalls only for the snapshot"
        " to host memory (checkpoint_snapshot) and the write goes on in the background: a"
        " checkpoint is durable checkpoint_write after its snapshot, and a failure before that"
        " falls back to the one before",
    )
    checkpoint_snapshot_s: (
        Literal["auto"]
        | Annotated[Seconds, within(0, DAY_S, "s", "a snapshot longer than a day is a typo")]
        | None
    ) = Field(
        default=None,
        alias="checkpoint_snapshot",
        description="async only: the stall per checkpoint; auto (also when unset) = each GPU's"
        " share of the state (16 bytes/param / GPUs) over 64 GB/s, one direction of PCIe Gen5"
        " x16 (the H100's host link; GB200's NVLink-C2C is faster, so conservative there)",
    )
    checkpoint_restore_s: (
        Literal["auto"]
        | Annotated[Seconds, within(0, 30 * DAY_S, "s", "a restore longer than a month is a typo")]
    ) = Field(
        default="auto",
        alias="checkpoint_restore",
        description="time to read the checkpoint back at each restart, on top of"
        " reliability.restart_overhead; auto = the state over the storage read bandwidth",
    )

    @model_validator(mode="after")
    def _check_checkpoints(self) -> PretrainingJob:
        if self.checkpoint_snapshot_s is not None and self.checkpoint_mode != "async":
            raise ValueError("checkpoint_snapshot is the stall of checkpoint_mode: async only")
        return self

    priority_class: Name = Field(default="pretraining", alias="class")
    layout: TrainingLayoutConfig | None = Field(
        default=None,
        description="the job's parallel layout (TrainingLayoutConfig); default: the fastest that"
        " fits",
    )


class RLWork(_Model):
    """One RL post-training job as work: ``steps`` iterations, each generating
    ``prompts_per_step x samples_per_prompt`` rollouts (decode-heavy, on the policy model) and
    then training on them, with a weight synchronisation from trainer to generator in between
    (sim/build.py ``_rl_step_s``, docs/workloads.md). Rollout lengths grow with reasoning: from
    ``rollout_tokens`` at the first step to ``rollout_tokens x rollout_growth`` at the last
    (linear; DeepSeek-R1's RL saw response length grow several-fold, Guo et al. 2025 fig. 3)."""

    steps: StepsDist = Field(
        description="RL steps per job: a number, or a distribution each job draws its own"
        " from ({distribution: lognormal, mean: 1500, cv: 1}; exponential; fixed), rounded to"
        " whole steps, at least 1"
    )
    prompts_per_step: Annotated[Count, within(1, 10_000_000, "", "a batch of prompts")] = Field(
        default=512, description="prompts per step (DeepSeek-R1/GRPO-style batches; assumption)"
    )
    samples_per_prompt: Annotated[Count, within(1, 10_000, "", "samples per prompt")] = Field(
        default=8, description="rollouts per prompt (GRPO group size; DeepSeekMath used 64)"
    )
    prompt_tokens: Tokens = 1024
    rollout_tokens: Tokens = Field(description="mean generated tokens per rollout at the start")
    rollout_growth: Annotated[Number, within(0.01, 100, "", "a 100-fold change in one job")] = (
        Field(
            default=1.0,
            description="rollout length at the last step over the first; below 1 the rollouts"
            " shorten (RL with a length penalty, Kimi k1.5's long-to-short training)",
        )
    )


class PosttrainingStream(_Model):
    """A stream of medium post-training jobs (SFT, preference tuning, RL) arriving over time.

    A job is work: with ``model``, an ``sft`` or ``preference`` job trains on ``tokens`` tokens
    and an ``rl`` job runs ``rl`` steps of generation plus training, at the rates the
    performance model gives on the hardware it runs on. The older ``duration`` (a wall-clock
    run time, the same on every hardware) is still accepted without ``model``."""

    name: Name
    kind: Literal["sft", "preference", "rl", "other"] = "rl"
    hardware: Name | None = None
    arrival_rate_per_s: Annotated[
        PerSecond,
        within(0, 1.0, "1/s", "86,400 jobs a day are not medium post-training runs", lo_open=True),
    ] = Field(alias="arrival_rate", description="e.g. '12 / d'")
    gpus: SizeDist
    duration: Annotated[DurationDist | None, BeforeValidator(_scalar_to_fixed)] = Field(
        default=None,
        description="run time when running uninterrupted, on any hardware (without model)",
    )
    model: ModelRef | None = Field(
        default=None,
        description="the model post-trained (catalog name or inline): jobs become work (tokens"
        " or rl), each checkpoint stalls a job for 16 bytes/param over the storage bandwidth and"
        " each restart reads it back; unset: a duration, and checkpoints cost nothing",
    )
    tokens: (
        Annotated[Plain, within(0, 1e15, "", "a thousand times a frontier corpus", lo_open=True)]
        | None
    ) = Field(default=None, description="sft / preference: training tokens per job")
    rl: RLWork | None = None
    precision: Precision = Precision.BF16
    seq_len: Annotated[Count, within(1, 100_000_000, "", "100M-token context")] = 8192
    start_at_s: Time = Field(default=0.0, alias="start_at")
    stop_at_s: Time | None = Field(default=None, alias="stop_at")
    checkpoint_interval_s: Duration = Field(default=3600.0, alias="checkpoint_interval")
    priority_class: Name = Field(default="posttraining", alias="class")

    @field_validator("tokens", "rl", "seq_len")
    @classmethod
    def _of_its_kind(cls, v: Any, info: ValidationInfo) -> Any:
        """``rl`` and ``tokens`` are each the work of some kinds only, and ``seq_len`` the
        training sequence of SFT and preference jobs (an RL job's sequences are its prompts and
        rollouts); given to another kind they would be ignored, so they are refused where they
        stand (line and key). ``seq_len`` at its default passes: a resolved scenario writes it
        back for every stream."""
        kind = info.data.get("kind")
        if v is None or kind is None:  # kind itself failed: its own error says so
            return v
        if info.field_name == "seq_len":
            if kind == "rl" and v != cls.model_fields["seq_len"].default:
                raise ValueError(
                    "seq_len applies only to kind: sft or preference (their training"
                    " sequences); this job is kind: rl (the default), whose sequences are"
                    " rl.prompt_tokens + the rollout (rl.rollout_tokens, growing by"
                    " rl.rollout_growth), trained at that length"
                )
            return v
        work = {
            "rl": "whose work is an rl block: {steps, rollout_tokens, ...}",
            "sft": "whose work is tokens (per job)",
            "preference": "whose work is tokens (per job)",
        }.get(kind, "which has no work model (give a duration)")
        this = f"this job is kind: {kind}{' (the default)' if kind == 'rl' else ''}, {work}"
        if info.field_name == "rl" and kind != "rl":
            raise ValueError(f"the rl block applies only to kind: rl; {this}")
        if info.field_name == "tokens" and kind not in ("sft", "preference"):
            raise ValueError(f"tokens applies only to kind: sft or preference; {this}")
        return v

    @model_validator(mode="after")
    def _work(self) -> PosttrainingStream:
        if self.model is None:
            # a key that only acts with model is an error without it (defaults and nulls are
            # what a resolved scenario writes back, so they pass)
            for key in ("tokens", "rl", "precision", "seq_len"):
                if getattr(self, key) != type(self).model_fields[key].default:
                    raise ValueError(f"{key} needs model (the model post-trained)")
            if self.duration is None:
                raise ValueError(
                    "give the jobs' work (model with tokens, or with rl for kind rl) or a"
                    " duration (wall-clock run time, the same on every hardware)"
                )
            return self
        if self.duration is not None:
            raise ValueError(
                "give either duration (wall-clock, the old form) or model with its work, not"
                " both: with model the run time follows from the work and the hardware"
            )
        # (tokens with kind rl and rl with another kind were refused at their keys)
        if self.kind == "rl":
            if self.rl is None:
                raise ValueError("kind rl with model takes rl: {steps, rollout_tokens, ...}")
        elif self.kind in ("sft", "preference"):
            if self.tokens is None:
                raise ValueError(f"kind {self.kind} with model takes tokens (per job)")
        else:
            raise ValueError("kind other has no work model: give duration instead of model")
        return self


class DemandProfile(_Model):
    """Request arrival rate of a service: a mean, a daily cycle, a weekly cycle and noise.

    rate(t) = mean x daily(t) x weekly(t) x noise. The daily cycle is a sinusoid whose
    peak-to-trough ratio defaults to 2.5, the weekday swing of Azure's conversation trace; the
    weekend level defaults to 0.6 of weekdays (same trace, read from its figure; validation.md
    §F.1). Both cycles are normalised so that the long-run mean is ``mean``. Noise is a
    lognormal factor with mean 1, drawn per control interval.
    """

    mean_requests_per_s: Annotated[
        Plain, within(0, 1e8, "", "100 million requests/s is 1,000 times web search", lo_open=True)
    ]
    peak_to_trough: Annotated[
        Number, within(1.0, 100.0, "", "measured daily swings are 1.5-4 (validation.md §F.1)")
    ] = 2.5
    peak_hour: Annotated[Number, within(0, 24, "", "an hour of the day", hi_open=True)] = Field(
        default=14.0, description="local hour of the daily peak (assumption)"
    )
    weekend_factor: Annotated[
        Number, within(0, 2, "", "weekends from quiet to twice as busy", lo_open=True)
    ] = 0.6
    noise_cv: Annotated[Number, within(0, 2, "", "noise beyond cv 2 drowns the profile")] = 0.05
    growth_per_year: Annotated[
        Number, within(-1, 100, "", "from vanishing to 100-fold a year", lo_open=True)
    ] = Field(
        default=0.0,
        description="demand growth a year, compounded (0.5: x1.5 a year); negative for a tier"
        " in decline (-0.5 halves it each year), above -1 (vanished)",
    )


class ServingEngineConfig(_Model):
    """The serving engine's scheduler and the spread of request lengths, for the request-level
    simulator (``aifactory serve-sim``, docs/serving.md). Defaults: vLLM on GPUs of 70 GiB or
    more (network-and-serving.md B1: ``max_num_seqs`` 1,024, ``max_num_batched_tokens`` 8,192);
    length spreads of the Azure 2023 conversation trace (validation.md F.1, lognormal fit of its
    mean and median)."""

    max_seqs: Annotated[Count, within(1, MAX_SEQS, "", MAX_SEQS_WHY)] = Field(
        default=1024, description="most sequences in flight per replica (vLLM max_num_seqs)"
    )
    max_batched_tokens: Annotated[
        Count, within(1, 1_048_576, "", "a million tokens per iteration is beyond any engine")
    ] = Field(default=8192, description="token budget per iteration (chunked prefill)")
    input_cv: Annotated[Number, within(0, 10, "", "a spread beyond cv 10 is not a length mix")] = (
        Field(default=0.53, description="coefficient of variation of prompt lengths (lognormal)")
    )
    output_cv: Annotated[Number, within(0, 10, "", "a spread beyond cv 10 is not a length mix")] = (
        Field(default=1.17, description="coefficient of variation of output lengths (lognormal)")
    )

    @model_validator(mode="after")
    def _budget(self) -> ServingEngineConfig:
        if self.max_seqs > self.max_batched_tokens:
            raise ValueError(
                f"max_seqs ({self.max_seqs}) cannot exceed max_batched_tokens"
                f" ({self.max_batched_tokens}): each running sequence takes a token per iteration"
            )
        return self


class AgenticSessions(_Model):
    """Requests come as agentic sessions: calls separated by tool latency, each call's prompt
    the previous prompt plus its output plus the tool result; the prompt cache serves the
    previous context if the tool returns within ``cache_ttl`` (docs/serving.md)."""

    calls: Annotated[Number, within(1, 10_000, "", "ten thousand calls is not one session")] = (
        Field(
            description="mean calls per session (1 + geometric; coding agents: median 8 turns, B3)"
        )
    )
    tool_latency_s: Annotated[
        Seconds, within(0, DAY_S, "s", "a tool that takes a day ends the session")
    ] = Field(alias="tool_latency", description="mean time from a call's end to the next call")
    tool_output_tokens: Annotated[Count, within(0, 100_000_000, "", _CONTEXT)] = Field(
        description="mean tokens a tool result adds to the context"
    )
    cache_ttl_s: Annotated[
        Seconds, within(0, 30 * DAY_S, "s", "caches keep entries minutes to hours")
    ] = Field(
        default=300.0,
        alias="cache_ttl",
        description="prompt-cache lifetime after last use (Anthropic 5 min, B3 [N35])",
    )
    shared_prefix_tokens: Annotated[Count, within(0, 100_000_000, "", _CONTEXT)] = Field(
        default=0, description="system-prompt tokens shared by every call (cached)"
    )
    share: Annotated[Number, within(0, 1, lo_open=True)] = Field(
        default=1.0,
        description="share of the service's calls from sessions; the rest are plain requests",
    )


class ReasoningGrowth(_Model):
    """The service's reasoning length changes over the run: ``reasoning_tokens`` times a
    multiplier that goes linearly from 1 at ``start`` to ``factor`` at ``start + over`` and
    stays there (test-time scaling: a model tier that reasons longer after a release). A factor
    below 1 is as meaningful, a tier distilled or trained to reason shorter: the demand falls
    and the capacity stays planned at the longest reasoning of the run, the start's."""

    factor: Annotated[Number, within(0.01, 100, "", "a 100-fold change of reasoning length")]
    start_s: Time = Field(default=0.0, alias="start")
    over_s: Annotated[
        Seconds, within(0, 10 * YEAR_S, "s", "a ramp beyond ten years", lo_open=True)
    ] = Field(alias="over", description="duration of the ramp")


class InferenceService(_Model):
    """A served model tier with its own replicas, demand and latency targets."""

    name: Name
    model: ModelRef
    hardware: Name | None = None
    precision: Precision = Precision.FP8
    demand: DemandProfile
    input_tokens: Tokens = Field(description="mean prompt tokens per request")
    output_tokens: Tokens = Field(description="mean visible output tokens per request")
    reasoning_tokens: Annotated[Count, within(0, 100_000_000, "", _CONTEXT)] = Field(
        default=0, description="mean hidden reasoning tokens"
    )
    reasoning_growth: ReasoningGrowth | None = Field(
        default=None,
        description="reasoning_tokens times a multiplier ramping from 1 to factor over time",
    )
    prompt_cache_hit: Fraction = 0.0
    ttft_s: LatencyTarget | None = Field(default=None, alias="ttft")
    tpot_s: LatencyTarget | None = Field(default=None, alias="tpot")
    tensor_parallel: Parallel | None = Field(
        default=None, description="GPUs per replica for tensor parallelism (auto if unset)"
    )
    expert_parallel: Parallel = Field(default=1, description="expert-parallel width (MoE)")
    backend: Literal["model", "measured"] = Field(
        default="model",
        description="where serving capacity per replica comes from: 'model', the analytic"
        " performance model; 'measured', NVIDIA's aiconfigurator database (optional dependency,"
        " catalog models and hardware it covers only; anything else is an error at load time)",
    )
    max_load: Annotated[Number, within(0, 1, lo_open=True)] = Field(
        default=0.85,
        description="replicas are added when demand exceeds this share of capacity"
        " (headroom for bursts; planning assumption)",
    )
    min_domains: Annotated[Count, within(0, MAX_DOMAINS)] = 1
    control_interval_s: Annotated[
        Seconds, within(1, 30 * DAY_S, "s", "autoscalers act every few seconds to minutes")
    ] = Field(default=300.0, alias="control_interval")
    autoscale_tolerance: Annotated[Number, within(0, 1, hi_open=True)] = Field(
        default=0.10,
        description="no scaling while the target is within this fraction of the domains held"
        " (Kubernetes HPA default tolerance, 10%)",
    )
    scale_down_stabilization_s: Annotated[
        Seconds, within(0, 30 * DAY_S, "s", "a window longer than a month never scales down")
    ] = Field(
        default=300.0,
        alias="scale_down_stabilization",
        description="scale down only to the highest target of this trailing window (Kubernetes"
        " HPA default 300 s); scale-up is immediate",
    )
    client_timeout_s: Annotated[
        Seconds, within(0, DAY_S, "s", "no client waits a day for an answer")
    ] = Field(
        default=600.0,
        alias="client_timeout",
        description="fleet runs: demand beyond the held capacity waits in a backlog served"
        " later; a request whose wait would pass this is given up by its client (dropped)."
        " Default: the OpenAI Python SDK's request timeout, 600 s (openai-python"
        " src/openai/_constants.py, DEFAULT_TIMEOUT); 0 drops at once what the capacity cannot"
        " serve (no backlog)",
    )
    priority_class: Name = Field(default="inference", alias="class")
    kv_cache: Literal["reserved", "paged"] = Field(
        default="reserved",
        description="KV cache: reserved (prompt + output held from admission, never preempted;"
        " TensorRT-LLM GUARANTEED_NO_EVICT) or paged (grows per token, preempts on overflow;"
        " vLLM). Sizes the batch of the analytic capacity (docs/performance-model.md) and the"
        " serving simulator's pool (docs/serving.md). Default reserved, as aifactory estimate:"
        " TensorRT-LLM's default, on which every published serving result checked was run",
    )
    runtime: Literal["fused", "torch_flow"] | None = Field(
        default=None,
        description="how the serving engine runs FP8/FP4 layers: fused (the activations'"
        " quantization fused into the kernel that produces them: TensorRT-LLM as"
        " NVIDIA runs it in MLPerf and NIM) or torch_flow (a separate quantize kernel per"
        " layer, as aiconfigurator measured TensorRT-LLM's PyTorch flow). Sets the GEMM"
        " ceiling and per-kernel time of the analytic capacity and of the serving simulator's"
        " steps (docs/performance-model.md, 'Serving runtime'). Default: fused with backend"
        " model; torch_flow with backend measured (aiconfigurator's composition of its"
        " torch_flow measurements, which the request level's steps then match). Not for"
        " bf16, which runs the same in both",
    )
    serving: ServingEngineConfig = Field(default_factory=ServingEngineConfig)
    sessions: AgenticSessions | None = None
    prefill: Literal["auto", "colocated", "companion", "hybrid"] = Field(
        default="auto",
        description="where prompts are prefilled: colocated (chunked prefill on the replica's"
        " GPUs), companion (disaggregated onto the rack's prefill accelerators, e.g. Rubin CPX,"
        " with the KV cache moved over the fabric; GPUs the parts cannot feed stay idle),"
        " hybrid (the companion parts, and the GPUs for the prompts they cannot reach:"
        " co-located replicas or GPU prefill instances, whichever serves more), auto (the one"
        " of the three with the most capacity at the targets where the hardware's catalog"
        " entry has a companion part and the backend is the model, else colocated;"
        " docs/serving.md)",
    )

    @property
    def serving_runtime(self) -> Literal["fused", "torch_flow"]:
        """The runtime in force: as given, else by backend (see ``runtime``)."""
        if self.runtime is not None:
            return self.runtime
        return "torch_flow" if self.backend == "measured" else "fused"

    @model_validator(mode="after")
    def _sessions(self) -> InferenceService:
        if self.runtime == "fused" and self.backend == "measured":
            raise ValueError(
                "runtime: fused with backend measured: the measured capacity is"
                " aiconfigurator's composition of its torch_flow measurements, and the request"
                " level's steps follow it; drop runtime (or use backend model for fused)"
            )
        if self.runtime is not None and self.precision == Precision.BF16:
            raise ValueError(
                f"runtime: {self.runtime} with precision bf16 changes nothing (BF16 layers have"
                " no quantize step to fuse); drop runtime"
            )
        if self.reasoning_growth is not None and self.reasoning_tokens == 0:
            raise ValueError(
                "reasoning_growth multiplies reasoning_tokens, which is 0: it would change"
                " nothing (give reasoning_tokens)"
            )
        s = self.sessions
        if s is None:
            return self
        if self.prompt_cache_hit > 0:
            raise ValueError(
                "give either prompt_cache_hit or sessions, not both: with sessions the hit rate"
                " follows from the session structure (cache_ttl, tool_latency)"
            )
        if s.shared_prefix_tokens >= self.input_tokens:
            raise ValueError(
                f"sessions.shared_prefix_tokens ({s.shared_prefix_tokens}) must be below"
                f" input_tokens ({self.input_tokens}), the first call's mean prompt"
            )
        return self


class WorkloadsConfig(_Model):
    pretraining: tuple[PretrainingJob, ...] = Field(default=(), max_length=1000)
    posttraining: tuple[PosttrainingStream, ...] = Field(default=(), max_length=1000)
    inference: tuple[InferenceService, ...] = Field(default=(), max_length=1000)

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
    name: Name
    preemptible: bool = False


class SchedulerConfig(_Model):
    """Priority gang scheduling. ``classes`` lists priority classes, highest first; a job may
    preempt running work of a *lower*, preemptible class to start or to replace a failed
    domain. Inference services are never preempted (their class sets only whom they may
    preempt). ``policy`` names the scheduling policy in the scheduler registry."""

    policy: Literal["priority_gang"] = "priority_gang"
    classes: tuple[PriorityClass, ...] = Field(
        max_length=100,
        default=(
            PriorityClass(name="inference"),
            PriorityClass(name="pretraining"),
            PriorityClass(name="posttraining", preemptible=True),
        ),
    )
    spare_domains: Annotated[Count, within(0, MAX_DOMAINS)] = Field(
        default=0,
        description="domains per hardware type held back as hot spares for replacement",
    )
    hardware_policy: Literal["fastest_completion", "lowest_cost", "first_fit"] = Field(
        default="fastest_completion",
        description="where work that names no hardware runs on a site of several types:"
        " fastest_completion (the type that finishes it soonest among those that can start it"
        " now), lowest_cost (the cheapest run: time x domains x capital and energy per"
        " domain-second), first_fit (the halls' order); sim/engine/scheduler.py",
    )

    @field_validator("classes")
    @classmethod
    def _unique(cls, v: tuple[PriorityClass, ...]) -> tuple[PriorityClass, ...]:
        names = [c.name for c in v]
        if len(set(names)) != len(names) or not names:
            raise ValueError("classes must be a non-empty list of unique names")
        return v


# --------------------------------------------------------------------------- reliability


#: What a failure takes out: ``gpu`` and ``host`` faults take their compute tray on a rack-scale
#: domain (the tray holds the GPUs, CPUs, NICs and SSD; hardware.md §3) and the whole server on
#: an 8-GPU node; ``compute_tray`` is the tray itself; ``node`` is the whole domain (rack or
#: server); ``nvlink_switch_tray`` takes the whole rack (its NVLink domain is cut; assumption);
#: ``network_link`` and ``software`` take nothing: the job on the domain restarts.
FailureScope = Literal[
    "gpu", "host", "compute_tray", "node", "nvlink_switch_tray", "network_link", "software"
]
_LOST_NOTHING = ("network_link", "software")

_RATE = within(0, 10_000, "", "10,000 per 1,000 node-days is every node failing ten times a day")
_DETECT = within(0, DAY_S, "s", "a failure unnoticed for more than a day is a typo")
_LLAMA3 = "Llama 3 405B, 54 days on 2,048 nodes, Table 5 (validation.md §B.1): {n} of 419"


def _llama3(
    name: str, count: int, scope: str, action: str, detection: str, why: str
) -> FailureCause:
    """One row of Llama 3's Table 5 as a cause: ``count`` interruptions over 2,048 nodes x 54
    days is ``count / 110.592`` per 1,000 node-days."""
    return FailureCause.model_validate(
        {
            "name": name,
            "rate_per_1000_node_days": count / (2048 * 54 / 1000),
            "scope": scope,
            "action": action,
            "detection": detection,
            "source": _LLAMA3.format(n=count) + "; " + why,
        }
    )


class FailureCause(_Model):
    """One cause of failure: its rate, what it takes out, how long until it is noticed, and
    whether the hardware needs a repair or the job only a restart.

    The rate is per 1,000 node-days of ``reliability.node_gpus`` GPUs (a domain of G GPUs fails
    at ``rate x G / node_gpus``) or, instead, a per-GPU mean time between failures
    (``gpu_mtbf``: a domain of G GPUs fails at ``G / gpu_mtbf``)."""

    name: Name
    rate_per_1000_node_days: Annotated[Plain, _RATE] | None = None
    gpu_mtbf_s: Duration | None = Field(default=None, alias="gpu_mtbf")
    scope: FailureScope
    action: Literal["repair", "restart"] = Field(
        default="repair",
        description="repair: the hardware leaves service for repair_time; restart: nothing is"
        " lost, the job on it restarts",
    )
    detection_s: Annotated[Seconds, _DETECT] = Field(
        default=30.0,
        alias="detection",
        description="from the fault until the job is stopped: it computes nothing useful"
        " meanwhile (fast detection 30 s, NCCL's default timeout 600 s; hardware.md §9)",
    )
    repair_time: DurationDist | None = Field(
        default=None, description="time out of service; default: reliability.repair_time"
    )
    source: str = Field(default="", max_length=1000, description="where the rate comes from")

    @model_validator(mode="after")
    def _check(self) -> FailureCause:
        if (self.rate_per_1000_node_days is None) == (self.gpu_mtbf_s is None):
            raise ValueError("give exactly one of rate_per_1000_node_days and gpu_mtbf")
        if self.scope in _LOST_NOTHING and self.action != "restart":
            raise ValueError(f"a {self.scope} failure takes no domain out: its action is restart")
        if self.action == "restart" and self.repair_time is not None:
            raise ValueError("a restart-only cause has no repair_time (nothing is repaired)")
        return self


_HW = "hardware: the node is drained and the part swapped"
_SW = "no hardware lost: the job restarts"
#: Llama 3's 419 unexpected interruptions (validation.md §B.1), by component, as causes.
LLAMA3_CAUSES: tuple[FailureCause, ...] = (
    _llama3("faulty_gpu", 148, "gpu", "repair", "30 s", _HW),
    _llama3("gpu_hbm3", 72, "gpu", "repair", "30 s", _HW),
    _llama3("software_bug", 54, "software", "restart", "30 s", _SW),
    _llama3(
        "network_switch_cable",
        35,
        "network_link",
        "restart",
        "30 s",
        "the job restarts and routes around the link; the link's repair does not hold the domain",
    ),
    _llama3("host_maintenance", 32, "host", "repair", "30 s", "unplanned host maintenance"),
    _llama3("gpu_sram", 19, "gpu", "repair", "30 s", _HW),
    _llama3("gpu_system_processor", 17, "gpu", "repair", "30 s", _HW),
    _llama3("nic", 7, "host", "repair", "30 s", _HW),
    _llama3(
        "nccl_watchdog_timeout",
        7,
        "software",
        "restart",
        "600 s",
        "unknown cause, noticed at NCCL's default 600 s timeout",
    ),
    _llama3("silent_data_corruption", 6, "gpu", "repair", "30 s", _HW),
    _llama3("gpu_thermal_interface_sensor", 6, "gpu", "repair", "30 s", _HW),
    _llama3("ssd", 3, "host", "repair", "30 s", _HW),
    _llama3("power_supply", 3, "host", "repair", "30 s", _HW),
    _llama3("server_chassis", 2, "node", "repair", "30 s", _HW),
    _llama3("io_expansion_board", 2, "host", "repair", "30 s", _HW),
    _llama3("dependency", 2, "software", "restart", "30 s", _SW),
    _llama3("cpu", 2, "host", "repair", "30 s", _HW),
    _llama3("system_memory", 2, "host", "repair", "30 s", _HW),
)


class Maintenance(_Model):
    """Planned maintenance (firmware, kernel upgrades), its own process: a domain is drained
    for ``duration``; a job on it writes a checkpoint first (it loses no work) and restarts."""

    rate_per_1000_node_days: Annotated[Plain, _RATE] = Field(
        default=47 / (2048 * 54 / 1000),
        description="Llama 3: 47 planned interruptions in 54 days on 2,048 nodes, 'at least"
        " one training interruption daily' (validation.md §B.1) = 0.425",
    )
    duration: DurationDist = Field(
        default=FixedDuration.model_validate({"distribution": "fixed", "value": "1 h"}),
        description="drain, upgrade and reboot (planning assumption)",
    )


class CorrelatedEvent(_Model):
    """An event that takes many domains of one hall at once (a hall's power loss, a cooling
    failure): it strikes each hall at ``rate`` and fails ``share`` of the hall's domains
    (drawn at random) for ``repair_time``. No default event: there is no sourced rate."""

    name: Name
    rate_per_hall_s: Annotated[
        PerSecond,
        within(0, 1e-3, "1/s", "more than one a quarter-hour per hall is a typo", lo_open=True),
    ] = Field(alias="rate", description="events per hall, e.g. '0.5 / yr'")
    share: Annotated[Plain, within(0, 1, lo_open=True)] = Field(
        default=1.0, description="share of the hall's domains it takes"
    )
    repair_time: DurationDist


class ReliabilityConfig(_Model):
    """Failures by cause, planned maintenance, correlated events, recovery (docs/reliability.md).

    Each cause is its own Poisson rate per domain; the engine superposes them all into one
    fleet-wide stream (:mod:`sim.engine.reliability`). The default causes are Llama 3's
    interruption mix (validation.md §B.1: 419 in 54 days on 2,048 H100 nodes, 3.79 per 1,000
    node-days); ``failure_rate_per_1000_node_days``, when given, scales the causes' rates so
    that they sum to it (Meta RSC A100 clusters 2.34 and 6.50, §B.2; hardware.md §9 4.0).
    Repairs take the hardware out for a lognormal time whose 3 h mean is a technician swap
    (hardware.md §7, [S83], weak). A job hit by a failure loses the work since its last
    checkpoint, computes nothing until the failure is detected, and pays ``restart_overhead``
    (5-20 min measured at Meta, validation.md §B.2).
    """

    enabled: bool = True
    causes: tuple[FailureCause, ...] = Field(default=LLAMA3_CAUSES, max_length=100)
    failure_rate_per_1000_node_days: Annotated[Plain, _RATE] | None = Field(
        default=None,
        description="total rate of the causes; unset: the sum of their own rates",
    )
    node_gpus: Annotated[Count, within(1, 1024, "", "nodes hold 4-8 GPUs; 1024 is generous")] = 8
    repair_time: DurationDist = Field(
        default=LognormalDuration.model_validate(
            {"distribution": "lognormal", "mean": "3 h", "cv": 1.0}
        )
    )
    restart_overhead_s: Annotated[
        Seconds, within(0, 30 * DAY_S, "s", "a restart longer than a month is a typo")
    ] = Field(default=600.0, alias="restart_overhead")
    maintenance: Maintenance | None = Field(
        default=Maintenance(), description="planned maintenance; null: none"
    )
    correlated: tuple[CorrelatedEvent, ...] = Field(default=(), max_length=100)
    tray_failure: Literal["rack_down", "spare_tray"] = Field(
        default="rack_down",
        description="what a failed compute tray does to its rack-scale domain: rack_down, the"
        " rack leaves service until the tray is repaired (a job laid out over all 72 GPUs of an"
        " NVL72 cannot run on 68); spare_tray, each rack keeps spare_trays_per_rack idle trays"
        " and swaps one in (the job restarts, the rack stays)",
    )
    spare_trays_per_rack: Annotated[Count, within(0, 64)] = Field(
        default=0, description="idle trays per rack under tray_failure: spare_tray"
    )
    recovery: Literal["requeue", "wait_for_repair", "take_spare", "shrink_elastic"] = Field(
        default="wait_for_repair",
        description="a job that lost a domain: a free domain first, else (take_spare) a hot"
        " spare of its hall (hot_spares), else by preempting lower work; when none is to be"
        " had, wait_for_repair and take_spare keep its other domains and claim the first ones"
        " freed or repaired, requeue gives all back and waits in the queue for a whole gang,"
        " shrink_elastic restarts a pre-training run on the whole data-parallel replicas its"
        " other domains hold (same global batch, lower rate) and grows back to full size when"
        " it has claimed what it lost",
    )
    elastic_min_share: Fraction = Field(
        default=0.5,
        description="shrink_elastic: the fewest data-parallel replicas a run continues on, as a"
        " share of its full DP degree; below it the run waits for repair (planning assumption)",
    )
    hot_spares: (
        Annotated[Count, within(0, MAX_DOMAINS)]
        | dict[Name, Annotated[Count, within(0, MAX_DOMAINS)]]
    ) = Field(
        default=0,
        description="idle domains each hall holds apart for replacements under recovery:"
        " take_spare (a number for every hall, or {hall: number}); no new job or service runs"
        " on them; a repaired domain refills its hall's pool first",
    )
    elastic_batch: Literal["global", "per_replica"] = Field(
        default="global",
        description="shrink_elastic: global keeps the global batch (more micro-batches per"
        " replica, rounded up to whole ones: the slowest replica sets the step); per_replica"
        " keeps each replica's micro-batches (the global batch shrinks with the replicas)",
    )
    waiting_warning_share: Fraction = Field(
        default=0.05,
        description="warn in the summary when a training run spends more than this share of its"
        " time since first start waiting for domains (planning threshold)",
    )

    @field_validator("recovery")
    @classmethod
    def _recovery_acts(cls, v: str, info: ValidationInfo) -> str:
        if v == "shrink_elastic" and info.data.get("enabled") is False:
            raise ValueError(
                "shrink_elastic shrinks a run that lost domains, and reliability is disabled"
                " (nothing fails): drop recovery (and elastic_*) or enable reliability"
            )
        return v

    @field_validator("elastic_min_share")
    @classmethod
    def _shrinks_at_all(cls, v: float, info: ValidationInfo) -> float:
        if v >= 1.0 and info.data.get("recovery") == "shrink_elastic":
            raise ValueError(
                "must be below 1: at 1 a run never shrinks (it always waits for repair; that is"
                " recovery: wait_for_repair)"
            )
        return v

    @model_validator(mode="after")
    def _check(self) -> ReliabilityConfig:
        names = [c.name for c in self.causes] + [c.name for c in self.correlated]
        dup = sorted({n for n in names if names.count(n) > 1} | ({"maintenance"} & set(names)))
        if dup:
            raise ValueError(f"failure cause names must be unique; repeated: {', '.join(dup)}")
        if not self.causes and self.failure_rate_per_1000_node_days:
            raise ValueError(
                "failure_rate_per_1000_node_days scales the causes' rates, and causes is empty:"
                " give causes, or set the rate to 0 (or enabled: false) for no failures"
            )
        if self.tray_failure == "spare_tray" and self.spare_trays_per_rack == 0:
            raise ValueError("tray_failure: spare_tray needs spare_trays_per_rack of 1 or more")
        if self.tray_failure == "rack_down" and self.spare_trays_per_rack:
            raise ValueError("spare_trays_per_rack needs tray_failure: spare_tray")
        spares = (
            self.hot_spares if isinstance(self.hot_spares, int) else sum(self.hot_spares.values())
        )
        if self.recovery == "take_spare" and not spares:
            raise ValueError("recovery: take_spare needs hot_spares (a number of 1 or more)")
        if spares and self.recovery != "take_spare":
            raise ValueError(
                "hot_spares are taken only under recovery: take_spare (with "
                f"{self.recovery} they would sit idle)"
            )
        if spares and not self.enabled:
            raise ValueError(
                "hot_spares replace failed domains, and reliability is disabled (nothing"
                " fails): drop hot_spares"
            )
        # (compared with the default, not "was it set": a run folder's resolved scenario.yaml
        # writes every default out, and must run again as it is)
        fields = type(self).model_fields
        for key in ("elastic_min_share", "elastic_batch"):
            if getattr(self, key) != fields[key].default and self.recovery != "shrink_elastic":
                raise ValueError(
                    f"{key} applies under recovery: shrink_elastic only (with"
                    f" {self.recovery} it would change nothing)"
                )
        return self


# --------------------------------------------------------------------------- costs


class FacilitySplit(_Model):
    """Shares of the facility's capital cost (shell and M&E per W) by component, each with its
    own life. Cortex Construct's breakdowns of data-centre construction cost: electrical 35-45%,
    mechanical/cooling 20-25%, structure, envelope, site, fire, controls and cabling the rest
    (weak, a builder's guide): defaults the middles, the shell taking the remainder."""

    shell: Fraction = 0.375
    electrical: Fraction = 0.40
    mechanical: Fraction = 0.225

    @model_validator(mode="after")
    def _sums_to_one(self) -> FacilitySplit:
        total = self.shell + self.electrical + self.mechanical
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"shell + electrical + mechanical must be 1, got {total:g}")
        return self


Usd = Annotated[float, quantity("USD"), within(0, 1e13, "USD", "$10T is ten GW campuses")]


class CostsConfig(_Model):
    """Capital, its cost, and every operating cost (docs/costs.md has the sources and the
    arithmetic). Capital is paid back as an annuity at ``wacc`` over each asset class's life,
    so it accrues whether or not the hardware is busy."""

    energy_price_usd_per_mwh: EnergyPrice = Field(
        default=80.0,
        alias="energy_price",
        description="price of grid energy, setting the energy cost of each hour: a constant (US"
        " industrial average 2023 $80.6/MWh [S68]), a time-of-day profile {kind: profile, base,"
        " peak, peak_hours, weekend} or an hourly CSV {kind: csv, path} (sim.config.grid)",
    )
    carbon_intensity_g_per_kwh: CarbonIntensity = Field(
        default="us",
        alias="carbon_intensity",
        description="life-cycle gCO2eq per kWh of grid energy, setting the emissions of each"
        " hour: a constant, a grid's 2024 annual average by name (default 'us', 409 g/kWh;"
        " ercot 377, pjm 403, caiso 229, sweden 23, norway 33; facility.md §6.3 [F65]), a"
        " profile {kind: profile, base, peak, peak_hours} or an hourly CSV {kind: csv, path}",
    )
    prices: dict[Name, Usd] = Field(
        default_factory=dict,
        max_length=1000,
        description="price of one domain of a hardware generation (catalog or inline name), or"
        " of one switch (switch catalog name), overriding the catalog: {gb200_nvl72: $3.9M,"
        " quantum2_qm9700: $30k}",
    )
    wacc: Annotated[Plain, within(0, 0.5, "", "50% a year is no financing")] = Field(
        default=0.10,
        description="cost of capital a year: capital is repaid as an annuity at this rate over"
        " each asset's life (0: straight-line). Bank loans 5-10%, GPU-backed private credit"
        " 10-17% (GPU Loans, Dec 2025, weak); default 10%, the boundary",
    )
    it_amortization_s: Duration = Field(
        default=5 * YEAR_S,
        alias="it_amortization",
        description="life of compute, network and storage hardware: 5 years (Epoch AI's 1-GW"
        " model, May 2026; hyperscalers book 5-6)",
    )
    facility_capex_usd_per_w: Annotated[
        UsdPerWatt, within(0, 1000, "", "100 times the US average $11.7/W")
    ] = Field(
        default=11.7,
        alias="facility_capex",
        description="shell and M&E per W of IT capacity: US average $11.7M/MW [S66]",
    )
    facility_split: FacilitySplit = Field(
        default_factory=FacilitySplit,
        description="shares of facility_capex: shell, electrical, mechanical",
    )
    facility_amortization_s: Duration = Field(
        default=14 * YEAR_S,
        alias="facility_amortization",
        description="life of the electrical and mechanical plant: 14 years (Epoch AI's facility"
        " life, May 2026)",
    )
    shell_amortization_s: Duration = Field(
        default=39 * YEAR_S,
        alias="shell_amortization",
        description="life of the building shell: 39 years (US recovery period of nonresidential"
        " real property, IRS Publication 946)",
    )
    network_capex_fraction: Fraction = Field(
        default=0.13 / 0.39,
        description="networking capital as a share of compute capital where no fabric is"
        " modelled (network.kind non_blocking): Bernstein 13% vs 39% [S63]; a switched fabric"
        " is priced from its switch and transceiver count instead",
    )
    storage_capex_fraction: Fraction = Field(
        default=0.014 / 0.39,
        description="storage capital as a share of compute capital: Bernstein 1.4% vs 39% [S63]",
    )
    maintenance_per_year: Fraction = Field(
        default=0.008,
        description="maintenance and other non-energy operating cost a year, as a share of"
        " capital: Epoch AI's 1-GW GB200 site has $0.9B/yr of opex, $0.6B of it energy, on"
        " $38B of capex: (0.9 - 0.6) / 38 = 0.8% (it includes staff: add fixed_opex only for"
        " costs beyond it)",
    )
    fixed_opex_usd_per_w_year: Annotated[
        float, quantity("USD/W/year"), within(0, 100, "USD/W/year", "$100M/MW/year is absurd")
    ] = Field(
        default=0.0,
        alias="fixed_opex",
        description="staff and other fixed cost per W of IT capacity a year beyond"
        " maintenance_per_year (e.g. '$50k/MW/year'); default none (Epoch's staff costs are in"
        " maintenance_per_year)",
    )
    repair_usd_per_failure: Usd = Field(
        default=0.0,
        alias="repair_per_failure",
        description="parts and labour of one hardware failure (a domain or a compute tray; not"
        " planned maintenance) beyond maintenance_per_year (e.g. '$20k'); default none: parts"
        " under warranty, labour in maintenance_per_year",
    )
    software_usd_per_gpu_year: Annotated[
        float, quantity("USD/year"), within(0, 1e6, "USD/year", "$1M per GPU a year is absurd")
    ] = Field(
        default=0.0,
        alias="software_per_gpu_year",
        description="software licences per installed GPU a year, e.g. '$4500/year': NVIDIA AI"
        " Enterprise is $4,500 per GPU a year (NVIDIA, Q3 FY2024 earnings call; Enterprise"
        " Licensing Guide), five years of it bundled with H100; default none: hyperscale"
        " operators run their own stack",
    )


class CommitmentConfig(_Model):
    """The commitment question (``aifactory commitment``, and a section of the run's report):
    what a fixed budget spent over a term buys on each generation at this scenario's site (its
    grid, PUE, energy price and costs): GPUs, GPU-hours, tokens served, frontier training runs
    and the power it needs. The budget pays for the whole cost of ownership over the term
    (capital annuities, energy and operations), see docs/costs.md."""

    budget_usd: Annotated[
        float,
        quantity("USD"),
        within(
            0, 1e13, "USD", "a commitment buys something; $10T is ten GW campuses", lo_open=True
        ),
    ] = Field(alias="budget", description="the commitment, e.g. '$30B'")
    term_s: Duration = Field(
        default=5 * YEAR_S, alias="term", description="over how long it is spent, e.g. '5 years'"
    )
    generations: tuple[Name, ...] = Field(
        default=(
            "h100_sxm",
            "gb200_nvl72",
            "gb300_nvl72",
            "vr200_nvl144",
            "rubin_ultra_nvl576",
        ),
        min_length=1,
        max_length=50,
        description="hardware generations to compare (catalog or inline names); shown in order"
        " of release",
    )
    utilization: Fraction = Field(
        default=0.8,
        description="share of the GPU-hours that do useful work (an assumption: take it from"
        " a run's utilization x goodput); scales tokens served and training runs",
    )
    service: Name | None = Field(
        default=None,
        description="the inference service whose tokens are counted (default: the first)",
    )
    training_run: Name | None = Field(
        default=None,
        description="the pre-training job counted as one frontier run (default: the first)",
    )


# --------------------------------------------------------------------------- scenario


class Scenario(_Model):
    """A whole scenario. ``hardware`` holds inline catalog entries (same fields as the catalog)."""

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=_NAME_PATTERN)
    description: str = Field(default="", max_length=10_000)
    run: RunConfig = RunConfig()
    facility: FacilityConfig
    hardware: dict[Name, dict[str, Any]] = Field(default_factory=dict, max_length=100)
    network: NetworkConfig = NetworkConfig()
    workloads: WorkloadsConfig = WorkloadsConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    reliability: ReliabilityConfig = ReliabilityConfig()
    costs: CostsConfig = CostsConfig()
    commitment: CommitmentConfig | None = Field(
        default=None,
        description="what a fixed budget buys on each generation at this site (docs/costs.md)",
    )

    # Cross-references (hardware, models, priority classes) are checked in sim.build, where
    # each problem is reported with its own key path and line.
