"""On-site battery storage (component ``power.battery``): rides through peaks above the grid cap.

The battery sits between the grid and the site: grid import = facility power - discharge +
charge. After every change of facility power (and of the cap) it sets its flow at once, since
batteries respond within milliseconds:

* facility power above the cap: discharge the excess, up to the battery's power, while it holds
  energy;
* facility power below the cap less the controller's release margin: recharge from that headroom,
  up to its power, until full; charging draws ``1 / efficiency`` of what it stores;
* otherwise idle.

The state of charge is exact between changes (the flow is constant), and an event is scheduled
for the instant it empties or fills. What the battery cannot cover is left to the power
controller's policy (:mod:`sim.engine.control`). Grid import, discharge and charge are levels
(energy cost and emissions follow the grid import).
"""

from __future__ import annotations

import simpy

from sim.config.power_control import BatteryConfig
from sim.engine.kernel import Call, later

__all__ = ["Battery"]

_EPS_J = 1e-3  # a battery with less than a millijoule left is empty (float residue)


class Battery:
    name = "power.battery"

    def __init__(self, env: simpy.Environment, cfg: BatteryConfig) -> None:
        self.env = env
        self.power_w = cfg.power_w
        self.capacity_j = cfg.energy_wh * 3600.0
        self.efficiency = cfg.efficiency
        self.soc_j = self.capacity_j * cfg.initial_charge
        self.flow_w = 0.0  # > 0 discharging into the site, < 0 charging from the grid
        self.t = 0.0
        self.token = 0
        self.min_soc_j = self.soc_j
        self.discharged_j = 0.0
        self.charged_j = 0.0  # drawn from the grid to charge
        self.on_change: object = None  # the controller's callback after a limit is reached

    def _settle(self, now: float) -> None:
        dt = now - self.t
        if dt > 0 and self.flow_w:
            if self.flow_w > 0:
                self.soc_j -= self.flow_w * dt
                self.discharged_j += self.flow_w * dt
            else:
                self.soc_j += -self.flow_w * self.efficiency * dt
                self.charged_j += -self.flow_w * dt
            self.soc_j = min(max(self.soc_j, 0.0), self.capacity_j)
            self.min_soc_j = min(self.min_soc_j, self.soc_j)
        self.t = now

    def cover_w(self) -> float:
        """Power it can discharge now."""
        return self.power_w if self.soc_j > _EPS_J else 0.0

    def follow(self, facility_w: float, cap_w: float, charge_below_w: float) -> bool:
        """Set the flow for ``facility_w`` under ``cap_w`` (recharging only below
        ``charge_below_w``); returns whether the flow changed."""
        now = self.env.now
        self._settle(now)
        if facility_w > cap_w and self.soc_j > _EPS_J:
            flow = min(facility_w - cap_w, self.power_w)
        elif facility_w < charge_below_w and self.soc_j < self.capacity_j - _EPS_J:
            flow = -min(charge_below_w - facility_w, self.power_w)
        else:
            flow = 0.0
        if flow == self.flow_w:
            return False
        self.flow_w = flow
        self.token += 1
        if flow > 0:
            limit_s = self.soc_j / flow
        elif flow < 0:
            limit_s = (self.capacity_j - self.soc_j) / (-flow * self.efficiency)
        else:
            return True
        later(self.env, limit_s, self._limit, self.token)
        return True

    def _limit(self, call: Call) -> None:
        """The battery just emptied or filled at its current flow."""
        if call.value != self.token:
            return
        self._settle(self.env.now)
        if callable(self.on_change):
            self.on_change()

    def stats(self, end_s: float) -> dict[str, float]:
        self._settle(end_s)
        return {
            "power_mw": self.power_w / 1e6,
            "energy_mwh": self.capacity_j / 3.6e9,
            "discharged_mwh": self.discharged_j / 3.6e9,
            "charged_mwh": self.charged_j / 3.6e9,
            "min_state_of_charge_mwh": self.min_soc_j / 3.6e9,
        }
