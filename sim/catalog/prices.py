"""The capital price of a scale-up domain: the catalog's sourced figure, a scenario's override, or
a stated, flagged estimate for a generation without either.

No generation's price is a list price (hardware.md §4): the catalog holds analyst and press
estimates with their sources. Rubin Ultra NVL576, Vera Rubin NVL144 CPX and the AMD platforms
have none. Rather than leave every cost of theirs unknown, :func:`domain_price` estimates one by
a single rule, and says so:

    **Estimate rule.** Price per watt of provisioned domain power of the *reference* generation
    (the sourced one released closest in time; ties go to the same vendor, then the closest domain
    size, then the newer one), times the domain's provisioned power.

Price per watt is the one scale both racks and servers share, and the generations close in time
are the ones built from the same parts (HBM, packaging, NVLink copper). Rubin Ultra NVL576 (2027,
600 kW) takes Vera Rubin NVL144's ~$35.5k/kW (2026, $7.8M, 220 kW): ~$21M per Kyber rack.
Scenario prices (``costs.prices.<hardware>``) win over both; the quote says which was used.
Units: USD, watts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from sim.catalog.hardware import HardwareSpec

__all__ = ["ESTIMATE_RULE", "PriceQuote", "domain_price"]

ESTIMATE_RULE = (
    "price per W of provisioned power of the sourced generation released closest in time"
    " (same vendor, then the closest domain size, then newer on ties) x this domain's power"
)


@dataclass(frozen=True)
class PriceQuote:
    """The price of one domain and where it comes from: ``basis`` is ``catalog``, ``scenario``
    or ``estimate``; ``note`` says how (the sources' keys, or the reference of an estimate)."""

    usd: float
    basis: str
    note: str

    @property
    def estimated(self) -> bool:
        return self.basis == "estimate"


def domain_price(
    name: str,
    spec: HardwareSpec,
    sourced: Mapping[str, HardwareSpec],
    override_usd: float | None = None,
) -> PriceQuote:
    """The price of one domain of ``spec``: ``override_usd`` (a scenario's) if given, else its
    own ``domain_price_usd``, else the estimate of :data:`ESTIMATE_RULE` over the entries of
    ``sourced`` that have a price (the packaged catalog). ValueError if none has one."""
    if override_usd is not None:
        return PriceQuote(override_usd, "scenario", f"costs.prices.{name}")
    if spec.domain_price_usd is not None:
        prov = spec.provenance.get("domain_price_usd")
        srcs = ", ".join(prov.sources) if prov is not None and prov.sources else "scenario entry"
        weak = " (weak)" if prov is not None and prov.weak else ""
        return PriceQuote(spec.domain_price_usd, "catalog", f"[{srcs}]{weak}")
    priced = [(n, s) for n, s in sourced.items() if s.domain_price_usd is not None]
    if not priced:
        raise ValueError(f"no priced generation to estimate {name}'s price from")
    year = spec.year if spec.year is not None else max(s.year or 0 for _, s in priced)

    def rank(item: tuple[str, HardwareSpec]) -> tuple[int, int, float, int]:
        _, s = item
        return (
            abs((s.year or year) - year),
            int(s.vendor != spec.vendor),
            abs(math.log(s.domain_gpus / spec.domain_gpus)),
            -(s.year or 0),
        )

    ref_name, ref = min(priced, key=rank)
    assert ref.domain_price_usd is not None
    per_w = ref.domain_price_usd / ref.domain_power_w
    usd = per_w * spec.domain_power_w
    note = (
        f"estimate: ${per_w * 1e3:,.0f}/kW of {ref_name} ({ref.year}) x"
        f" {spec.domain_power_w / 1e3:,.1f} kW; no sourced price"
    )
    return PriceQuote(usd, "estimate", note)
