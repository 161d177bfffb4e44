"""The request-level simulator of one serving replica: continuous batching, chunked prefill, KV.

What it models (the behaviour of vLLM and TensorRT-LLM, network-and-serving.md B1):

* **Continuous batching.** The scheduler runs between iterations. Every iteration advances each
  decoding sequence by one token and fills the rest of the token budget
  (``max_batched_tokens``) with prefill chunks: first the requests already being prefilled, in
  admission order, then new requests from the head of the waiting queue (FCFS), as long as fewer
  than ``max_seqs`` sequences run and the KV cache admits them (Sarathi-Serve's stall-free
  batching; vLLM's chunked prefill). A request's last prefill chunk produces its first token.
* **Iteration time** from the performance model (:mod:`sim.serving.steps`): GEMMs of all the
  iteration's tokens, the decoding sequences' attention (KV read of their contexts, and each
  layer's kernel's fixed and per-sequence cost), causal attention of the prefill chunks, a
  fixed overhead.
* **KV cache**, ``reserved``: a request is admitted only if its whole prompt plus its output fits
  beside the reservations of those running; it is never preempted (TensorRT-LLM's
  ``GUARANTEED_NO_EVICT``). ``paged``: admitted when its prompt fits (minus a 1% watermark, vLLM
  V0's default), the cache then grows one token per decoding sequence per iteration; when the
  next iteration would not fit, the most recently admitted sequence is preempted: its KV is
  dropped and it returns to the head of the queue, to be prefilled again (prompt plus what it had
  generated, no prefix-cache credit) before it continues (vLLM's RECOMPUTE mode). Memory is
  counted in tokens: the last block's internal fragmentation (< ``block_tokens`` per sequence)
  is ignored.
* **Prompt-cache hits** (``cached_tokens`` of a request) skip the prefill compute of that prefix;
  its KV still occupies the cache (it is referenced, as in vLLM's prefix caching) and the new
  tokens still attend to it.
* **Agentic sessions**: a request whose ``parent`` is set arrives ``think_s`` after its parent
  completes (a tool call between two calls of one session).

Speed: nothing is done per token. Between scheduling events, when no prefill can run (the queue
is empty or its head cannot be admitted), the decode batch is constant and the iteration time
grows linearly with the iteration index (the contexts grow by one token per sequence), so the
time of ``k`` iterations is a quadratic in ``k``: the simulator jumps straight to the next
completion, arrival, KV overflow or the horizon. Completion is a heap keyed by the iteration at
which a sequence ends (fixed when its decoding starts), and the total context is ``D + s j`` at
iteration ``j`` (``s`` sequences), so joining or leaving is O(log n). Iterations that carry
prefill run one at a time.

Accounting: at the horizon ``duration_s`` the run stops; requests that arrived by then are
``served`` (completed), ``dropped`` (they can never fit the KV cache) or ``queued`` (waiting or
running), and served + dropped + queued = arrived. Times are seconds from the run's start.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from sim.perf.inference import DEFAULT_MAX_SEQS, PrefillCosts
from sim.serving.steps import StepModel
from sim.serving.workload import Requests

__all__ = [
    "KV_MODES",
    "EngineOptions",
    "ServingRun",
    "prefill_pool_ready_s",
    "simulate",
    "simulate_disaggregated",
]

KV_MODES = ("reserved", "paged")

#: vLLM V0 BlockSpaceManager ``watermark=0.01``: new prompts are admitted only while 1% of the
#: cache stays free, so that running sequences can grow a little before preemption.
PAGED_WATERMARK = 0.01


@dataclass(frozen=True)
class EngineOptions:
    """The serving engine's scheduler settings (network-and-serving.md B1 defaults)."""

    kv_cache: str = "reserved"
    max_seqs: int = DEFAULT_MAX_SEQS  # the fluid plan caps its batch at the same
    max_batched_tokens: int = 8192

    def __post_init__(self) -> None:
        if self.kv_cache not in KV_MODES:
            raise ValueError(
                f"kv_cache must be one of {', '.join(KV_MODES)}, got {self.kv_cache!r}"
            )
        if self.max_seqs < 1 or self.max_batched_tokens < 1:
            raise ValueError("max_seqs and max_batched_tokens must be >= 1")
        if self.max_seqs > self.max_batched_tokens:
            raise ValueError(
                f"max_seqs ({self.max_seqs}) cannot exceed max_batched_tokens"
                f" ({self.max_batched_tokens}): every running sequence needs a token per iteration"
            )


@dataclass(frozen=True)
class ServingRun:
    """What one simulation produced: per request times and counts, and sampled levels."""

    duration_s: float
    arrival_s: np.ndarray  # nan: did not arrive within the horizon
    first_token_s: np.ndarray  # nan: no token yet
    done_s: np.ndarray  # nan: not completed
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    cached_tokens: np.ndarray
    preemptions: np.ndarray
    dropped: np.ndarray  # bool
    arrived: int
    served: int
    n_dropped: int
    queued: int
    waiting_at_end: int
    running_at_end: int
    iterations: int
    generated_tokens: int
    kv_capacity_tokens: int
    # levels sampled every sample interval: the state at the first scheduling point at or after
    # each sample time (exact for the queue between events; within one decode jump, late by at
    # most that jump)
    sample_s: np.ndarray
    sample_waiting: np.ndarray
    sample_running: np.ndarray
    sample_kv_tokens: np.ndarray
    sample_generated: np.ndarray  # cumulative generated tokens


def _iterations_to_reach(a: float, c: float, target: float) -> int:
    """Smallest ``k >= 1`` with ``a k + c k (k - 1) >= target`` (the time of ``k`` decode
    iterations whose duration grows by ``2 c`` per iteration)."""
    if target <= 0.0:
        return 1
    if c > 0.0:
        b = a - c
        k = math.ceil((-b + math.sqrt(b * b + 4.0 * c * target)) / (2.0 * c))
    else:
        k = math.ceil(target / a)
    k = max(k, 1)
    while k > 1 and a * (k - 1) + c * (k - 1) * (k - 2) >= target:
        k -= 1
    while a * k + c * k * (k - 1) < target:
        k += 1
    return k


def simulate(
    requests: Requests,
    step: StepModel,
    options: EngineOptions,
    duration_s: float,
    sample_interval_s: float | None = None,
    max_jump: int | None = None,
) -> ServingRun:
    """Run one replica over ``[0, duration_s]``. Deterministic: no randomness inside.

    The run ends at the first iteration boundary at or after ``duration_s``. ``max_jump`` caps
    the decode iterations taken in one step (tests compare ``max_jump=1`` with the jumps)."""
    if not duration_s > 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration must be a positive number of seconds, got {duration_s}")
    paged = options.kv_cache == "paged"
    budget = options.max_batched_tokens
    max_seqs = options.max_seqs
    if step.max_tokens < budget:
        raise ValueError(
            f"the step model covers {step.max_tokens} tokens per iteration, the budget is {budget}"
        )
    cap = step.kv_capacity_tokens
    admit_cap = cap * (1.0 - PAGED_WATERMARK) if paged else float(cap)
    gemm = step.gemm_s
    kv_s = step.kv_s_per_token
    att0 = step.attn_fixed_s  # decode attention: per iteration with a decoding sequence
    att1 = step.attn_s_per_seq  # and per decoding sequence
    attn_s = step.attn_s_per_unit
    over = step.overhead_s
    T = float(duration_s)
    if sample_interval_s is None:
        sample_interval_s = max(T / 400.0, 1e-3)
    n_req = len(requests)
    prompt = requests.prompt_tokens.tolist()
    gen = requests.output_tokens.tolist()
    cached = requests.cached_tokens.tolist()
    parent = requests.parent.tolist()
    think = requests.think_s.tolist()
    children: list[int] = [-1] * n_req
    for i, p in enumerate(parent):
        if p >= 0:
            children[p] = i
    nan = math.nan
    t_arr = requests.arrival_s.tolist()
    for i, p in enumerate(parent):
        if p >= 0:
            t_arr[i] = nan
    t_first = [nan] * n_req
    t_done = [nan] * n_req
    npre = [0] * n_req
    dropped = [False] * n_req
    # primary arrivals in time order; follow-up calls join a heap when their parent completes
    prim = [i for i in np.argsort(requests.arrival_s, kind="stable").tolist() if parent[i] < 0]
    prim_t = [t_arr[i] for i in prim]
    n_prim = len(prim)
    ip = 0
    follow: list[tuple[float, int]] = []
    inf = math.inf
    jump_cap = max_jump if max_jump is not None else 1 << 62

    # per-request scheduling state
    pf_left = [0] * n_req  # prefill tokens still to compute
    pf_pos = [0] * n_req  # position of the next prefill token (cached prefix included)
    plen = [0] * n_req  # tokens in KV after this prefill (prompt, + generated on recompute)
    gdone = [0] * n_req  # tokens generated before the current decode phase
    dbase = [0] * n_req  # context at iteration j = dbase + j while decoding
    fin = [-1] * n_req  # iteration at whose end a decoding sequence completes
    alloc = [0] * n_req  # tokens allocated: reserved -> prompt + output; paged -> plen at admission
    state = [0] * n_req  # 0 not arrived / waiting, 1 prefilling, 2 decoding, 3 done, 4 dropped

    waiting: deque[int] = deque()
    prefilling: list[int] = []
    order: list[int] = []  # admission order, for the paged victim (most recent first)
    heap: list[tuple[int, int]] = []  # (finish iteration, request)
    s = 0  # decoding sequences
    D = 0  # sum of dbase over decoding sequences: total context at iteration j is D + s j
    F = 0  # reserved: sum of reservations; paged: tokens allocated to prefilling sequences
    n = 0  # iterations completed = index of the next iteration
    t = 0.0
    arrived = served = n_drop = 0
    generated = 0

    samples_t: list[float] = []
    samples_w: list[int] = []
    samples_r: list[int] = []
    samples_kv: list[int] = []
    samples_g: list[int] = []
    next_sample = 0.0

    while True:
        # --- arrivals up to now -----------------------------------------------------------
        while True:
            ta = prim_t[ip] if ip < n_prim else inf
            tf = follow[0][0] if follow else inf
            if ta <= tf:
                if ta > t or ta > T:
                    break
                i = prim[ip]
                ip += 1
            else:
                if tf > t or tf > T:
                    break
                i = heapq.heappop(follow)[1]
                t_arr[i] = tf
            arrived += 1
            if prompt[i] + gen[i] > cap:  # can never fit this replica's KV cache
                dropped[i] = True
                state[i] = 4
                n_drop += 1
                continue
            c = min(cached[i], prompt[i] - 1)
            pf_pos[i] = c
            pf_left[i] = prompt[i] - c
            plen[i] = prompt[i]
            alloc[i] = prompt[i] if paged else prompt[i] + gen[i]
            waiting.append(i)
        while next_sample <= t and next_sample <= T:
            samples_t.append(next_sample)
            samples_w.append(len(waiting))
            samples_r.append(s + len(prefilling))
            # tokens held: the decoding contexts before iteration n writes its tokens
            samples_kv.append(F + D + s * (n - 1) if paged else F)
            samples_g.append(generated)
            next_sample += sample_interval_s
        if t >= T:
            break

        if paged and s and F + D + s * n > cap:
            # --- KV overflow: preempt the most recently admitted running sequence ------------
            v = order.pop()
            while state[v] != 1 and state[v] != 2:
                v = order.pop()
            if state[v] == 1:
                prefilling.remove(v)
                F -= alloc[v]
            else:
                s -= 1
                D -= dbase[v]
                gdone[v] += n - 1 - (plen[v] - dbase[v])  # its decode iterations so far
                fin[v] = -1  # its completion entry in the heap is now stale
            npre[v] += 1
            state[v] = 0
            p = prompt[v] + gdone[v]
            plen[v] = p
            pf_left[v] = p
            pf_pos[v] = 0
            alloc[v] = p
            waiting.appendleft(v)
            continue

        running = s + len(prefilling)
        can_admit = False
        if waiting and running < max_seqs:
            i = waiting[0]
            if paged:
                can_admit = F + D + s * n + plen[i] + s <= admit_cap
            else:
                can_admit = F + alloc[i] <= admit_cap
        if (prefilling or can_admit) and s < budget:
            # --- one iteration with prefill chunks -----------------------------------------
            left = budget - s
            tokens = s
            work = 0.0
            chunks: list[tuple[int, int]] = []
            for i in prefilling:
                if left <= 0:
                    break
                c = pf_left[i] if pf_left[i] < left else left
                work += c * (pf_pos[i] + c * 0.5)
                left -= c
                tokens += c
                chunks.append((i, c))
            while left > 0 and waiting and running < max_seqs:
                i = waiting[0]
                if paged:
                    if F + D + s * n + plen[i] + s > admit_cap:
                        break
                elif F + alloc[i] > admit_cap:
                    break
                waiting.popleft()
                state[i] = 1
                F += alloc[i]
                prefilling.append(i)
                order.append(i)
                running += 1
                c = pf_left[i] if pf_left[i] < left else left
                work += c * (pf_pos[i] + c * 0.5)
                left -= c
                tokens += c
                chunks.append((i, c))
            t += gemm[tokens] + kv_s * (D + s * n) + attn_s * work + over
            if s:
                t += att0 + att1 * s
            j = n
            n += 1
            generated += s
            for i, c in chunks:
                left_i = pf_left[i] - c
                pf_left[i] = left_i
                pf_pos[i] += c
                if left_i:
                    continue
                prefilling.remove(i)
                if paged:
                    F -= alloc[i]
                if t_first[i] != t_first[i]:  # nan: this is the request's first token
                    t_first[i] = t
                generated += 1
                g = gdone[i] + 1
                gdone[i] = g
                if g < gen[i]:
                    state[i] = 2
                    db = plen[i] - j
                    dbase[i] = db
                    D += db
                    s += 1
                    f = j + gen[i] - g
                    fin[i] = f
                    heapq.heappush(heap, (f, i))
                    continue
                if not paged:
                    F -= alloc[i]
                state[i] = 3
                t_done[i] = t
                served += 1
                ch = children[i]
                if ch >= 0:
                    heapq.heappush(follow, (t + think[ch], ch))
            # decoding sequences whose last iteration was j
            while heap and heap[0][0] <= j:
                f, i = heapq.heappop(heap)
                if state[i] != 2 or fin[i] != f:
                    continue
                s -= 1
                D -= dbase[i]
                state[i] = 3
                t_done[i] = t
                served += 1
                if not paged:
                    F -= alloc[i]
                ch = children[i]
                if ch >= 0:
                    heapq.heappush(follow, (t + think[ch], ch))
            continue

        # --- no prefill can run: idle, or a constant decode batch ---------------------------
        ta = prim_t[ip] if ip < n_prim else inf
        tf = follow[0][0] if follow else inf
        t_next = ta if ta < tf else tf
        if s == 0:
            if waiting and not prefilling:
                # nothing runs and the head still cannot start: it can never fit
                i = waiting.popleft()
                state[i] = 4
                dropped[i] = True
                n_drop += 1
                continue
            t = t_next if t_next < T else T
            continue
        while state[heap[0][1]] != 2 or fin[heap[0][1]] != heap[0][0]:
            heapq.heappop(heap)
        k = heap[0][0] - n + 1  # iterations until (and including) the next completion
        if paged:
            room = int((cap - F - D) // s) - n + 1  # iterations whose context fits the cache
            if room < k:
                k = room
        if k > jump_cap:
            k = jump_cap
        a = gemm[s] + over + att0 + att1 * s + kv_s * (D + s * n)
        cq = kv_s * s * 0.5
        dt = a * k + cq * k * (k - 1)  # k iterations; each one's contexts are s tokens longer
        stop = T
        if not waiting and t_next < stop:
            stop = t_next
        if t + dt > stop:
            k = _iterations_to_reach(a, cq, stop - t)
            dt = a * k + cq * k * (k - 1)
        t += dt
        n += k
        generated += s * k
        while heap and heap[0][0] < n:
            f, i = heapq.heappop(heap)
            if state[i] != 2 or fin[i] != f:
                continue
            s -= 1
            D -= dbase[i]
            state[i] = 3
            t_done[i] = t
            served += 1
            if not paged:
                F -= alloc[i]
            ch = children[i]
            if ch >= 0:
                heapq.heappush(follow, (t + think[ch], ch))

    waiting_end = len(waiting)
    running_end = s + len(prefilling)
    arr = np.asarray(t_arr, dtype=np.float64)
    arr[arr > T] = np.nan  # primaries after the horizon never arrived
    return ServingRun(
        duration_s=T,
        arrival_s=arr,
        first_token_s=np.asarray(t_first, dtype=np.float64),
        done_s=np.asarray(t_done, dtype=np.float64),
        prompt_tokens=requests.prompt_tokens,
        output_tokens=requests.output_tokens,
        cached_tokens=requests.cached_tokens,
        preemptions=np.asarray(npre, dtype=np.int64),
        dropped=np.asarray(dropped, dtype=bool),
        arrived=arrived,
        served=served,
        n_dropped=n_drop,
        queued=waiting_end + running_end,
        waiting_at_end=waiting_end,
        running_at_end=running_end,
        iterations=n,
        generated_tokens=generated,
        kv_capacity_tokens=cap,
        sample_s=np.asarray(samples_t, dtype=np.float64),
        sample_waiting=np.asarray(samples_w, dtype=np.int64),
        sample_running=np.asarray(samples_r, dtype=np.int64),
        sample_kv_tokens=np.asarray(samples_kv, dtype=np.int64),
        sample_generated=np.asarray(samples_g, dtype=np.int64),
    )


# --- disaggregated prefill (a separate prefill pool in front of the decode replica) ----------


def prefill_pool_ready_s(requests: Requests, pool: PrefillCosts) -> np.ndarray:
    """When each request's KV cache is on the decode replica: FCFS through the prefill pool,
    then the transfer over the fabric (seconds; arrival order, ties by index).

    The pool has ``ceil(m)`` instances for the ``m = pool.instances_per_replica`` this replica
    has (fractional: its share of a pool serving several replicas), each running at ``m /
    ceil(m)`` of an instance's speed, so that the pool's capacity is exactly ``m`` instances'
    (a request on a shared instance would run at full speed but wait for the other replicas'
    requests; this spreads that wait over its service instead). A request takes one instance
    for :meth:`PrefillCosts.service_s` of its new and cached prompt tokens (the perf model's
    prefill terms, ``sim/perf/inference.py``), then ``prompt x transfer_s_per_token`` on the
    link, counted as exposed and without contention between transfers (the estimate's upper
    bound: ~2 ms for 100k tokens of DeepSeek-R1 over a TP8 replica's eight 1.6 Tb/s NICs)."""
    m = pool.instances_per_replica
    if not m > 0 or not math.isfinite(m):
        raise ValueError(f"a prefill pool needs a positive number of instances, got {m}")
    servers = math.ceil(m - 1e-9)
    slow = servers / m
    prompt = requests.prompt_tokens.astype(np.float64)
    cached = np.minimum(requests.cached_tokens, requests.prompt_tokens - 1).astype(np.float64)
    new = prompt - cached
    busy = (
        pool.fixed_s
        + pool.s_per_token * new
        + pool.s_per_attention_unit * (cached * new + new * new * 0.5)
    ) * slow
    transfer = prompt * pool.transfer_s_per_token
    arrival = requests.arrival_s
    order = np.argsort(arrival, kind="stable").tolist()
    arr = arrival.tolist()
    svc = busy.tolist()
    done = [0.0] * len(arr)
    free = [0.0] * servers  # when each instance is next free (a heap)
    for i in order:
        a = arr[i]
        f = free[0]
        start = a if a > f else f
        end = start + svc[i]
        heapq.heapreplace(free, end)
        done[i] = end
    return np.asarray(done, dtype=np.float64) + transfer


def simulate_disaggregated(
    requests: Requests,
    step: StepModel,
    options: EngineOptions,
    duration_s: float,
    pool: PrefillCosts,
    sample_interval_s: float | None = None,
    max_jump: int | None = None,
) -> ServingRun:
    """One decode replica behind a disaggregated prefill pool (``pool``: Rubin CPX companion
    parts, or prefill instances on GPUs).

    A request arrives at the pool, is prefilled there (:func:`prefill_pool_ready_s`: the pool's
    FCFS queue, its prefill, the KV transfer) and reaches the decode replica with its prompt's
    KV cache; :func:`simulate` runs the replica on those arrivals with every prompt but its
    last token cached, so admission, KV reservation (prompt + output, or paged growth with
    preemption and recompute on the decode GPUs) and decoding are the co-located path's own.
    The last prompt token's one-token chunk is the request's first decode iteration: the
    first token comes out of it (as in vLLM's disaggregated prefill, where the decode instance
    returns every token; the perf model's TTFT = prefill + transfer + one iteration). So TTFT
    = prefill queue + prefill + transfer + decode queue + one iteration. Arrival times, cache
    hits and the accounting are the pool's: a request still in the pool (or its transfer) at
    the horizon is queued (``waiting_at_end``), so served + dropped + queued = arrived holds.
    The sampled levels are the decode replica's. Agentic sessions (a call's arrival follows its
    parent's completion) are not modelled on this path: ValueError."""
    if bool((requests.parent >= 0).any()):
        raise ValueError(
            "agentic sessions are not modelled with a separate prefill pool (a call's arrival"
            " depends on its parent's completion); simulate them co-located"
        )
    ready = prefill_pool_ready_s(requests, pool)
    at_decode = Requests(
        arrival_s=ready,
        prompt_tokens=requests.prompt_tokens,
        output_tokens=requests.output_tokens,
        cached_tokens=np.maximum(requests.prompt_tokens - 1, 0),
        parent=requests.parent,
        think_s=requests.think_s,
        session=requests.session,
    )
    run = simulate(at_decode, step, options, duration_s, sample_interval_s, max_jump)
    arrival = requests.arrival_s.astype(np.float64, copy=True)
    arrival[arrival > run.duration_s] = np.nan  # after the horizon: never arrived
    arrived = int(np.count_nonzero(arrival <= run.duration_s))
    in_pool = arrived - run.arrived
    return replace(
        run,
        arrival_s=arrival,
        cached_tokens=requests.cached_tokens,
        arrived=arrived,
        queued=run.queued + in_pool,
        waiting_at_end=run.waiting_at_end + in_pool,
    )
