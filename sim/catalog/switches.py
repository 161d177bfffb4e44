"""The scale-out switch catalog and the transceiver power per port end.

Data, not code: the numbers live in ``switches.yaml`` next to this module, each with its source
keys (``[N1]``, ``[S47]``; the ``sources`` table at the top of that file mirrors
``shared/reference/hardware.md`` and ``network-and-serving.md``), as in the hardware catalog.

Units are SI and in the field names: bits/s for port speeds and capacities, watts, seconds, USD
(switch and transceiver prices, weak reseller and analyst figures; ``costs.prices`` overrides a
switch's).
A switch's ``radix`` maps each port speed it offers to the number of ports at that speed
(Spectrum-4 SN5600: 64 x 800G or 128 x 400G). A GPU link is carried on ports of the fastest speed
that divides it (:meth:`SwitchSpec.port_speed_for`): a 400G NIC takes one 400G port of an SN5600
(radix 128), a 1.6T CX-9 NIC two 800G ports of a Quantum-X800 (its two planes).

:func:`default_switch` picks the NVIDIA reference fabric for a GPU's NIC rate: Quantum-2 NDR for
400G NICs (DGX H100/B200 and GB200 SuperPOD), Quantum-X800 XDR above (DGX B300-XDR SuperPOD).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.catalog.hardware import Provenance, _split_provenance
from sim.units import parse_quantity, quantity

__all__ = [
    "DEFAULT_SWITCH_BY_NIC",
    "OpticsSpec",
    "SwitchSpec",
    "default_switch",
    "optics_catalog",
    "switch_catalog",
    "switch_sources",
]

BitsPerS = Annotated[float, quantity("bit/s"), Field(gt=0)]
Watts = Annotated[float, quantity("W"), Field(ge=0)]
Seconds = Annotated[float, quantity("s"), Field(ge=0)]
Usd = Annotated[float, quantity("USD"), Field(gt=0)]

#: The default switch by the GPU's NIC rate (bits/s, up to and including): the NVIDIA reference
#: fabric for that NIC. 400G ConnectX-7: Quantum-2 QM9700 in the DGX H100 [S24], B200 [N1] and
#: GB200 [N4] SuperPODs; 800G ConnectX-8: Quantum-X800 Q3400 in the DGX B300-XDR SuperPOD [N3];
#: faster NICs (1.6T CX-9, two 800G chips per GPU) take several Q3400 ports, one per plane.
DEFAULT_SWITCH_BY_NIC: tuple[tuple[float, str], ...] = (
    (400e9, "quantum2_qm9700"),
    (float("inf"), "quantum_x800_q3400"),
)


class SwitchSpec(BaseModel):
    """One switch model: ports by speed, power without transceivers, latency of one hop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    display_name: str
    technology: Literal["infiniband", "ethernet"]
    status: Literal["shipping", "announced"]
    radix: dict[float, int] = Field(description="ports at each port speed (bits/s)")
    capacity_bits_per_s: BitsPerS = Field(description="vendor headline switching capacity")
    power_w: Watts = Field(description="the switch without its transceivers")
    hop_latency_s: Seconds = Field(description="port-to-port latency of one traversal")
    load_balance_efficiency: float = Field(
        gt=0,
        le=1,
        description="fraction of line rate that traffic crossing spine layers achieves at scale",
    )
    price_usd: Usd | None = Field(default=None, description="capital cost of one switch")
    provenance: dict[str, Provenance] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _speeds(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("radix"), dict):
            radix = {
                parse_quantity(k, "bit/s", require_unit=True): v for k, v in data["radix"].items()
            }
            data = {**data, "radix": radix}
        return data

    @model_validator(mode="after")
    def _check(self) -> SwitchSpec:
        if not self.radix or any(n <= 0 for n in self.radix.values()):
            raise ValueError("radix needs at least one port speed with a positive port count")
        return self

    def port_speed_for(self, link_bits_per_s: float) -> tuple[float, int]:
        """The port speed (bits/s) that carries a GPU link of ``link_bits_per_s`` and the ports
        it takes: the fastest port speed that divides the link. ValueError with a reason if none."""
        for speed in sorted(self.radix, reverse=True):
            ratio = link_bits_per_s / speed
            if ratio >= 1 - 1e-9 and abs(ratio - round(ratio)) < 1e-9:
                return speed, round(ratio)
        speeds = ", ".join(f"{s / 1e9:g} Gb/s" for s in sorted(self.radix))
        raise ValueError(
            f"a {link_bits_per_s / 1e9:g} Gb/s link is not a whole number of {self.display_name}"
            f" ports (its port speeds: {speeds})"
        )


class OpticsSpec(BaseModel):
    """Transceiver power and price at one port speed: the NIC end and the switch end of a link."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nic_end_w: Watts
    switch_end_w: Watts
    nic_end_usd: Usd | None = Field(default=None, description="price of the NIC-end transceiver")
    switch_end_usd: Usd | None = Field(
        default=None, description="price of a switch port's share of its transceiver"
    )
    provenance: dict[str, Provenance] = Field(default_factory=dict)


def load_switch_text(
    text: str,
) -> tuple[dict[str, SwitchSpec], dict[float, OpticsSpec], dict[str, str]]:
    """Parse a switch catalog document: switches, optics by port speed (bits/s), sources."""
    doc = yaml.safe_load(text)
    sources = {str(k): str(v) for k, v in (doc.get("sources") or {}).items()}
    switches = {
        str(k): SwitchSpec.model_validate(_split_provenance(v))
        for k, v in (doc.get("switches") or {}).items()
    }
    optics = {
        parse_quantity(k, "bit/s", require_unit=True): OpticsSpec.model_validate(
            _split_provenance(v)
        )
        for k, v in (doc.get("optics") or {}).items()
    }
    return switches, optics, sources


@lru_cache(maxsize=1)
def _load_packaged() -> tuple[dict[str, SwitchSpec], dict[float, OpticsSpec], dict[str, str]]:
    text = resources.files("sim.catalog").joinpath("switches.yaml").read_text(encoding="utf-8")
    return load_switch_text(text)


def switch_catalog() -> dict[str, SwitchSpec]:
    """The packaged switch catalog, keyed by name (``quantum2_qm9700``)."""
    return dict(_load_packaged()[0])


def optics_catalog() -> dict[float, OpticsSpec]:
    """Transceiver power per port end, keyed by port speed in bits/s."""
    return dict(_load_packaged()[1])


def switch_sources() -> dict[str, str]:
    """Source key (``N1``) to citation."""
    return dict(_load_packaged()[2])


def default_switch(nic_bits_per_s: float) -> str:
    """The catalog name of the reference switch for a GPU NIC of ``nic_bits_per_s``."""
    for up_to, name in DEFAULT_SWITCH_BY_NIC:
        if nic_bits_per_s <= up_to:
            return name
    return DEFAULT_SWITCH_BY_NIC[-1][1]
