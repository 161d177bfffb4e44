"""Analytical performance model: training step time and MFU, serving throughput and latency.

Layering: imports only ``sim.catalog``, ``sim.units``, numpy/scipy and the standard library.
The engine calls :func:`estimate_training` once per training job and
:func:`estimate_inference` once per service at build time, and re-prices a running job's step on
its :class:`NetworkPath` with :meth:`TrainingEstimate.rate_factor_on` whenever its placement or
share of the fabric changes. :func:`estimate_serving` picks the serving backend (the analytic
model, or the measured reference in :mod:`sim.perf.measured`, which imports aiconfigurator
lazily) and records each estimate's provenance. See ``docs/performance-model.md``.
"""

from sim.perf.common import PerfError
from sim.perf.inference import (
    KV_CACHE_POLICIES,
    PREFILL_MODES,
    SERVING_RUNTIMES,
    DomainMix,
    InferenceEstimate,
    PrefillCosts,
    estimate_inference,
    inference_curve,
    kv_tokens_per_sequence,
    mix_domain,
    prefill_costs,
)
from sim.perf.network import NetworkPath, PathTier, fibre_latency_s
from sim.perf.serving import BACKENDS, analytic_provenance, estimate_domain, estimate_serving
from sim.perf.training import (
    NetworkSensitivity,
    TrainingEstimate,
    TrainingLayout,
    default_global_batch,
    default_vp,
    estimate_training,
    model_flops_per_token,
)

__all__ = [
    "BACKENDS",
    "KV_CACHE_POLICIES",
    "PREFILL_MODES",
    "SERVING_RUNTIMES",
    "DomainMix",
    "InferenceEstimate",
    "NetworkPath",
    "NetworkSensitivity",
    "PathTier",
    "PerfError",
    "PrefillCosts",
    "TrainingEstimate",
    "TrainingLayout",
    "analytic_provenance",
    "default_global_batch",
    "default_vp",
    "estimate_domain",
    "estimate_inference",
    "estimate_serving",
    "estimate_training",
    "fibre_latency_s",
    "inference_curve",
    "kv_tokens_per_sequence",
    "mix_domain",
    "model_flops_per_token",
    "prefill_costs",
]
