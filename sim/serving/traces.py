"""Readers for public LLM-serving request traces (arrival times and token counts).

Three formats (network-and-serving.md B3 "Public traces", validation.md F.1):

* **Azure** LLM inference 2023 / 2024 (Splitwise, DynamoLLM): CSV with the header
  ``TIMESTAMP,ContextTokens,GeneratedTokens``; ``TIMESTAMP`` is a date-time
  (``2023-11-16 18:15:46.6805900``).
* **Mooncake** (Kimi, FAST'25 release): JSON lines with ``timestamp`` (milliseconds),
  ``input_length``, ``output_length`` and ``hash_ids`` (hashes of the prompt's 512-token prefix
  blocks). The prompt-cache hit of a request is the run of its leading blocks that an earlier
  request already had, times 512 tokens (an unbounded cache, the paper's "theoretical" hit
  rate; B3 reports 37% of tokens for the conversation trace).
* **BurstGPT** (Azure OpenAI GPT-3.5/4): CSV with ``Timestamp`` (seconds), ``Model``,
  ``Request tokens``, ``Response tokens``, ``Total tokens``, ``Log Type``. Rows with 0 response
  tokens are failed requests in that dataset and are skipped.

Arrival times are seconds from the trace's first request; ``speed`` > 1 replays faster (arrival
times divided by it). Every problem is a :class:`TraceError` naming the file (and the line where
there is one) and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim.serving.workload import Requests

__all__ = ["MAX_TRACE_BYTES", "TRACE_FORMATS", "TraceError", "read_trace"]

TRACE_FORMATS = ("azure", "mooncake", "burstgpt")
#: Largest trace file read (the Azure 2024 week of conversations is ~0.9 GB).
MAX_TRACE_BYTES = 4 * 1024**3
MOONCAKE_BLOCK_TOKENS = 512

_AZURE = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_BURST = ("Timestamp", "Request tokens", "Response tokens")
_MOON = ("timestamp", "input_length", "output_length")


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the file and the problem."""


def _sniff(path: Path) -> str:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        head = fh.readline().strip()
    if head.startswith("{"):
        return "mooncake"
    cols = [c.strip() for c in head.split(",")]
    if all(c in cols for c in _AZURE):
        return "azure"
    if all(c in cols for c in _BURST):
        return "burstgpt"
    raise TraceError(
        f"{path}: cannot tell the trace format from its first line {head[:80]!r}; expected an"
        f" Azure CSV header ({','.join(_AZURE)}), a BurstGPT CSV header"
        f" ({', '.join(_BURST)}, ...) or Mooncake JSON lines ({', '.join(_MOON)}, hash_ids)"
    )


def read_trace(
    path: str | Path,
    fmt: str | None = None,
    *,
    speed: float = 1.0,
    max_context: int | None = None,
) -> Requests:
    """Read a trace into :class:`Requests` (sorted by arrival). ``fmt`` None guesses it."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: trace file not found")
    size = p.stat().st_size
    if size > MAX_TRACE_BYTES:
        raise TraceError(
            f"{p}: {size / 1e9:.1f} GB is larger than the {MAX_TRACE_BYTES / 1e9:.0f} GB read"
        )
    if size == 0:
        raise TraceError(f"{p}: the file is empty")
    if not speed > 0 or not np.isfinite(speed):
        raise TraceError(f"{p}: replay speed must be a positive number, got {speed}")
    if fmt is None:
        fmt = _sniff(p)
    if fmt not in TRACE_FORMATS:
        raise TraceError(f"{p}: unknown trace format {fmt!r}; known: {', '.join(TRACE_FORMATS)}")
    if fmt == "mooncake":
        t, prompt, out, cached = _mooncake(p)
    else:
        t, prompt, out = _azure(p) if fmt == "azure" else _burst(p)
        cached = np.zeros_like(prompt)
    if t.size == 0:
        raise TraceError(f"{p}: no requests in the trace")
    order = np.argsort(t, kind="stable")
    t = (t[order] - t[order][0]) / speed
    prompt, out, cached = prompt[order], out[order], cached[order]
    if max_context is not None:
        prompt = np.minimum(prompt, max_context - 1)
        out = np.maximum(np.minimum(out, max_context - prompt), 1)
    return Requests.independent(t, prompt, out, cached)


def _csv(path: Path, needed: tuple[str, ...]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: not a readable CSV ({str(exc).splitlines()[0][:120]})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise TraceError(
            f"{path}: missing column(s) {', '.join(missing)};"
            f" found {', '.join(map(str, df.columns))}"
        )
    return df


def _tokens(path: Path, df: pd.DataFrame, col: str, low: int) -> np.ndarray:
    x = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(x) | (x < low) | (x != np.floor(x)))
    if bad.size:
        row = int(bad[0])
        raise TraceError(
            f"{path}:{row + 2}: {col} must be a whole number >= {low}, got {df[col].iloc[row]!r}"
        )
    return x.astype(np.int64)


def _azure(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    df = _csv(path, _AZURE)
    ts = pd.to_datetime(df["TIMESTAMP"], errors="coerce")
    bad = np.flatnonzero(ts.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise TraceError(
            f"{path}:{row + 2}: TIMESTAMP must be a date-time such as 2023-11-16 18:15:46.68,"
            f" got {df['TIMESTAMP'].iloc[row]!r}"
        )
    t = (ts - ts.min()).dt.total_seconds().to_numpy(dtype=np.float64)
    return t, _tokens(path, df, "ContextTokens", 1), _tokens(path, df, "GeneratedTokens", 1)


def _burst(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    df = _csv(path, _BURST)
    t = pd.to_numeric(df["Timestamp"], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(t) | (t < 0))
    if bad.size:
        row = int(bad[0])
        raise TraceError(
            f"{path}:{row + 2}: Timestamp must be seconds >= 0, got {df['Timestamp'].iloc[row]!r}"
        )
    prompt = _tokens(path, df, "Request tokens", 0)
    out = _tokens(path, df, "Response tokens", 0)
    ok = out > 0  # 0 response tokens: a failed request in BurstGPT
    return t[ok], np.maximum(prompt[ok], 1), out[ok]


def _mooncake(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ts: list[float] = []
    prompt: list[int] = []
    out: list[int] = []
    cached: list[int] = []
    rows: list[tuple[float, int, list[int]]] = []
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{path}:{line_no}: not a JSON object ({exc.msg})") from None
            if not isinstance(rec, dict) or any(k not in rec for k in _MOON):
                raise TraceError(
                    f"{path}:{line_no}: expected an object with {', '.join(_MOON)} (and hash_ids)"
                )
            try:
                t = float(rec["timestamp"]) / 1000.0
                n_in = int(rec["input_length"])
                n_out = int(rec["output_length"])
                hashes = [int(h) for h in rec.get("hash_ids") or []]
            except (TypeError, ValueError):
                raise TraceError(
                    f"{path}:{line_no}: timestamp, input_length, output_length must be numbers"
                    " and hash_ids a list of integers"
                ) from None
            if not np.isfinite(t) or t < 0 or n_in < 1 or n_out < 1:
                raise TraceError(
                    f"{path}:{line_no}: need timestamp >= 0 and input_length, output_length >= 1"
                )
            rows.append((t, n_in, hashes))
            ts.append(t)
            prompt.append(n_in)
            out.append(n_out)
    # prefix-cache hits in arrival order with an unbounded cache
    seen: set[int] = set()
    hit = [0] * len(rows)
    for k in sorted(range(len(rows)), key=lambda r: rows[r][0]):
        _, n_in, hashes = rows[k]
        run = 0
        for h in hashes:
            if h not in seen:
                break
            run += 1
        seen.update(hashes)
        hit[k] = min(run * MOONCAKE_BLOCK_TOKENS, n_in - 1)
    cached = hit
    return (
        np.asarray(ts, dtype=np.float64),
        np.asarray(prompt, dtype=np.int64),
        np.asarray(out, dtype=np.int64),
        np.asarray(cached, dtype=np.int64),
    )
