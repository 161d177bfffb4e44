"""KV-cache allocation as serving engines do it: reserved (TensorRT-LLM) or paged (vLLM).

docs/performance-model.md, "KV cache". The scenario key ``workloads.inference[].kv_cache``, the
``kv_cache=`` argument and ``aifactory estimate serve --kv-cache`` must each change the answer.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.perf import PerfError, estimate_inference, kv_tokens_per_sequence

H200 = catalog()["h200_sxm"]
LLAMA2_70B = get_model("llama2-70b")


def _serve(kv_cache: str, **kw: Any) -> Any:
    args: dict[str, Any] = {"input_tokens": 294, "output_tokens": 274, "tp": 1}
    args.update(kw)
    return estimate_inference(LLAMA2_70B, H200, "fp8", kv_cache=kv_cache, **args)


def test_reserved_holds_prompt_plus_output_in_whole_blocks() -> None:
    assert kv_tokens_per_sequence(294, 274, "reserved") == 576  # ceil(568 / 32) x 32
    assert kv_tokens_per_sequence(294, 274, "paged") == 294 + 137 + 8  # mean + half a block


def test_paged_fits_more_sequences_than_reserved() -> None:
    reserved, paged = _serve("reserved"), _serve("paged")
    assert reserved.max_batch_kv < paged.max_batch_kv
    # paged: mean context plus a 2-sigma headroom and 1% watermark, below the naive mean fit
    cap_tokens = paged.kv_cache_bytes_per_replica / (LLAMA2_70B.kv_elements_per_token * 1.0)
    assert paged.max_batch_kv < cap_tokens / (294 + 137)
    assert reserved.max_batch_kv == math.floor(cap_tokens / 576)
    assert (reserved.kv_cache, paged.kv_cache) == ("reserved", "paged")


def test_kv_cache_changes_decode_heavy_throughput() -> None:
    """Short prompts, long outputs: the batch is the KV limit and decode is memory-bound, so
    reserving the whole output per request costs throughput."""
    kw = {"input_tokens": 128, "output_tokens": 3968}  # within Llama 2's 4,096 window
    reserved, paged = _serve("reserved", **kw), _serve("paged", **kw)
    assert reserved.limited_by == paged.limited_by == "kv_cache"
    assert paged.output_tokens_per_s_per_gpu > 1.2 * reserved.output_tokens_per_s_per_gpu


def test_unknown_kv_cache_is_refused() -> None:
    with pytest.raises(PerfError, match=r"unknown kv_cache 'fifo' \(use one of: reserved, paged\)"):
        _serve("fifo")


def test_scenario_key_changes_the_service_capacity(tiny_scenario: Any, plan_of: Any) -> None:
    svc = {
        "name": "chat",
        "model": "llama3.1-8b",
        "input_tokens": 128,
        "output_tokens": 4096,
        "demand": {"mean_requests_per_s": 1.0, "noise_cv": 0},
    }
    caps = {}
    for kv in ("reserved", "paged"):
        data = tiny_scenario(duration="1 d", inference=[{**svc, "kv_cache": kv}])
        caps[kv] = plan_of(data).services[0].capacity_tokens_per_s_per_domain
    assert caps["paged"] > caps["reserved"] * 1.05
