"""Every fitted or assumed constant of the performance model, in one place.

Nothing here is specific to one validation case: each constant is a general property of the
software stack (GEMM kernels, NCCL, schedulers) that every estimate uses. The comment on each
says what it means, where its starting value comes from, and what it was fitted on. The cases
are those of ``shared/reference/validation.md`` sections A (training) and C (inference); the
fit was done once, by hand, on all of them together (see ``docs/performance-model.md``).
"""

from __future__ import annotations

from typing import Final

# --- compute -------------------------------------------------------------------------------
# The ceilings themselves (large-GEMM, attention, HBM and link efficiency) are measured per
# part and precision and live in the hardware catalog (``efficiency`` of each entry in
# sim/catalog/hardware.yaml). What stays here is how kernels of a training step fall short of
# them.
#
# Matmul kernel efficiency as a function of the work per kernel:
#     eff(w) = efficiency.gemm[precision] * w / (w + GEMM_HALF_EFFICIENCY_FLOP)
# where w is the matmul FLOPs one GPU does for one layer of one micro-batch (forward). Small
# GEMMs (few tokens, narrow shards) are launch-, wave- and memory-bound. Fitted on A.1-A.3
# (the micro-batch sizes of A.1 against A.3's).
GEMM_HALF_EFFICIENCY_FLOP: Final = 4.0e11

# Training runs kernels that are not GEMMs (norms, rotary, SwiGLU, residuals, FP8 amax/casts,
# loss, their backward passes), which serving engines largely fuse away. Their time is taken
# as this fraction of the matmul time (Megatron/NeMo profiles of Llama-class models show
# 15-25% of step time outside GEMMs and attention). Fitted on A.1-A.3 together.
TRAINING_NON_GEMM_OVERHEAD: Final = 0.20

# Extra compute of selective activation recompute (recompute SwiGLU/elementwise outputs in
# backward instead of storing them): elementwise, memory-bound work, a few % of a layer.
SELECTIVE_RECOMPUTE_OVERHEAD: Final = 0.03

# --- memory ---------------------------------------------------------------------------------
# Share of HBM usable for weights, optimizer state, activations and KV cache. The rest holds
# the CUDA context, NCCL buffers, allocator fragmentation and workspace.
HBM_USABLE_FRACTION: Final = 0.92
# Transient workspace reserved per GPU for inference (activations of one forward pass, CUDA
# graphs, sampling buffers), bytes.
INFERENCE_WORKSPACE_BYTES: Final = 4.0e9

# --- communication --------------------------------------------------------------------------
# Per-collective latency (launch + synchronisation), seconds.
SCALEUP_LATENCY_S: Final = 10e-6
SCALEOUT_LATENCY_S: Final = 30e-6

# Share of tensor-parallel communication hidden behind GEMMs (Transformer Engine userbuffers /
# Megatron --tp-comm-overlap split the all-gather/reduce-scatter into chunks pipelined with the
# GEMM). Fitted on A.1/A.2.
TP_COMM_OVERLAP: Final = 0.60
# Share of pipeline point-to-point traffic hidden (Megatron overlaps p2p in the interleaved
# schedule; what remains is the first send of each warm-up chain).
PP_P2P_OVERLAP: Final = 0.80
# Data-parallel gradient reduce-scatter and parameter all-gather are bucketed and overlapped
# with backward and forward compute (Megatron --overlap-grad-reduce/--overlap-param-gather,
# FSDP prefetch). They can hide behind at most this many micro-batches' worth of this GPU's
# compute: the grads of a model chunk are only final after its last micro-batch, so the
# overlap window is the tail of the step, not the whole step. Fitted on the scale trend of
# A.2 (512 -> 8,192 GPUs) and A.3 (512 -> 11,616 GPUs).
DP_OVERLAP_MICROBATCHES: Final = 2.0

# Expert-parallel all-to-all (MoE dispatch + combine) overlap with shared-expert/attention
# compute (DeepSeek-V3 DualPipe-style overlap hides most of it; plain Megatron hides little).
EP_COMM_OVERLAP: Final = 0.50

# --- inference ------------------------------------------------------------------------------
# Fixed cost per decode iteration (scheduler, sampling, kernel launches under CUDA graphs).
DECODE_STEP_OVERHEAD_S: Final = 2.0e-3
# Ratio of p99 to mean per-token latency under load (batch composition varies step to step):
# the fluid plan's p99 TPOT is this times its mean iteration, and a disaggregated replica's
# TTFT adds this times one iteration for its decode side (queue and first iteration). An
# assumption, fitted to nothing: no published case binds on it (docs/performance-model.md,
# sensitivity: 1.0% on the B200 server row). It no longer scales the prefill part of TTFT,
# which is the p99 of the prefill queue's wait plus the prompt's own prefill over the prompt
# lengths (sim/perf/queueing.py; sim/perf/inference.py ``_point``): at 100k-token prompts
# 1.5 x the mean prompt's TTFT was 35% short of the request level's p99.
P99_OVER_MEAN_LATENCY: Final = 1.5
# KV-cache allocation of the serving engines (engine defaults, not fitted; network-and-serving.md
# [N25] vLLM, [N26] TensorRT-LLM). TensorRT-LLM reserves whole blocks of 32 tokens per request;
# vLLM allocates blocks of 16 as sequences grow and keeps a 1% watermark of blocks free.
KV_BLOCK_TOKENS_RESERVED: Final = 32
KV_BLOCK_TOKENS_PAGED: Final = 16
PAGED_WATERMARK: Final = 0.01
# Headroom of a paged pool against the fluctuation of its running total (in standard deviations
# of the sum of B contexts at uniformly spread progress): at 2, about 2% of steps would overflow
# and preempt a request (assumption; vLLM's own preemption rate depends on the workload).
PAGED_HEADROOM_SIGMA: Final = 2.0
# Highest utilisation a replica can sustain under Poisson arrivals while meeting p99 latency
# targets (queueing headroom). Fitted on the MLPerf Server/Offline ratios of C.1 (0.88-0.93).
SERVER_MAX_UTILIZATION: Final = 0.90

# --- training state sizes (assumptions, not fitted) ----------------------------------------------
# Gradients are reduced in BF16 (MLPerf NeMo recipes, Meta's Llama 3 FSDP); parameters are
# all-gathered in the working precision's storage (BF16, or FP8 with --fp8-param-gather).
GRAD_REDUCE_BYTES: Final = 2.0
# Mixed-precision AdamW state per parameter: FP32 master copy + two FP32 moments.
OPTIMIZER_BYTES_PER_PARAM: Final = 12.0
