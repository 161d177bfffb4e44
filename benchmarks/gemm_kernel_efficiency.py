"""The large-GEMM ceiling of the GEMM kernel alone, from aiconfigurator's measured GEMM tables.

Usage:
    .venv/bin/python benchmarks/gemm_kernel_efficiency.py

aiconfigurator's collector (catalog source S123, ``collector/trtllm/collect_gemm.py``) times an
FP8 or NVFP4 GEMM as TensorRT-LLM's PyTorch ``Linear`` module run on a BF16 input, replayed in a
CUDA graph: one kernel quantizes the activations, the next multiplies (``kernel_source:
torch_flow``). The catalog's ``efficiency.gemm`` (the median over m, n, k >= 8,192) and
``gemm_latency_s`` are fitted on those timings, so both include the quantize op. An engine that
fuses the quantization into the kernel that produces the activations (RMSNorm, SwiGLU, the
attention output: the serving runtime ``fused``, docs/performance-model.md) does not run it.

This script removes the quantize op from each measured latency and prints the median efficiency
of what is left (catalog ``efficiency.gemm_kernel``). The quantize op is taken as

    fixed  = gemm_latency_s[precision] - gemm_latency_s[bf16]      (catalog, same tables)
    moved  = m x k x (2 + bytes per quantized element) / (HBM x efficiency.hbm)

(read the BF16 activations, write the FP8 or FP4 values with their scales). The fixed part is
checked against S123's own timings of the standalone FP8 quantize ops (``quantize/trtllm``:
``compute_scale`` + ``scale_matrix`` at m <= 16, k = 8,192), printed alongside: they agree
within 2 us. Nothing here is fitted to an end-to-end result.
"""

from __future__ import annotations

import glob
from importlib import resources

import numpy as np
import pandas as pd

from sim.catalog.hardware import Precision, catalog

SYSTEMS = {
    "h200_sxm": "h200_sxm",
    "b200_hgx": "b200_sxm",
    "gb200_nvl72": "gb200",
    "b300_hgx": "b300_sxm",
    "gb300_nvl72": "gb300",
}
DTYPES = {Precision.FP8: ("fp8", 1.0), Precision.FP4: ("nvfp4", 0.5625)}
VERSION = "1.3.0rc20"


def _table(system: str, rel: str) -> pd.DataFrame:
    root = resources.files("aiconfigurator_core") / "systems" / "data" / system
    (path,) = glob.glob(str(root / rel))
    return pd.read_parquet(path)


def main() -> None:
    print(
        "part         precision  gemm (catalog, with quantize)  gemm_kernel (without)  "
        "quantize fixed: catalog difference / S123 quantize ops"
    )
    for name, system in SYSTEMS.items():
        hw = catalog()[name]
        eff = hw.efficiency
        g = _table(system, f"gemm/trtllm/{VERSION}/gemm_perf.parquet")
        g = g[(g.kernel_source == "torch_flow") & (g.m >= 8192) & (g.n >= 8192) & (g.k >= 8192)]
        ops = 0.0
        for op in ("computescale_perf", "scale_matrix_perf"):
            q = _table(system, f"quantize/trtllm/{VERSION}/{op}.parquet")
            q = q[(q.quant_dtype == "fp8") & (q.k == 8192) & (q.m <= 16)]
            ops += float(q.latency.median()) * 1e-3
        for p, (dtype, qbytes) in DTYPES.items():
            if p not in hw.peak_flops:
                continue
            s = g[g.gemm_dtype == dtype]
            lat = s.latency.to_numpy() * 1e-3
            m, n, k = (s[c].to_numpy(dtype=float) for c in ("m", "n", "k"))
            fixed = eff.gemm_latency_at(p) - eff.gemm_latency_at(Precision.BF16)
            moved = m * k * (2.0 + qbytes) / (hw.hbm_bandwidth_bytes_per_s * eff.hbm)
            flops = 2.0 * m * n * k / hw.peak(p)
            with_q = float(np.median(flops / lat))
            without = float(np.median(flops / (lat - fixed - moved)))
            check = f"{ops * 1e6:5.1f} us" if p is Precision.FP8 else "   -   "
            print(
                f"{name:12s} {p.value:9s}  {with_q:29.3f}  {without:21.3f}  "
                f"{fixed * 1e6:5.1f} us / {check}"
            )


if __name__ == "__main__":
    main()
