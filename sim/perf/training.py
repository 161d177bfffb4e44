"""Training step time, MFU and memory of one data/tensor/pipeline/context/expert-parallel job.

The model is the one a performance engineer does on a whiteboard (Narayanan et al. 2021,
"Efficient Large-Scale Language Model Training on GPU Clusters", SC'21; Korthikanti et al. 2022,
"Reducing Activation Recomputation in Large Transformer Models"; Llama 3 paper §3.3.2):

    step = compute + exposed TP + exposed CP + exposed EP + exposed PP p2p      (one pipeline pass)
         + bubble = (pp - 1) / (vp * m) * that pass                              (interleaved 1F1B)
         + exposed DP = max(0, DP traffic - overlap window)                       (grad/param sync)
         + optimizer step (memory-bound)

with ``m`` micro-batches per pipeline per step. Compute = model FLOPs at the precision's dense
peak times a kernel efficiency that grows with the work per GEMM (:func:`gemm_efficiency`), plus
attention at BF16 flash-attention efficiency. Model FLOPs per token are ``6 N`` (``N`` = active
matmul parameters, input embedding excluded) plus causal attention ``6 L s d_attn`` (half the
score/value products are masked). MFU = model FLOPs per second / dense peak of the precision;
it is an output, never an input.

Rank order, innermost first: TP, CP, EP, PP, DP (Meta's [TP, CP, PP, DP] with expert parallel
carved from the data-parallel ranks next to the context ranks, as Megatron-Core does). A group
whose ranks fit inside one scale-up domain communicates over NVLink, otherwise over the job's
network path (:mod:`sim.perf.network`; by default a non-blocking fabric: the NIC). The
network-independent part of a step is kept (:class:`NetworkSensitivity`) so that a running job's
step can be re-priced on a new path without searching layouts again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np

from sim.catalog.hardware import HardwareSpec, Precision
from sim.catalog.models import ModelShape
from sim.perf import calibration as cal
from sim.perf.common import (
    PerfError,
    gemm_efficiency,
    peak_flops,
    scaleup_bytes_per_s,
    to_precision,
)
from sim.perf.network import (
    NetworkPath,
    RankGroup,
    all_to_all_time_s,
    gather_time_s,
    p2p_time_s,
)

__all__ = [
    "NetworkSensitivity",
    "TrainingEstimate",
    "TrainingLayout",
    "default_global_batch",
    "default_vp",
    "estimate_training",
    "model_flops_per_token",
]

Recompute = Literal["auto", "none", "selective", "full"]


@dataclass(frozen=True)
class TrainingLayout:
    """How a job's GPUs are split: tp x cp x pp x dp GPUs; ep divides dp (experts only).

    ``vp`` is the number of virtual pipeline stages (model chunks) per GPU of the interleaved
    schedule; ``microbatch`` is sequences per micro-batch. ``zero_stage``: 1 shards the
    optimizer state over the data-parallel ranks (Megatron distributed optimizer), 2 also the
    gradients (Meta's FSDP for Llama 3), 3 also the weights (full FSDP, weights re-gathered per
    micro-batch). ``recompute="auto"`` picks the cheapest activation recompute that fits.
    """

    tp: int = 1
    pp: int = 1
    vp: int = 1
    cp: int = 1
    dp: int = 1
    ep: int = 1
    microbatch: int = 1
    zero_stage: int = 1
    recompute: Recompute = "auto"

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.cp * self.dp

    def describe(self) -> str:
        parts = [f"TP{self.tp}", f"PP{self.pp}"]
        if self.vp > 1:
            parts.append(f"VP{self.vp}")
        if self.cp > 1:
            parts.append(f"CP{self.cp}")
        parts.append(f"DP{self.dp}")
        if self.ep > 1:
            parts.append(f"EP{self.ep}")
        parts.append(f"MBS{self.microbatch}")
        return " ".join(parts)


@dataclass(frozen=True)
class TrainingEstimate:
    """One training step of a job, and what it adds up from (seconds, FLOP/s, bytes)."""

    step_time_s: float
    tokens_per_s: float
    tokens_per_s_per_gpu: float
    model_flops_per_s_per_gpu: float
    mfu: float
    layout: TrainingLayout
    layout_chosen_automatically: bool
    memory_bytes_per_gpu: float
    breakdown: dict[str, float] = field(default_factory=dict)
    gpus: int = 0
    global_batch: int = 0
    seq_len: int = 0
    precision: str = ""
    recompute: str = "none"
    microbatches: int = 0
    notes: tuple[str, ...] = ()
    path: NetworkPath | None = field(default=None, repr=False, compare=False)
    network: NetworkSensitivity | None = field(default=None, repr=False, compare=False)

    @property
    def model_tflops_per_gpu(self) -> float:
        return self.model_flops_per_s_per_gpu / 1e12

    def _network(self) -> NetworkSensitivity:
        if self.network is None:
            raise PerfError("this estimate carries no network sensitivity")
        return self.network

    def step_time_on(self, path: NetworkPath) -> float:
        """Step time (s) of this estimate's layout and recompute with its traffic on ``path``.

        No layout search: tens of microseconds, for the engine to call whenever a job's
        placement or share of the fabric changes.
        """
        return self._network().step_time_s(path)

    def rate_factor_on(self, path: NetworkPath) -> float:
        """``step_time_s / step_time_on(path)``: the factor on this estimate's rate when the
        job runs on ``path`` (< 1 when ``path`` is worse than the one estimated on, which is
        :meth:`NetworkPath.flat` unless ``estimate_training`` got another)."""
        return self.step_time_s / self._network().step_time_s(path)

    def breakdown_on(self, path: NetworkPath) -> dict[str, float]:
        """The breakdown (same keys as :attr:`breakdown`) with the traffic on ``path``."""
        return self._network().breakdown(path)


# --- FLOPs --------------------------------------------------------------------------------
def model_flops_per_token(model: ModelShape, seq_len: int) -> float:
    """Training model FLOPs per token: 6 N + 6 L s d_attn (causal attention, fwd + bwd)."""
    return 6.0 * model.matmul_params_active + 6.0 * model.layers * seq_len * model.attention_width


def default_vp(model: ModelShape, pp: int) -> int:
    """Virtual stages per GPU when a layout gives PP but no VP.

    About two layers per model chunk: the largest power of two ``v`` <= 8 with
    ``layers / (pp * v) >= 1.9`` (the tolerance admits an uneven split such as 126 layers in 64
    chunks). This is the rule behind NVIDIA's published MLPerf configurations: Llama 3.1 405B
    PP8 -> VP8, GPT-3 175B PP6 -> VP8 and PP8 -> VP4 (validation.md A.2, A.3). More chunks
    shrink the bubble (pp - 1) / (v m) but add point-to-point transfers and scheduling gaps.
    """
    if pp <= 1:
        return 1
    v = 1
    while v * 2 <= 8 and model.layers / (pp * v * 2) >= 1.9:
        v *= 2
    return v


def default_global_batch(model: ModelShape, gpus: int, seq_len: int) -> int:
    """Global batch in sequences when a scenario gives none.

    Llama 3 trained 405B on 16M-token batches and smaller models on ~4M (arXiv:2407.21783
    §3.4.1); GPT-3 used 3.2M. We take 16M tokens for >= 100B active parameters, else 4M, and
    at least one sequence per 8 GPUs so a data-parallel group is never idle, rounded up to a
    power of two times the odd part of the GPU count (NVL72 jobs have a factor 9: 576 GPUs =
    64 x 9), so that data-parallel widths that use all the GPUs divide the batch.
    """
    target_tokens = 16 * 2**20 if model.active_params >= 100e9 else 4 * 2**20
    seqs = max(1, math.ceil(target_tokens / seq_len), math.ceil(gpus / 8))
    odd = gpus // (gpus & -gpus) if gpus > 0 else 1
    return int(odd * 2 ** max(0, math.ceil(math.log2(seqs / odd))))


# --- pieces -------------------------------------------------------------------------------
def _split_active(model: ModelShape) -> tuple[float, float]:
    """(non-expert, expert) active matmul parameters."""
    if not model.is_moe:
        return model.matmul_params_active, 0.0
    expert_active = model.expert_params_total * model.experts_per_token / model.experts
    return model.matmul_params_active - expert_active, expert_active


def _max_stage_layers(model: ModelShape, pp: int) -> float:
    """Layer-equivalents on the busiest pipeline stage.

    The output head (vocab x hidden matmul, plus the loss) sits on the last stage; it counts as
    ``h_eq`` layers. Layers are whole, so the best split is the smallest load X with
    (pp - 1) floor(X) + floor(X - h_eq) >= L. Meta's Llama 3 405B split (one layer fewer on the
    first and last stage) is this rule's answer for 126 layers on 16 stages.
    """
    layer_params = model.matmul_params_active / (model.layers + 1e-9)
    h_eq = model.vocab_size * model.hidden_size / layer_params
    return _stage_split(model.layers, h_eq, pp)


@lru_cache(maxsize=256)
def _split_loads(layers: int, h_eq: float) -> tuple[float, ...]:
    """Every load a stage can have, ascending: whole layers, or whole layers plus the head.

    The same for every PP, so one layout search builds it once, not once per PP candidate."""
    return tuple(
        sorted({float(k) for k in range(1, layers + 1)} | {k + h_eq for k in range(layers + 1)})
    )


@lru_cache(maxsize=4096)
def _stage_split(layers: int, h_eq: float, pp: int) -> float:
    """:func:`_max_stage_layers` for ``layers`` layers and a head of ``h_eq`` layer-equivalents.

    The condition grows with X, so the smallest candidate that meets it is found by bisection.
    """
    if pp == 1:
        return layers + h_eq
    candidates = _split_loads(layers, h_eq)

    def fits(x: float) -> bool:
        return (pp - 1) * math.floor(x) + max(0, math.floor(x - h_eq)) >= layers

    if not fits(candidates[-1]):
        return float(layers)
    lo, hi = 0, len(candidates) - 1  # fits(candidates[hi])
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(candidates[mid]):
            hi = mid
        else:
            lo = mid + 1
    return candidates[lo]


def _activation_bytes_per_token_layer(model: ModelShape, tp: int, level: str) -> float:
    """Stored activations per token per layer on one TP rank (BF16, sequence parallel on).

    Counted tensor by tensor for a pre-norm GQA/SwiGLU block with flash attention (no score
    matrix, no dropout masks), after Korthikanti et al. 2022 Table 2. Attention: norm input,
    QKV input, Q, K, V, attention output. MLP: norm input, FC1 input, gate and up outputs,
    SwiGLU output (GELU: FC1 output and GELU output). ``selective`` recomputes the
    activation-function output; ``full`` keeps only the layer
    input (the whole layer is recomputed in backward).
    """
    h = model.hidden_size
    kv_dim = model.kv_heads * model.head_dim_eff
    attn = h + h + model.attention_width + 2 * kv_dim + model.attention_width
    if model.is_moe:
        ffn = (model.expert_ffn_hidden_size or model.ffn_hidden_size) * (
            model.experts_per_token + model.shared_experts
        )
        mlp_in = h + h * (1 + model.experts_per_token)  # routed copies of the input
    else:
        ffn = model.ffn_hidden_size
        mlp_in = 2 * h
    if level == "full":
        return 2.0 * h / tp
    fc1_out = 2 * ffn if model.gated_mlp else ffn
    mlp = mlp_in + fc1_out + (0 if level == "selective" else ffn)
    return 2.0 * (attn + mlp) / tp


def _working_weight_bytes(precision: Precision) -> float:
    """Bytes of the weights the forward pass reads: BF16, or FP8 for FP8 and FP4 training."""
    return 2.0 if precision is Precision.BF16 else 1.0


@dataclass(frozen=True)
class _Memory:
    total: float
    weights: float
    grads: float
    optimizer: float
    activations: float


def _memory(
    model: ModelShape,
    layout: TrainingLayout,
    precision: Precision,
    seq_len: int,
    m: int,
    level: str,
    full_fraction: float = 0.0,
) -> _Memory:
    tp, pp, cp, dp, ep, vp = layout.tp, layout.pp, layout.cp, layout.dp, layout.ep, layout.vp
    stage_layers = _max_stage_layers(model, pp)
    frac = stage_layers / (model.layers + 1e-9)
    expert_total = model.expert_params_total
    dense_total = model.total_params - expert_total
    params = dense_total * frac / tp + expert_total * frac / (tp * ep)
    shard_dense = dp * cp
    shard_expert = max(1, dp * cp // ep)
    # per-parameter bytes: working weights (BF16; FP8 primary weights for FP8/FP4 training, as
    # Transformer Engine's fp8_model_init and NeMo's MLPerf recipes keep them), BF16 grads,
    # FP32 master weights + Adam moments in the optimizer
    wbytes = _working_weight_bytes(precision)
    dense_p = dense_total * frac / tp
    expert_p = expert_total * frac / (tp * ep)

    def sharded(per_param: float, stage: int) -> float:
        if layout.zero_stage >= stage:
            return per_param * (dense_p / shard_dense + expert_p / shard_expert)
        return per_param * params

    weights = sharded(wbytes, 3)
    grads = sharded(cal.GRAD_REDUCE_BYTES, 2)
    optimizer = sharded(cal.OPTIMIZER_BYTES_PER_PARAM, 1)
    tokens_mb = layout.microbatch * seq_len / cp
    in_flight = min(m, pp) * (1.0 + (pp - 1) / (pp * vp) if vp > 1 else 1.0)
    per_token = (1.0 - full_fraction) * _activation_bytes_per_token_layer(
        model, tp, level
    ) + full_fraction * _activation_bytes_per_token_layer(model, tp, "full")
    acts = per_token * tokens_mb * stage_layers * in_flight
    if level == "full" or full_fraction > 0:  # plus one layer's working set while recomputing
        acts += _activation_bytes_per_token_layer(model, tp, "none") * tokens_mb
    logits = tokens_mb * model.vocab_size / tp * 4.0  # FP32 logits for the loss
    acts += logits
    return _Memory(weights + grads + optimizer + acts, weights, grads, optimizer, acts)


def _check_layout(model: ModelShape, layout: TrainingLayout, gpus: int, global_batch: int) -> int:
    lay = layout
    if min(lay.tp, lay.pp, lay.vp, lay.cp, lay.dp, lay.ep, lay.microbatch) < 1:
        raise PerfError(f"every parallel degree must be >= 1 (got {lay.describe()})")
    if lay.gpus != gpus:
        raise PerfError(
            f"layout TP{lay.tp} x CP{lay.cp} x PP{lay.pp} x DP{lay.dp} = {lay.gpus} GPUs,"
            f" but the job has {gpus}"
        )
    if model.heads % lay.tp:
        raise PerfError(f"TP{lay.tp} does not divide the model's {model.heads} attention heads")
    if lay.pp * lay.vp > model.layers + 2:
        raise PerfError(
            f"PP{lay.pp} x VP{lay.vp} = {lay.pp * lay.vp} pipeline chunks for only"
            f" {model.layers} layers"
        )
    if lay.dp % lay.ep:
        raise PerfError(f"EP{lay.ep} must divide DP{lay.dp} (experts are spread over DP ranks)")
    if lay.ep > 1 and not model.is_moe:
        raise PerfError(f"EP{lay.ep} given for a dense model (no experts to spread)")
    if model.is_moe and model.experts % lay.ep:
        raise PerfError(f"EP{lay.ep} does not divide the model's {model.experts} experts")
    per_dp = lay.dp * lay.microbatch
    if global_batch % per_dp:
        raise PerfError(
            f"global batch {global_batch} is not a multiple of DP{lay.dp} x micro-batch"
            f" {lay.microbatch} = {per_dp}"
        )
    if lay.vp > 1 and lay.pp == 1:
        raise PerfError("virtual pipeline stages (VP > 1) need pipeline parallelism (PP > 1)")
    return global_batch // per_dp


def _exposed_dp(t_sync: float, t_z3: float, t_pass: float, m: int) -> float:
    """Data-parallel time the step cannot hide (seconds).

    ``t_sync`` is the once-per-step gradient reduce-scatter plus parameter all-gather, ``t_z3``
    ZeRO-3's per-micro-batch weight gathers, ``t_pass`` this GPU's compute of one step (all
    ``m`` micro-batches) and ``m`` the micro-batches per pipeline.

    The sync overlaps only compute that runs while it can run. A gradient bucket is final only
    after the *last* micro-batch's backward has produced it, so the reduce-scatter runs behind
    the backward of the last micro-batch(es); the updated parameters are all-gathered behind the
    forward of the first micro-batch(es) of the next step (Megatron ``--overlap-grad-reduce``,
    ``--overlap-param-gather``; FSDP prefetch). With the interleaved schedule the chunks' last
    backwards are spread over the cool-down, which lets the sync use about
    ``DP_OVERLAP_MICROBATCHES`` micro-batches of compute. That window can never exceed the
    compute of the step itself: with ``m`` micro-batches it is ``min(m, K) / m`` of the pass,
    so with one micro-batch the sync hides behind at most one forward plus one backward (the
    rule before this one allowed ``K / m`` = two whole steps at ``m = 1``, which made wide
    data parallelism with one micro-batch look free). ZeRO-3's per-micro-batch gathers are
    prefetched layer by layer behind the compute the sync leaves free.
    """
    window = min(float(m), cal.DP_OVERLAP_MICROBATCHES) / m * t_pass
    exposed_sync = max(0.0, t_sync - window)
    free = t_pass - min(t_sync, window)
    return exposed_sync + max(0.0, t_z3 - free)


@dataclass(frozen=True, slots=True)
class NetworkSensitivity:
    """A step of one fixed layout and recompute level, with its network part left open.

    Everything that does not depend on the network (compute, bubble fraction, optimizer, the
    bytes and rank groups of every collective) is computed once; :meth:`step_time_s` and
    :meth:`breakdown` then price the communication on any :class:`NetworkPath` in a few tens
    of microseconds, with no layout search. The engine uses it when a job's placement or its
    share of the fabric changes.
    """

    hw: HardwareSpec
    m: int  # micro-batches per pipeline per step
    pp: int
    vp: int
    layer_mbs: float  # layer x micro-batch passes of the busiest stage per step
    t_compute: float
    t_attn_layer: float  # attention time of one layer pass (what the CP ring can hide behind)
    t_opt: float
    imbalance: float
    moe_frac: float
    tp_bytes: float
    tp_group: RankGroup
    cp_bytes: float  # per ring step
    cp_group: RankGroup
    ep_bytes: float
    ep_group: RankGroup
    pp_bytes: float  # per point-to-point send
    pp_group: RankGroup
    dp_dense_bytes: float
    dp_dense_group: RankGroup
    dp_expert_bytes: float
    dp_expert_group: RankGroup
    zero3_bytes: float  # weights re-gathered per micro-batch pass (ZeRO-3), 0 otherwise

    def _terms(self, path: NetworkPath) -> tuple[float, ...]:
        hw = self.hw
        m = self.m
        t_tp = 8.0 * gather_time_s(self.tp_bytes, self.tp_group, hw, path) * self.layer_mbs
        exp_tp = t_tp * (1.0 - cal.TP_COMM_OVERLAP)
        exp_cp = 0.0
        cp = self.cp_group.ranks
        if cp > 1:
            t_cp_layer = 3.0 * (cp - 1) * p2p_time_s(self.cp_bytes, self.cp_group, hw, path)
            exp_cp = max(0.0, t_cp_layer - self.t_attn_layer) * self.layer_mbs
        exp_ep = 0.0
        if self.ep_group.ranks > 1:
            t_ep = 4.0 * all_to_all_time_s(self.ep_bytes, self.ep_group, hw, path)
            exp_ep = t_ep * self.layer_mbs * self.moe_frac * (1.0 - cal.EP_COMM_OVERLAP)
        exp_p2p = 0.0
        if self.pp > 1:
            t_p2p = 2.0 * self.vp * m * p2p_time_s(self.pp_bytes, self.pp_group, hw, path)
            exp_p2p = t_p2p * (1.0 - cal.PP_P2P_OVERLAP)
        t_pass = self.t_compute + exp_tp + exp_cp + exp_ep + exp_p2p
        # The interleaved schedule shortens the bubble by vp only once every stage has a
        # micro-batch to work on (Megatron requires m >= pp, a multiple of pp, for it); with
        # fewer micro-batches than stages the chunks of one micro-batch still run one stage
        # after another, as without interleaving: (pp - 1) / m of a pass.
        v_eff = self.vp if m >= self.pp else 1
        bubble = (self.pp - 1) / (v_eff * m) * t_pass if self.pp > 1 else 0.0
        t_sync = gather_time_s(self.dp_dense_bytes, self.dp_dense_group, hw, path)
        t_sync += gather_time_s(self.dp_expert_bytes, self.dp_expert_group, hw, path)
        t_z3 = 0.0
        if self.zero3_bytes:
            t_z3 = (2 * m - 1) * gather_time_s(self.zero3_bytes, self.dp_dense_group, hw, path)
        t_dp = t_sync + t_z3
        exp_dp = _exposed_dp(t_sync, t_z3, t_pass, m)
        step = t_pass + bubble + exp_dp + self.t_opt
        return step, exp_tp, exp_cp, exp_ep, exp_p2p, bubble, exp_dp, t_tp, t_dp

    def step_time_s(self, path: NetworkPath) -> float:
        """Step time (s) of this layout with its traffic on ``path``."""
        return self._terms(path)[0]

    def breakdown(self, path: NetworkPath) -> dict[str, float]:
        """The step's terms on ``path`` (the keys of :attr:`TrainingEstimate.breakdown`)."""
        return self.price(path)[1]

    def price(self, path: NetworkPath) -> tuple[float, dict[str, float]]:
        """Step time (s) and breakdown on ``path``."""
        step, exp_tp, exp_cp, exp_ep, exp_p2p, bubble, exp_dp, t_tp, t_dp = self._terms(path)
        return step, {
            "compute_s": self.t_compute,
            "tp_comm_exposed_s": exp_tp,
            "cp_comm_exposed_s": exp_cp,
            "ep_comm_exposed_s": exp_ep,
            "pp_p2p_exposed_s": exp_p2p,
            "pp_bubble_s": bubble,
            "dp_comm_exposed_s": exp_dp,
            "optimizer_s": self.t_opt,
            "tp_comm_total_s": t_tp,
            "dp_comm_total_s": t_dp,
            "stage_imbalance": self.imbalance,
        }


def _compute(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision,
    layout: TrainingLayout,
    seq_len: int,
    global_batch: int,
) -> tuple[float, float, float]:
    """Compute of one step on the busiest stage without recompute: (total, attention, imbalance).

    Also the lower bound the layout search prunes with (recompute, communication and the bubble
    only add to it).
    """
    tp, pp, cp, ep = layout.tp, layout.pp, layout.cp, layout.ep
    gpus = layout.gpus
    peak = peak_flops(hw, precision)
    peak_attn = hw.peak_flops.get(Precision.BF16, peak)
    tokens_mb = layout.microbatch * seq_len / cp
    stage_layers = _max_stage_layers(model, pp)
    # imbalance: busiest stage / average stage, both in layer-equivalents (head included)
    layer_params = model.matmul_params_active / model.layers
    h_eq = model.vocab_size * model.hidden_size / layer_params
    imbalance = stage_layers * pp / (model.layers + h_eq) if pp > 1 else 1.0

    # compute: per GPU per step, split by kernel size
    tokens_step = global_batch * seq_len
    dense_active, expert_active = _split_active(model)
    flops_dense = 6.0 * dense_active * tokens_step / gpus
    flops_expert = 6.0 * expert_active * tokens_step / gpus
    flops_attn = 6.0 * model.layers * seq_len * model.attention_width * tokens_step / gpus
    w_dense = 2.0 * tokens_mb * dense_active / model.layers / tp
    t_mm = flops_dense / (peak * gemm_efficiency(w_dense, hw, precision))
    if expert_active > 0:
        moe_layers = model.layers - model.dense_layers
        per_expert = model.expert_params_total / model.experts / max(moe_layers, 1)
        tokens_per_expert = tokens_mb * model.experts_per_token * ep / model.experts
        w_expert = 2.0 * tokens_per_expert * per_expert / tp
        t_mm += flops_expert / (peak * gemm_efficiency(w_expert, hw, precision))
    t_mm *= 1.0 + cal.TRAINING_NON_GEMM_OVERHEAD
    t_attn = flops_attn / (peak_attn * hw.efficiency.attention)
    return (t_mm + t_attn) * imbalance, t_attn, imbalance


def step_lower_bound(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision,
    layout: TrainingLayout,
    seq_len: int,
    global_batch: int,
) -> float:
    """A step time no evaluation of ``layout`` can beat: compute without recompute plus the
    pipeline bubble on it (communication, recompute and the optimizer only add)."""
    t_compute = _compute(model, hw, precision, layout, seq_len, global_batch)[0]
    m = global_batch // (layout.dp * layout.microbatch)
    if layout.pp > 1 and m > 0:
        v_eff = layout.vp if m >= layout.pp else 1
        t_compute *= 1.0 + (layout.pp - 1) / (v_eff * m)
    return t_compute


def step_lower_bounds(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision,
    table: np.ndarray,
    seq_len: int,
    global_batch: int,
    *,
    pass_only: bool = False,
) -> np.ndarray:
    """A step time no evaluation can beat, for every row of a candidate table (columns
    :data:`sim.perf.layout.COLUMNS`), vectorized in numpy: :func:`step_lower_bound` (the same
    formulas as :func:`_compute`, plus the bubble) with the least recompute the row's memory
    allows, the TP and EP traffic the overlap leaves, the DP sync its window cannot cover, and
    infinity for a row that does not fit even with full recompute.

    ``pass_only`` stops after compute and bubble: a weaker bound at a fifth of the cost, never
    above the full one row by row (bit for bit: the full bound is this one's pass times a
    recompute factor >= 1, plus non-negative terms, rounded monotonically). Every value depends
    on its own row only, so bounding a subset of rows gives the same values as the whole table.
    """
    if len(table) == 0:
        return np.empty(0)
    tp, pp, vp, cp, dp, ep, mbs = (table[:, k].astype(float) for k in range(7))
    gpus = float(tp[0] * pp[0] * cp[0] * dp[0])
    peak = peak_flops(hw, precision)
    peak_attn = hw.peak_flops.get(Precision.BF16, peak)
    layers = model.layers
    layer_params = model.matmul_params_active / layers
    h_eq = model.vocab_size * model.hidden_size / layer_params
    # busiest stage per row, looked up by PP (np.unique would sort the column: 10x slower)
    pp_col = table[:, 1]
    stage_of = np.zeros(int(pp_col.max()) + 1)
    for p in np.flatnonzero(np.bincount(pp_col)).tolist():
        stage_of[p] = _max_stage_layers(model, p)
    stage = stage_of[pp_col]
    imbalance = np.where(pp > 1, stage * pp / (layers + h_eq), 1.0)
    tokens_mb = mbs * seq_len / cp
    tokens_step = global_batch * seq_len
    dense_active, expert_active = _split_active(model)
    e_max = hw.efficiency.gemm_at(precision)
    half = cal.GEMM_HALF_EFFICIENCY_FLOP

    def eff(w: np.ndarray) -> np.ndarray:
        w = np.maximum(w, 1.0)
        return e_max * w / (w + half)

    t_mm = (
        6.0
        * dense_active
        * tokens_step
        / gpus
        / (peak * eff(2.0 * tokens_mb * dense_active / layers / tp))
    )
    if expert_active > 0:
        moe_layers = layers - model.dense_layers
        per_expert = model.expert_params_total / model.experts / max(moe_layers, 1)
        w_e = 2.0 * tokens_mb * model.experts_per_token * ep / model.experts * per_expert / tp
        t_mm = t_mm + 6.0 * expert_active * tokens_step / gpus / (peak * eff(w_e))
    flops_attn = 6.0 * layers * seq_len * model.attention_width * tokens_step / gpus
    t_attn = flops_attn / (peak_attn * hw.efficiency.attention)
    t = (t_mm * (1.0 + cal.TRAINING_NON_GEMM_OVERHEAD) + t_attn) * imbalance
    m = np.floor(global_batch / (dp * mbs))
    v_eff = np.where(m >= pp, vp, 1.0)
    bubble = np.where((pp > 1) & (m > 0), (pp - 1) / (v_eff * np.maximum(m, 1.0)), 0.0)
    if pass_only:
        return np.asarray(t * (1.0 + bubble))

    # memory (as _memory): a layout that does not fit even with full recompute is never
    # evaluated; one that does not fit without recompute costs at least selective recompute
    zero = table[:, 7]
    frac = stage / (layers + 1e-9)
    expert_total = model.expert_params_total
    dense_p = (model.total_params - expert_total) * frac / tp
    expert_p = expert_total * frac / (tp * ep)
    sharded_p = dense_p / (dp * cp) + expert_p / np.maximum(1.0, np.floor(dp * cp / ep))
    full_p = dense_p + expert_p

    def states(per_param: float, stage_: int) -> np.ndarray:
        return np.asarray(per_param * np.where(zero >= stage_, sharded_p, full_p))

    fixed = states(_working_weight_bytes(precision), 3)
    fixed = fixed + states(cal.GRAD_REDUCE_BYTES, 2) + states(cal.OPTIMIZER_BYTES_PER_PARAM, 1)
    in_flight = np.minimum(m, pp) * np.where(vp > 1, 1.0 + (pp - 1) / (pp * vp), 1.0)
    logits = tokens_mb * model.vocab_size / tp * 4.0
    none = _activation_bytes_per_token_layer(model, 1, "none") / tp
    full = _activation_bytes_per_token_layer(model, 1, "full") / tp
    acts_full = full * tokens_mb * stage * in_flight + none * tokens_mb + logits
    acts_none = none * tokens_mb * stage * in_flight + logits
    usable = hw.hbm_bytes * cal.HBM_USABLE_FRACTION
    # recompute as _fit_recompute picks it: none, selective, or selective plus full recompute of
    # the smallest share f that fits (the exact share, before rounding up to whole percent)
    sel = cal.SELECTIVE_RECOMPUTE_OVERHEAD
    selective = _activation_bytes_per_token_layer(model, 1, "selective") / tp
    acts_sel = selective * tokens_mb * stage * in_flight + logits
    start = fixed + acts_sel + none * tokens_mb
    span = start - (fixed + acts_full)
    f = np.clip((start - usable) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    partial = np.where(span > 0, (1.0 - f) * (1.0 + sel) + f * 4.0 / 3.0, 1.0 + sel)
    recompute = np.where(
        fixed + acts_none <= usable, 1.0, np.where(fixed + acts_sel <= usable, 1.0 + sel, partial)
    )
    # tensor-parallel traffic (always inside the scale-up domain here) that the overlap leaves
    t_tp = np.where(
        tp > 1,
        8.0
        * (
            (tp - 1) / tp * tokens_mb * model.hidden_size * 2.0 / scaleup_bytes_per_s(hw)
            + cal.SCALEUP_LATENCY_S
        )
        * stage
        * m,
        0.0,
    )
    t_tp = np.where(tp <= hw.domain_gpus, t_tp, 0.0)
    exposed = t * recompute + t_tp * (1.0 - cal.TP_COMM_OVERLAP)
    if model.is_moe:
        # expert all-to-all: NVLink inside the domain, at least the NIC ring outside it
        a2a = tokens_mb / tp * model.experts_per_token * model.hidden_size * 2.0
        span = tp * cp * ep
        nic = hw.scaleout_bandwidth_bits_per_s / 8.0 * hw.efficiency.scaleout
        one = np.where(
            span <= hw.domain_gpus,
            (ep - 1) / ep * a2a / scaleup_bytes_per_s(hw) + cal.SCALEUP_LATENCY_S,
            (ep - 1) / ep * a2a / nic + cal.SCALEOUT_LATENCY_S,
        )
        moe_frac = (layers - model.dense_layers) / layers
        t_ep = np.where(ep > 1, 4.0 * one * stage * m * moe_frac, 0.0)
        exposed = exposed + t_ep * (1.0 - cal.EP_COMM_OVERLAP)
    # data-parallel sync on the flat path (no path is faster): what the window cannot cover.
    # step >= pass (1 + bubble) + max(0, sync - w pass) grows with the pass (w <= 1 <= 1 + b),
    # so the pass's own lower bound gives a lower bound of the step
    wb = _working_weight_bytes(precision)
    frac_h = np.where(pp > 1, stage / (layers + h_eq), 1.0)
    per_param = cal.GRAD_REDUCE_BYTES + wb
    nic_bw = hw.scaleout_bandwidth_bits_per_s / 8.0 * hw.efficiency.scaleout
    up_bw = scaleup_bytes_per_s(hw)

    def ring(nbytes: np.ndarray, ranks: np.ndarray, inside: np.ndarray) -> np.ndarray:
        t_in = (ranks - 1) / ranks * nbytes / up_bw + cal.SCALEUP_LATENCY_S
        t_out = (ranks - 1) / ranks * nbytes / nic_bw + cal.SCALEOUT_LATENCY_S
        return np.asarray(np.where(ranks > 1, np.where(inside, t_in, t_out), 0.0))

    n_dense = dp * cp
    n_exp = np.maximum(1.0, np.floor(dp * cp / ep))
    inside = np.full(len(table), gpus <= hw.domain_gpus)
    t_sync = ring((model.total_params - expert_total) * frac_h / tp * per_param, n_dense, inside)
    if expert_total > 0:
        t_sync = t_sync + ring(expert_total * frac_h / (tp * ep) * per_param, n_exp, inside)
    window = np.minimum(m, cal.DP_OVERLAP_MICROBATCHES) / np.maximum(m, 1.0)
    bound = exposed * (1.0 + bubble) + np.maximum(0.0, t_sync - window * exposed)
    return np.asarray(np.where(fixed + acts_full > usable * (1 + 1e-9), np.inf, bound))


def _sensitivity(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision,
    layout: TrainingLayout,
    seq_len: int,
    global_batch: int,
    level: str,
    m: int,
    full_fraction: float = 0.0,
) -> NetworkSensitivity:
    """The network-independent part of a step for one layout and recompute level."""
    tp, pp, vp, cp, dp, ep = layout.tp, layout.pp, layout.vp, layout.cp, layout.dp, layout.ep
    tokens_mb = layout.microbatch * seq_len / cp  # tokens one GPU group handles per micro-batch
    stage_layers = _max_stage_layers(model, pp)
    layer_params = model.matmul_params_active / model.layers
    h_eq = model.vocab_size * model.hidden_size / layer_params
    t_compute, t_attn, imbalance = _compute(model, hw, precision, layout, seq_len, global_batch)
    # recompute: a fully recomputed layer runs its forward twice (forward = 1/3 of fwd + bwd)
    if level == "full":
        full_fraction = 1.0
    sel = cal.SELECTIVE_RECOMPUTE_OVERHEAD if level == "selective" else 0.0
    t_compute *= (1.0 - full_fraction) * (1.0 + sel) + full_fraction * 4.0 / 3.0

    layer_mbs = stage_layers * m  # layer x micro-batch passes this GPU runs per step
    # tensor parallel: with sequence parallelism, 2 all-gathers + 2 reduce-scatters of the
    # full activation (tokens x hidden, BF16) per layer forward, the same again backward.
    act_bytes = tokens_mb * model.hidden_size * 2.0

    # context parallel (ring attention): K,V chunks go round the ring once forward; K,V and
    # their gradients backward, 3 (cp - 1) ring steps per layer, each sending half a chunk
    # per direction. It runs concurrently with the attention of the chunk in hand, so only
    # what exceeds that attention time is exposed.
    kv_shard = max(1, min(tp, model.kv_heads))
    kv_bytes = tokens_mb * (2 * model.kv_heads * model.head_dim_eff) * 2.0 / kv_shard

    # expert parallel: dispatch + combine all-to-all forward and backward per MoE layer.
    moe_frac = (model.layers - model.dense_layers) / model.layers
    a2a_bytes = tokens_mb / tp * model.experts_per_token * model.hidden_size * 2.0

    # pipeline point-to-point: activations forward and gradients backward at each chunk edge.
    p2p_bytes = tokens_mb * model.hidden_size * 2.0 / tp

    # data parallel: reduce-scatter gradients, all-gather updated weights, over dp x cp ranks
    # (expert weights over dp x cp / ep). Bucketed and overlapped, but only within the window
    # of the last DP_OVERLAP_MICROBATCHES micro-batches.
    frac = stage_layers / (model.layers + h_eq) if pp > 1 else 1.0
    expert_total = model.expert_params_total
    dense_params = (model.total_params - expert_total) * frac / tp
    expert_params = expert_total * frac / (tp * ep)
    wb = _working_weight_bytes(precision)
    per_param = cal.GRAD_REDUCE_BYTES + wb
    n_dense, n_exp = dp * cp, max(1, dp * cp // ep)
    # rank order TP, CP, EP, PP, DP: the DP group is CP x EP x (the rest of DP); experts are
    # replicated over CP x (DP / EP)
    dp_stride = tp * cp * ep * pp
    dense_group = RankGroup(((cp, tp), (ep, tp * cp), (dp // ep, dp_stride)))
    expert_group = RankGroup(((cp, tp), (dp // ep, dp_stride)))
    zero3 = (dense_params + expert_params) * wb if layout.zero_stage >= 3 else 0.0

    # optimizer: AdamW reads/writes ~16 B of state per sharded parameter plus the BF16 weights
    opt_params = dense_params / n_dense + expert_params / n_exp
    t_opt = opt_params * (cal.OPTIMIZER_BYTES_PER_PARAM * 2 + 8.0) / hw.hbm_bandwidth_bytes_per_s

    return NetworkSensitivity(
        hw=hw,
        m=m,
        pp=pp,
        vp=vp,
        layer_mbs=layer_mbs,
        t_compute=t_compute,
        t_attn_layer=t_attn * imbalance / layer_mbs,
        t_opt=t_opt,
        imbalance=imbalance,
        moe_frac=moe_frac,
        tp_bytes=act_bytes,
        tp_group=RankGroup.strided(tp, 1),
        cp_bytes=0.5 * kv_bytes,
        cp_group=RankGroup.strided(cp, tp),
        ep_bytes=a2a_bytes,
        ep_group=RankGroup.strided(ep, tp * cp),
        pp_bytes=p2p_bytes,
        pp_group=RankGroup.strided(pp, tp * cp * ep),
        dp_dense_bytes=dense_params * per_param,
        dp_dense_group=dense_group,
        dp_expert_bytes=expert_params * per_param,
        dp_expert_group=expert_group,
        zero3_bytes=zero3,
    )


def _fit_recompute(
    model: ModelShape,
    layout: TrainingLayout,
    precision: Precision,
    seq_len: int,
    m: int,
    usable: float,
) -> tuple[str, float, _Memory]:
    """Cheapest activation recompute that fits: (level, share of layers fully recomputed, memory).

    ``auto`` tries none, then selective, then selective plus full recompute of just enough
    layers (Megatron ``--recompute-num-layers``), whose cost grows with that share.
    """
    if layout.recompute != "auto":
        return (
            layout.recompute,
            0.0,
            _memory(model, layout, precision, seq_len, m, layout.recompute),
        )
    for lv in ("none", "selective"):
        mem = _memory(model, layout, precision, seq_len, m, lv)
        if mem.total <= usable:
            return lv, 0.0, mem
    sel = _memory(model, layout, precision, seq_len, m, "selective")
    full = _memory(model, layout, precision, seq_len, m, "selective", 1.0)
    if full.total > usable or sel.total <= full.total:
        return "full", 0.0, _memory(model, layout, precision, seq_len, m, "full")
    # memory is linear in the fully recomputed share once any layer is (the working set of the
    # layer being recomputed is added at any share > 0): interpolate from just above 0 to 1
    start = _memory(model, layout, precision, seq_len, m, "selective", 1e-12).total
    frac = min(1.0, max(0.0, (start - usable) / (start - full.total)))
    frac = max(0.01, math.ceil(frac * 100 - 1e-9) / 100)  # whole percent
    mem = _memory(model, layout, precision, seq_len, m, "selective", frac)
    while mem.total > usable and frac < 1.0:  # float residue at a percent boundary
        frac = min(1.0, round(frac + 0.01, 2))
        mem = _memory(model, layout, precision, seq_len, m, "selective", frac)
    while frac > 0.01:  # the smallest whole percent that fits
        lower = _memory(model, layout, precision, seq_len, m, "selective", round(frac - 0.01, 2))
        if lower.total > usable:
            break
        frac, mem = round(frac - 0.01, 2), lower
    return "selective", frac, mem


def _evaluate(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision,
    layout: TrainingLayout,
    seq_len: int,
    global_batch: int,
    path: NetworkPath,
    automatic: bool,
    gpus: int,
) -> TrainingEstimate:
    m = _check_layout(model, layout, gpus, global_batch)
    usable = hw.hbm_bytes * cal.HBM_USABLE_FRACTION
    level, frac, mem = _fit_recompute(model, layout, precision, seq_len, m, usable)
    if mem.total > usable:
        raise PerfError(
            f"{layout.describe()} does not fit: {mem.total / 1e9:.0f} GB per GPU needed"
            f" (weights {mem.weights / 1e9:.0f}, gradients {mem.grads / 1e9:.0f}, optimizer"
            f" {mem.optimizer / 1e9:.0f}, activations {mem.activations / 1e9:.0f} GB with"
            f" {level} recompute) but {hw.display_name} has {usable / 1e9:.0f} GB usable;"
            " use more tensor/pipeline/context parallelism or a smaller micro-batch"
        )
    network = _sensitivity(model, hw, precision, layout, seq_len, global_batch, level, m, frac)
    step, breakdown = network.price(path)
    recompute = level if frac == 0.0 else f"selective + full on {frac:.0%} of layers"
    tokens = global_batch * seq_len
    model_flops_gpu = model_flops_per_token(model, seq_len) * tokens / gpus / step
    return TrainingEstimate(
        step_time_s=step,
        tokens_per_s=tokens / step,
        tokens_per_s_per_gpu=tokens / step / gpus,
        model_flops_per_s_per_gpu=model_flops_gpu,
        mfu=model_flops_gpu / peak_flops(hw, precision),
        layout=layout,
        layout_chosen_automatically=automatic,
        memory_bytes_per_gpu=mem.total,
        breakdown=breakdown,
        gpus=gpus,
        global_batch=global_batch,
        seq_len=seq_len,
        precision=precision.value,
        recompute=recompute,
        microbatches=m,
        path=path,
        network=network,
    )


def estimate_training(
    model: ModelShape,
    hw: HardwareSpec,
    gpus: int,
    precision: Precision | str,
    *,
    seq_len: int = 8192,
    global_batch: int | None = None,
    layout: TrainingLayout | None = None,
    path: NetworkPath | None = None,
) -> TrainingEstimate:
    """Step time, throughput, MFU and memory of training ``model`` on ``gpus`` GPUs of ``hw``.

    ``global_batch`` counts sequences (None: :func:`default_global_batch`). ``layout`` None
    chooses the fastest layout that fits (:func:`sim.perf.layout.choose_layout`).
    ``path`` is the job's network beyond its scale-up domain (None: :meth:`NetworkPath.flat`, a
    non-blocking rail-optimized fabric); the automatic layout is chosen for it. To re-price a
    fixed layout on another path, use :meth:`TrainingEstimate.step_time_on`. Raises
    :class:`PerfError` for a layout that is inconsistent or does not fit in HBM.
    """
    p = to_precision(precision)
    peak_flops(hw, p)
    if gpus < 1:
        raise PerfError(f"a training job needs at least one GPU (got {gpus})")
    if seq_len < 1:
        raise PerfError(f"sequence length must be positive (got {seq_len})")
    gb = global_batch if global_batch is not None else default_global_batch(model, gpus, seq_len)
    if gb < 1:
        raise PerfError(f"global batch must be at least one sequence (got {gb})")
    net = path if path is not None else NetworkPath.flat(hw)
    if layout is not None:
        return _evaluate(model, hw, p, layout, seq_len, gb, net, False, gpus)
    key = (id(model), id(hw), gpus, p, seq_len, gb, net)
    hit = _CHOSEN.get(key)
    if hit is not None and hit[0] is model and hit[1] is hw:
        return _evaluate(model, hw, p, hit[2], seq_len, gb, net, True, gpus)
    from sim.perf.layout import choose_layout

    best = choose_layout(
        lambda lay: _evaluate(model, hw, p, lay, seq_len, gb, net, True, gpus),
        model,
        hw,
        gpus,
        seq_len,
        gb,
        lower_bounds=lambda table: step_lower_bounds(model, hw, p, table, seq_len, gb),
        quick_bounds=lambda table: step_lower_bounds(
            model, hw, p, table, seq_len, gb, pass_only=True
        ),
    )
    if len(_CHOSEN) >= _CHOSEN_MAX:
        _CHOSEN.clear()
    _CHOSEN[key] = (model, hw, best.layout)
    return best


#: Layouts chosen automatically, by job (model and hardware by identity: both are frozen, and
#: the entry keeps them alive so an id is never reused while it is here). A repeated estimate
#: re-evaluates the remembered layout (~0.1 ms) instead of searching again; the estimate itself
#: is built fresh each time, so nothing a caller holds is shared.
_CHOSEN: dict[tuple[object, ...], tuple[ModelShape, HardwareSpec, TrainingLayout]] = {}
_CHOSEN_MAX = 1024


def clear_caches() -> None:
    """Forget every remembered layout and memoized stage split, as in a fresh process.

    For ``benchmarks/estimate.py``, whose cold figures time a job estimated for the first time.
    """
    _CHOSEN.clear()
    _stage_split.cache_clear()
    _split_loads.cache_clear()
