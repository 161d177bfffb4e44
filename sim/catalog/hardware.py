"""The hardware catalog: one typed entry per accelerator generation and its scale-up domain.

Data, not code: the numbers live in ``hardware.yaml`` next to this module, each with the source
keys it comes from (``[S6]``, see the ``sources`` table at the top of that file, which mirrors
``shared/reference/hardware.md``). Where sources disagree the entry keeps the range and a note that
says which value is the default and why.

Units are SI and in the field names: FLOP/s, bytes, bytes/s, bits/s, watts, USD. "GPU" means a
package (Blackwell and Rubin packages hold two dies). FLOP/s are *dense* (no 2:4 sparsity).
Scale-up bandwidth is per GPU and bidirectional (NVIDIA's convention); scale-out bandwidth is the
unidirectional NIC line rate per GPU.

Each entry also says how much of its provisioned ``domain_power_w`` the domain draws by activity
(``activity_power``: idle, training, full-load inference, failed; plain fractions in [0, 1]).
Rack-scale systems differ from 8-GPU servers here: a GB200 NVL72 rack draws ~120 kW of its
132 kW shelf capacity under load, an 8x H100 server ~70% of its 10.2 kW rating in training.

Each entry also says what it reaches of its own peaks (``efficiency``: large-GEMM and decode
weight-streaming fractions per precision, flash attention, KV-cache reads, NCCL over NVLink and
the NIC), measured per part where a measurement is cited (:class:`Efficiency`); an entry without
its own gets Hopper's (:data:`HOPPER_EFFICIENCY`).

A scenario may add entries of its own under ``hardware:`` with the same fields; there a source is
optional (it is the scenario author's assumption) and values may be friendly strings
(``"3.35 TB/s"``). An inline entry without ``activity_power`` gets the Hopper-measured fractions
(:data:`HOPPER_ACTIVITY_POWER`), the only generation with published measurements.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

from sim.units import quantity

__all__ = [
    "HOPPER_ACTIVITY_POWER",
    "HOPPER_EFFICIENCY",
    "ActivityPowerFractions",
    "Cooling",
    "Efficiency",
    "HardwareSpec",
    "Precision",
    "PrefillAccelerator",
    "Provenance",
    "catalog",
    "catalog_sources",
    "load_catalog_text",
]


class Precision(StrEnum):
    """Numeric formats with a dense peak rate in the catalog."""

    FP4 = "fp4"
    FP8 = "fp8"
    BF16 = "bf16"


class Cooling(StrEnum):
    AIR = "air"
    LIQUID = "liquid"
    HYBRID = "hybrid"  # liquid for GPU/CPU/NIC/switch, air for the rest (GB200 NVL72)
    AIR_OR_LIQUID = "air_or_liquid"


FlopsPerS = Annotated[float, quantity("FLOP/s"), Field(gt=0)]
Bytes = Annotated[float, quantity("byte"), Field(gt=0)]
BytesPerS = Annotated[float, quantity("byte/s"), Field(ge=0)]
BitsPerS = Annotated[float, quantity("bit/s"), Field(ge=0)]
Watts = Annotated[float, quantity("W"), Field(gt=0)]
Usd = Annotated[float, quantity("USD"), Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class Provenance(BaseModel):
    """Where one catalog number comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: tuple[str, ...] = ()
    range: tuple[float, float] | None = None
    weak: bool = False
    note: str = ""


class ActivityPowerFractions(BaseModel):
    """Domain IT power by activity, as a fraction of the domain's provisioned ``domain_power_w``.

    The defaults are the Hopper 8-GPU measurements, used wherever a generation has none of its
    own: an 8x H200 server idles at 2.41 kW and draws 6.15 kW in offline LLM inference
    (validation.md §C.2) against ~10.2 kW provisioned, 0.24 and 0.60; 8x H100 nodes in LLM
    training draw 6.85 kW mean (§D.1, 0.67) and at most 76% of the rating (Brookhaven, same
    section), 0.70 is the middle. A failed domain is powered down for repair (assumption).
    They equal the scenario-level ``facility.activity_power`` defaults (a test keeps them equal).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    idle: Fraction = 0.24
    training: Fraction = 0.70
    inference_full_load: Fraction = 0.60
    failed: Fraction = 0.0

    @model_validator(mode="after")
    def _check(self) -> ActivityPowerFractions:
        for name in ("training", "inference_full_load"):
            if self.idle > getattr(self, name):
                raise ValueError(
                    f"activity_power.idle ({self.idle:g}) exceeds activity_power.{name}"
                    f" ({getattr(self, name):g})"
                )
        return self


#: The Hopper-measured fractions: the fallback for a generation without measurements of its own.
HOPPER_ACTIVITY_POWER = ActivityPowerFractions()

#: Order in which a precision without an efficiency entry borrows a wider one's.
_WIDER = {Precision.FP4: Precision.FP8, Precision.FP8: Precision.BF16}


class Efficiency(BaseModel):
    """Achievable fractions of the part's own peaks, per precision where it matters.

    ``gemm``: median efficiency of large dense GEMMs (m, n, k >= 8,192) against the dense peak
    of that precision. ``gemm_stream``: the fraction of HBM bandwidth at which a GEMM with few
    rows (m <= 32: decode) reads its weights, and ``gemm_latency_s`` the fixed time of one such
    kernel (launch, tail, activation quantization): ``latency = fixed + bytes / (HBM x stream)``
    fitted over those GEMMs. ``attention``: flash-attention (causal, BF16, sequences >= 4K)
    against the BF16 dense peak. ``hbm``: marginal bandwidth of paged KV-cache reads against the
    HBM rate; a decode-attention kernel also costs ``decode_attention_latency_s`` plus
    ``decode_attention_per_sequence_s`` per sequence in the batch, per layer (its latency at an
    empty cache, Llama-70B heads). ``scaleup`` / ``scaleout``: NCCL bus bandwidth against the
    NVLink (one direction) and NIC line rates.

    The GEMM measurements time an FP8/FP4 GEMM as TensorRT-LLM's PyTorch ``Linear`` on a BF16
    input: a kernel that quantizes the activations, then the GEMM. ``gemm`` and
    ``gemm_latency_s`` include that quantize op. ``gemm_kernel`` is the large-GEMM ceiling of
    the GEMM kernel alone (the measured latencies less the quantize op), which a serving
    runtime that fuses the quantization into the producing kernel pays instead
    (``benchmarks/gemm_kernel_efficiency.py``; docs/performance-model.md, "Serving runtime").

    The defaults are Hopper's (H200 measurements, :data:`HOPPER_EFFICIENCY`), used by an entry
    that has none of its own. A precision without a ``gemm`` or ``gemm_stream`` entry borrows
    the next wider one's (FP4 -> FP8 -> BF16).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gemm: dict[Precision, Fraction] = Field(
        default_factory=lambda: {Precision.BF16: 0.71, Precision.FP8: 0.65}
    )
    gemm_stream: dict[Precision, Fraction] = Field(
        default_factory=lambda: {Precision.BF16: 0.83, Precision.FP8: 0.84}
    )
    gemm_latency_s: dict[Precision, Annotated[float, quantity("s"), Field(ge=0, le=1e-3)]] = Field(
        default_factory=lambda: {Precision.BF16: 3.4e-6, Precision.FP8: 13.7e-6}
    )
    gemm_kernel: dict[Precision, Fraction] = Field(default_factory=lambda: {Precision.FP8: 0.669})
    attention: Fraction = 0.54
    hbm: Fraction = 0.94
    decode_attention_latency_s: Annotated[float, quantity("s"), Field(ge=0, le=1e-3)] = 4.55e-6
    decode_attention_per_sequence_s: Annotated[float, quantity("s"), Field(ge=0, le=1e-5)] = 9.67e-8
    scaleup: Fraction = 0.80
    scaleout: Fraction = 0.85

    @model_validator(mode="before")
    @classmethod
    def _own_gemm_keeps_its_kernel(cls, data: Any) -> Any:
        """An entry that gives its own ``gemm`` but no ``gemm_kernel`` does not take Hopper's
        kernel-alone ceiling (which could exceed its own): its ``gemm`` stands for both."""
        if isinstance(data, dict) and "gemm" in data and "gemm_kernel" not in data:
            return {**data, "gemm_kernel": {}}
        return data

    @model_validator(mode="after")
    def _check(self) -> Efficiency:
        for name in ("gemm", "gemm_stream", "gemm_latency_s"):
            table = getattr(self, name)
            if Precision.BF16 not in table:
                raise ValueError(
                    f"efficiency.{name} needs a bf16 entry (the others fall back to it)"
                )
            if name != "gemm_latency_s" and any(v <= 0 for v in table.values()):
                raise ValueError(f"efficiency.{name} values must be > 0")
        if any(v <= 0 for v in self.gemm_kernel.values()):
            raise ValueError("efficiency.gemm_kernel values must be > 0")
        for name in ("attention", "hbm", "scaleup", "scaleout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"efficiency.{name} must be > 0")
        return self

    def gemm_at(self, precision: Precision) -> float:
        """Large-GEMM efficiency at ``precision`` (a missing format borrows a wider one's)."""
        return _lookup(self.gemm, precision)

    def gemm_stream_at(self, precision: Precision) -> float:
        """Weight-streaming fraction of HBM of a few-row GEMM at ``precision``."""
        return _lookup(self.gemm_stream, precision)

    def gemm_latency_at(self, precision: Precision) -> float:
        """Fixed time (s) of one few-row GEMM kernel at ``precision``."""
        return _lookup(self.gemm_latency_s, precision)

    def gemm_kernel_at(self, precision: Precision) -> float:
        """Large-GEMM ceiling at ``precision`` of the GEMM kernel alone, without the separate
        activation-quantize op. BF16 quantizes nothing (its ``gemm``). A precision without an
        entry borrows as ``gemm`` does (FP4 -> FP8 -> BF16), but stops at a ``gemm`` entry of
        its own: a part measured at FP4 without a kernel-alone figure keeps that measurement,
        quantize op included (the conservative side)."""
        p: Precision | None = precision
        while p is not None and p is not Precision.BF16:
            if p in self.gemm_kernel:
                return self.gemm_kernel[p]
            if p in self.gemm:
                return self.gemm[p]
            p = _WIDER.get(p)
        return self.gemm[Precision.BF16]


def _lookup(table: dict[Precision, float], precision: Precision) -> float:
    p: Precision | None = precision
    while p is not None:
        if p in table:
            return table[p]
        p = _WIDER.get(p)
    return table[Precision.BF16]


#: Hopper's measured efficiencies: the fallback for an entry without its own.
HOPPER_EFFICIENCY = Efficiency()


class PrefillAccelerator(BaseModel):
    """A companion prefill-only accelerator in the same domain (Rubin CPX in VR NVL144 CPX)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    display_name: str
    count_per_domain: int = Field(gt=0)
    peak_flops: dict[Precision, FlopsPerS]
    memory_bytes: Bytes
    memory_bandwidth_bytes_per_s: BytesPerS


class HardwareSpec(BaseModel):
    """One accelerator generation as deployed in its scale-up domain (rack or HGX node)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    display_name: str
    vendor: Literal["nvidia", "amd", "other"] = "other"
    status: Literal["shipping", "announced", "withdrawn", "custom"] = "custom"
    year: int | None = None
    # --- per GPU package --------------------------------------------------------------------
    peak_flops: dict[Precision, FlopsPerS] = Field(
        description="dense peak FLOP/s per GPU by precision"
    )
    hbm_bytes: Bytes = Field(description="usable accelerator memory per GPU")
    hbm_bandwidth_bytes_per_s: BytesPerS
    scaleup_bandwidth_bytes_per_s: BytesPerS = Field(
        description="NVLink/Infinity Fabric per GPU, bidirectional"
    )
    scaleout_bandwidth_bits_per_s: BitsPerS = Field(
        description="NIC line rate per GPU, unidirectional"
    )
    gpu_tdp_w: Watts
    # --- per scale-up domain ----------------------------------------------------------------
    domain_gpus: int = Field(gt=0, description="GPUs in one scale-up (NVLink) domain")
    domain_power_w: Watts = Field(description="provisioned IT power of one domain (rack or node)")
    tray_gpus: int | None = Field(
        default=None,
        gt=0,
        description="GPUs per compute tray of a rack-scale domain (a GPU or host failure takes"
        " out its tray, sim.engine.reliability); None: the domain is one server",
    )
    cooling: Cooling
    domain_price_usd: Usd | None = Field(
        default=None, description="capital cost of one domain (hardware only)"
    )
    activity_power: ActivityPowerFractions = Field(
        default=HOPPER_ACTIVITY_POWER,
        description="domain IT power by activity as fractions of domain_power_w; default: the"
        " Hopper 8-GPU measurements (validation.md §C.2, §D.1)",
    )
    efficiency: Efficiency = Field(
        default=HOPPER_EFFICIENCY,
        description="achievable fractions of the peaks (GEMM, attention, HBM, links); default:"
        " Hopper's measurements",
    )
    prefill_accelerator: PrefillAccelerator | None = None
    provenance: dict[str, Provenance] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> HardwareSpec:
        if not self.peak_flops:
            raise ValueError("peak_flops needs at least one precision")
        if self.tray_gpus is not None and self.domain_gpus % self.tray_gpus:
            raise ValueError(
                f"tray_gpus ({self.tray_gpus}) does not divide domain_gpus ({self.domain_gpus})"
            )
        if self.domain_power_w < self.gpu_tdp_w * self.domain_gpus * 0.5:
            raise ValueError(
                f"domain_power_w ({self.domain_power_w:.0f} W) is less than half of"
                f" {self.domain_gpus} GPUs x {self.gpu_tdp_w:.0f} W TDP"
            )
        return self

    @property
    def gpu_power_share_w(self) -> float:
        """Domain IT power per GPU, host, switches and fans included."""
        return self.domain_power_w / self.domain_gpus

    def peak(self, precision: Precision | str) -> float:
        """Dense peak FLOP/s per GPU; a precision the part lacks raises KeyError with a reason."""
        p = Precision(precision)
        try:
            return self.peak_flops[p]
        except KeyError:
            have = ", ".join(sorted(x.value for x in self.peak_flops))
            raise KeyError(f"{self.display_name} has no {p.value} rate (has: {have})") from None


_LEAF_KEYS = frozenset({"value", "source", "range", "weak", "note"})
# mappings whose members are leaves
_NESTED = frozenset(
    {
        "peak_flops",
        "prefill_accelerator",
        "activity_power",
        "efficiency",
        "gemm",
        "gemm_stream",
        "gemm_latency_s",
        "gemm_kernel",
    }
)


def _split_provenance(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn ``{value: x, source: [...], range: [...]}`` leaves into values plus provenance.

    Leaves inside ``peak_flops``, ``activity_power``, ``efficiency`` (and its ``gemm`` and
    ``gemm_stream``) and ``prefill_accelerator`` (and its ``peak_flops``) are split too; their
    provenance is keyed by dotted path (``prefill_accelerator.peak_flops.fp4``,
    ``activity_power.training``, ``efficiency.gemm.fp8``).
    """
    prov: dict[str, Any] = {}

    def leaf(path: str, v: Any) -> Any:
        if isinstance(v, dict) and "value" in v:
            unknown = sorted(set(v) - _LEAF_KEYS)
            if unknown:  # a misspelt `source`/`range` must not be dropped silently
                raise ValidationError.from_exception_data(
                    HardwareSpec.__name__,
                    [
                        InitErrorDetails(
                            type="extra_forbidden", loc=(*path.split("."), k), input=v[k]
                        )
                        for k in unknown
                    ],
                )
            src = v.get("source", [])
            prov[path] = {
                "sources": tuple([src] if isinstance(src, str) else src),
                "range": tuple(v["range"]) if v.get("range") is not None else None,
                "weak": bool(v.get("weak", False)),
                "note": str(v.get("note", "")),
            }
            return v["value"]
        return v

    def split(prefix: str, d: dict[str, Any]) -> dict[str, Any]:
        res: dict[str, Any] = {}
        for key, val in d.items():
            path = f"{prefix}{key}"
            if key in _NESTED and isinstance(val, dict) and "value" not in val:
                res[key] = split(f"{path}.", val)
            else:
                res[key] = leaf(path, val)
        return res

    out = split("", raw)
    if prov:
        out["provenance"] = {**prov, **out.get("provenance", {})}
    return out


def parse_entry(raw: dict[str, Any]) -> HardwareSpec:
    """Validate one catalog entry (catalog file or a scenario's inline ``hardware:`` entry)."""
    return HardwareSpec.model_validate(_split_provenance(raw))


def load_catalog_text(text: str) -> tuple[dict[str, HardwareSpec], dict[str, str]]:
    doc = yaml.safe_load(text)
    sources = {str(k): str(v) for k, v in (doc.get("sources") or {}).items()}
    entries = {str(k): parse_entry(v) for k, v in (doc.get("hardware") or {}).items()}
    return entries, sources


@lru_cache(maxsize=1)
def _load_packaged() -> tuple[dict[str, HardwareSpec], dict[str, str]]:
    text = resources.files("sim.catalog").joinpath("hardware.yaml").read_text(encoding="utf-8")
    return load_catalog_text(text)


def catalog() -> dict[str, HardwareSpec]:
    """The packaged hardware catalog, keyed by name (``gb200_nvl72``)."""
    return dict(_load_packaged()[0])


def catalog_sources() -> dict[str, str]:
    """Source key (``S6``) to citation."""
    return dict(_load_packaged()[1])
