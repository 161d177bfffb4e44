"""Serving throughput and latency of one model replica: prefill compute-bound, decode memory-bound.

One replica is ``tp x ep`` GPUs of one scale-up domain holding one copy of the weights. The
serving engine runs continuous (in-flight) batching with chunked prefill, as TensorRT-LLM and
vLLM do: every iteration advances ``B`` decoding sequences by one token and carries the prefill
tokens of newly admitted requests along (``P = B x prefill_tokens / generated_tokens`` per
iteration in steady state). One iteration costs

    t_iter = |(weights read / (HBM bw x stream eff), (B + P) x 2 N / (peak x eff))|_2  (GEMMs)
           + KV cache read of B sequences / (HBM bw x KV read eff)          (decode attention)
           + prefill attention FLOPs / (BF16 peak x flash eff)
           + tensor-parallel all-reduces (2 per layer) + expert all-to-all + fixed overhead

so decode is bandwidth-bound at small batch and compute-bound at large batch; the efficiencies
are the part's measured ones (catalog ``efficiency``), taken for the serving ``runtime``
(:data:`SERVING_RUNTIMES`: ``fused``, the default, prices a quantized GEMM as the GEMM kernel
alone; ``torch_flow`` with the separate activation-quantize op aiconfigurator's measurements
include). The batch is limited by KV-cache memory
(HBM left after weights and workspace, allocated as the serving engine allocates it:
``kv_cache="reserved"``, TensorRT-LLM, or ``"paged"``, vLLM; see :func:`kv_tokens_per_sequence`)
and by the per-token latency targets. Output tokens/s per replica = B / t_iter; TPOT = t_iter;
TTFT = prefill of one request at the replica's full compute plus one iteration of waiting. With
latency targets Poisson arrivals cap utilisation at ``SERVER_MAX_UTILIZATION`` and the p99s
must fit: p99 TPOT = t_iter x ``P99_OVER_MEAN_LATENCY``; p99 TTFT = the 99th percentile of the
prefill queue's wait plus the prompt's own prefill, over the prompt-length spread
(:mod:`sim.perf.queueing`; the queue is a co-located replica's chunked-prefill stream, or a
disaggregated replica's prefill pool, sized to meet the TTFT target: :func:`_point`).

Disaggregated prefill (``prefill_hw``): prefill runs on a separate pool (another GPU type, or a
prefill accelerator such as Rubin CPX); decode iterations then carry no prefill (P = 0) and the
per-GPU throughput divides by the GPUs of both pools.
:func:`mix_domain` arranges a whole scale-up domain with companion prefill parts: decode-only
replicas fed by the parts, and for the prompts they cannot reach co-located replicas or
replicas fed by prefill instances on the domain's GPUs (a linear programme, solved greedily);
:func:`prefill_costs` gives the request-level simulator the same prefill terms per request.

Generated tokens per request = ``output_tokens + reasoning_tokens``; all of them are counted as
output (as MLPerf and providers' billing count reasoning tokens). A prompt-cache hit rate ``h``
removes ``h x input_tokens`` of prefill compute per request but not their KV cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.catalog.hardware import HardwareSpec, Precision, PrefillAccelerator
from sim.catalog.models import ModelShape
from sim.perf import calibration as cal
from sim.perf import queueing
from sim.perf.common import (
    PerfError,
    all_reduce_time_s,
    all_to_all_time_s,
    gemm_efficiency,
    kv_bytes_per_element,
    peak_flops,
    to_precision,
    weight_bytes_per_param,
)

__all__ = [
    "DEFAULT_MAX_BATCHED_TOKENS",
    "DEFAULT_MAX_SEQS",
    "KV_CACHE_POLICIES",
    "MAX_BATCH",
    "PREFILL_MODES",
    "SERVING_RUNTIMES",
    "DomainMix",
    "InferenceEstimate",
    "PrefillCosts",
    "estimate_inference",
    "inference_curve",
    "kv_tokens_per_sequence",
    "mix_domain",
    "prefill_costs",
]

MAX_BATCH = 4096  # engines cap in-flight sequences (TensorRT-LLM max_batch_size is 2,048-4,096)

#: Most sequences a serving replica runs at once by default: vLLM's ``max_num_seqs`` on GPUs of
#: 70 GiB or more (network-and-serving.md B1). A scenario service's ``serving.max_seqs`` (whose
#: default is this) caps both the fluid plan's batch (:func:`estimate_inference` ``max_seqs``)
#: and the request level's running batch (:class:`sim.serving.simulator.EngineOptions`), so the
#: two levels plan and run the same batch. Without it (``aifactory estimate``, the validation
#: cases) the perf model caps the batch at :data:`MAX_BATCH`, TensorRT-LLM's.
DEFAULT_MAX_SEQS = 1024

#: Prompt and decode tokens one iteration carries at most (chunked prefill's token budget):
#: vLLM's ``max_num_batched_tokens`` for its API server on GPUs of 70 GiB or more
#: (network-and-serving.md B1 [N25]), TensorRT-LLM's ``max_num_tokens`` default too. The fluid
#: plan's co-located TTFT prefills a prompt in chunks of this budget less the decode tokens
#: (:func:`_colocated_prefill_s`), as the request level does (``serving.max_batched_tokens``).
DEFAULT_MAX_BATCHED_TOKENS = 8192

#: The quantile of TTFT the latency target bounds (MLPerf's server criterion, the request
#: level's ``capacity_at_slo``).
TTFT_QUANTILE = 0.99

#: How a serving engine sizes its KV cache per request (docs/performance-model.md, "KV cache").
KV_CACHE_POLICIES = ("reserved", "paged")

#: How the serving engine runs a quantized layer (docs/performance-model.md, "Serving runtime").
#: ``fused``: the activations' FP8/FP4 quantization is fused into the kernel that produces them
#: (RMSNorm, SwiGLU, attention output), so a GEMM is the GEMM kernel alone: the catalog's
#: ``efficiency.gemm_kernel`` ceiling and the BF16 kernel's fixed time. ``torch_flow``: each
#: quantized linear layer quantizes its BF16 input in a kernel of its own, as aiconfigurator's
#: measurements (catalog S123) time TensorRT-LLM's PyTorch ``Linear``: ``efficiency.gemm`` and
#: the precision's own ``gemm_latency_s``. BF16 is the same in both.
SERVING_RUNTIMES = ("fused", "torch_flow")


@dataclass(frozen=True)
class InferenceEstimate:
    """One operating point of one replica (per-GPU figures divide by all GPUs it needs)."""

    output_tokens_per_s_per_gpu: float
    batch: int
    ttft_s: float
    tpot_s: float
    replica_gpus: int
    tp: int = 1
    ep: int = 1
    output_tokens_per_s_per_replica: float = 0.0
    requests_per_s_per_replica: float = 0.0
    prefill_gpus_per_replica: float = 0.0
    max_batch_kv: int = 0
    #: the engine's cap on sequences in flight the batch was chosen under (``max_seqs``)
    max_seqs: int = 0
    kv_cache_bytes_per_replica: float = 0.0
    limited_by: str = ""
    meets_targets: bool = True
    precision: str = ""
    kv_cache: str = "reserved"
    #: the serving runtime the figures are for (SERVING_RUNTIMES; the measured backend's is
    #: aiconfigurator's, "torch_flow")
    runtime: str = "fused"
    #: where the figures come from: "measured", "fitted", "from specs" or "assumption"
    #: (set by :func:`sim.perf.serving.estimate_serving`; empty from this module alone)
    provenance: str = ""
    provenance_detail: str = ""


@dataclass(frozen=True)
class _Replica:
    model: ModelShape
    hw: HardwareSpec
    precision: Precision
    tp: int
    ep: int
    input_tokens: int
    prefill_tokens: float  # computed per request (cache hits removed)
    gen_tokens: int
    prefill_hw: HardwareSpec | PrefillAccelerator | None
    kv_cache: str = "reserved"
    runtime: str = "fused"
    max_seqs: int = MAX_BATCH  # the engine's cap on sequences in flight
    #: coefficient of variation of prompt lengths (lognormal around ``input_tokens``, clipped at
    #: the model's context window as the request level draws them); 0: every prompt the mean
    input_cv: float = 0.0
    #: coefficient of variation of generated lengths (lognormal around ``gen_tokens``, clipped
    #: at the context the mean prompt leaves); 0: every request generates the mean
    output_cv: float = 0.0
    #: the engine's token budget per iteration (:data:`DEFAULT_MAX_BATCHED_TOKENS`)
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS

    @property
    def generation(self) -> GenerationMix:
        """The generated lengths in flight (:class:`GenerationMix`): the KV budget's."""
        return GenerationMix(
            float(self.gen_tokens),
            self.output_cv,
            float(max(1, self.model.max_seq_len - self.input_tokens)),
        )

    @property
    def prompt_moments(self) -> tuple[float, float]:
        """``(E[L] / mean, E[L^2] / mean^2)`` of the prompt lengths :func:`prompt_moments`."""
        return prompt_moments(self.input_tokens, self.input_cv, self.model.max_seq_len - 1)

    @property
    def fused(self) -> bool:
        """The activations' quantization is fused into the producing kernels (SERVING_RUNTIMES)."""
        return self.runtime == "fused"

    @property
    def gpus(self) -> int:
        return self.tp * self.ep

    @property
    def weight_bytes(self) -> float:
        return self.model.total_params * weight_bytes_per_param(self.precision)

    @property
    def kv_bytes_per_token(self) -> float:
        return self.model.kv_elements_per_token * kv_bytes_per_element(self.precision)

    @property
    def kv_capacity_bytes(self) -> float:
        usable = self.gpus * (
            self.hw.hbm_bytes * cal.HBM_USABLE_FRACTION - cal.INFERENCE_WORKSPACE_BYTES
        )
        return usable - self.weight_bytes

    @property
    def mean_context(self) -> float:
        """Average KV length of a decoding sequence: prompt plus half the generation of a
        sequence in flight (:class:`GenerationMix`: longer than the mean request's when the
        lengths spread)."""
        return self.input_tokens + self.generation.in_flight / 2.0

    @property
    def max_batch_kv(self) -> int:
        cap_tokens = max(0.0, self.kv_capacity_bytes) / self.kv_bytes_per_token
        return _max_batch(cap_tokens, self.input_tokens, self.generation, self.kv_cache)

    @property
    def disaggregated(self) -> bool:
        return self.prefill_hw is not None


def kv_tokens_per_sequence(
    input_tokens: int, gen_tokens: float, kv_cache: str, output_cv: float = 0.0
) -> float:
    """KV-cache tokens one running sequence holds on average, as the engine allocates them.

    ``reserved`` (TensorRT-LLM's default ``GUARANTEED_NO_EVICT``): at admission a request
    reserves blocks for its whole prompt plus output, ``ceil((input + output) / 32) x 32``
    tokens (``tokens_per_block`` 32), and never gives them back before it ends, so the pool
    holds ``input + output`` per sequence whatever its progress. ``paged`` (vLLM): blocks of 16
    tokens are allocated as a sequence grows, so a sequence holds its current length rounded
    up to a block; over a batch in steady state that is the mean context ``input + output / 2``
    plus half a block (network-and-serving.md [N25], [N26]). ``output`` is the generated length
    of a sequence *in flight* (:class:`GenerationMix`): ``gen_tokens`` at one length
    (``output_cv`` 0), ``gen_tokens (1 + cv^2)`` for lognormal lengths of spread ``output_cv``
    (no clipping here; :class:`_Replica` clips at the context window). The paged pool's
    headroom for preemption is in :func:`_max_batch`.
    """
    out = GenerationMix(float(gen_tokens), output_cv).in_flight
    return _kv_tokens(input_tokens, out, kv_cache)


def _kv_tokens(input_tokens: float, in_flight_gen: float, kv_cache: str) -> float:
    if kv_cache == "reserved":
        block = cal.KV_BLOCK_TOKENS_RESERVED
        return math.ceil((input_tokens + in_flight_gen) / block) * block
    return input_tokens + in_flight_gen / 2.0 + cal.KV_BLOCK_TOKENS_PAGED / 2.0


def _max_batch(cap_tokens: float, input_tokens: int, gen: GenerationMix, kv_cache: str) -> int:
    """Most sequences the KV pool of ``cap_tokens`` tokens runs at once.

    ``reserved``: ``cap / (input + output)`` (rounded to blocks, ``output`` the in-flight
    generated length, :class:`GenerationMix`); nothing is ever preempted.
    ``paged``: vLLM admits a request on its current length and, when blocks run out, preempts
    one (its KV is dropped and it is prefilled again later). The batch it sustains without
    preempting is the one whose total KV stays inside the pool: ``B`` sequences at uniformly
    spread progress hold ``B x mean`` tokens with a standard deviation of ``sqrt(B) x sd``,
    ``sd`` the spread of a sequence's progress (:attr:`GenerationMix.progress_sd`, ``output /
    sqrt(12)`` at one length); we keep ``PAGED_HEADROOM_SIGMA`` (2) of those free, plus vLLM's
    1% block watermark, so that preemption (which costs a re-prefill) stays rare (~2% of steps
    overflow at 2 sigma). Solved for ``B``: ``mean B + k sqrt(B) <= cap``.
    """
    per_seq = _kv_tokens(input_tokens, gen.in_flight, kv_cache)
    if kv_cache == "reserved":
        return int(cap_tokens // per_seq)
    cap = cap_tokens * (1.0 - cal.PAGED_WATERMARK)
    k = cal.PAGED_HEADROOM_SIGMA * gen.progress_sd
    # mean x^2 + k x - cap = 0, x = sqrt(B)
    x = (-k + math.sqrt(k * k + 4.0 * per_seq * cap)) / (2.0 * per_seq)
    return int(x * x)


def _gemm_time(r: _Replica, tokens: float, hw_peak: float, hbm_bw: float, gpus: int) -> float:
    """Weight GEMMs of one iteration over ``tokens`` tokens on the ``gpus`` GPUs of a replica.

    Weight streaming at the part's measured few-row GEMM bandwidth (``efficiency.gemm_stream``)
    and compute at its measured large-GEMM ceiling (``efficiency.gemm``) are combined as a
    smooth roofline, ``sqrt(t_mem^2 + t_flops^2)``: the limit that binds dominates and the
    knee, where a GEMM of a few hundred rows can hide neither fully behind the other, is
    rounded. Each kernel adds the part's measured fixed time (``efficiency.gemm_latency_s``:
    launch, tail and, in the ``torch_flow`` runtime, the activation-quantize op: 14-20 us at
    FP8/FP4), which is what makes the small sharded GEMMs of a TP4/TP8 replica slow. Against the
    per-layer GEMM latencies of Llama 2 70B on H200 FP8 measured with TensorRT-LLM (catalog
    [S123]) at 64-512 rows this is within 10%; the sum of streaming and compute (the rule before)
    was up to 37% slow at 256 rows. The exponent 2 is a choice made on those measurements. MoE:
    only the experts the iteration's tokens touch are read (uniform routing).

    Runtime (:data:`SERVING_RUNTIMES`): ``torch_flow`` takes the measured op as it is (quantize
    kernel + GEMM: ``efficiency.gemm``, the precision's ``gemm_latency_s``); ``fused`` the GEMM
    kernel alone (``efficiency.gemm_kernel``, the BF16 kernel's fixed time).
    """
    m = r.model
    n_active = m.matmul_params_active
    bytes_read = r.weight_bytes
    if m.is_moe:
        expert_total = m.expert_params_total
        per_expert = expert_total / m.experts
        touched = m.experts * (1.0 - (1.0 - m.experts_per_token / m.experts) ** max(tokens, 0.0))
        bytes_read = (
            m.total_params - expert_total + touched * per_expert
        ) * weight_bytes_per_param(r.precision)
    eff = r.hw.efficiency
    p = r.precision
    ceiling = eff.gemm_kernel_at(p) if r.fused else eff.gemm_at(p)
    fixed = eff.gemm_latency_at(Precision.BF16 if r.fused else p)
    t_flops = 2.0 * tokens * n_active / gpus / (hw_peak * ceiling)
    t_mem = bytes_read / gpus / (hbm_bw * eff.gemm_stream_at(r.precision))
    # the fixed time of each kernel: QKV, output, gate/up and down per layer, and the LM head
    # (MoE layers: the grouped expert GEMMs in place of the MLP's two)
    kernels = 4 * m.layers + 1
    return math.hypot(t_mem, t_flops) + kernels * fixed


def length_moments(mean: float, cv: float, max_len: float, k: int) -> float:
    """``E[L^k] / mean^k`` of lengths ``L = min(X, max_len)``, ``X`` lognormal of mean ``mean``
    and coefficient of variation ``cv`` (the request level's draws, ``sim/serving/workload.py``,
    clipped at the context window as it clips them). Closed form: for ``X = exp(N(mu, s^2))``,
    ``E[X^k; X < M] = exp(k mu + k^2 s^2 / 2) Phi((ln M - mu - k s^2) / s)``, and the clipped
    tail adds ``M^k P(X >= M)``."""
    if cv <= 0.0 or mean <= 0.0:
        x = min(mean, max_len) / mean if mean > 0 else 1.0
        return float(x**k)
    if not math.isfinite(max_len):
        return (1.0 + cv * cv) ** (k * (k - 1) / 2)
    s2 = math.log1p(cv * cv)
    s = math.sqrt(s2)
    mu = math.log(mean) - s2 / 2.0
    lm = math.log(max(max_len, 1.0))

    def phi(z: float) -> float:
        return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))

    above = 1.0 - phi((lm - mu) / s)
    inside = math.exp(k * mu + k * k * s2 / 2.0) * phi((lm - mu - k * s2) / s)
    return (inside + max_len**k * above) / mean**k


def prompt_moments(mean: float, cv: float, max_len: float) -> tuple[float, float]:
    """``(E[L] / mean, E[L^2] / mean^2)`` of prompt lengths (:func:`length_moments`).

    Prefill work per request is ``a L + b L^2`` (weight GEMMs, then causal attention), so its
    mean over requests is ``a E[L] + b E[L^2]``, not the work of a mean-length prompt: at the
    Azure spread (cv 0.53) ``E[L^2] = 1.28 mean^2`` before clipping.
    """
    return length_moments(mean, cv, max_len, 1), length_moments(mean, cv, max_len, 2)


@dataclass(frozen=True)
class GenerationMix:
    """The generated lengths of the sequences *in flight* in a batch, for its KV budget.

    Generated lengths ``O`` are lognormal around the mean ``mean`` with spread ``cv``, clipped
    at ``max_len`` (the context left after the prompt), as the request level draws them. A
    sequence stays in the running batch for as many iterations as it generates tokens, so the
    batch holds sequences in proportion to their length (Little's law per length class): the
    in-flight mean is ``E[O^2] / E[O] = mean (1 + cv^2)`` before clipping, not ``mean``, and a
    sequence in flight is at a progress uniform on ``[0, O]``. At the Azure output spread (cv
    1.17) a batch's sequences are 2.4 times as long as the mean request: a KV budget sized on
    the mean over-admits, and the engine stalls with the cache full (the request level does).
    ``cv`` 0 is one length, the rule before.
    """

    mean: float
    cv: float = 0.0
    max_len: float = math.inf

    def _m(self, k: int) -> float:
        return length_moments(self.mean, self.cv, self.max_len, k)

    @property
    def in_flight(self) -> float:
        """Mean full generated length of a sequence in flight, ``E[O^2] / E[O]``."""
        return self.mean * self._m(2) / self._m(1)

    @property
    def progress_sd(self) -> float:
        """Standard deviation of the tokens generated so far by a sequence in flight:
        ``sqrt(E[O^3] / (3 E[O]) - (E[O^2] / (2 E[O]))^2)`` (``O / sqrt(12)`` at one length)."""
        m1, m2, m3 = self._m(1), self._m(2), self._m(3)
        return self.mean * math.sqrt(max(0.0, m3 / (3.0 * m1) - (m2 / (2.0 * m1)) ** 2))


def _prefill_attention_flops(r: _Replica, requests: float) -> float:
    """Causal attention FLOPs of prefilling ``requests`` prompts of the service's length mix.

    The new tokens of a prompt of ``P`` tokens whose first ``h P`` come from the prompt cache
    sit at positions ``h P .. P`` and each attends to every position before it, cached ones
    included: ``4 L w x integral of p dp = 2 L w P^2 (1 - h)(1 + h)`` per request (the request
    level's ``4 L w (p c + c^2 / 2)`` per chunk of ``c`` tokens from position ``p``, summed over
    a prompt's chunks, ``sim/serving/steps.py``), times ``E[L^2] / mean^2`` over the length mix
    (:func:`prompt_moments`: attention grows with the square of the prompt). Without a cache
    hit this is ``2 L w P^2``; the rule before dropped the ``(1 + h)``, the attention of the new
    tokens to the cached prefix."""
    m = r.model
    sq = r.prompt_moments[1]
    new = r.prefill_tokens  # (1 - h) P
    hit = 1.0 - new / r.input_tokens
    return 2.0 * m.layers * m.attention_width * r.input_tokens * new * (1.0 + hit) * sq * requests


@dataclass(frozen=True)
class DecodeAttention:
    """Decode attention of one iteration of a replica: ``fixed_s + s_per_sequence x seqs +
    s_per_context_token x context tokens`` for ``seqs`` decoding sequences holding that many
    tokens of KV cache in total (nothing when none decodes). The KV read at the part's measured
    HBM efficiency, sharded over the replica's GPUs; each layer's kernel also has a fixed cost
    and one per sequence (measured at an empty cache, catalog ``efficiency.decode_attention_*``),
    paid on every GPU of the replica. The one definition both levels use: the fluid iteration
    (:func:`_iteration`, at the mean context) and the request level's step model
    (``sim/serving/steps.py``, at the contexts in flight)."""

    fixed_s: float
    s_per_sequence: float
    s_per_context_token: float

    def time(self, seqs: float, context_tokens: float) -> float:
        if seqs <= 0:
            return 0.0
        return self.fixed_s + self.s_per_sequence * seqs + self.s_per_context_token * context_tokens


def _decode_attention(r: _Replica) -> DecodeAttention:
    eff = r.hw.efficiency
    layers = r.model.layers
    return DecodeAttention(
        fixed_s=layers * eff.decode_attention_latency_s,
        s_per_sequence=layers * eff.decode_attention_per_sequence_s,
        s_per_context_token=r.kv_bytes_per_token
        / r.gpus
        / (r.hw.hbm_bandwidth_bytes_per_s * eff.hbm),
    )


def _token_time(r: _Replica, tokens: float) -> tuple[float, float, float]:
    """The terms of an iteration that scale with its ``tokens`` (decode and prefill alike): the
    weight GEMMs (:func:`_gemm_time`), the tensor-parallel all-reduces (2 per layer) and the
    expert all-to-all (FP8 dispatch and combine per MoE layer); ``(gemm, tp, ep)`` seconds. The
    request level tabulates their sum per token count (``sim/serving/steps.py``)."""
    m, hw = r.model, r.hw
    t_gemm = _gemm_time(
        r, tokens, peak_flops(hw, r.precision), hw.hbm_bandwidth_bytes_per_s, r.gpus
    )
    act = tokens * m.hidden_size * 2.0
    t_tp = 2.0 * m.layers * all_reduce_time_s(act, r.tp, hw, r.tp) if r.tp > 1 else 0.0
    t_ep = 0.0
    if r.ep > 1:
        moe_layers = m.layers - m.dense_layers
        a2a = tokens / r.gpus * m.experts_per_token * m.hidden_size * 1.0  # FP8 dispatch
        t_ep = 2.0 * moe_layers * all_to_all_time_s(a2a, r.ep, hw, r.gpus)
    return t_gemm, t_tp, t_ep


def _iteration(r: _Replica, batch: int) -> tuple[float, dict[str, float]]:
    """Time of one decode iteration with ``batch`` sequences (plus piggybacked prefill)."""
    hw = r.hw
    peak_attn = _bf16_peak(hw)
    # prefill admitted per iteration: batch / generated requests, of E[L] tokens each
    admitted = 0.0 if r.disaggregated else batch / r.gen_tokens
    prefill = admitted * r.prefill_tokens * r.prompt_moments[0]
    tokens = batch + prefill
    t_gemm, t_tp, t_ep = _token_time(r, tokens)
    t_kv = _decode_attention(r).time(batch, batch * r.mean_context)
    t_pattn = _prefill_attention_flops(r, admitted) / r.gpus / (peak_attn * hw.efficiency.attention)
    t = t_gemm + t_kv + t_pattn + t_tp + t_ep + cal.DECODE_STEP_OVERHEAD_S
    return t, {"gemm_s": t_gemm, "kv_read_s": t_kv, "prefill_attention_s": t_pattn, "tp_s": t_tp}


#: Dense BF16 rate per dense rate of each format, for a part whose table lacks BF16 (a prefill
#: part like Rubin CPX lists FP4 only): the NVIDIA ratio BF16 = FP8 / 2 = FP4 / 4 (GB200 2.5, 5
#: and 10 PF/s). Blackwell Ultra's FP4 is 6x its BF16, so this is only a fallback: the table wins.
_BF16_PER_FORMAT = {Precision.BF16: 1.0, Precision.FP8: 0.5, Precision.FP4: 0.25}


def _bf16_peak(part: HardwareSpec | PrefillAccelerator) -> float:
    """Dense BF16 FLOP/s of ``part``, where attention (QK^T, softmax, PV) runs.

    The part's own BF16 entry where its table has one; otherwise its widest listed format scaled
    by :data:`_BF16_PER_FORMAT`.
    """
    flops = part.peak_flops
    if Precision.BF16 in flops:
        return flops[Precision.BF16]
    widest = next(p for p in (Precision.FP8, Precision.FP4) if p in flops)
    return flops[widest] * _BF16_PER_FORMAT[widest]


def _prefill_peak(r: _Replica) -> float:
    """Dense peak FLOP/s of one prefill device (the replica's GPU, or the prefill pool's part)."""
    ph = r.prefill_hw
    if ph is None:
        return peak_flops(r.hw, r.precision)
    flops = ph.peak_flops
    if r.precision in flops:
        return flops[r.precision]
    # a prefill part without this format (e.g. FP4-only CPX for an FP8 model) runs its best one
    return max(flops.values())


def _prefill_time(r: _Replica, devices: float) -> float:
    """Time to prefill one request alone on ``devices`` prefill devices (compute-bound)."""
    peak = _prefill_peak(r)
    m = r.model
    tokens = max(r.prefill_tokens * r.prompt_moments[0], 1.0)
    w = 2.0 * tokens * m.matmul_params_active / m.layers / max(devices, 1.0)
    # a prefill part that is not a GPU of the catalog (Rubin CPX) has no measured efficiency
    # of its own: it is taken as the replica's GPU generation's
    eff_hw = r.prefill_hw if isinstance(r.prefill_hw, HardwareSpec) else r.hw
    t_mm = (
        2.0
        * m.matmul_params_active
        * tokens
        / devices
        / (peak * gemm_efficiency(w, eff_hw, r.precision, fused=r.fused))
    )
    attn_peak = _bf16_peak(r.hw if r.prefill_hw is None else r.prefill_hw)
    t_attn = _prefill_attention_flops(r, 1.0) / devices / (attn_peak * eff_hw.efficiency.attention)
    return t_mm + t_attn


def _prefill_width(r: _Replica) -> float:
    """Devices one request's prefill runs on in a disaggregated pool: a prefill instance as wide
    as its decode replica (DistServe and Splitwise pair prefill and decode instances of the same
    parallelism), which on a companion part is the replica's share of the domain's parts
    (Rubin CPX: 144 per 72-package rack, 2 per GPU), and never fewer than hold the weights in
    the part's memory (the usable share of HBM applied to it too). One device per request, as
    before, put a 100k-token DeepSeek-R1 prefill on a single CPX (TTFT ~10-19 s against
    <1 s co-located on the replica's GPUs)."""
    ph = r.prefill_hw
    assert ph is not None
    if isinstance(ph, PrefillAccelerator):
        width = r.gpus * ph.count_per_domain / r.hw.domain_gpus
        memory = ph.memory_bytes
    else:
        width = float(r.gpus)
        memory = ph.hbm_bytes
    hold = math.ceil(r.weight_bytes / (memory * cal.HBM_USABLE_FRACTION))
    return float(max(width, hold, 1))


def _kv_transfer_time(r: _Replica) -> float:
    """Moving one prompt's KV cache from the prefill instance to the decode replica over the
    replica's scale-out NICs (the fabric), counted as fully exposed: engines that stream it
    layer by layer (Mooncake, DistServe) hide most of it, so this is an upper bound. At 100k
    tokens of DeepSeek-R1 (MLA, ~35 kB/token at FP8) over 8 x 1.6 Tb/s it is ~3 ms. The link
    is the catalog's ``scaleout_bandwidth_bits_per_s`` of the decode GPUs (Rubin: one 1.6 Tb/s
    ConnectX-9 per GPU, hardware.md S30; Rubin CPX has no NVLink and reaches the fabric through
    its tray's ConnectX-9, hardware.md S39); Mooncake moves KV at 87-190 GB/s per 8-GPU node,
    close to its NICs' line rate (network-and-serving.md B4 [N34])."""
    return r.input_tokens * _kv_transfer_s_per_token(r)


def _kv_transfer_s_per_token(r: _Replica) -> float:
    return r.kv_bytes_per_token / (r.gpus * r.hw.scaleout_bandwidth_bits_per_s / 8.0)


@dataclass(frozen=True)
class PrefillCosts:
    """What one request costs a disaggregated prefill pool, for the request-level simulator.

    One prefill instance is ``devices`` parts wide (:func:`_prefill_width`); a request whose
    prompt has ``c`` cached and ``n`` new tokens occupies one instance for
    ``fixed_s + s_per_token x n + s_per_attention_unit x (c n + n^2 / 2)`` seconds (the same
    terms as :func:`_prefill_time`: the weight GEMMs ``2 x active params x n`` at the part's
    peak and the GEMM efficiency ``ceiling x w / (w + GEMM_HALF_EFFICIENCY_FLOP)``, which adds
    the fixed ``GEMM_HALF_EFFICIENCY_FLOP x layers / (peak x ceiling)``; causal attention ``4 L
    width`` FLOPs per (token x position) at the BF16 peak), then its KV cache, ``prompt x
    transfer_s_per_token``, crosses the fabric to the decode replica. ``instances_per_replica``
    is the pool one decode replica needs at its planned rate (:func:`_point`)."""

    devices: float
    instances_per_replica: float
    fixed_s: float
    s_per_token: float
    s_per_attention_unit: float
    transfer_s_per_token: float

    def service_s(self, new_tokens: float, cached_tokens: float) -> float:
        """Seconds one prefill instance is busy with a request (mean-field check of the terms)."""
        n, c = new_tokens, cached_tokens
        return self.fixed_s + self.s_per_token * n + self.s_per_attention_unit * (c * n + n * n / 2)


def _prefill_costs(r: _Replica, instances_per_replica: float) -> PrefillCosts:
    m = r.model
    devices = _prefill_width(r)
    peak = _prefill_peak(r)
    eff_hw = r.prefill_hw if isinstance(r.prefill_hw, HardwareSpec) else r.hw
    eff = eff_hw.efficiency
    ceiling = eff.gemm_kernel_at(r.precision) if r.fused else eff.gemm_at(r.precision)
    attn_peak = _bf16_peak(r.hw if r.prefill_hw is None else r.prefill_hw)
    return PrefillCosts(
        devices=devices,
        instances_per_replica=instances_per_replica,
        fixed_s=cal.GEMM_HALF_EFFICIENCY_FLOP * m.layers / (peak * ceiling),
        s_per_token=2.0 * m.matmul_params_active / devices / (peak * ceiling),
        s_per_attention_unit=4.0
        * m.layers
        * m.attention_width
        / devices
        / (attn_peak * eff.attention),
        transfer_s_per_token=_kv_transfer_s_per_token(r),
    )


def _prompt_lengths(r: _Replica) -> tuple[queueing.LengthGrid, np.ndarray, np.ndarray]:
    """The prompt-length quadrature (:func:`sim.perf.queueing.length_grid`: the lognormal of
    ``input_cv`` clipped at the context window, as the request level draws prompts) and each
    node's new and cached tokens (the prompt-cache hit rate applied to every length)."""
    grid = queueing.length_grid(float(r.input_tokens), r.input_cv, float(r.model.max_seq_len - 1))
    new = grid.tokens * (r.prefill_tokens / r.input_tokens)
    return grid, new, grid.tokens - new


def _colocated_prefill_s(r: _Replica, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """A co-located replica's prefill of each prompt length of :func:`_prompt_lengths`, as
    chunked prefill runs it: ``(busy, first)`` seconds per node.

    The prompts' chunks are one FCFS stream (vLLM V1 / Sarathi-Serve: the budget goes first to
    the requests being prefilled, in admission order): every iteration carries the ``batch``
    decode tokens and up to ``chunk = max_batched_tokens - batch`` prompt tokens. An iteration
    with ``x`` prompt tokens costs ``fixed + g x + attention``: ``fixed`` the decode-only
    iteration (weight GEMMs of ``batch`` tokens, their KV read at the mean context, the step
    overhead), ``g`` the GEMM time per prompt token (the replica's ``G(batch + chunk) -
    G(batch)`` over the chunk: exact for a full chunk), and the chunks' causal attention at the
    BF16 peak (``4 L w x (cached x new + new^2 / 2)`` FLOPs over the prompt, however it is cut).
    ``busy``: the stream's time on a prompt, ``(new / chunk) x fixed + g new + attention`` (a
    short prompt shares its iteration); ``first``: its first token, at the end of its last
    chunk's iteration, ``ceil(new / chunk) x fixed + g new + attention``. These are the terms
    of the request level's iterations (``sim/serving/steps.py``)."""
    _, new, cached = _prompt_lengths(r)
    chunk = float(max(r.max_batched_tokens - batch, 1))
    t_dec = sum(_token_time(r, float(batch)))
    g = (sum(_token_time(r, batch + chunk)) - t_dec) / chunk
    fixed = (
        t_dec
        + _decode_attention(r).time(batch, batch * r.mean_context)
        + cal.DECODE_STEP_OVERHEAD_S
    )
    m = r.model
    attn_unit = (
        4.0 * m.layers * m.attention_width / r.gpus / (_bf16_peak(r.hw) * r.hw.efficiency.attention)
    )
    rest = g * new + attn_unit * (cached * new + 0.5 * new * new)
    return new / chunk * fixed + rest, np.ceil(new / chunk) * fixed + rest


def _colocated_ttft_p99(r: _Replica, batch: int, rate_per_s: float) -> float:
    """p99 TTFT of a co-located replica taking ``rate_per_s`` requests: the chunked-prefill
    stream (:func:`_colocated_prefill_s`) is one server, so the wait is M/G/1's
    (Pollaczek-Khinchine mean, exponential tail: :func:`sim.perf.queueing.wait_tail`) at its
    utilisation ``rate x E[busy]``, and TTFT = wait + the prompt's own ``first``
    (:func:`sim.perf.queueing.quantile`, over the prompt lengths)."""
    grid, _, _ = _prompt_lengths(r)
    busy, first = _colocated_prefill_s(r, batch)
    wait = queueing.wait_tail(rate_per_s, grid.mean(busy), grid.mean(busy * busy), 1)
    return queueing.quantile(grid, first, wait, TTFT_QUANTILE)


def _pool_ttft(
    r: _Replica, instances: float, rate_per_s: float, after_s: float
) -> tuple[queueing.LengthGrid, np.ndarray, queueing.WaitTail]:
    """TTFT behind a disaggregated prefill pool of ``instances`` prefill instances (one
    replica's share) taking ``rate_per_s`` requests: the prompt-length quadrature, each
    length's own time and the pool's wait (:func:`sim.perf.queueing.quantile` of them is the
    p99 TTFT).

    The pool as the request level runs it (``sim/serving/simulator.py``
    ``prefill_pool_ready_s``): ``c = ceil(instances)`` FCFS instances, each at ``instances /
    c`` of an instance's speed; a prompt takes one for the :class:`PrefillCosts` terms of its
    length (:func:`_prompt_lengths`), then its KV crosses the fabric. The wait is M/G/c's
    (Erlang C, Allen-Cunneen mean, exponential tail: :func:`sim.perf.queueing.wait_tail`);
    TTFT = wait + prefill + transfer + ``after_s`` (the decode side: its queue and first
    iteration, :func:`_point`)."""
    grid, new, cached = _prompt_lengths(r)
    costs = _prefill_costs(r, instances)
    one = (
        costs.fixed_s
        + costs.s_per_token * new
        + costs.s_per_attention_unit * (cached * new + 0.5 * new * new)
    )
    servers = max(math.ceil(instances - 1e-9), 1)
    busy = one * (servers / instances)
    own = busy + grid.tokens * costs.transfer_s_per_token + after_s
    wait = queueing.wait_tail(rate_per_s, grid.mean(busy), grid.mean(busy * busy), servers)
    return grid, own, wait


def _pool_instances(
    r: _Replica, base: float, rate_per_s: float, after_s: float, ttft_s: float | None
) -> float:
    """Prefill instances one decode replica's pool needs: ``base`` (the pool that keeps up at
    the replica's full rate, busy ``SERVER_MAX_UTILIZATION`` at the planned rate), or, when
    that pool's p99 TTFT misses the target ``ttft_s``, the smallest larger pool that meets it
    (bisection to 0.1%; the wait falls as the pool grows). A target that even an idle pool
    misses (the p99 prompt's own prefill is too long) keeps ``base``: the replica does not meet
    it whatever the pool."""
    if ttft_s is None:
        return base
    p = 1.0 - TTFT_QUANTILE

    def ok(m: float, rate: float = rate_per_s) -> bool:
        return queueing.tail_probability(ttft_s, *_pool_ttft(r, m, rate, after_s)) <= p

    if ok(base):
        return base
    if not ok(1.0, 0.0):  # an idle pool of whole instances: no wait, full speed
        return base
    lo, hi = base, 2.0 * base
    while not ok(hi):
        lo, hi = hi, 2.0 * hi
        if hi > 1e6 * max(base, 1.0):
            return base
    while hi - lo > 1e-3 * hi:
        mid = 0.5 * (lo + hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _point(
    r: _Replica, batch: int, targets: bool, ttft_s: float | None = None
) -> InferenceEstimate:
    """One operating point of replica ``r`` at ``batch`` sequences.

    Without ``targets`` the figures are means at full load (a curve's points): TTFT = one
    prompt's prefill (mean over the lengths) + KV transfer + one iteration. With ``targets``
    the replica runs at ``SERVER_MAX_UTILIZATION`` of its full rate and the latencies are p99s:
    TPOT = ``P99_OVER_MEAN_LATENCY`` x the iteration (the decode side: batch composition
    varies step to step), TTFT the p99 of the prefill queue's wait plus the prompt's own
    prefill over the prompt-length spread (:mod:`sim.perf.queueing`): co-located, the
    chunked-prefill stream of the replica (:func:`_colocated_ttft_p99`); disaggregated, the
    replica's prefill pool (:func:`_pool_ttft`) plus ``P99_OVER_MEAN_LATENCY`` x one
    iteration on the decode side. A disaggregated pool is sized to keep up at the replica's
    full rate, and larger when that misses the TTFT target ``ttft_s``
    (:func:`_pool_instances`): its devices are counted in the replica's GPUs per token."""
    t_iter, _ = _iteration(r, batch)
    per_replica = batch / t_iter
    util = cal.SERVER_MAX_UTILIZATION if targets else 1.0
    rate = per_replica * util / r.gen_tokens  # requests/s at the operating point
    prefill_devices = 0.0
    if r.disaggregated:
        # prefill pool sized to keep up: request rate x device-seconds of one request's prefill
        width = _prefill_width(r)
        t_prefill = _prefill_time(r, width)
        base = per_replica / r.gen_tokens * t_prefill
        if targets:
            after = cal.P99_OVER_MEAN_LATENCY * t_iter
            instances = _pool_instances(r, base, rate, after, ttft_s)
            ttft = queueing.quantile(*_pool_ttft(r, instances, rate, after), TTFT_QUANTILE)
        else:
            instances = base
            ttft = t_prefill + _kv_transfer_time(r) + t_iter
        prefill_devices = instances * width
    elif targets:
        ttft = _colocated_ttft_p99(r, batch, rate)
    else:
        ttft = _prefill_time(r, float(r.gpus)) + t_iter
    per_replica *= util
    gpus_total = r.gpus + prefill_devices
    return InferenceEstimate(
        output_tokens_per_s_per_gpu=per_replica / gpus_total,
        batch=batch,
        ttft_s=ttft,
        tpot_s=t_iter * (cal.P99_OVER_MEAN_LATENCY if targets else 1.0),
        replica_gpus=r.gpus,
        tp=r.tp,
        ep=r.ep,
        output_tokens_per_s_per_replica=per_replica,
        requests_per_s_per_replica=per_replica / r.gen_tokens,
        prefill_gpus_per_replica=prefill_devices,
        max_batch_kv=r.max_batch_kv,
        max_seqs=r.max_seqs,
        kv_cache_bytes_per_replica=max(0.0, r.kv_capacity_bytes),
        precision=r.precision.value,
        kv_cache=r.kv_cache,
        runtime=r.runtime,
    )


def _make_replica(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision,
    tp: int,
    ep: int,
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int,
    prompt_cache_hit: float,
    prefill_hw: HardwareSpec | PrefillAccelerator | None,
    kv_cache: str = "reserved",
    runtime: str = "fused",
    max_seqs: int = MAX_BATCH,
    input_cv: float = 0.0,
    output_cv: float = 0.0,
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS,
) -> _Replica:
    if tp < 1 or ep < 1:
        raise PerfError(f"TP and EP must be >= 1 (got TP{tp}, EP{ep})")
    if tp * ep > hw.domain_gpus:
        raise PerfError(
            f"TP{tp} x EP{ep} = {tp * ep} GPUs exceeds the {hw.domain_gpus}-GPU scale-up domain"
            f" of {hw.display_name}"
        )
    if model.heads % tp:
        raise PerfError(f"TP{tp} does not divide the model's {model.heads} attention heads")
    if ep > 1 and (not model.is_moe or model.experts % ep):
        raise PerfError(f"EP{ep} needs a mixture-of-experts model with a multiple of {ep} experts")
    gen = output_tokens + reasoning_tokens
    r = _Replica(
        model=model,
        hw=hw,
        precision=precision,
        tp=tp,
        ep=ep,
        input_tokens=input_tokens,
        prefill_tokens=input_tokens * (1.0 - prompt_cache_hit),
        gen_tokens=gen,
        prefill_hw=prefill_hw,
        kv_cache=kv_cache,
        runtime=_check_runtime(runtime),
        max_seqs=_check_max_seqs(max_seqs),
        input_cv=_check_cv(input_cv),
        output_cv=_check_cv(output_cv, "output_cv"),
        max_batched_tokens=_check_max_batched_tokens(max_batched_tokens),
    )
    if r.kv_capacity_bytes <= 0 or r.max_batch_kv < 1:
        need = r.weight_bytes / 1e9
        have = r.gpus * hw.hbm_bytes * cal.HBM_USABLE_FRACTION / 1e9
        raise PerfError(
            f"{model.display_name or 'the model'} at {precision.value} needs {need:.0f} GB of"
            f" weights plus KV cache for one {input_tokens + gen}-token sequence; TP{tp} x EP{ep}"
            f" on {hw.display_name} has {have:.0f} GB usable"
        )
    return r


def _best_batch(r: _Replica, ttft_s: float | None, tpot_s: float | None) -> InferenceEstimate:
    targets = ttft_s is not None or tpot_s is not None
    b_max = min(r.max_batch_kv, r.max_seqs)

    def ok(b: int) -> bool:
        pt = _point(r, b, targets, ttft_s)
        return (tpot_s is None or pt.tpot_s <= tpot_s) and (ttft_s is None or pt.ttft_s <= ttft_s)

    limited = "kv_cache" if r.max_batch_kv <= r.max_seqs else "max_seqs"
    if not ok(b_max):
        if not ok(1):
            pt = _point(r, 1, targets, ttft_s)
            return _replace(pt, limited_by="latency_target_unreachable", meets_targets=False)
        lo, hi = 1, b_max  # ok(lo), not ok(hi); latency grows with batch
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                lo = mid
            else:
                hi = mid
        b_max = lo
        pt_hi = _point(r, hi, targets, ttft_s)
        limited = "tpot" if tpot_s is not None and pt_hi.tpot_s > tpot_s else "ttft"
    return _replace(_point(r, b_max, targets, ttft_s), limited_by=limited)


def _replace(e: InferenceEstimate, **kw: object) -> InferenceEstimate:
    from dataclasses import replace

    return replace(e, **kw)  # type: ignore[arg-type]


def _check_inputs(input_tokens: int, output_tokens: int, reasoning: int, hit: float) -> None:
    if input_tokens < 1 or output_tokens < 1 or reasoning < 0:
        raise PerfError(
            f"token lengths must be positive (input {input_tokens}, output {output_tokens},"
            f" reasoning {reasoning})"
        )
    if not 0.0 <= hit < 1.0:
        raise PerfError(f"prompt-cache hit rate must be in [0, 1) (got {hit})")


def _check_context(
    model: ModelShape, input_tokens: int, output_tokens: int, reasoning: int
) -> None:
    """A request must fit the model's context window (prompt, reasoning and output together)."""
    total = input_tokens + output_tokens + reasoning
    if total > model.max_seq_len:
        raise PerfError(
            f"a request of {total:,} tokens (input {input_tokens:,} + reasoning {reasoning:,} +"
            f" output {output_tokens:,}) exceeds the model's context window of"
            f" {model.max_seq_len:,} tokens"
        )


def _check_kv_cache(kv_cache: str) -> str:
    if kv_cache not in KV_CACHE_POLICIES:
        raise PerfError(
            f"unknown kv_cache {kv_cache!r} (use one of: {', '.join(KV_CACHE_POLICIES)})"
        )
    return kv_cache


def _check_max_seqs(max_seqs: int) -> int:
    if max_seqs < 1:
        raise PerfError(f"max_seqs must be at least 1 (got {max_seqs})")
    return int(max_seqs)


def _check_max_batched_tokens(tokens: int) -> int:
    if tokens < 1:
        raise PerfError(f"max_batched_tokens must be at least 1 (got {tokens})")
    return int(tokens)


def _check_cv(cv: float, name: str = "input_cv") -> float:
    if not 0.0 <= cv <= 10.0:
        raise PerfError(f"{name} must be in [0, 10] (got {cv})")
    return float(cv)


def _check_runtime(runtime: str) -> str:
    if runtime not in SERVING_RUNTIMES:
        raise PerfError(
            f"unknown serving runtime {runtime!r} (use one of: {', '.join(SERVING_RUNTIMES)})"
        )
    return runtime


def _tp_options(model: ModelShape, hw: HardwareSpec, ep: int) -> list[int]:
    out, t = [], 1
    while t * ep <= hw.domain_gpus:
        if model.heads % t == 0:
            out.append(t)
        t *= 2
    return out


def estimate_inference(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision | str,
    *,
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    prompt_cache_hit: float = 0.0,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    tp: int | None = None,
    ep: int = 1,
    prefill_hw: HardwareSpec | PrefillAccelerator | None = None,
    kv_cache: str = "reserved",
    runtime: str = "fused",
    max_seqs: int = MAX_BATCH,
    input_cv: float = 0.0,
    output_cv: float = 0.0,
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS,
) -> InferenceEstimate:
    """Best output tokens/s per GPU of one replica that meets the latency targets (if any).

    ``tp`` None tries every tensor-parallel size inside the scale-up domain that holds the
    weights and keeps the one with the most tokens/s per GPU (at equal throughput the smallest).
    Without targets the result is the offline maximum. ``kv_cache`` is how the engine sizes
    the KV cache (:data:`KV_CACHE_POLICIES`, :func:`kv_tokens_per_sequence`); ``runtime`` how
    it runs quantized layers (:data:`SERVING_RUNTIMES`); ``max_seqs`` the engine's cap on
    sequences in flight (a scenario's ``serving.max_seqs``, :data:`DEFAULT_MAX_SEQS`; the
    request level caps its running batch at the same); ``input_cv`` the spread of prompt
    lengths (lognormal, :func:`prompt_moments`: prefill work is the mean over the lengths, not
    that of a mean-length prompt; 0, the default, is one prompt length; the p99 TTFT is over
    the lengths, :func:`_point`); ``output_cv`` the spread of generated lengths
    (:class:`GenerationMix`: the batch holds the long ones longer, so its KV cache and attention
    reads are sized on the in-flight lengths); ``max_batched_tokens`` the engine's token budget
    per iteration, in whose chunks a co-located replica prefills
    (:data:`DEFAULT_MAX_BATCHED_TOKENS`, a scenario's ``serving.max_batched_tokens``). Raises
    :class:`PerfError` if the model does not fit.
    """
    p = to_precision(precision)
    peak_flops(hw, p)
    _check_inputs(input_tokens, output_tokens, reasoning_tokens, prompt_cache_hit)
    _check_context(model, input_tokens, output_tokens, reasoning_tokens)
    _check_kv_cache(kv_cache)
    _check_runtime(runtime)
    tps = [tp] if tp is not None else _tp_options(model, hw, ep)
    best: InferenceEstimate | None = None
    first_error: PerfError | None = None
    for t in tps:
        try:
            r = _make_replica(
                model,
                hw,
                p,
                t,
                ep,
                input_tokens,
                output_tokens,
                reasoning_tokens,
                prompt_cache_hit,
                prefill_hw,
                kv_cache,
                runtime,
                max_seqs,
                input_cv,
                output_cv,
                max_batched_tokens,
            )
        except PerfError as exc:
            first_error = first_error or exc
            continue
        est = _best_batch(r, ttft_s, tpot_s)
        if best is None or _better(est, best):
            best = est
    if best is None:
        if first_error is not None:
            raise first_error
        raise PerfError(
            f"no tensor-parallel width fits EP{ep} inside the {hw.domain_gpus}-GPU scale-up"
            f" domain of {hw.display_name}"
        )
    return best


def _better(a: InferenceEstimate, b: InferenceEstimate) -> bool:
    if a.meets_targets != b.meets_targets:
        return a.meets_targets
    return a.output_tokens_per_s_per_gpu > b.output_tokens_per_s_per_gpu * (1 + 1e-9)


def inference_curve(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision | str,
    *,
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    prompt_cache_hit: float = 0.0,
    tp: int | None = None,
    ep: int = 1,
    prefill_hw: HardwareSpec | PrefillAccelerator | None = None,
    batches: list[int] | None = None,
    kv_cache: str = "reserved",
    runtime: str = "fused",
    max_seqs: int = MAX_BATCH,
    input_cv: float = 0.0,
    output_cv: float = 0.0,
) -> list[InferenceEstimate]:
    """Throughput/latency curve: one point per batch size (powers of two up to the KV limit).

    ``tp`` None uses the TP of the offline optimum. Latencies are means (no p99 factor).
    """
    p = to_precision(precision)
    _check_inputs(input_tokens, output_tokens, reasoning_tokens, prompt_cache_hit)
    _check_context(model, input_tokens, output_tokens, reasoning_tokens)
    _check_kv_cache(kv_cache)
    if tp is None:
        tp = estimate_inference(
            model,
            hw,
            p,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
            prompt_cache_hit=prompt_cache_hit,
            ep=ep,
            prefill_hw=prefill_hw,
            kv_cache=kv_cache,
            runtime=runtime,
            max_seqs=max_seqs,
            input_cv=input_cv,
            output_cv=output_cv,
        ).tp
    r = _make_replica(
        model,
        hw,
        p,
        tp,
        ep,
        input_tokens,
        output_tokens,
        reasoning_tokens,
        prompt_cache_hit,
        prefill_hw,
        kv_cache,
        runtime,
        max_seqs,
        input_cv,
        output_cv,
    )
    b_max = min(r.max_batch_kv, r.max_seqs)
    if batches is None:
        batches = [2**k for k in range(int(math.log2(b_max)) + 1)]
        if batches[-1] != b_max:
            batches.append(b_max)
    return [_point(r, b, targets=False) for b in batches if 1 <= b <= b_max]


#: Where a service's prompts are prefilled (scenario ``workloads.inference[].prefill``,
#: ``aifactory estimate serve --prefill``): see :func:`mix_domain`.
PREFILL_MODES = ("auto", "colocated", "companion", "hybrid")


@dataclass(frozen=True)
class DomainMix:
    """How one scale-up domain (or an ``estimate serve`` deployment) serves a service.

    ``mode``: ``colocated`` (every replica prefills its own prompts, chunked), ``companion``
    (every replica decodes only; prompts are prefilled on the domain's companion parts) or
    ``hybrid`` (``companion_replicas`` decode-only replicas fed by the companion parts, and
    ``gpu_replicas`` whose prompts are prefilled on the GPUs: co-located, or, ``gpu_kind``
    ``gpu_prefill``, decode-only replicas fed by prefill instances on ``gpu_prefill_gpus`` of
    the domain's GPUs). Replica counts are averages over domains and may be fractional (the KV
    cache crosses the scale-out fabric, so a decode replica can take prefills from any rack's
    parts). ``companion`` and ``gpu`` are the estimates of one replica of each kind (None when
    not used); the figures are output tokens/s of the whole domain."""

    mode: str
    capacity_tokens_per_s: float
    gpus: int
    parts: float
    companion: InferenceEstimate | None
    companion_replicas: float
    gpu: InferenceEstimate | None
    gpu_kind: str
    gpu_replicas: float
    gpu_prefill_gpus: float
    companion_parts_used: float
    #: replicas the GPUs hold (:func:`replica_slots`)
    slots: int

    @property
    def replicas(self) -> float:
        """Serving (decoding) replicas of the domain."""
        return self.companion_replicas + self.gpu_replicas

    @property
    def main(self) -> InferenceEstimate:
        """The estimate of the replica kind serving most of the tokens."""
        if self.companion is None:
            assert self.gpu is not None
            return self.gpu
        if self.gpu is None:
            return self.companion
        a = self.companion.output_tokens_per_s_per_replica * self.companion_replicas
        b = self.gpu.output_tokens_per_s_per_replica * self.gpu_replicas
        return self.companion if a >= b else self.gpu

    @property
    def limited_by(self) -> str:
        """``prefill`` when the companion parts leave GPUs idle (``companion`` mode), else
        ``decode``."""
        return (
            "prefill"
            if self.mode == "companion" and self.replicas < self.slots - 1e-9
            else "decode"
        )


def replica_slots(gpus: int, domain_gpus: int, replica_gpus: int) -> int:
    """Replicas of ``replica_gpus`` that ``gpus`` GPUs hold when a replica lives inside one
    scale-up domain of ``domain_gpus`` (a TP16 replica: 4 per 72-GPU rack, 8 in two racks, not
    9); GPUs left over in a domain stay idle."""
    whole, rest = divmod(gpus, domain_gpus)
    return whole * (domain_gpus // replica_gpus) + rest // replica_gpus


def mix_domain(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision | str,
    *,
    gpus: int,
    mode: str = "auto",
    parts: float | None = None,
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    prompt_cache_hit: float = 0.0,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    tp: int | None = None,
    ep: int = 1,
    kv_cache: str = "reserved",
    runtime: str = "fused",
    max_seqs: int = MAX_BATCH,
    input_cv: float = 0.0,
    output_cv: float = 0.0,
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS,
) -> DomainMix:
    """The most output tokens/s that ``gpus`` GPUs of ``hw`` (and ``parts`` of its companion
    prefill accelerator, default one domain's pro rata) serve at the latency targets.

    Three kinds of replica, each at its own best batch (:func:`estimate_inference` with the TP
    fixed): ``K``, decode-only fed by the companion parts, ``x_K`` tokens/s and ``d_K`` parts
    busy per replica; ``C``, co-located, ``x_C``; ``G``, decode-only fed by prefill instances
    on the same GPUs (DistServe's split on one GPU type), ``x_G`` and ``d_G`` GPUs per replica.
    A replica is ``g`` GPUs; ``S = gpus // g`` fit. The domain solves the linear programme

        max  x_K n_K + x_C n_C + x_G n_G
        s.t. g (n_K + n_C + n_G) + d_G n_G <= g S     (GPUs)
             d_K n_K <= parts                         (companion parts)

    whose optimum (one GPU constraint, the parts bound only ``n_K``) is greedy: ``n_K =
    min(S, parts / d_K)`` when a ``K`` replica's tokens per GPU ``x_K / g`` are at least the
    better of ``x_C / g`` and ``x_G / (g + d_G)`` (its prefill costs no GPU time), and the GPUs
    left go to that better kind. ``companion`` keeps only ``n_K`` (GPUs the parts cannot feed
    stay idle: the rule before the hybrid), ``hybrid`` the whole optimum, ``colocated`` only
    ``C`` at the TP with the most tokens/s per GPU (:func:`estimate_inference`, unchanged),
    and ``auto`` the most capacity of the three (colocated on a domain without companion
    parts). ``tp`` None tries every TP of the domain and keeps the best domain. Every replica
    kind meets the targets on its own (its TTFT is its own prefill path's). The co-located
    replica's prefill rides in its decode iterations and stretches them (fewer sequences at the
    TPOT target); a ``G`` replica's prefill GPUs are taken out of decode whole: the GPU time
    the excess prefill costs is counted either way.
    """
    if mode not in PREFILL_MODES:
        raise PerfError(f"unknown prefill mode {mode!r} (use one of: {', '.join(PREFILL_MODES)})")
    companion = hw.prefill_accelerator
    if mode in ("companion", "hybrid") and companion is None:
        raise PerfError(
            f"{hw.display_name} has no companion prefill accelerator (its catalog entry has no"
            " prefill_accelerator): use colocated"
        )
    common: dict[str, object] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning_tokens,
        "prompt_cache_hit": prompt_cache_hit,
        "ttft_s": ttft_s,
        "tpot_s": tpot_s,
        "ep": ep,
        "kv_cache": kv_cache,
        "runtime": runtime,
        "max_seqs": max_seqs,
        "input_cv": input_cv,
        "output_cv": output_cv,
        "max_batched_tokens": max_batched_tokens,
    }
    colocated: DomainMix | None = None
    if mode in ("colocated", "auto"):
        est = estimate_inference(model, hw, precision, tp=tp, **common)  # type: ignore[arg-type]
        slots = replica_slots(gpus, hw.domain_gpus, est.replica_gpus)
        colocated = DomainMix(
            "colocated",
            est.output_tokens_per_s_per_replica * slots if est.meets_targets else 0.0,
            gpus,
            0.0,
            None,
            0.0,
            est,
            "colocated",
            float(slots),
            0.0,
            0.0,
            slots,
        )
        if companion is None or mode == "colocated":
            return colocated
    assert companion is not None
    n_parts = companion.count_per_domain * gpus / hw.domain_gpus if parts is None else parts
    best: dict[str, DomainMix] = {}
    first_error: PerfError | None = None
    tps = [tp] if tp is not None else _tp_options(model, hw, ep)
    for t in tps:
        try:
            k = estimate_inference(model, hw, precision, tp=t, prefill_hw=companion, **common)  # type: ignore[arg-type]
            c = estimate_inference(model, hw, precision, tp=t, **common)  # type: ignore[arg-type]
            g_ = estimate_inference(model, hw, precision, tp=t, prefill_hw=hw, **common)  # type: ignore[arg-type]
        except PerfError as exc:
            first_error = first_error or exc
            continue
        g = k.replica_gpus
        slots = replica_slots(gpus, hw.domain_gpus, g)
        if slots < 1:
            continue
        for kind, mix in _mixes(k, c, g_, gpus, slots, n_parts).items():
            if kind not in best or mix.capacity_tokens_per_s > best[kind].capacity_tokens_per_s * (
                1 + 1e-9
            ):
                best[kind] = mix
    if not best:
        if colocated is not None:
            return colocated
        if first_error is not None:
            raise first_error
        raise PerfError(f"no replica of the model fits {gpus} GPUs of {hw.display_name}")
    if mode != "auto":
        return best[mode]
    # auto: the most capacity; at a tie the simpler arrangement (co-located, then companion)
    order = [m for m in (colocated, best.get("companion"), best.get("hybrid")) if m is not None]
    pick = order[0]
    for m in order[1:]:
        if m.capacity_tokens_per_s > pick.capacity_tokens_per_s * (1 + 1e-9):
            pick = m
    return pick


def _mixes(
    k: InferenceEstimate,
    c: InferenceEstimate,
    g_: InferenceEstimate,
    gpus: int,
    slots: int,
    parts: float,
) -> dict[str, DomainMix]:
    """The companion-only and the hybrid arrangement of one TP (see :func:`mix_domain`)."""
    g = float(k.replica_gpus)
    out: dict[str, DomainMix] = {}
    if k.meets_targets:
        n_k = min(float(slots), parts / max(k.prefill_gpus_per_replica, 1e-12))
        x_k = k.output_tokens_per_s_per_replica
        used = n_k * k.prefill_gpus_per_replica
        out["companion"] = DomainMix(
            "companion", x_k * n_k, gpus, parts, k, n_k, None, "", 0.0, 0.0, used, slots
        )
    else:  # kept for its message: no batch meets the targets
        out["companion"] = DomainMix(
            "companion", 0.0, gpus, parts, k, 0.0, None, "", 0.0, 0.0, 0.0, slots
        )
    # the better way to prefill on the GPUs, by tokens/s per GPU (prefill GPUs included)
    per_gpu_c = c.output_tokens_per_s_per_replica / g if c.meets_targets else 0.0
    d_g = g_.prefill_gpus_per_replica
    per_gpu_g = g_.output_tokens_per_s_per_replica / (g + d_g) if g_.meets_targets else 0.0
    rest, rest_kind, per_gpu_rest, d_rest = (
        (g_, "gpu_prefill", per_gpu_g, d_g)
        if per_gpu_g > per_gpu_c
        else (c, "colocated", per_gpu_c, 0.0)
    )
    if per_gpu_rest <= 0.0:
        out["hybrid"] = out["companion"]
        return out
    budget = slots * g
    if k.meets_targets and k.output_tokens_per_s_per_replica / g >= per_gpu_rest:
        n_k = out["companion"].companion_replicas
        used = out["companion"].companion_parts_used
        x_k = k.output_tokens_per_s_per_replica
    else:
        n_k, used, x_k = 0.0, 0.0, 0.0
    left = budget - n_k * g
    n_rest = left / (g + d_rest)
    if n_rest <= 1e-12:
        out["hybrid"] = out["companion"]
        return out
    cap = x_k * n_k + rest.output_tokens_per_s_per_replica * n_rest
    mode = "hybrid" if n_k > 0 else rest_kind
    out["hybrid"] = DomainMix(
        mode if mode != "gpu_prefill" else "hybrid",
        cap,
        gpus,
        parts,
        k if n_k > 0 else None,
        n_k,
        rest,
        rest_kind,
        n_rest,
        n_rest * d_rest,
        used,
        slots,
    )
    return out


def prefill_costs(
    model: ModelShape,
    hw: HardwareSpec,
    precision: Precision | str,
    estimate: InferenceEstimate,
    *,
    prefill_hw: HardwareSpec | PrefillAccelerator,
    input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    prompt_cache_hit: float = 0.0,
) -> PrefillCosts:
    """The prefill pool behind one decode replica of ``estimate`` (a disaggregated estimate on
    ``prefill_hw``): its instances' width and cost terms (:class:`PrefillCosts`) and the
    instances the replica needs at its planned rate (its prefill devices over the width)."""
    r = _make_replica(
        model,
        hw,
        to_precision(precision),
        estimate.tp,
        estimate.ep,
        input_tokens,
        output_tokens,
        reasoning_tokens,
        prompt_cache_hit,
        prefill_hw,
        estimate.kv_cache,
        estimate.runtime,
    )
    width = _prefill_width(r)
    return _prefill_costs(r, estimate.prefill_gpus_per_replica / width)
