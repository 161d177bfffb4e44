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
# Matmul kernel efficiency as a function of the work per kernel:
#     eff(w) = GEMM_EFFICIENCY_MAX * w / (w + GEMM_HALF_EFFICIENCY_FLOP)
# where w is the matmul FLOPs one GPU does for one layer of one micro-batch (forward) or one
# serving iteration. Large GEMMs approach the ceiling (cuBLAS/cuBLASLt reach ~70-75% of dense
# peak on large BF16 and FP8 GEMMs on H100 under the power limit); small ones (few tokens,
# narrow shards) are launch- and memory-bound. Fitted on A.1-A.3 and C.1 together.
GEMM_EFFICIENCY_MAX: Final = 0.72
GEMM_HALF_EFFICIENCY_FLOP: Final = 4.0e11

# Training runs kernels that are not GEMMs (norms, rotary, SwiGLU, residuals, FP8 amax/casts,
# loss, their backward passes), which serving engines largely fuse away. Their time is taken
# as this fraction of the matmul time (Megatron/NeMo profiles of Llama-class models show
# 15-25% of step time outside GEMMs and attention). Fitted on A.1-A.3 together.
TRAINING_NON_GEMM_OVERHEAD: Final = 0.20

# Fraction of the dense peak a precision reaches relative to BF16 on the same part. FP8 GEMMs
# run closer to the power limit and FP8 training adds amax/cast kernels, so they reach a
# slightly lower fraction of their (2x) peak; NVIDIA's MLPerf FP8 Llama 3.1 405B (A.2) vs
# Meta's BF16 405B (A.1) fix the FP8 value; FP4 follows FP8 (no published training anchor).
PRECISION_EFFICIENCY: Final = {"bf16": 1.0, "fp8": 0.95, "fp4": 0.85}

# Flash-attention efficiency (fraction of BF16 peak) for the score/value products. FA2/FA3 on
# H100 reach 50-75% forward, ~40-55% backward (Shah et al. 2024, FlashAttention-3, Fig. 5-7).
# Attention runs in BF16 regardless of the GEMM precision (as in Transformer Engine recipes).
ATTENTION_EFFICIENCY: Final = 0.50

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
# Achieved fraction of the link rate for large collectives (NCCL "bus bandwidth"). NVLink 4:
# ~360-380 of 450 GB/s per direction (nccl-tests on DGX H100); 400G IB/RoCE: ~45 of 50 GB/s.
SCALEUP_EFFICIENCY: Final = 0.80
SCALEOUT_EFFICIENCY: Final = 0.85
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
# Achieved fraction of HBM bandwidth for weight streaming and paged KV-cache reads.
HBM_EFFICIENCY: Final = 0.80
# Fixed cost per decode iteration (scheduler, sampling, kernel launches under CUDA graphs).
DECODE_STEP_OVERHEAD_S: Final = 2.0e-3
# Ratio of p99 to mean per-token latency under load (batch composition varies step to step).
P99_OVER_MEAN_LATENCY: Final = 1.5
# Highest utilisation a replica can sustain under Poisson arrivals while meeting p99 latency
# targets (queueing headroom). Fitted on the MLPerf Server/Offline ratios of C.1 (0.88-0.93).
SERVER_MAX_UTILIZATION: Final = 0.90

# --- training state sizes (assumptions, not fitted) ----------------------------------------------
# Gradients are reduced in BF16 (MLPerf NeMo recipes, Meta's Llama 3 FSDP); parameters are
# all-gathered in the working precision's storage (BF16, or FP8 with --fp8-param-gather).
GRAD_REDUCE_BYTES: Final = 2.0
# Mixed-precision AdamW state per parameter: FP32 master copy + two FP32 moments.
OPTIMIZER_BYTES_PER_PARAM: Final = 12.0
