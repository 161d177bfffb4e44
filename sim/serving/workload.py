"""Requests for the request-level simulator: Poisson arrivals, lengths, agentic sessions, caching.

A :class:`Requests` table holds one row per request (numpy columns): arrival time (seconds),
prompt tokens, generated tokens (visible output plus reasoning), prompt tokens found in the
prompt cache, and for a call of an agentic session its ``parent`` (the previous call) and the
tool latency ``think_s`` after the parent's completion at which it arrives (those arrival times
are only known while the simulation runs).

* **Poisson** (:func:`poisson_requests`): exponential gaps at ``rate`` per second; lengths
  lognormal around the service's means with coefficients of variation ``input_cv`` and
  ``output_cv`` (0 = every request at the mean). The defaults (0.53, 1.17) are those of the Azure
  2023 conversation trace (validation.md F.1: input mean 1,155 / median 1,020, output mean 211 /
  median 129; a lognormal's mean/median = exp(sigma^2 / 2) gives sigma^2 = 0.25 and 0.98).
* **Reasoning** (test-time scaling): every request generates ``reasoning_multiplier`` times its
  visible output (``1 + reasoning_tokens / output_tokens`` of the service), all of it decoded and
  counted as output, as in the perf model. Reasoning is not carried into the next call's context
  (chat APIs drop earlier turns' reasoning).
* **Agentic sessions** (:func:`session_requests`): sessions start as a Poisson stream at
  ``rate / calls`` so that calls arrive at ``rate`` on average; a session has ``1 + Geometric``
  calls with mean ``calls`` (a long tail: network-and-serving.md B3, median 8 turns, tail 60+);
  call ``k + 1`` arrives an exponential tool latency (mean ``tool_latency_s``) after call ``k``
  completes, and its prompt is call ``k``'s prompt plus call ``k``'s visible output plus the tool
  result (``tool_output_tokens``, lognormal with ``input_cv``). The prompt cache holds call ``k``'s
  prompt and output for ``cache_ttl_s`` (Anthropic's 5-minute TTL, B3 [N35]), so call ``k + 1``
  skips their prefill if its tool latency is shorter; every call also shares
  ``shared_prefix_tokens`` (a system prompt), cached after the first request of the run. The
  cache's own memory is not modelled (a pooled DRAM cache as in Mooncake; an HBM-only cache hits
  less, B3).
* **Agents and chat in one service**: ``share`` of the calls come from sessions, the rest are
  independent Poisson requests with the service's lengths and no cache hit.
* **Given hit rate**: without sessions, ``prompt_cache_hit`` of the service caches that share of
  every prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AZURE_CONVERSATION_INPUT_CV",
    "AZURE_CONVERSATION_OUTPUT_CV",
    "Requests",
    "SessionShape",
    "lognormal_lengths",
    "poisson_requests",
    "session_mix",
    "session_requests",
]

AZURE_CONVERSATION_INPUT_CV = 0.53
AZURE_CONVERSATION_OUTPUT_CV = 1.17


@dataclass(frozen=True)
class Requests:
    arrival_s: np.ndarray  # float64, seconds; ignored for calls with a parent
    prompt_tokens: np.ndarray  # int64 >= 1
    output_tokens: np.ndarray  # int64 >= 1 (generated: visible + reasoning)
    cached_tokens: np.ndarray  # int64, prompt tokens whose prefill the prompt cache skips
    parent: np.ndarray  # int64, -1 or the previous call of the session
    think_s: np.ndarray  # float64, tool latency after the parent completes
    session: np.ndarray  # int64, -1 or the session id

    def __len__(self) -> int:
        return int(self.prompt_tokens.shape[0])

    @property
    def cache_hit_rate(self) -> float:
        """Share of prompt tokens served from the prompt cache."""
        total = float(self.prompt_tokens.sum())
        return float(self.cached_tokens.sum()) / total if total else 0.0

    @staticmethod
    def independent(
        arrival_s: np.ndarray,
        prompt_tokens: np.ndarray,
        output_tokens: np.ndarray,
        cached_tokens: np.ndarray | None = None,
    ) -> Requests:
        """Requests without sessions (e.g. read from a trace)."""
        n = int(np.asarray(prompt_tokens).shape[0])
        prompt = np.maximum(np.asarray(prompt_tokens, dtype=np.int64), 1)
        cached = (
            np.zeros(n, dtype=np.int64)
            if cached_tokens is None
            else np.minimum(np.asarray(cached_tokens, dtype=np.int64), prompt - 1)
        )
        return Requests(
            arrival_s=np.asarray(arrival_s, dtype=np.float64),
            prompt_tokens=prompt,
            output_tokens=np.maximum(np.asarray(output_tokens, dtype=np.int64), 1),
            cached_tokens=cached,
            parent=np.full(n, -1, dtype=np.int64),
            think_s=np.zeros(n, dtype=np.float64),
            session=np.full(n, -1, dtype=np.int64),
        )


def lognormal_lengths(rng: np.random.Generator, mean: float, cv: float, n: int) -> np.ndarray:
    """``n`` integer lengths >= 1, lognormal with the given mean and coefficient of variation."""
    if cv <= 0.0:
        return np.full(n, max(1, round(mean)), dtype=np.int64)
    s2 = math.log1p(cv * cv)
    x = rng.lognormal(math.log(mean) - s2 / 2.0, math.sqrt(s2), n)
    return np.maximum(np.rint(x), 1).astype(np.int64)


def _poisson_times(rng: np.random.Generator, rate: float, duration_s: float) -> np.ndarray:
    if rate <= 0.0:
        return np.zeros(0, dtype=np.float64)
    expect = rate * duration_s
    n = int(expect + 8.0 * math.sqrt(expect) + 16)
    t = np.cumsum(rng.exponential(1.0 / rate, n))
    while t[-1] < duration_s:  # astronomically rare: draw more
        t = np.concatenate([t, t[-1] + np.cumsum(rng.exponential(1.0 / rate, n))])
    return t[t <= duration_s]


def poisson_requests(
    rng: np.random.Generator,
    *,
    rate_per_s: float,
    duration_s: float,
    input_tokens: float,
    output_tokens: float,
    reasoning_multiplier: float = 1.0,
    input_cv: float = AZURE_CONVERSATION_INPUT_CV,
    output_cv: float = AZURE_CONVERSATION_OUTPUT_CV,
    prompt_cache_hit: float = 0.0,
    max_context: int | None = None,
) -> Requests:
    """Independent requests at ``rate_per_s`` over ``[0, duration_s]`` (see module docstring)."""
    t = _poisson_times(rng, rate_per_s, duration_s)
    n = t.shape[0]
    prompt = lognormal_lengths(rng, input_tokens, input_cv, n)
    visible = lognormal_lengths(rng, output_tokens, output_cv, n)
    gen = np.maximum(np.rint(visible * reasoning_multiplier), 1).astype(np.int64)
    if max_context is not None:
        prompt, gen = _clip_context(prompt, gen, max_context)
    cached = np.floor(prompt * prompt_cache_hit).astype(np.int64)
    return Requests.independent(t, prompt, gen, cached)


def context_clipped_share(
    input_tokens: float,
    generated_tokens: float,
    max_context: int,
    input_cv: float = AZURE_CONVERSATION_INPUT_CV,
    output_cv: float = AZURE_CONVERSATION_OUTPUT_CV,
) -> float:
    """Share of requests of this length mix whose prompt plus generation exceeds the model's
    context, so that the request level cuts them (:func:`_clip_context`): from a fixed sample of
    20,000 draws of the same lognormals (deterministic, ~1 ms)."""
    rng = np.random.default_rng(0)
    prompt = lognormal_lengths(rng, input_tokens, input_cv, 20_000)
    gen = np.maximum(lognormal_lengths(rng, generated_tokens, output_cv, 20_000), 1)
    return float(np.mean(prompt + gen > max_context))


def _clip_context(
    prompt: np.ndarray, gen: np.ndarray, max_context: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep prompt + generation within the model's context (long tails of the lognormal)."""
    prompt = np.minimum(prompt, max_context - 1)
    gen = np.minimum(gen, max_context - prompt)
    return prompt, np.maximum(gen, 1)


@dataclass(frozen=True)
class SessionShape:
    """An agentic session's structure (see the module docstring)."""

    calls: float  # mean calls per session (>= 1)
    tool_latency_s: float  # mean time between a call's completion and the next call
    tool_output_tokens: float  # mean tokens a tool result appends to the context
    cache_ttl_s: float = 300.0
    shared_prefix_tokens: int = 0
    share: float = 1.0  # share of the calls that come from sessions; the rest are plain requests


def session_requests(
    rng: np.random.Generator,
    shape: SessionShape,
    *,
    rate_per_s: float,
    duration_s: float,
    input_tokens: float,
    output_tokens: float,
    reasoning_multiplier: float = 1.0,
    input_cv: float = AZURE_CONVERSATION_INPUT_CV,
    output_cv: float = AZURE_CONVERSATION_OUTPUT_CV,
    max_context: int | None = None,
) -> Requests:
    """Sessions of calls whose context grows; calls arrive at ``rate_per_s`` on average, a
    ``shape.share`` of them from sessions and the rest as independent Poisson requests (agents
    and plain chat sharing one service)."""
    if shape.calls < 1.0:
        raise ValueError(f"calls per session must be >= 1, got {shape.calls}")
    if not 0.0 < shape.share <= 1.0:
        raise ValueError(f"the sessions' share of calls must be in (0, 1], got {shape.share}")
    common = {
        "duration_s": duration_s,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "reasoning_multiplier": reasoning_multiplier,
        "input_cv": input_cv,
        "output_cv": output_cv,
        "max_context": max_context,
    }
    agents = _sessions(rng, shape, rate_per_s=rate_per_s * shape.share, **common)  # type: ignore[arg-type]
    if shape.share >= 1.0:
        return agents
    chat = poisson_requests(rng, rate_per_s=rate_per_s * (1.0 - shape.share), **common)  # type: ignore[arg-type]
    n = len(chat)
    return Requests(
        arrival_s=np.concatenate([chat.arrival_s, agents.arrival_s]),
        prompt_tokens=np.concatenate([chat.prompt_tokens, agents.prompt_tokens]),
        output_tokens=np.concatenate([chat.output_tokens, agents.output_tokens]),
        cached_tokens=np.concatenate([chat.cached_tokens, agents.cached_tokens]),
        parent=np.concatenate([chat.parent, np.where(agents.parent >= 0, agents.parent + n, -1)]),
        think_s=np.concatenate([chat.think_s, agents.think_s]),
        session=np.concatenate([chat.session, agents.session]),
    )


def _sessions(
    rng: np.random.Generator,
    shape: SessionShape,
    *,
    rate_per_s: float,
    duration_s: float,
    input_tokens: float,
    output_tokens: float,
    reasoning_multiplier: float,
    input_cv: float,
    output_cv: float,
    max_context: int | None,
) -> Requests:
    starts = _poisson_times(rng, rate_per_s / shape.calls, duration_s)
    n_sess = starts.shape[0]
    p_stop = 1.0 / shape.calls
    ncalls = np.asarray(rng.geometric(p_stop, n_sess), dtype=np.int64).reshape(n_sess)
    total = int(ncalls.sum())
    sess = np.repeat(np.arange(n_sess, dtype=np.int64), ncalls)
    first = np.zeros(total, dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(ncalls)[:-1]]).astype(np.int64)
    first[offsets] = True
    visible = lognormal_lengths(rng, output_tokens, output_cv, total)
    tool = lognormal_lengths(rng, shape.tool_output_tokens, input_cv, total)
    think = (
        rng.exponential(shape.tool_latency_s, total)
        if shape.tool_latency_s > 0
        else np.zeros(total)
    )
    first_prompt = lognormal_lengths(rng, input_tokens, input_cv, n_sess)
    prompt = np.empty(total, dtype=np.int64)
    cached = np.empty(total, dtype=np.int64)
    parent = np.full(total, -1, dtype=np.int64)
    arrival = np.full(total, np.nan, dtype=np.float64)
    shared = int(shape.shared_prefix_tokens)
    # context growth is a per-session prefix sum: prompt_k = prompt_1 + sum_{m<k}(vis_m + tool_m)
    grow = visible + tool
    csum = np.cumsum(grow)
    base = np.where(first, 0, np.concatenate([[0], csum[:-1]]))
    sess_base = np.concatenate([[0], csum[:-1]])[offsets] if total else np.zeros(0, np.int64)
    prompt[:] = np.repeat(first_prompt, ncalls) + (base - np.repeat(sess_base, ncalls))
    prompt[first] = np.repeat(first_prompt, 1)
    idx = np.arange(total, dtype=np.int64)
    parent[~first] = idx[~first] - 1
    arrival[first] = starts
    # cached prefix: the previous call's prompt + visible output, if the tool returned in time
    prev = np.where(first, 0, np.roll(prompt + visible, 1))
    hit = (~first) & (think <= shape.cache_ttl_s)
    cached[:] = np.where(hit, prev, 0)
    cached = np.maximum(cached, np.minimum(shared, prompt))
    if total:
        cached[0] = 0 if first[0] else cached[0]  # the very first request finds an empty cache
    gen = np.maximum(np.rint(visible * reasoning_multiplier), 1).astype(np.int64)
    if max_context is not None:
        prompt, gen = _clip_context(prompt, gen, max_context)
    cached = np.minimum(cached, prompt - 1)
    think = np.where(first, 0.0, think)
    return Requests(
        arrival_s=arrival,
        prompt_tokens=prompt,
        output_tokens=gen,
        cached_tokens=cached,
        parent=parent,
        think_s=think,
        session=sess,
    )


def session_mix(
    shape: SessionShape, input_tokens: float, output_tokens: float
) -> tuple[float, float]:
    """Mean prompt tokens per call and the share of prompt tokens the cache serves, of the
    sessions :func:`session_requests` draws (in expectation; the fluid level's request mix).

    With ``N`` calls (1 + geometric, mean ``c``), call ``k``'s prompt is ``in + (k - 1)(out +
    tool)``, so the mean prompt per call is ``in + (out + tool)(c - 1)`` (E[N(N - 1)/2] = c(c - 1)).
    A follow-up call hits with probability ``q = 1 - exp(-ttl / tool latency)`` and then reuses
    the previous prompt and output, ``in + (k - 2)(out + tool) + out``; summed over a session that
    is ``q ((c - 1)(in + out) + (out + tool)(c - 1)^2)`` per ``c`` calls. Calls that miss still
    reuse the shared prefix. A ``share`` below 1 mixes in plain requests (``in`` tokens, no
    cache hit). Lengths beyond the model's context are not clipped here.
    """
    c = shape.calls
    grow = output_tokens + shape.tool_output_tokens
    mean_prompt = input_tokens + grow * (c - 1.0)
    lat = shape.tool_latency_s
    q = 1.0 if lat <= 0 else -math.expm1(-shape.cache_ttl_s / lat)
    hit_tokens = q * ((c - 1.0) * (input_tokens + output_tokens) + grow * (c - 1.0) ** 2) / c
    shared = min(float(shape.shared_prefix_tokens), input_tokens)
    hit_tokens += shared * (1.0 - q * (c - 1.0) / c)
    a = shape.share  # the rest of the calls: plain requests of input_tokens, nothing cached
    prompt = a * mean_prompt + (1.0 - a) * input_tokens
    return prompt, min(a * hit_tokens / prompt, 1.0)
