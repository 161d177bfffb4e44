"""How a domain with companion prefill parts arranges its replicas (sim/perf/inference.py,
mix_domain): the linear programme by hand on made-up replicas, and on DeepSeek-R1 on a Vera
Rubin NVL144 CPX rack, where disaggregation must win at long context (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest

from sim.catalog.hardware import Precision, catalog
from sim.catalog.models import get_model
from sim.perf import PerfError, mix_domain, prefill_costs
from sim.perf.inference import InferenceEstimate, _make_replica, _mixes, _prefill_time

CPX = catalog()["vr200_nvl144_cpx"]
R1 = get_model("deepseek-r1")


def _est(tokens_per_s: float, prefill: float = 0.0, ok: bool = True) -> InferenceEstimate:
    return InferenceEstimate(
        output_tokens_per_s_per_gpu=0.0,
        batch=1,
        ttft_s=1.0,
        tpot_s=0.03,
        replica_gpus=8,
        tp=8,
        output_tokens_per_s_per_replica=tokens_per_s,
        prefill_gpus_per_replica=prefill,
        meets_targets=ok,
    )


def test_prefill_bound_companion_and_the_gpus_for_the_rest_by_hand() -> None:
    """72 GPUs = 9 slots of 8, 144 parts. A companion-fed replica: 16,000 tokens/s, 240 parts.
    GPU-prefill-fed: 16,000 tokens/s, 152 prefill GPUs (100 tokens/s per GPU); co-located: 500
    per replica (62.5 per GPU)."""
    k, c, g = _est(16_000, 240), _est(500), _est(16_000, 152)
    out = _mixes(k, c, g, 72, 9, 144.0)
    comp = out["companion"]
    assert comp.companion_replicas == pytest.approx(0.6)  # 144 / 240
    assert comp.capacity_tokens_per_s == pytest.approx(9_600)  # 0.6 x 16,000; 67.2 GPUs idle
    hyb = out["hybrid"]
    assert hyb.mode == "hybrid" and hyb.gpu_kind == "gpu_prefill"
    # the 72 - 4.8 = 67.2 GPUs left feed replicas of 8 + 152 GPUs: 0.42 of them
    assert hyb.gpu_replicas == pytest.approx(0.42)
    assert hyb.gpu_prefill_gpus == pytest.approx(0.42 * 152)
    assert hyb.capacity_tokens_per_s == pytest.approx(9_600 + 0.42 * 16_000)
    # co-located replicas at 1,000 tokens/s (125 per GPU) beat GPU prefill (100 per GPU)
    hyb = _mixes(k, _est(1_000), g, 72, 9, 144.0)["hybrid"]
    assert hyb.gpu_kind == "colocated" and hyb.gpu_replicas == pytest.approx(67.2 / 8)
    assert hyb.capacity_tokens_per_s == pytest.approx(9_600 + 8.4 * 1_000)


def test_enough_parts_is_companion_and_a_worse_companion_is_not_used() -> None:
    out = _mixes(_est(16_000, 10), _est(500), _est(16_000, 152), 72, 9, 144.0)
    assert out["hybrid"].mode == "companion"  # 14.4 replicas' worth of parts for 9 slots
    assert out["hybrid"].capacity_tokens_per_s == pytest.approx(9 * 16_000)
    # a companion-fed replica below the co-located one per GPU: the GPUs all go co-located
    out = _mixes(_est(400, 10), _est(500), _est(100, 152), 72, 9, 144.0)
    assert out["hybrid"].mode == "colocated"
    assert out["hybrid"].capacity_tokens_per_s == pytest.approx(9 * 500)
    # a companion-fed replica that misses the targets serves nothing
    out = _mixes(_est(16_000, 10, ok=False), _est(500), _est(16_000, 152), 72, 9, 144.0)
    assert out["companion"].capacity_tokens_per_s == 0.0
    assert out["hybrid"].companion_replicas == 0.0


KW: dict[str, Any] = dict(output_tokens=1000, ttft_s=2.0, tpot_s=0.05)


@pytest.mark.parametrize("input_tokens", [100_000, 32_000])
def test_long_context_hybrid_beats_companion_beats_colocated(input_tokens: int) -> None:
    cap = {
        m: mix_domain(R1, CPX, "fp8", gpus=72, mode=m, input_tokens=input_tokens, **KW)
        for m in ("colocated", "companion", "hybrid", "auto")
    }
    assert cap["auto"].mode == "hybrid"
    c = {m: x.capacity_tokens_per_s for m, x in cap.items()}
    assert c["auto"] == c["hybrid"] > 1.3 * c["companion"]
    assert c["companion"] > 2 * c["colocated"]
    # every GPU is used: decode replicas and prefill GPUs fill the rack
    h = cap["hybrid"]
    used = h.replicas * 8 + h.gpu_prefill_gpus
    assert used == pytest.approx(72)
    assert h.companion_parts_used == pytest.approx(144)


def test_short_context_companion_suffices() -> None:
    auto = mix_domain(R1, CPX, "fp8", gpus=72, input_tokens=1000, **KW)
    co = mix_domain(R1, CPX, "fp8", gpus=72, mode="colocated", input_tokens=1000, **KW)
    assert auto.mode == "companion" and auto.limited_by == "decode"
    assert auto.capacity_tokens_per_s > co.capacity_tokens_per_s
    assert auto.companion_parts_used < 144


def test_hybrid_needs_a_companion_part() -> None:
    with pytest.raises(PerfError, match="no companion prefill accelerator"):
        mix_domain(
            R1, catalog()["vr200_nvl144"], "fp8", gpus=72, mode="hybrid", input_tokens=1000, **KW
        )


def test_pool_costs_are_the_perf_models_prefill() -> None:
    """The request level's per-request prefill terms give the perf model's prefill time of a
    mean request (one formula, two uses)."""
    part = CPX.prefill_accelerator
    assert part is not None
    # TP8 pinned (the companion arrangement's best TP moves with the pool's TTFT sizing)
    est = mix_domain(R1, CPX, "fp8", gpus=72, mode="companion", input_tokens=100_000, tp=8, **KW)
    k = est.companion
    assert k is not None
    costs = prefill_costs(
        R1, CPX, "fp8", k, prefill_hw=part, input_tokens=100_000, output_tokens=1000
    )
    r = _make_replica(R1, CPX, Precision.FP8, k.tp, 1, 100_000, 1000, 0, 0.0, part)
    assert costs.service_s(100_000, 0) == pytest.approx(_prefill_time(r, costs.devices), rel=1e-9)
    assert costs.devices == 16  # TP8: 8 GPUs x 2 CPX per GPU
    assert costs.instances_per_replica == pytest.approx(k.prefill_gpus_per_replica / 16)
    # 100k tokens x 35,136 B (MLA 576 x 61 layers, FP8) over 8 x 1.6 Tb/s
    assert costs.transfer_s_per_token * 100_000 == pytest.approx(
        100_000 * 576 * 61 / (8 * 1.6e12 / 8), rel=1e-6
    )


def test_replicas_live_inside_a_domain() -> None:
    from sim.perf.inference import replica_slots

    assert replica_slots(144, 72, 16) == 8  # 4 TP16 replicas per 72-GPU rack, not 9
    assert replica_slots(72, 72, 8) == 9
    assert replica_slots(100, 72, 8) == 9 + 3
    # two racks serve twice one rack (their parts pro rata)
    one = mix_domain(R1, CPX, "fp8", gpus=72, input_tokens=100_000, **KW)
    two = mix_domain(R1, CPX, "fp8", gpus=144, input_tokens=100_000, **KW)
    assert two.capacity_tokens_per_s == pytest.approx(2 * one.capacity_tokens_per_s, rel=1e-12)
    assert two.parts == 288 and two.slots == 18
