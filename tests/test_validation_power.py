"""Published power results the simulator must reproduce (shared/reference/validation.md D.1, C.2).

Each case states the published value, ours, the error and the tolerance, and whether the model
constant behind ours was **fitted** to that very number (then the test is a consistency check:
it proves the engine carries the constant through, not that the model predicts) or is
**independent** of it (a validation). Fitted and independent cases are kept in separate tests.

Constants involved (catalog ``activity_power`` of ``h100_sxm`` / ``h200_sxm``, x 10.2 kW):

* ``idle`` 0.24: fitted to C.2's idle 2.41 kW (2.41 / 10.2 = 0.236).
* ``inference_full_load`` 0.60: fitted to C.2's MaxQ full load 6.15 kW (0.603).
* ``training`` 0.70: chosen from D.1 itself: the middle of D.1's mean (6.85 kW, 0.67) and the
  Brookhaven ceiling quoted in D.1 (76% of 10.2 kW).
* DVFS response (facility.md §3.2: power above idle ~ clock^3, throughput
  ``1 / (c / r + 1 - c)``, c = 0.9 prefill, 0.7 training, 0.2 decode): from the studies of
  facility.md §3.1, not fitted to C.2, so C.2's throughput loss is an independent check.

Cases the model cannot reproduce are ``xfail(strict=True)`` with the numbers in the reason: they
fail today by design and turn into an error (XPASS) once the model is fixed, so this file and
docs/performance-model.md ("Power (validation D.1, C.2)") get updated with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.build import Plan
from sim.catalog.hardware import HOPPER_ACTIVITY_POWER, Precision, catalog
from sim.catalog.models import get_model
from sim.config.power_control import PowerControlConfig
from sim.engine.control import clock_throughput
from sim.io import RunTables
from sim.perf import calibration as cal
from sim.perf import estimate_inference
from sim.perf.common import kv_bytes_per_element, weight_bytes_per_param

Builder = Callable[..., dict[str, Any]]
Run = Callable[..., tuple[Plan, RunTables]]

H100 = catalog()["h100_sxm"]
H200 = catalog()["h200_sxm"]

#: facility.md §3.2 compute-bound shares
C_PREFILL, C_TRAINING, C_DECODE = 0.9, 0.7, 0.2


def rel_err(ours: float, published: float) -> float:
    return ours / published - 1.0


def domain_power_w(plan: Plan, traces: pd.DataFrame, busy_domains: pd.Series) -> pd.Series:
    """Power per busy domain from a run's traces: hall IT power minus the network/storage
    overhead term and the idle domains' draw (the engine's own decomposition, sim/engine/power.py)
    divided by the busy domains. One hall, one hardware type, no failures."""
    (hall,) = plan.halls
    spec = plan.hw_specs[hall.hw_index]
    p = spec.domain_power_w
    overhead = plan.scenario.facility.it_overhead_fraction * hall.n_domains * p
    idle_domains = hall.n_domains - busy_domains
    idle_w = idle_domains * spec.activity_power.idle * p
    it = traces[f"site.{hall.name}.it_power_w"]
    return (it - overhead - idle_w) / busy_domains


# =============================================================================================
# D.1  MLPerf Training v4.0, GPT-3 175B on 64 x 8 H100 (Sustainable Metal Cloud), node AC power
# =============================================================================================
D1_NODES = 64
D1_MEAN_W = 6848.0  # mean node power
D1_NODE_MEANS_W = (6762.0, 6940.0)  # spread of the 64 node means
D1_P5_P95_W = (5800.0, 7250.0)  # typical per-node p5-p95
D1_MAX_W = 7340.0  # max node power
D1_TTT_MIN = 56.88  # time-to-train of the run with power logs
D1_ENERGY_KWH = 415.22  # total for the run
D1_PER_GPU_SLOT_W = 856.0  # per GPU slot, host included, no fans (immersion)
D1_BROOKHAVEN_SHARE = 0.76  # cross-check: at most 76% of the 10.2 kW rating
D1_TOL = 0.10  # validation.md D.1: tolerance +-10%


@pytest.fixture(scope="module")
def d1_run(tiny_scenario: Builder, run_scenario: Run) -> tuple[Plan, RunTables, pd.Series]:
    """One GPT-3 175B job on 64 H100 nodes (512 GPUs), A.3's 512-GPU inputs (seq 2,048, global
    batch 2,304, FP8, the tokens of A.3's run): the node power while it runs."""
    data = tiny_scenario(
        racks=D1_NODES,
        hardware="h100_sxm",
        duration="1 h",
        sample_interval="1 min",
        pretraining=[
            {
                "name": "gpt3",
                "model": "gpt3-175b",
                "gpus": D1_NODES * 8,
                "tokens": 1.194e9,
                "seq_len": 2048,
                "global_batch": 2304,
                "checkpoint_interval": "10 h",  # MLPerf runs write no checkpoint
                "checkpoint_write": "1 min",
            }
        ],
    )
    plan, tables = run_scenario(data)
    tr = tables.traces
    running = tr["gpus_pretraining_running"] == D1_NODES * 8
    assert running.sum() >= 30  # >= 30 one-minute samples of the job running
    busy = tr.loc[running, "gpus_pretraining_running"] / H100.domain_gpus
    node_w = domain_power_w(plan, tr.loc[running], busy)
    return plan, tables, node_w


# --- consistency checks: activity_power.training was taken from D.1 --------------------------


def test_d1_mean_node_power(d1_run: tuple[Plan, RunTables, pd.Series]) -> None:
    """Published 6,848 W; ours 7,140 W (0.70 x 10.2 kW); +4.3%; tolerance +-10%. Fitted."""
    _, _, node_w = d1_run
    ours = float(node_w.mean())
    assert ours == pytest.approx(H100.activity_power.training * H100.domain_power_w, rel=1e-9)
    assert abs(rel_err(ours, D1_MEAN_W)) <= D1_TOL
    # the node means of the 64 nodes lie within 6,762-6,940 W: ours is within 10% of both ends
    assert all(abs(rel_err(ours, w)) <= D1_TOL for w in D1_NODE_MEANS_W)


def test_d1_peak_node_power(d1_run: tuple[Plan, RunTables, pd.Series]) -> None:
    """Published max 7,340 W; ours 7,140 W; -2.7%; tolerance +-10%. Fitted (same constant).

    The engine draws a constant power while a job runs (no step-level compute/communication
    swing), so its peak equals its mean and falls inside the published p5-p95 band; the ~20%
    swing itself (p5-p95 5.8-7.25 kW) is not modelled."""
    _, _, node_w = d1_run
    peak = float(node_w.max())
    assert abs(rel_err(peak, D1_MAX_W)) <= D1_TOL
    assert D1_P5_P95_W[0] <= peak <= D1_P5_P95_W[1]
    assert peak == pytest.approx(float(node_w.min()), rel=1e-12)  # no swing in the engine


def test_d1_energy_of_the_run_and_per_gpu_slot(d1_run: tuple[Plan, RunTables, pd.Series]) -> None:
    """Energy at the published time-to-train (56.88 min, an input here): published 415.22 kWh,
    ours 433.2 kWh, +4.3%. Per GPU slot: published ~856 W, ours 892.5 W, +4.3%. Tolerance
    +-10%. Fitted (same constant): a check of the arithmetic, not of the time-to-train."""
    _, _, node_w = d1_run
    mean = float(node_w.mean())
    energy_kwh = D1_NODES * mean * D1_TTT_MIN / 60.0 / 1e3
    assert abs(rel_err(energy_kwh, D1_ENERGY_KWH)) <= D1_TOL
    assert abs(rel_err(mean / H100.domain_gpus, D1_PER_GPU_SLOT_W)) <= D1_TOL


def test_d1_below_the_brookhaven_ceiling(d1_run: tuple[Plan, RunTables, pd.Series]) -> None:
    """Cross-check in D.1: training nodes draw at most 76% of the 10.2 kW rating (7,752 W);
    ours 7,140 W = 70%. Fitted (0.70 is the middle of 0.67-0.76)."""
    _, _, node_w = d1_run
    assert float(node_w.max()) <= D1_BROOKHAVEN_SHARE * H100.domain_power_w


@pytest.mark.xfail(
    strict=True,
    reason="energy to train end to end: the run's power is +4.3% but its time-to-train is"
    " 48.62 min against SMC's 56.88 min (-14.5%; A.3's inputs; D.1 does not state the tokens"
    " trained, SMC's config has global batch 2,048), so 370.3 kWh against 415.22 kWh (-10.8%,"
    " tolerance 10%): the performance model, not the power model",
)
def test_d1_energy_to_train_end_to_end(d1_run: tuple[Plan, RunTables, pd.Series]) -> None:
    _, tables, node_w = d1_run
    job = tables.jobs.set_index("name").loc["gpt3"]
    assert job["state"] == "finished"
    energy_kwh = D1_NODES * float(node_w.mean()) * (job["finish_s"] - job["first_start_s"]) / 3.6e6
    assert abs(rel_err(energy_kwh, D1_ENERGY_KWH)) <= D1_TOL


# =============================================================================================
# C.2  NVIDIA 8 x H200 MaxQ (MLPerf Inference v4.1), Llama 2 70B offline
# =============================================================================================
C2_IDLE_W = 2410.0
C2_LOAD_W = 6150.0  # mean wall power, capped (MaxQ)
C2_TOKENS_PER_S = 25262.0  # MaxQ offline, 8 GPUs
C2_UNCAPPED_TOKENS_PER_S = 31303.0  # the same system uncapped (validation.md C.1 table)
C2_TOKENS_PER_J = C2_TOKENS_PER_S / C2_LOAD_W  # 4.1
#: published throughput loss under the cap: 1 - 25,262 / 31,303 = 19.3% (C.1 table, offline);
#: validation.md C.2 words it "about 20-28%"
C2_LOSS = 1.0 - C2_TOKENS_PER_S / C2_UNCAPPED_TOKENS_PER_S
C2_POWER_TOL = 0.10  # validation.md gives none for C.2: D.1's +-10%
C2_LOSS_TOL = 0.15  # C.1's offline +-15%, applied to the loss
C2_THROUGHPUT_TOL = 0.15  # C.1's offline tolerance
C2_IN, C2_OUT = 294, 274  # C.1's inputs (MLPerf OpenOrca mean input, mean output)


def c2_service(**demand: Any) -> dict[str, Any]:
    return {
        "name": "maxq",
        "model": "llama2-70b",
        "input_tokens": C2_IN,
        "output_tokens": C2_OUT,
        "min_domains": 1,
        "control_interval": "1 h",
        "demand": {"noise_cv": 0, "peak_to_trough": 1, "weekend_factor": 1, **demand},
    }


@pytest.fixture(scope="module")
def c2_idle(tiny_scenario: Builder, run_scenario: Run) -> float:
    """Per-server power of two idle 8x H200 servers (no workload)."""
    plan, tables = run_scenario(tiny_scenario(racks=2, hardware="h200_sxm", duration="2 h"))
    tr = tables.traces
    (hall,) = plan.halls
    overhead = plan.scenario.facility.it_overhead_fraction * hall.n_domains * H200.domain_power_w
    per = (tr[f"site.{hall.name}.it_power_w"] - overhead) / hall.n_domains
    assert (tr["gpus_idle"] == hall.n_domains * H200.domain_gpus).all()
    return float(per.mean())


@pytest.fixture(scope="module")
def c2_load(tiny_scenario: Builder, run_scenario: Run) -> tuple[float, float]:
    """Per-server power and tokens/s of two 8x H200 servers serving Llama 2 70B offline-style:
    demand far above capacity, so every server is at full load."""
    data = tiny_scenario(
        racks=2,
        hardware="h200_sxm",
        duration="3 h",
        inference=[c2_service(mean_requests_per_s=1000.0)],
    )
    plan, tables = run_scenario(data)
    tr = tables.traces
    served = tr["service.maxq.served_tokens_per_s"]
    domains = tr["service.maxq.domains"]
    assert (served < tr["service.maxq.demand_tokens_per_s"]).all()  # saturated
    assert (domains == 2).all()
    w = domain_power_w(plan, tr, domains)
    return float(w.mean()), float((served / domains).mean())


# --- consistency checks: activity_power.idle and inference_full_load were taken from C.2 -----


def test_c2_idle_power(c2_idle: float) -> None:
    """Published 2,410 W; ours 2,448 W (0.24 x 10.2 kW); +1.6%; tolerance +-10%. Fitted."""
    assert c2_idle == pytest.approx(H200.activity_power.idle * H200.domain_power_w, rel=1e-9)
    assert abs(rel_err(c2_idle, C2_IDLE_W)) <= C2_POWER_TOL


def test_c2_full_load_power(c2_load: tuple[float, float]) -> None:
    """Published 6,150 W (capped, MaxQ); ours 6,120 W (0.60 x 10.2 kW); -0.5%; tolerance
    +-10%. Fitted."""
    load_w, _ = c2_load
    assert load_w == pytest.approx(
        H200.activity_power.inference_full_load * H200.domain_power_w, rel=1e-9
    )
    assert abs(rel_err(load_w, C2_LOAD_W)) <= C2_POWER_TOL


# --- independent: the DVFS response model (facility.md §3.2) against the MaxQ loss -----------


def cap_clock(natural_w: float, idle_w: float = C2_IDLE_W, cap_w: float = C2_LOAD_W) -> float:
    """Clock at which a server whose uncapped draw is ``natural_w`` meets the cap: power above
    idle scales as clock^3 (the throttle of sim/engine/control.py)."""
    return float(min(1.0, (cap_w - idle_w) / (natural_w - idle_w)) ** (1.0 / 3.0))


def offline_compute_share() -> float:
    """Compute-bound share of one offline decode iteration of Llama 2 70B FP8 on an H200, from
    the performance model: 1 - (weight streaming + KV read + fixed overhead) / iteration.
    About 0.82: at the KV-limited batch (696, KV reserved per request) the GEMMs are
    compute-bound."""
    m = get_model("llama2-70b")
    est = estimate_inference(m, H200, "fp8", input_tokens=C2_IN, output_tokens=C2_OUT)
    fp8 = Precision.FP8
    hbm = H200.hbm_bandwidth_bytes_per_s
    bw_weights = hbm * H200.efficiency.gemm_stream_at(fp8)
    bw_kv = hbm * H200.efficiency.hbm
    t_weights = m.total_params * weight_bytes_per_param(fp8) / est.tp / bw_weights
    context = C2_IN + C2_OUT / 2.0
    t_kv = (
        est.batch * context * m.kv_elements_per_token * kv_bytes_per_element(fp8) / est.tp / bw_kv
    )
    return 1.0 - (t_weights + t_kv + cal.DECODE_STEP_OVERHEAD_S) / est.tpot_s


def test_c2_offline_work_is_mostly_compute_bound() -> None:
    c = offline_compute_share()
    assert 0.75 < c < 0.9  # 0.82: between training (0.7) and prefill (0.9)


@pytest.mark.parametrize(
    ("c", "label"),
    [(C_PREFILL, "prefill-dominated, c=0.9"), (None, "perf-model share, c~0.82")],
)
def test_c2_maxq_loss_from_dvfs_with_nameplate_as_uncapped_draw(
    c: float | None, label: str
) -> None:
    """Uncapped draw taken as the 10.2 kW nameplate (the catalog has no uncapped inference
    draw), cap 6.15 kW, idle 2.41 kW: clock 0.783. Published loss 19.3% (offline, C.1 table);
    ours 20.0% (c=0.9, +3.4%) and 18.6% (c=0.82, -3.6%); tolerance +-15% of the loss.
    Independent (the DVFS model and c are not fitted to C.2)."""
    share = offline_compute_share() if c is None else c
    loss = 1.0 - clock_throughput(cap_clock(H200.domain_power_w), share)
    assert abs(rel_err(loss, C2_LOSS)) <= C2_LOSS_TOL, label
    assert 0.19 <= C2_LOSS <= 0.28  # C.1's number lies in C.2's "about 20-28%"


def test_c2_maxq_throughput_from_perf_model_and_dvfs() -> None:
    """C.1's MaxQ row, 3,158 tok/s/GPU offline: the performance model (uncapped, 4,070) times the
    DVFS ratio at the cap (nameplate as uncapped draw, c from the perf model) gives 3,313,
    +4.9%; tolerance +-15% (C.1 offline). Independent."""
    est = estimate_inference(
        get_model("llama2-70b"), H200, "fp8", input_tokens=C2_IN, output_tokens=C2_OUT
    )
    ratio = clock_throughput(cap_clock(H200.domain_power_w), offline_compute_share())
    ours = est.output_tokens_per_s_per_gpu * ratio
    assert abs(rel_err(ours, C2_TOKENS_PER_S / 8)) <= C2_THROUGHPUT_TOL
    # and tokens per joule at the capped power: published 4.1, ours 4.31
    assert abs(rel_err(ours * 8 / C2_LOAD_W, C2_TOKENS_PER_J)) <= C2_THROUGHPUT_TOL


def test_c2_decode_dominated_work_cannot_lose_that_much() -> None:
    """A decode-dominated server (c=0.2) loses at most 5.3% even with the nameplate as its
    uncapped draw: a MaxQ-size loss (19.3%) needs compute-bound work, as the perf model says
    MLPerf offline is (c~0.82). Consistent with facility.md §3.1 (decode is frequency
    insensitive)."""
    loss = 1.0 - clock_throughput(cap_clock(H200.domain_power_w), C_DECODE)
    assert loss == pytest.approx(0.0525, abs=0.002)
    assert loss < C2_LOSS / 2


@pytest.mark.xfail(
    strict=True,
    reason="with the catalog's own uncapped full-compute draw (activity_power.training 0.70 x"
    " 10.2 kW = 7.14 kW) the 6.15 kW cap is at clock 0.925 and the DVFS model predicts a loss"
    " of 1.6% (c=0.2), 5.4% (0.7), 6.3% (0.83), 6.8% (0.9), against 19.3% published: the"
    " catalog has no uncapped inference draw above the MaxQ figure",
)
@pytest.mark.parametrize("c", [C_DECODE, C_TRAINING, C_PREFILL])
def test_c2_maxq_loss_from_dvfs_with_catalog_uncapped_draw(c: float) -> None:
    natural = H200.activity_power.training * H200.domain_power_w
    loss = 1.0 - clock_throughput(cap_clock(natural), c)
    assert abs(rel_err(loss, C2_LOSS)) <= C2_LOSS_TOL


@pytest.mark.xfail(
    strict=True,
    reason="the engine serves the uncapped perf-model throughput (4,070 tok/s/GPU, C.1's"
    " non-MaxQ 3,913) at the capped MaxQ power (0.60 x 10.2 kW = 6.12 kW): 32,559 tok/s per"
    " server, +28.9% on MaxQ's 25,262 (C.1 tolerance 15%), and 5.32 tokens/J against 4.1 (+30%)",
)
def test_c2_engine_tokens_per_joule(c2_load: tuple[float, float]) -> None:
    load_w, tokens_per_s = c2_load
    assert abs(rel_err(tokens_per_s, C2_TOKENS_PER_S)) <= C2_THROUGHPUT_TOL
    assert abs(rel_err(tokens_per_s / load_w, C2_TOKENS_PER_J)) <= C2_THROUGHPUT_TOL


# --- the throttle trades power for throughput at a good rate ---------------------------------


@given(
    clock=st.floats(min_value=0.01, max_value=0.999),
    c=st.floats(min_value=0.001, max_value=0.999),
)
def test_throttling_lowers_power_above_idle_more_than_throughput(clock: float, c: float) -> None:
    """Power above idle falls to clock^3, throughput to 1 / (c / clock + 1 - c) >= clock (a
    weighted harmonic mean of clock and 1): for every c in (0, 1) and clock < 1 the power falls
    by the larger share."""
    throughput = clock_throughput(clock, c)
    assert clock**3 < throughput < 1.0
    assert 1.0 - clock**3 > 1.0 - throughput


MIN_CLOCK_DEFAULT = PowerControlConfig().min_clock


@given(
    clock=st.floats(min_value=MIN_CLOCK_DEFAULT, max_value=0.999),
    c=st.floats(min_value=0.001, max_value=0.999),
)
def test_throttling_lowers_total_domain_power_more_than_throughput(clock: float, c: float) -> None:
    """With idle counted (Hopper: idle 0.24, training 0.70 of 10.2 kW), a training domain's total
    power falls faster than its throughput at every clock the throttle may set by default
    (min_clock 0.5). It holds down to clock ~0.38 for c -> 1; below that the idle floor
    dominates (the schema allows min_clock 0.1)."""
    ap = HOPPER_ACTIVITY_POWER
    power = (ap.idle + (ap.training - ap.idle) * clock**3) / ap.training
    assert power < clock_throughput(clock, c)


def test_total_power_crossover_clock() -> None:
    """Below which clock the idle floor makes total power fall slower than a fully
    compute-bound throughput (c -> 1): ~0.38 with the Hopper fractions."""
    ap = HOPPER_ACTIVITY_POWER
    r = np.linspace(0.05, 1.0, 20_000)
    power = (ap.idle + (ap.training - ap.idle) * r**3) / ap.training
    crossover = float(r[np.argmax(power < r)])
    assert crossover == pytest.approx(0.379, abs=0.005)
    assert crossover < MIN_CLOCK_DEFAULT
