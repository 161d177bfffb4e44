"""Request-level serving simulator of one inference service replica (docs/serving.md).

Layering: above ``sim.perf`` (iteration times, through :mod:`sim.serving.steps` only) and
``sim.config`` (a scenario's service), below ``sim.build`` (which takes the session mix and,
the SLO attainment tables of fleet runs) and the CLI (``aifactory serve-sim``). No SimPy, no I/O
other than reading trace files and the attainment tables' disk cache.
"""

from sim.serving.capacity import Capacity, SloCurve, capacity_at_slo, probe, slo_curve
from sim.serving.metrics import levels_table, requests_table, slo_attainment_of, summarize
from sim.serving.shape import ServiceShape, shape_of_service
from sim.serving.simulator import KV_MODES, EngineOptions, ServingRun, simulate
from sim.serving.steps import StepModel, step_model
from sim.serving.traces import TRACE_FORMATS, TraceError, read_trace
from sim.serving.workload import (
    Requests,
    SessionShape,
    poisson_requests,
    session_mix,
    session_requests,
)

__all__ = [
    "KV_MODES",
    "TRACE_FORMATS",
    "Capacity",
    "EngineOptions",
    "Requests",
    "ServiceShape",
    "ServingRun",
    "SessionShape",
    "SloCurve",
    "StepModel",
    "TraceError",
    "capacity_at_slo",
    "levels_table",
    "poisson_requests",
    "probe",
    "read_trace",
    "requests_table",
    "session_mix",
    "session_requests",
    "shape_of_service",
    "simulate",
    "slo_attainment_of",
    "slo_curve",
    "step_model",
    "summarize",
]
