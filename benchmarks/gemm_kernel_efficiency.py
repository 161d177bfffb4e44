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

This script (via :func:`sim.perf.measured.gemm_kernel_fit`) removes the quantize op from each
measured latency and prints the median efficiency of what is left (catalog
``efficiency.gemm_kernel``; ``tests/perf/test_measured.py`` holds the catalog to it). The
quantize op is taken as

    fixed  = gemm_latency_s[precision] - gemm_latency_s[bf16]      (catalog, same tables)
    moved  = m x k x (2 + bytes per quantized element) / (HBM x efficiency.hbm)

(read the BF16 activations, write the FP8 or FP4 values with their scales). The fixed part is
checked against S123's own timings of the standalone FP8 quantize ops (``quantize/trtllm``:
``compute_scale`` + ``scale_matrix`` at m <= 16, k = 8,192), printed alongside: they agree
within 2 us. Nothing here is fitted to an end-to-end result.
"""

from __future__ import annotations

from sim.perf.measured import gemm_kernel_fit

PARTS = ("h200_sxm", "b200_hgx", "gb200_nvl72", "b300_hgx", "gb300_nvl72")


def main() -> None:
    print(
        "part         precision  gemm (catalog, with quantize)  gemm_kernel (without)  "
        "quantize fixed: catalog difference / S123 quantize ops"
    )
    for name in PARTS:
        for f in gemm_kernel_fit(name):
            check = f"{f.quantize_ops_s * 1e6:5.1f} us" if f.precision == "fp8" else "   -   "
            print(
                f"{name:12s} {f.precision:9s}  {f.with_quantize:29.3f}  {f.kernel_alone:21.3f}  "
                f"{f.quantize_fixed_s * 1e6:5.1f} us / {check}"
            )


if __name__ == "__main__":
    main()
