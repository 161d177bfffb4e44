"""A service's shape: everything the request-level simulator needs to run one of its replicas.

:class:`ServiceShape` bundles the model, the hardware, the precision, the replica layout
(``tp x ep``), the request mix (mean lengths, their spread, reasoning, prompt caching or agentic
sessions) and the engine's scheduler settings. :func:`shape_of_service` makes one from a
scenario's ``workloads.inference[]`` entry, taking the tensor-parallel width the performance
model chooses when the scenario does not pin it. Shapes are the cache key of the capacity
curves (:mod:`sim.serving.capacity`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.catalog.hardware import HardwareSpec
from sim.catalog.models import ModelShape
from sim.config.schema import InferenceService
from sim.perf.inference import PrefillCosts
from sim.serving.simulator import EngineOptions, ServingRun, simulate, simulate_disaggregated
from sim.serving.steps import StepModel, best_tp, step_model
from sim.serving.workload import (
    AZURE_CONVERSATION_INPUT_CV,
    AZURE_CONVERSATION_OUTPUT_CV,
    Requests,
    SessionShape,
    poisson_requests,
    session_requests,
)

__all__ = ["ServiceShape", "shape_of_service"]


@dataclass(frozen=True)
class ServiceShape:
    model: ModelShape
    hw: HardwareSpec
    precision: str
    tp: int
    input_tokens: float
    output_tokens: float  # visible output per request (mean)
    ep: int = 1
    reasoning_multiplier: float = 1.0
    input_cv: float = AZURE_CONVERSATION_INPUT_CV
    output_cv: float = AZURE_CONVERSATION_OUTPUT_CV
    prompt_cache_hit: float = 0.0
    sessions: SessionShape | None = None
    options: EngineOptions = field(default_factory=EngineOptions)
    runtime: str = "fused"  # how FP8/FP4 layers run (sim.perf.SERVING_RUNTIMES)
    #: a disaggregated prefill pool in front of the replica (None: prefill is co-located)
    prefill: PrefillCosts | None = None

    @property
    def generated_tokens(self) -> float:
        """Mean tokens generated per request (visible output x reasoning multiplier)."""
        return self.output_tokens * self.reasoning_multiplier

    @property
    def replica_gpus(self) -> int:
        return self.tp * self.ep

    def key(self) -> tuple[object, ...]:
        """Hashable identity of the shape (for caches)."""
        return (
            self.model.model_dump_json(),
            self.hw.model_dump_json(),
            self.precision,
            self.tp,
            self.ep,
            self.input_tokens,
            self.output_tokens,
            self.reasoning_multiplier,
            self.input_cv,
            self.output_cv,
            self.prompt_cache_hit,
            self.sessions,
            self.options,
            self.runtime,
            self.prefill,
        )

    def step(self) -> StepModel:
        o = self.options
        return step_model(
            self.model,
            self.hw,
            self.precision,
            tp=self.tp,
            ep=self.ep,
            max_tokens=max(o.max_batched_tokens, o.max_seqs),
            runtime=self.runtime,
        )

    def run(
        self, requests: Requests, duration_s: float, sample_interval_s: float | None = None
    ) -> ServingRun:
        """Simulate one replica of this shape on ``requests``: co-located
        (:func:`~sim.serving.simulator.simulate`) or behind its prefill pool
        (:func:`~sim.serving.simulator.simulate_disaggregated`)."""
        if self.prefill is None:
            return simulate(requests, self.step(), self.options, duration_s, sample_interval_s)
        return simulate_disaggregated(
            requests, self.step(), self.options, duration_s, self.prefill, sample_interval_s
        )

    def requests(self, rng: np.random.Generator, rate_per_s: float, duration_s: float) -> Requests:
        """Poisson requests (or sessions) of this shape over ``[0, duration_s]``."""
        common = {
            "rate_per_s": rate_per_s,
            "duration_s": duration_s,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_multiplier": self.reasoning_multiplier,
            "input_cv": self.input_cv,
            "output_cv": self.output_cv,
            "max_context": self.model.max_seq_len,
        }
        if self.sessions is not None:
            return session_requests(rng, self.sessions, **common)  # type: ignore[arg-type]
        return poisson_requests(rng, prompt_cache_hit=self.prompt_cache_hit, **common)  # type: ignore[arg-type]


def shape_of_service(
    v: InferenceService,
    model: ModelShape,
    hw: HardwareSpec,
    *,
    kv_cache: str | None = None,
    tp: int | None = None,
) -> ServiceShape:
    """The shape of one replica of scenario service ``v`` on ``hw``.

    ``kv_cache`` overrides the service's ``kv_cache`` key; ``tp`` the tensor-parallel width
    (default: the service's, else the performance model's choice). Raises
    :class:`~sim.perf.PerfError` if the model cannot be served on ``hw``.
    """
    eng = v.serving
    sess = v.sessions
    tp = (
        tp
        or v.tensor_parallel
        or best_tp(
            model,
            hw,
            v.precision.value,
            input_tokens=v.input_tokens,
            output_tokens=v.output_tokens,
            reasoning_tokens=v.reasoning_tokens,
            ep=v.expert_parallel,
            ttft_s=v.ttft_s,
            tpot_s=v.tpot_s,
            runtime=v.serving_runtime,
            # the settings the fleet's plan chooses its TP with (sim/build.py)
            kv_cache=kv_cache or v.kv_cache,
            max_seqs=eng.max_seqs,
            input_cv=eng.input_cv if sess is None else 0.0,
            output_cv=eng.output_cv,
        )
    )
    return ServiceShape(
        model=model,
        hw=hw,
        precision=v.precision.value,
        tp=int(tp),
        ep=int(v.expert_parallel),
        input_tokens=float(v.input_tokens),
        output_tokens=float(v.output_tokens),
        reasoning_multiplier=(v.output_tokens + v.reasoning_tokens) / v.output_tokens,
        input_cv=eng.input_cv,
        output_cv=eng.output_cv,
        prompt_cache_hit=v.prompt_cache_hit,
        sessions=None
        if sess is None
        else SessionShape(
            calls=sess.calls,
            tool_latency_s=sess.tool_latency_s,
            tool_output_tokens=sess.tool_output_tokens,
            cache_ttl_s=sess.cache_ttl_s,
            shared_prefix_tokens=sess.shared_prefix_tokens,
            share=sess.share,
        ),
        options=EngineOptions(
            kv_cache=kv_cache or v.kv_cache,
            max_seqs=eng.max_seqs,
            max_batched_tokens=eng.max_batched_tokens,
        ),
        runtime=v.serving_runtime,
    )
