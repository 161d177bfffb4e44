"""The power accounting keeps each hall's IT power and each service's load per hall between
reads (:meth:`Power.fresh_it`): every way the fleet changes a service's domains, and every
change of its load or of a hall's other parts, must make the next read equal a fresh sum, and
tell the controller which halls changed (:attr:`Power.touched`)."""

from __future__ import annotations

import numpy as np

from sim.engine.fleet import Fleet
from sim.engine.power import HallPower, Power
from sim.engine.workloads import Service
from sim.record import Recorder

# one hardware type, domains 0-3 in hall 0, 4-7 in hall 1, 8-11 in hall 2
HW = np.zeros(12, dtype=np.int16)
HALL = np.repeat(np.arange(3, dtype=np.int16), 4)


def setup() -> tuple[Fleet, Power, list[Service]]:
    rec = Recorder()
    halls = [HallPower(f"h{h}", 0, 4, 1000.0, 0.2, 0.8, 0.6, 0.1, 50.0, 1e6) for h in range(3)]
    power = Power(halls, 1.2, rec)
    fleet = Fleet(HW, HALL, (12,), 3, rec, power, 1)
    services = []
    for name in ("a", "b"):
        svc = Service(
            name,
            0,
            0,
            False,
            fleet.slot,
            12,
            3,
            capacity_per_domain=1.0,
            max_load=1.0,
            min_domains=0,
            interval_s=60.0,
            demand=np.zeros(2),
            tokens_per_request=np.ones(2),
            replicas_per_domain=1.0,
            prompt_cache_hit=0.0,
            client_timeout_s=1.0,
        )
        svc.index = fleet.register(svc)
        power.add_service(svc)
        services.append(svc)
    return fleet, power, services


def fresh_sum(power: Power, h: int) -> float:
    """Hall ``h``'s IT power summed from the parts now (the rule of :mod:`sim.engine.power`)."""
    w = power.hall_w[h]
    for svc in power.services:
        if svc.held.size and svc.hall_n[h]:
            w += svc.load_w * svc.hall_n[h] / svc.held.size
    return w


def test_every_change_of_a_service_or_a_hall_is_seen_by_the_next_read() -> None:
    fleet, power, (a, b) = setup()
    power.set_service_load(a, 300.0, 0.0)
    power.set_service_load(b, 70.0, 0.0)
    fleet.take(a, 2, 0.5)
    # nothing read yet, so nothing was kept: the first read sums everything, touches every hall
    assert [power.hall_it_w(h) for h in range(3)] == [fresh_sum(power, h) for h in range(3)]
    assert power.touched == {0, 1, 2}
    # each step changes a holding, a load or a hall's other parts; the reads before it filled
    # the caches, so a change that is not told leaves a read different from the fresh sum
    steps = [
        lambda: fleet.take(a, 4, 1.0),  # halls 0 and 1
        lambda: fleet.take(b, 3, 2.0),  # halls 1 and 2
        lambda: fleet.take1(a, 3.0),  # hall 2: a's share changes in every hall
        lambda: fleet.give_back(a, 2, 4.0),
        lambda: fleet.fail(int(a.held.items[0]), 5.0),  # a loses a domain of hall 0
        lambda: fleet.fail(11, 6.0),  # a free domain of hall 2: its idle power changes
        lambda: fleet.repair(11, 7.0),
        lambda: power.set_service_load(b, 95.0, 8.0),
        lambda: (power.batch(), power.service_load_in_batch(a, 250.0), power.flush(9.0)),
        lambda: fleet.give_back(b, b.held.size, 10.0),  # b holds nothing any more
    ]
    for step in steps:
        before = [power.hall_it_w(h) for h in range(3)]
        power.touched.clear()
        step()
        after = [fresh_sum(power, h) for h in range(3)]
        assert [power.hall_it_w(h) for h in range(3)] == after
        changed = {h for h in range(3) if after[h] != before[h]}
        assert changed, "each step changes some hall's IT power"
        assert changed <= power.touched, "a hall whose IT power changed is not marked"
    assert a.load_w == 250.0 and a.held.size == 4
