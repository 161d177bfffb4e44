"""The packaged hardware catalog: names, provenance for every number, sanity relations, CLI."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from sim.catalog.hardware import (
    HOPPER_ACTIVITY_POWER,
    ActivityPowerFractions,
    HardwareSpec,
    Precision,
    catalog,
    catalog_sources,
    load_catalog_text,
    parse_entry,
)
from sim.config.schema import ActivityPower

NAMES = {
    "h100_sxm",
    "h200_sxm",
    "b200_hgx",
    "b300_hgx",
    "gb200_nvl72",
    "gb300_nvl72",
    "vr200_nvl144",
    "vr200_nvl144_cpx",
    "rubin_ultra_nvl576",
    "mi300x",
    "mi355x",
}
FP4, FP8, BF16 = Precision.FP4, Precision.FP8, Precision.BF16


def numeric_fields(spec: HardwareSpec) -> dict[str, float]:
    """Every number in an entry by dotted provenance path (peak_flops and prefill included)."""
    out: dict[str, float] = {}

    def walk(prefix: str, model: Any) -> None:
        for name in type(model).model_fields:
            if name == "provenance":
                continue
            value = getattr(model, name)
            if name in ("peak_flops", "gemm", "gemm_stream", "gemm_latency_s", "gemm_kernel"):
                out.update({f"{prefix}{name}.{p.value}": v for p, v in value.items()})
            elif name in ("prefill_accelerator", "activity_power", "efficiency") and value:
                walk(f"{prefix}{name}.", value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                out[f"{prefix}{name}"] = float(value)

    walk("", spec)
    return out


@pytest.fixture(scope="module")
def cat() -> dict[str, HardwareSpec]:
    return catalog()


# --- contents and provenance -----------------------------------------------------------------


def test_catalog_has_exactly_the_expected_names(cat: dict[str, HardwareSpec]) -> None:
    assert set(cat) == NAMES


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_number_has_known_sources(cat: dict[str, HardwareSpec], name: str) -> None:
    spec, sources = cat[name], catalog_sources()
    fields = numeric_fields(spec)
    assert "hbm_bytes" in fields and "peak_flops.bf16" in fields
    for path in fields:
        prov = spec.provenance.get(path)
        assert prov is not None, f"{name}.{path} has no provenance"
        if not prov.sources:  # only a stated assumption may cite nothing
            assert prov.weak and "assumption" in prov.note, f"{name}.{path} cites no source"
        missing = [k for k in prov.sources if k not in sources]
        assert not missing, f"{name}.{path} cites unknown source(s) {missing}"


@pytest.mark.parametrize("name", sorted(NAMES))
def test_provenance_paths_are_real_fields(cat: dict[str, HardwareSpec], name: str) -> None:
    spec = cat[name]
    known = set(numeric_fields(spec)) | {"cooling"}
    assert set(spec.provenance) <= known


def test_sources_table_is_well_formed_and_all_cited(cat: dict[str, HardwareSpec]) -> None:
    sources = catalog_sources()
    assert all(re.fullmatch(r"S\d+", k) for k in sources)
    assert all("http" in v for v in sources.values())
    cited = {k for spec in cat.values() for p in spec.provenance.values() for k in p.sources}
    assert cited == set(sources), f"uncited sources: {sorted(set(sources) - cited)}"


@pytest.mark.parametrize("name", sorted(NAMES))
def test_ranges_contain_the_default_and_have_notes(cat: dict[str, HardwareSpec], name: str) -> None:
    spec, values = cat[name], numeric_fields(cat[name])
    for path, prov in spec.provenance.items():
        if prov.range is None:
            continue
        lo, hi = prov.range
        assert lo < hi, f"{name}.{path}: empty range"
        assert lo * (1 - 1e-9) <= values[path] <= hi * (1 + 1e-9), f"{name}.{path} outside range"
        assert "default" in prov.note, f"{name}.{path}: range without a note on the default"


def test_derived_values_say_so(cat: dict[str, HardwareSpec]) -> None:
    for name in ("vr200_nvl144", "rubin_ultra_nvl576"):
        for p in (FP8, BF16):
            prov = cat[name].provenance[f"peak_flops.{p.value}"]
            assert prov.weak and "derived" in prov.note


# --- weak flags and disagreements (hardware.md §1-§4, §8) ------------------------------------


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("vr200_nvl144", "gpu_tdp_w"),
        ("vr200_nvl144", "domain_power_w"),
        ("vr200_nvl144", "domain_price_usd"),
        ("vr200_nvl144_cpx", "domain_power_w"),
        ("vr200_nvl144_cpx", "prefill_accelerator.peak_flops.fp4"),
        ("vr200_nvl144_cpx", "prefill_accelerator.memory_bandwidth_bytes_per_s"),
        ("rubin_ultra_nvl576", "peak_flops.fp4"),
        ("rubin_ultra_nvl576", "hbm_bandwidth_bytes_per_s"),
        ("rubin_ultra_nvl576", "gpu_tdp_w"),
        ("mi355x", "peak_flops.fp8"),
        ("mi355x", "scaleout_bandwidth_bits_per_s"),
    ],
)
def test_weak_numbers_are_flagged(cat: dict[str, HardwareSpec], name: str, path: str) -> None:
    assert cat[name].provenance[path].weak


def test_well_sourced_numbers_are_not_weak(cat: dict[str, HardwareSpec]) -> None:
    for name in ("h100_sxm", "gb200_nvl72", "b200_hgx"):
        for path in ("peak_flops.bf16", "hbm_bytes", "gpu_tdp_w", "domain_gpus"):
            assert not cat[name].provenance[path].weak


def test_b300_tdp_keeps_both_values(cat: dict[str, HardwareSpec]) -> None:
    b300 = cat["b300_hgx"]
    assert b300.gpu_tdp_w == 1100
    assert b300.provenance["gpu_tdp_w"].range == (1100, 1400)


def test_rubin_disagreements_keep_ranges(cat: dict[str, HardwareSpec]) -> None:
    vr = cat["vr200_nvl144"]
    assert vr.provenance["gpu_tdp_w"].range == (1800, 2300)
    assert vr.provenance["domain_power_w"].range == (190e3, 230e3)
    assert vr.hbm_bandwidth_bytes_per_s == pytest.approx(22e12)
    lo, hi = vr.provenance["hbm_bandwidth_bytes_per_s"].range or (0, 0)
    assert lo == pytest.approx(13e12) and hi == pytest.approx(22.2e12)


def test_prices(cat: dict[str, HardwareSpec]) -> None:
    assert cat["gb200_nvl72"].domain_price_usd == pytest.approx(3.4e6)
    assert cat["h100_sxm"].domain_price_usd == pytest.approx(270e3)
    assert cat["rubin_ultra_nvl576"].domain_price_usd is None  # not found (hardware.md §4)
    for name in ("h200_sxm", "b200_hgx", "b300_hgx"):  # server price derived from a GPU price
        assert "derived" in cat[name].provenance["domain_price_usd"].note


# --- sanity relations ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NAMES))
def test_fp8_is_twice_bf16(cat: dict[str, HardwareSpec], name: str) -> None:
    spec = cat[name]
    assert spec.peak(FP8) == pytest.approx(2 * spec.peak(BF16), rel=2e-3)


@pytest.mark.parametrize("name", ["b200_hgx", "gb200_nvl72"])
def test_blackwell_fp4_is_twice_fp8(cat: dict[str, HardwareSpec], name: str) -> None:
    assert cat[name].peak(FP4) == pytest.approx(2 * cat[name].peak(FP8))


def test_fp4_never_below_fp8_and_hopper_has_none(cat: dict[str, HardwareSpec]) -> None:
    for spec in cat.values():
        if FP4 in spec.peak_flops:
            assert spec.peak(FP4) >= 2 * spec.peak(FP8) * 0.99
    for name in ("h100_sxm", "h200_sxm", "mi300x"):
        with pytest.raises(KeyError, match="no fp4"):
            cat[name].peak("fp4")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_domain_power_covers_gpu_tdp(cat: dict[str, HardwareSpec], name: str) -> None:
    spec = cat[name]
    assert spec.domain_power_w >= spec.domain_gpus * spec.gpu_tdp_w
    assert spec.gpu_power_share_w < 6e3


def test_gb200_nvl72_rack(cat: dict[str, HardwareSpec]) -> None:
    gb = cat["gb200_nvl72"]
    assert gb.domain_gpus == 72
    assert gb.domain_gpus * gb.peak(FP4) == pytest.approx(720e15)  # 1,440 PF sparse
    assert gb.domain_gpus * gb.peak(FP8) == pytest.approx(360e15)
    assert gb.domain_gpus * gb.hbm_bandwidth_bytes_per_s == pytest.approx(576e12)
    assert gb.domain_power_w == pytest.approx(132e3)
    assert gb.provenance["domain_power_w"].range == (120e3, 150e3)
    assert gb.scaleout_bandwidth_bits_per_s == pytest.approx(400e9)
    assert gb.cooling == "hybrid"


def test_gb300_nvl72_rack(cat: dict[str, HardwareSpec]) -> None:
    gb = cat["gb300_nvl72"]
    assert gb.domain_gpus * gb.peak(FP4) == pytest.approx(1080e15)
    assert gb.domain_gpus * gb.peak(FP8) == pytest.approx(360e15)
    assert gb.domain_gpus * gb.gpu_tdp_w == pytest.approx(100.8e3)


def test_h100(cat: dict[str, HardwareSpec]) -> None:
    h = cat["h100_sxm"]
    assert h.hbm_bandwidth_bytes_per_s == pytest.approx(3.35e12)
    assert h.provenance["hbm_bandwidth_bytes_per_s"].range == (3.0e12, 3.35e12)
    assert h.hbm_bytes == pytest.approx(85.52e9)  # 81,559 MiB as nvidia-smi reports (S125)
    assert h.scaleup_bandwidth_bytes_per_s == pytest.approx(900e9)
    assert h.scaleout_bandwidth_bits_per_s == pytest.approx(4e11)
    assert h.domain_power_w == pytest.approx(10.2e3)
    assert h.peak(BF16) == pytest.approx(989e12)


def test_usable_hbm(cat: dict[str, HardwareSpec]) -> None:
    gb_per = {name: cat[name].hbm_bytes / 1e9 for name in NAMES}
    assert gb_per["h100_sxm"] == 85.52  # the datasheets' "80 GB" is 80 GiB
    assert gb_per["h200_sxm"] == 150.75  # and "141 GB" about 140 GiB
    assert gb_per["b200_hgx"] == 180
    assert gb_per["gb200_nvl72"] == 186
    assert gb_per["b300_hgx"] == 270
    assert gb_per["gb300_nvl72"] == 279


def test_rubin_entries(cat: dict[str, HardwareSpec]) -> None:
    vr, cpx, ultra = cat["vr200_nvl144"], cat["vr200_nvl144_cpx"], cat["rubin_ultra_nvl576"]
    assert vr.domain_gpus == cpx.domain_gpus == 72  # "NVL144" counts dies
    assert ultra.domain_gpus == 144  # "NVL576" counts dies
    assert vr.scaleout_bandwidth_bits_per_s == pytest.approx(1.6e12)
    assert vr.status == ultra.status == "announced"
    for p in (FP4, FP8, BF16):  # the CPX rack holds the same Rubin packages
        assert cpx.peak(p) == vr.peak(p)
    assert cpx.hbm_bandwidth_bytes_per_s == vr.hbm_bandwidth_bytes_per_s


def test_cpx_is_withdrawn_with_a_prefill_accelerator(cat: dict[str, HardwareSpec]) -> None:
    cpx = cat["vr200_nvl144_cpx"]
    assert cpx.status == "withdrawn"
    assert "GTC 2026" in cpx.provenance["year"].note
    pa = cpx.prefill_accelerator
    assert pa is not None
    assert pa.count_per_domain == 144
    assert pa.memory_bytes == pytest.approx(128e9)
    assert pa.peak_flops[FP4] == pytest.approx(20e15)
    assert [n for n, s in cat.items() if s.prefill_accelerator is not None] == ["vr200_nvl144_cpx"]


def test_vendors(cat: dict[str, HardwareSpec]) -> None:
    assert {n for n, s in cat.items() if s.vendor == "amd"} == {"mi300x", "mi355x"}
    assert all(s.vendor in ("nvidia", "amd") for s in cat.values())


# --- activity power (fractions of domain_power_w) --------------------------------------------

ACTIVITIES = ("idle", "training", "inference_full_load", "failed")
#: entries with measurements of their own (Hopper) or a rack figure (GB200, GB300 by analogy)
NOT_FALLBACK = {"h100_sxm", "h200_sxm", "gb200_nvl72", "gb300_nvl72"}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_entry_has_sourced_activity_power(cat: dict[str, HardwareSpec], name: str) -> None:
    spec, sources = cat[name], catalog_sources()
    ap = spec.activity_power
    for activity in ACTIVITIES:
        value = getattr(ap, activity)
        assert isinstance(value, float) and 0.0 <= value <= 1.0, f"{name}.{activity} = {value}"
        prov = spec.provenance.get(f"activity_power.{activity}")
        assert prov is not None and prov.note, f"{name}.activity_power.{activity}: no note"
        assert all(k in sources for k in prov.sources)
    for activity in ("idle", "training", "inference_full_load"):
        assert spec.provenance[f"activity_power.{activity}"].sources, f"{name}.{activity}"
    assert 0.0 < ap.idle < ap.inference_full_load <= 1.0
    assert ap.idle < ap.training <= 1.0
    assert ap.failed == 0.0
    assert "assumption" in spec.provenance["activity_power.failed"].note


@pytest.mark.parametrize("name", sorted(NAMES - NOT_FALLBACK))
def test_activity_power_fallback_says_so(cat: dict[str, HardwareSpec], name: str) -> None:
    spec = cat[name]
    assert spec.activity_power == HOPPER_ACTIVITY_POWER
    for activity in ("idle", "training", "inference_full_load"):
        prov = spec.provenance[f"activity_power.{activity}"]
        assert prov.weak
        assert "no published measurement; Hopper 8-GPU fraction" in prov.note
        assert "validation.md §" in prov.note


def test_gb200_nvl72_draws_about_120_of_132_kw_under_load(cat: dict[str, HardwareSpec]) -> None:
    gb = cat["gb200_nvl72"]
    training_w = gb.activity_power.training * gb.domain_power_w
    assert training_w == pytest.approx(120e3, rel=0.01)
    prov = gb.provenance["activity_power.training"]
    assert {"S16", "S94"} <= set(prov.sources)  # ~120 kW drawn; 132 kW shelf capacity
    assert prov.range == (0.70, 0.91)
    # a rack draws more of its provisioned power than an 8-GPU server of its rating
    assert gb.activity_power.training > cat["h100_sxm"].activity_power.training
    gb300 = cat["gb300_nvl72"]
    gpus_at_tdp_w = gb300.domain_gpus * gb300.gpu_tdp_w
    assert gb300.activity_power.training * gb300.domain_power_w > gpus_at_tdp_w


def test_hopper_entries_are_measured(cat: dict[str, HardwareSpec]) -> None:
    h100, h200 = cat["h100_sxm"], cat["h200_sxm"]
    assert h200.activity_power.idle * h200.domain_power_w == pytest.approx(2.41e3, rel=0.02)
    assert h200.activity_power.inference_full_load * h200.domain_power_w == pytest.approx(
        6.15e3, rel=0.01
    )
    assert h100.provenance["activity_power.training"].range == (0.67, 0.76)
    assert not h100.provenance["activity_power.training"].weak


def test_hopper_fallback_equals_the_scenario_default() -> None:
    """The catalog's fallback and ``facility.activity_power`` are the same measurements."""
    assert HOPPER_ACTIVITY_POWER.model_dump() == ActivityPower().model_dump()


_INLINE = {
    "display_name": "Inline",
    "peak_flops": {"bf16": "1 PFLOPS"},
    "hbm_bytes": "80 GB",
    "hbm_bandwidth_bytes_per_s": "3 TB/s",
    "scaleup_bandwidth_bytes_per_s": 0,
    "scaleout_bandwidth_bits_per_s": "400 Gb/s",
    "gpu_tdp_w": 700,
    "domain_gpus": 8,
    "domain_power_w": "10 kW",
    "cooling": "air",
}


def test_inline_entry_without_activity_power_gets_hopper_fractions() -> None:
    spec = parse_entry(dict(_INLINE))
    assert spec.activity_power == HOPPER_ACTIVITY_POWER
    assert not any(p.startswith("activity_power") for p in spec.provenance)


def test_inline_entry_accepts_activity_power_with_or_without_sources() -> None:
    raw = dict(
        _INLINE,
        activity_power={
            "idle": 0.1,
            "training": {"value": 0.9, "source": "mine", "weak": True, "note": "metered"},
            "inference_full_load": 0.8,
        },
    )
    spec = parse_entry(raw)
    assert spec.activity_power == ActivityPowerFractions(
        idle=0.1, training=0.9, inference_full_load=0.8, failed=0.0
    )
    assert spec.provenance["activity_power.training"].note == "metered"


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"training": 1.2}, r"activity_power\.training\n  Input should be less than or equal to 1"),
        ({"idle": -0.1}, r"activity_power\.idle\n  Input should be greater than or equal to 0"),
        ({"idel": 0.2}, r"activity_power\.idel\n  Extra inputs are not permitted"),
        (
            {"idle": 0.5, "inference_full_load": 0.4},
            r"activity_power\.idle \(0\.5\) exceeds activity_power\.inference_full_load \(0\.4\)",
        ),
    ],
)
def test_inline_activity_power_errors(block: dict[str, float], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        parse_entry(dict(_INLINE, activity_power=block))


# --- loader ----------------------------------------------------------------------------------

_MINI = """
sources: {S1: "x — https://example.org"}
hardware:
  toy:
    display_name: Toy
    peak_flops: {bf16: {value: "1 PFLOPS", source: S1}}
    hbm_bytes: "80 GB"
    hbm_bandwidth_bytes_per_s: "3 TB/s"
    scaleup_bandwidth_bytes_per_s: 0
    scaleout_bandwidth_bits_per_s: "400 Gb/s"
    gpu_tdp_w: 700
    domain_gpus: 8
    domain_power_w: "10 kW"
    cooling: air
    prefill_accelerator:
      display_name: P
      count_per_domain: {value: 4, source: [S1]}
      peak_flops: {fp4: {value: "2 PFLOPS", source: [S1], weak: true}}
      memory_bytes: {value: "128 GB", source: [S1], range: [1.0e+11, 1.28e+11]}
      memory_bandwidth_bytes_per_s: "2 TB/s"
"""


def test_loader_splits_nested_prefill_provenance() -> None:
    entries, sources = load_catalog_text(_MINI)
    toy = entries["toy"]
    assert sources == {"S1": "x — https://example.org"}
    assert toy.provenance["peak_flops.bf16"].sources == ("S1",)
    assert toy.provenance["prefill_accelerator.count_per_domain"].sources == ("S1",)
    assert toy.provenance["prefill_accelerator.peak_flops.fp4"].weak
    assert toy.provenance["prefill_accelerator.memory_bytes"].range == (1e11, 1.28e11)
    assert toy.prefill_accelerator is not None
    assert toy.prefill_accelerator.peak_flops[FP4] == pytest.approx(2e15)
    assert "hbm_bytes" not in toy.provenance  # plain values carry no provenance


def test_loader_rejects_misspelt_leaf_keys() -> None:
    bad = _MINI.replace("source: S1}}", "sources: S1}}")
    with pytest.raises(ValidationError) as info:
        load_catalog_text(bad)
    (error,) = info.value.errors()
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == ("peak_flops", "bf16", "sources")


def test_catalog_returns_copies() -> None:
    c = catalog()
    c.pop("h100_sxm")
    assert "h100_sxm" in catalog()


# --- CLI -------------------------------------------------------------------------------------


def _hardware_cli() -> ModuleType:
    """``sim.cli.hardware``; loaded from its file if the ``sim.cli`` package cannot import yet.

    ``sim/cli/__init__.py`` imports sibling sub-command modules written in parallel; until they
    all exist, importing the package fails. The sub-command module itself only needs the catalog.
    """
    try:
        from sim.cli import hardware

        return hardware
    except ImportError:
        import sim

        path = Path(sim.__file__).parent / "cli" / "hardware.py"
        spec = importlib.util.spec_from_file_location("_sim_cli_hardware_standalone", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="aifactory")
    sub = parser.add_subparsers(dest="command", required=True)
    _hardware_cli().add_parser(sub)
    args = parser.parse_args(["hardware", *argv])
    code: int = args.handler(args)
    return code


def test_cli_table_lists_all_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli() == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert name in out
    assert "GB200 NVL72" in out and "132.0" in out


def test_cli_entry_shows_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("gb200_nvl72") == 0
    out = capsys.readouterr().out
    assert "132 kW" in out and "120 kW – 150 kW" in out
    assert "10 PFLOP/s" in out and "400 Gb/s" in out and "$3.4M" in out
    assert "S94" in out and "power shelf" in out  # key and citation text
    assert "docs.nvidia.com" in out
    assert "activity_power.training" in out and "0.91 (120.1 kW)" in out
    assert "activity_power.idle" in out and "activity_power.inference_full_load" in out
    assert "S120" in out and "mlcommons" in out


@pytest.mark.parametrize("name", sorted(NAMES))
def test_cli_every_entry_renders(capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert run_cli(name) == 0
    out = capsys.readouterr().out
    assert "hbm_bandwidth_bytes_per_s" in out and "Sources" in out


def test_cli_entry_shows_weak_and_prefill(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("vr200_nvl144_cpx") == 0
    out = capsys.readouterr().out
    assert "weak" in out and "prefill_accelerator.memory_bytes" in out and "128 GB" in out


def test_cli_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("gb200_nvl7") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"error: unknown hardware 'gb200_nvl7'; known: [a-z0-9_, ]+; did you mean 'gb200_nvl72'\?",
        lines[0],
    )
    assert "Traceback" not in captured.err


def test_cli_unknown_name_without_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("xyz") == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"error: unknown hardware 'xyz'; known: [a-z0-9_, ]+\n", err)
    assert "did you mean" not in err
    assert all(name in err for name in NAMES)


# --- efficiency (fractions of the part's own peaks) ------------------------------------------

#: parts with per-operation measurements of their own (catalog [S123]); H100 takes H200's
MEASURED_EFFICIENCY = {"h200_sxm", "b200_hgx", "b300_hgx", "gb200_nvl72", "gb300_nvl72"}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_entry_has_sourced_efficiency(cat: dict[str, HardwareSpec], name: str) -> None:
    spec = cat[name]
    eff = spec.efficiency
    for p in spec.peak_flops:
        assert 0.0 < eff.gemm_at(p) < 1.0 and 0.0 < eff.gemm_stream_at(p) <= 1.0
    paths = [f"efficiency.gemm.{p.value}" for p in eff.gemm]
    paths += [f"efficiency.gemm_stream.{p.value}" for p in eff.gemm_stream]
    paths += [f"efficiency.gemm_latency_s.{p.value}" for p in eff.gemm_latency_s]
    paths += [
        f"efficiency.{k}"
        for k in (
            "attention",
            "hbm",
            "decode_attention_latency_s",
            "decode_attention_per_sequence_s",
            "scaleup",
            "scaleout",
        )
    ]
    for path in paths:
        prov = spec.provenance.get(path)
        assert prov is not None and prov.note, f"{name}.{path}: no provenance"
        if name not in MEASURED_EFFICIENCY and path.split(".")[1] not in ("scaleup", "scaleout"):
            assert prov.weak, f"{name}.{path} has no measurement of its own: weak"


@pytest.mark.parametrize("name", ["vr200_nvl144", "vr200_nvl144_cpx", "rubin_ultra_nvl576"])
def test_rubin_takes_gb200s_measured_efficiency(cat: dict[str, HardwareSpec], name: str) -> None:
    """The stated rule for parts without measurements (docs/performance-model.md)."""
    assert cat[name].efficiency == cat["gb200_nvl72"].efficiency
    assert "GB200" in cat[name].provenance["efficiency.gemm.fp4"].note
