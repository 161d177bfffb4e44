"""Scenario key ``facility.power_control``: what the site does when its power would exceed a cap.

Caps: the grid import (``facility.grid_power``, lowered by demand-response events), each hall's
IT power capacity, and each hall's heat-rejection capacity (which derates in the heat under
``pue: weather``). When demand would exceed one, the named policy acts within ``reaction_time``
(:mod:`sim.engine.control` documents the mechanics):

* ``throttle``: lower the clock of running work by priority class, lowest first (DVFS,
  facility.md §3.2: power above idle ~ clock³, throughput of a step whose compute-bound share is
  c: ``1 / (c / clock + 1 - c)``), down to ``min_clock``, then the next class up: a class's
  training jobs first (c = ``compute_bound_share``), then its inference services (c =
  ``serving_compute_bound_share``: decode is memory-bound, so serving loses little). Serving is
  the highest class by default, so it is slowed last (batch work gives way first: Google
  Thunderbolt, facility.md §4 [F43]);
* ``pause``: stop the lowest class's running training jobs (they keep their domains and their
  unsaved work, and draw idle power) until there is room again;
* ``preempt``: preempt the lowest preemptible class's running jobs (they lose the work since
  their last checkpoint and go back to the queue);
* ``refuse``: start no new work while a cap is exceeded (running work is left alone: it can keep
  the site above a cap; the summary reports for how long).

A list of policies is an escalation ladder, e.g. ``[throttle, pause]``: for each class, lowest
first, the controller applies the first policy and, while the excess remains, the next one, before
it touches the next class up. Throttling alone cannot always hold a cap: at ``min_clock`` a
class still draws ``min_clock³`` of its power above idle, so a deep excess (a hall's cooling
derated in a heat wave) needs the pause behind it. Every policy already refuses new work
while a cap is exceeded, so ``refuse`` stands alone.

Released headroom lifts throttles (highest class first), resumes paused jobs and ends refusals.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from sim.config.quantities import Plain, Seconds, Watts, within
from sim.units import quantity

__all__ = ["POLICIES", "BatteryConfig", "DeferConfig", "PowerControlConfig"]

POLICIES = ("throttle", "pause", "preempt", "refuse")

PolicyName = Literal["throttle", "pause", "preempt", "refuse"]


def _ladder(value: Any) -> Any:
    """One policy name or a list of them: always a tuple (an escalation ladder)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        if not value:
            raise ValueError("give at least one policy, e.g. [throttle, pause]")
        if not all(isinstance(v, str) for v in value):
            return tuple(value)  # the schema names the item that is not a policy name
        if len(set(value)) != len(value):
            raise ValueError(f"a policy appears twice in {value}: each step is taken once")
        if "refuse" in value and len(value) > 1:
            raise ValueError(
                "'refuse' stands alone: every other policy already refuses new work while a"
                " cap is exceeded"
            )
        return tuple(value)
    return value


class BatteryConfig(BaseModel):
    """On-site battery storage between the grid and the site: it discharges to keep the grid
    import under the cap and recharges from headroom (:mod:`sim.engine.battery`). xAI's Colossus 1
    pairs 150 MW of grid with 150 MW of Tesla Megapacks of ~3.9 MWh each (facility.md §5
    [F54]); give ``power`` and ``energy`` for your site."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    power_w: Annotated[Watts, within(0, 100e9, "W", "100 GW", lo_open=True)] = Field(
        alias="power", description="largest charge or discharge power"
    )
    energy_wh: Annotated[
        float,
        quantity("Wh", require_unit=True),
        within(0, 1e12, "Wh", "1 TWh of storage", lo_open=True),
    ] = Field(alias="energy", description="usable energy, e.g. '600 MWh'")
    efficiency: Annotated[Plain, within(0.5, 1, "", "round trip", lo_open=False)] = Field(
        default=0.9,
        description="round-trip efficiency: energy stored per energy drawn to charge"
        " (utility lithium-ion ~0.85-0.9; assumption)",
    )
    initial_charge: Annotated[Plain, within(0, 1)] = Field(
        default=1.0, description="state of charge at the start, as a share (assumption: full)"
    )


class DeferConfig(BaseModel):
    """Deferrable work follows cheap or clean hours: a job of one of ``classes`` starts only in
    an hour whose energy price (or carbon intensity) is at or below the ``quantile`` of that
    signal over the run, or once it has waited ``max_wait`` (so nothing starves). Running jobs
    are not stopped. Moving flexible load to off-peak hours is how large loads take part in
    the grid (facility.md §6.1: ERCOT 4CP, PJM demand response [F60][F61]); the quantile and the
    wait are planning choices (assumption)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    classes: tuple[str, ...] = Field(
        default=("posttraining",), min_length=1, description="priority classes that may wait"
    )
    signal: Literal["price", "carbon"] = "price"
    quantile: Annotated[Plain, within(0, 1, "", "a share of the run's hours", lo_open=True)] = 0.5
    max_wait_s: Annotated[
        Seconds, within(0, 7 * 86_400.0, "s", "deferring work a week is cancelling it")
    ] = Field(default=12 * 3600.0, alias="max_wait")


class PowerControlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def policy_label(self) -> str:
        """The ladder as users wrote it: ``throttle`` or ``throttle, pause``."""
        return ", ".join(self.policy)

    policy: Annotated[tuple[PolicyName, ...], BeforeValidator(_ladder)] = Field(
        default=("throttle",),
        description="what acts when a cap would be exceeded: a name, or a list that escalates"
        " per class (see the module docstring)",
    )
    reaction_time_s: Annotated[
        Seconds, within(0, 3600, "s", "a site that takes over an hour to react has no control")
    ] = Field(
        default=30.0,
        alias="reaction_time",
        description="delay between a cap being exceeded and the policy acting: 96 Blackwell"
        " Ultra GPUs shed 30-35% within 30 s of a grid signal (facility.md §6.1 [F47], weak)",
    )
    release_margin: Annotated[
        Plain, within(0, 0.5, "", "a margin above half the cap leaves the site idle")
    ] = Field(
        default=0.02,
        description="headroom (share of the cap) kept when lifting a throttle or resuming work,"
        " so the controller does not flap at the cap (assumption)",
    )
    min_clock: Annotated[
        Plain,
        within(0.1, 1, "", "below a tenth of the clock a GPU is better paused", lo_open=False),
    ] = Field(
        default=0.5,
        description="lowest clock the throttle sets, as a share of the full clock (facility.md"
        " §3.2 tabulates caps down to 50%; assumption)",
    )
    defer: DeferConfig | None = Field(
        default=None,
        description="deferrable classes start in cheap or clean hours (DeferConfig); default:"
        " nothing waits",
    )
    battery: BatteryConfig | None = Field(
        default=None,
        description="on-site battery storage that rides through peaks above the grid cap"
        " (BatteryConfig); default: none",
    )
    compute_bound_share: Annotated[Plain, within(0, 1)] = Field(
        default=0.7,
        description="share of a training step that is compute-bound and slows with the clock"
        " (facility.md §3.2 [F34]: 0.7 for a training step)",
    )
    serving_compute_bound_share: Annotated[Plain, within(0, 1)] = Field(
        default=0.2,
        description="share of a serving iteration that is compute-bound and slows with the"
        " clock (facility.md §3.2: 0.2 for memory-bound decode, 0.9 for prefill; continuous"
        " batching is decode-dominated, so decode's share; raise it for prompt-heavy services)",
    )
