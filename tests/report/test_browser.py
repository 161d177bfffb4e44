"""report.html and comparison.html in a real browser: every figure renders, the page logs no
errors, and nothing is fetched from the network.

Needs Chromium (Debian's ``chromium`` package: ``make browser`` installs it); skipped with that
reason where it is absent. The page is served from a local HTTP server on 127.0.0.1 with every
other host unresolvable, run headless with ``--dump-dom`` after a virtual-time budget, and read
back: each figure section must hold a rendered ``svg.main-svg``, and the report's own error
recorder (``<div id="report-log" data-errors=...>``) must be empty. A screenshot of each page is
kept under ``tests/artifacts/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sim.cli import main
from sim.io import RunTables
from sim.report.compare import render_comparison
from sim.report.figures import FIGURES

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (run `make browser`, or apt-get install chromium):"
    " the headless-browser check of report.html cannot run",
)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _serve(folder: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        # any host but the local server fails to resolve: a page that needs the network breaks
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--virtual-time-budget=10000",
        *args,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _figure_sections(dom: str) -> dict[str, str]:
    """Figure id -> the HTML of its section in the rendered DOM."""
    out = {}
    for chunk in re.split(r"(?=<section class=\"figure\")", dom)[1:]:
        m = re.match(r'<section class="figure" id="[^"]*" data-figure="([^"]+)"', chunk)
        assert m is not None, chunk[:200]
        out[m.group(1)] = chunk.split("</section>", 1)[0]
    return out


def _check_page(folder: Path, page: str, profile: Path, shot: str, height: int) -> dict[str, str]:
    with _serve(folder) as base:
        done = _chromium(f"{base}/{page}", profile, "--dump-dom")
        assert done.returncode == 0, done.stderr[-2000:]
        dom = done.stdout
        log = re.search(r'<div id="report-log"[^>]*data-errors="(\d+)"[^>]*>(.*?)</div>', dom, re.S)
        assert log is not None, "the page's error recorder is missing"
        assert log.group(1) == "0", f"the page logged errors: {log.group(2)}"
        sections = _figure_sections(dom)
        for fig_id, html in sections.items():
            assert 'class="main-svg"' in html, f"figure {fig_id!r} did not render"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        png = ARTIFACTS / shot
        png.unlink(missing_ok=True)
        done = _chromium(
            f"{base}/{page}", profile, f"--screenshot={png}", f"--window-size=1400,{height}"
        )
        assert done.returncode == 0, done.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    return sections


def test_report_renders_in_chromium(
    smoke_dir: Path, smoke_tables: RunTables, tmp_path: Path
) -> None:
    sections = _check_page(smoke_dir, "report.html", tmp_path / "profile", "report.png", 4600)
    assert list(sections) == [s.id for s in FIGURES if s.has_data(smoke_tables)]
    # every figure but the throttle's (the smoke site's power never binds) and the fabric's
    # (the default non_blocking fabric)
    assert len(sections) == len(FIGURES) - 3


def test_fabric_report_renders_in_chromium(
    fabric_dir: Path, fabric_tables: RunTables, tmp_path: Path
) -> None:
    sections = _check_page(fabric_dir, "report.html", tmp_path / "profile", "fabric.png", 5200)
    assert list(sections) == [s.id for s in FIGURES if s.has_data(fabric_tables)]
    assert {"placement", "uplinks"} <= set(sections)


def test_comparison_renders_in_chromium(smoke_tables: RunTables, tmp_path: Path) -> None:
    page = tmp_path / "site"
    page.mkdir()
    runs = {"smoke-a": smoke_tables, "smoke-b": smoke_tables}
    (page / "comparison.html").write_text(render_comparison(runs), "utf-8")
    sections = _check_page(page, "comparison.html", tmp_path / "profile", "comparison.png", 3000)
    assert {"kpis", "utilization", "power"} <= set(sections)


def test_serving_report_renders_in_chromium(tmp_path: Path) -> None:
    out = tmp_path / "serve"
    args = ["serve-sim", "scenarios/smoke.yaml", "--service", "chat-70b", "--duration", "5 min"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    sections = _check_page(out, "report.html", tmp_path / "profile", "serving.png", 1900)
    assert list(sections) == ["latency", "levels"]
