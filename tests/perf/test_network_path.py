"""A job's network path: collectives over fabric tiers, fast re-pricing, A.1 pack vs spread.

Hand-computed answers use the model's stated constants: the NIC at 400 Gb/s line rate is
50 GB/s, of which collectives reach SCALEOUT_EFFICIENCY = 0.85; 30 us per collective on the
network (SCALEOUT_LATENCY_S) plus each crossed tier's latency.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.catalog.hardware import catalog
from sim.catalog.models import get_model
from sim.perf import (
    NetworkPath,
    PathTier,
    PerfError,
    TrainingEstimate,
    TrainingLayout,
    default_vp,
    estimate_training,
    fibre_latency_s,
)
from sim.perf import calibration as cal
from sim.perf.network import (
    RankGroup,
    all_to_all_time_s,
    gather_time_s,
    p2p_time_s,
)

H100 = catalog()["h100_sxm"]
NIC = 400e9 / 8  # H100 NIC line rate, bytes/s per GPU
EFF = H100.efficiency.scaleout
LAT = cal.SCALEOUT_LATENCY_S
LLAMA_405B = get_model("llama3.1-405b")

# A small fabric: units of 128 GPUs non-blocking, pods of 256 GPUs at 1:4 above the unit.
SMALL = NetworkPath(
    (
        PathTier(gpus_below=128, bytes_per_s_per_gpu=NIC, latency_s=1e-6, name="unit"),
        PathTier(gpus_below=256, bytes_per_s_per_gpu=NIC / 4, latency_s=2e-6, name="pod"),
    )
)


def test_hierarchical_gather_by_hand() -> None:
    """64 ranks at stride 8 (one per HGX node, 512 GPUs): 16 per unit, 32 per pod.

    Ring at the NIC rate inside the pod (the unit tier runs at the NIC rate too, so it is the
    same ring), then only the 1/32 shard crosses the pod tier, between 2 pods, at NIC / 4.
    """
    group = RankGroup.strided(64, 8)
    b = 1e9
    inside = 31 / 32 * b / (NIC * EFF)  # 22.79 ms
    across = (1 / 32 - 1 / 64) * b / (NIC / 4 * EFF)  # 1.47 ms
    lat = LAT + 1e-6 + 2e-6  # one ring step across each tier (2 units per pod, 2 pods)
    assert gather_time_s(b, group, H100, SMALL) == pytest.approx(inside + across + lat, rel=1e-12)
    assert inside + across + lat == pytest.approx(24.2977e-3, rel=1e-5)
    # the whole ring at the pod rate would take 4x as long as the flat ring; hierarchy costs 5%
    flat = gather_time_s(b, group, H100, NetworkPath.flat(H100))
    assert flat == pytest.approx(63 / 64 * b / (NIC * EFF) + LAT, rel=1e-12)
    assert 1.04 < gather_time_s(b, group, H100, SMALL) / flat < 1.05


def test_all_to_all_and_p2p_by_hand() -> None:
    # all-to-all over 64 ranks at stride 8: half the destinations are in the other pod.
    group = RankGroup.strided(64, 8)
    b = 1e8
    nic_term = 63 / 64 * b / (NIC * EFF)
    pod_term = 32 / 64 * b / (NIC / 4 * EFF)  # the bottleneck: 2x the NIC term
    got = all_to_all_time_s(b, group, H100, SMALL)
    assert got == pytest.approx(max(nic_term, pod_term) + LAT + 1e-6 + 2e-6, rel=1e-12)
    # a pipeline of 4 stages of 128 GPUs (stride 128): its edge crosses the pod tier, but only
    # the boundary stage of a pod (128 of 256 GPUs) sends: 2x the all-send share, NIC / 2.
    chain = RankGroup.strided(4, 128)
    assert p2p_time_s(b, chain, H100, SMALL) == pytest.approx(
        b / (NIC / 2 * EFF) + LAT + 1e-6 + 2e-6, rel=1e-12
    )
    # inside a scale-up domain nothing changes: NVLink
    tp = RankGroup.strided(8, 1)
    assert gather_time_s(b, tp, H100, SMALL) == gather_time_s(b, tp, H100, NetworkPath())


def test_a_group_that_crosses_no_slow_tier_runs_at_the_nic_rate() -> None:
    group = RankGroup.strided(16, 8)  # 128 GPUs: inside one unit
    flat = NetworkPath.flat(H100)
    assert gather_time_s(1e9, group, H100, SMALL) == pytest.approx(
        gather_time_s(1e9, group, H100, flat) + 0.0, rel=1e-12
    )


@given(
    share=st.floats(min_value=0.01, max_value=1.0),
    gpus_below=st.sampled_from([8, 16, 64, 256, 1024]),
    ranks=st.sampled_from([2, 4, 16, 64]),
    stride=st.sampled_from([8, 16, 64]),
)
def test_hierarchy_sits_between_flat_and_all_at_the_slow_tier(
    share: float, gpus_below: int, ranks: int, stride: int
) -> None:
    group = RankGroup.strided(ranks, stride)
    path = NetworkPath((PathTier(gpus_below, NIC * share),))
    flat = gather_time_s(1e9, group, H100, NetworkPath.flat(H100))
    slow = (ranks - 1) / ranks * 1e9 / (NIC * share * EFF) + LAT
    got = gather_time_s(1e9, group, H100, path)
    assert flat * (1 - 1e-12) <= got <= slow * (1 + 1e-12)
    assert all_to_all_time_s(1e9, group, H100, path) <= slow * (1 + 1e-12)


def test_path_errors_are_clear() -> None:
    with pytest.raises(PerfError, match="gpus_below must be at least 1"):
        PathTier(gpus_below=0, bytes_per_s_per_gpu=NIC)
    with pytest.raises(PerfError, match=r"tier 'pod': bytes_per_s_per_gpu must be positive"):
        PathTier(gpus_below=8, bytes_per_s_per_gpu=0.0, name="pod")
    with pytest.raises(PerfError, match="latency_s must be >= 0"):
        PathTier(gpus_below=8, bytes_per_s_per_gpu=NIC, latency_s=-1.0)
    with pytest.raises(PerfError, match="innermost first"):
        NetworkPath((PathTier(256, NIC), PathTier(128, NIC)))
    assert fibre_latency_s(500e3) == pytest.approx(2.5e-3)


# --- the estimate on a path --------------------------------------------------------------------
def _a1_16k() -> TrainingEstimate:
    """validation.md A.1, Table 4 row 2: TP8 PP16 DP128, 16,384 H100, 16M-token batch."""
    layout = TrainingLayout(tp=8, pp=16, vp=default_vp(LLAMA_405B, 16), dp=128, zero_stage=2)
    return estimate_training(
        LLAMA_405B, H100, 16384, "bf16", seq_len=8192, global_batch=16 * 128, layout=layout
    )


def test_flat_path_is_the_default_bit_for_bit() -> None:
    est = _a1_16k()
    flat = NetworkPath.flat(H100)
    again = estimate_training(
        LLAMA_405B,
        H100,
        16384,
        "bf16",
        seq_len=8192,
        global_batch=2048,
        layout=est.layout,
        path=flat,
    )
    assert again.step_time_s == est.step_time_s
    assert again.breakdown == est.breakdown
    assert est.step_time_on(flat) == est.step_time_s
    assert est.breakdown_on(flat) == est.breakdown
    assert est.rate_factor_on(flat) == 1.0
    assert est.path == flat


# Meta's 24K-GPU cluster (validation.md A.1, network-and-serving.md A2): 16 GPUs per rack switch
# (non-blocking above it), pods of 3,072 GPUs with full bisection, 8 pods joined at 1:7.
# Switch hops add about a microsecond per tier.
POD_GPUS = 3072


def _meta_pack(job_gpus: int) -> NetworkPath:
    """``pack``: the job fills pods in rank order (16,384 GPUs = 5 1/3 pods); when all 3,072
    GPUs of a pod cross the 1:7 tier each gets 400 Gb/s / 7 (the job is alone)."""
    return NetworkPath(
        (
            PathTier(16, NIC, 1e-6, "rack"),
            PathTier(min(POD_GPUS, job_gpus), NIC / 7, 1e-6, "pod"),
        )
    )


def _meta_spread(job_gpus: int, pods: int = 8) -> NetworkPath:
    """``spread``: the job's servers dealt round-robin over the 8 pods, so consecutive ranks
    change pod at every server (8 GPUs below each tier); the job's 2,048 GPUs in a pod share
    that pod's 3,072 x 400/7 Gb/s uplink: 85.7 Gb/s each."""
    per_pod = job_gpus / pods
    share = min(NIC, POD_GPUS * NIC / 7 / per_pod)
    return NetworkPath((PathTier(8, NIC, 1e-6, "rack"), PathTier(8, share, 1e-6, "pod")))


def test_a1_pack_keeps_published_throughput() -> None:
    """Packed, only the DP shard crosses the 1:7 tier; it stays hidden behind compute."""
    est = _a1_16k()
    path = _meta_pack(16384)
    factor = est.rate_factor_on(path)
    assert factor == pytest.approx(1.0, abs=1e-5)  # only the rack hop's 1 us on PP sends
    assert est.model_tflops_per_gpu * factor == pytest.approx(400.0, rel=0.10)  # A.1 tolerance
    bd = est.breakdown_on(path)
    assert bd["dp_comm_total_s"] > est.breakdown["dp_comm_total_s"]  # slower, still hidden
    assert bd["dp_comm_exposed_s"] == 0.0


def test_a1_spread_shows_a_clear_slowdown() -> None:
    """Spread, every DP and PP group crosses the 1:7 tier with one rank per run."""
    est = _a1_16k()
    path = _meta_spread(16384)
    factor = est.rate_factor_on(path)
    assert 0.80 < factor < 0.92  # 0.884: 406 -> 359 TFLOP/s per GPU
    bd = est.breakdown_on(path)
    assert bd["dp_comm_exposed_s"] > 0.5
    assert bd["pp_p2p_exposed_s"] > 3 * est.breakdown["pp_p2p_exposed_s"]
    assert est.step_time_on(path) == pytest.approx(est.step_time_s / factor, rel=1e-12)


def test_a1_spread_with_ranks_sorted_by_topology_is_not_slowed() -> None:
    """The same scattered servers with ranks sorted by pod: 2,048 consecutive ranks per pod,
    so only a 1/16 shard of the DP sync crosses the 1:7 tier, and it stays hidden."""
    est = _a1_16k()
    share = _meta_spread(16384).tiers[1].bytes_per_s_per_gpu  # 85.7 Gb/s
    sorted_ranks = NetworkPath(
        (PathTier(16, NIC, 1e-6, "rack"), PathTier(2048, share, 1e-6, "pod"))
    )
    assert est.rate_factor_on(sorted_ranks) == pytest.approx(1.0, abs=1e-5)


def test_cross_site_data_parallel_by_hand() -> None:
    """A.1's job split over two sites 500 km apart (8,192 GPUs each, packed in each site's
    pods) joined by a 10 Tb/s scale-across link: each GPU gets 10 Tb/s / 8,192 when a site's
    GPUs all send (network-and-serving.md A4: hierarchical all-reduce, synchronous DP)."""
    est = _a1_16k()
    site_share = 10e12 / 8 / 8192  # 152.6 MB/s line rate per GPU
    path = NetworkPath(
        (
            PathTier(16, NIC, 1e-6, "rack"),
            PathTier(POD_GPUS, NIC / 7, 1e-6, "pod"),
            PathTier(8192, site_share, fibre_latency_s(500e3), "site"),
        )
    )
    net = est.network
    assert net is not None
    b = net.dp_dense_bytes  # gradients (BF16) + weights (BF16) of the busiest stage's shard
    # DP group: 128 ranks at stride 128; 24 in a pod, 64 in a site.
    cross_site_bytes = (1 / 64 - 1 / 128) * b
    # A4: cross-site bytes per GPU = 2 (S - 1) / S x gradient bytes / GPUs per site
    a4 = 2 * (2 - 1) / 2 * LLAMA_405B.total_params * 2.0 / 8192
    assert cross_site_bytes == pytest.approx(a4, rel=0.02)  # ~100 MB per GPU per step
    hand = (
        23 / 24 * b / (NIC * EFF)  # ring inside a pod
        + (1 / 24 - 1 / 64) * b / (NIC / 7 * EFF)  # pods of a site, 1:7
        + cross_site_bytes / (site_share * EFF)  # the sites: 0.772 s
        + LAT
        + 1e-6 * (24 - 1)  # ring steps across the rack tier
        + 1e-6 * (64 / 24 - 1)  # across the pod tier
        + 2.5e-3  # 500 km of fibre, once per phase
    )
    assert gather_time_s(b, net.dp_dense_group, H100, path) == pytest.approx(hand, rel=1e-12)
    assert est.breakdown_on(path)["dp_comm_total_s"] == pytest.approx(hand, rel=1e-12)
    # 1.12 s of DP traffic against a ~0.6 s overlap window: ~7% slower than one site
    factor = est.rate_factor_on(path)
    assert 0.90 < factor < 0.95
    # ten times the link hides it again
    fast = NetworkPath((*path.tiers[:2], PathTier(8192, site_share * 10, 2.5e-3, "site")))
    assert est.rate_factor_on(fast) == pytest.approx(1.0, abs=1e-4)


def test_layout_search_takes_the_path_into_account() -> None:
    """On a poor path (every server its own group, a quarter of the NIC beyond it) the
    automatic layout moves away from wide data parallelism and beats the flat choice re-priced.
    """
    model = get_model("llama3.1-70b")
    path = NetworkPath((PathTier(8, NIC / 4, 1e-6, "pod"),))
    on_flat = estimate_training(model, H100, 1024, "bf16")
    on_path = estimate_training(model, H100, 1024, "bf16", path=path)
    assert on_path.layout != on_flat.layout
    assert on_path.step_time_s < 0.8 * on_flat.step_time_on(path)  # 3.6 s against 5.2 s
    assert on_path.path == path
    assert on_path.step_time_on(path) == on_path.step_time_s


def test_expert_parallel_all_to_all_feels_the_path() -> None:
    model = get_model("deepseek-v3")
    layout = TrainingLayout(tp=2, pp=16, vp=1, dp=64, ep=64, zero_stage=1)
    est = estimate_training(model, H100, 2048, "fp8", global_batch=4096, layout=layout)
    # EP64 at stride 2 spans 128 GPUs; a tier every 16 GPUs at a quarter of the NIC
    path = NetworkPath((PathTier(16, NIC / 4, 1e-6, "rack"),))
    assert est.breakdown_on(path)["ep_comm_exposed_s"] > 2 * est.breakdown["ep_comm_exposed_s"]
    assert est.rate_factor_on(path) < 1.0
