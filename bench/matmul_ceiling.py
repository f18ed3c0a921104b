"""This CPU's matrix-multiply ceiling, per precision: the best FLOP/s of a large square matmul in
torch (oneDNN), OpenVINO (one compiled MatMul on every core) and numpy (its BLAS; fp32 only).

The encoder's share of the ceiling (bench_ingest.py) is its useful FLOPs per second over the
best of these for the precision it runs in. Best of ``--repeats``, not the median: the question
is what the hardware can do.

    PYTHONPATH=src python bench/matmul_ceiling.py [--n 4096] [--repeats 5]

Prints JSON: {"cpu", "gflops": {"fp32": {...per library}, "bf16": {...}}, "best": {"fp32", "bf16"}}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    run()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def torch_gflops(n: int, precision: str, repeats: int) -> float:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / best_seconds(lambda: torch.matmul(a, b), repeats) / 1e9


def openvino_gflops(n: int, precision: str, repeats: int) -> float:
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    a = ops.parameter([n, n], ov.Type.f32, name="a")
    product = ops.matmul(a, ops.constant(rng.standard_normal((n, n)).astype(np.float32)), False, False)
    model = ov.Model([product], [a], "matmul")
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else
                                                      "f32", "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    x = rng.standard_normal((n, n)).astype(np.float32)
    return 2 * n**3 / best_seconds(lambda: request.infer({"a": x}), repeats) / 1e9


def numpy_gflops(n: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
    return 2 * n**3 / best_seconds(lambda: a @ b, repeats) / 1e9


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def measure(n: int = 4096, repeats: int = 5) -> dict[str, object]:
    """The ceiling per precision and library (GFLOP/s), and the best per precision."""
    gflops: dict[str, dict[str, float]] = {"fp32": {}, "bf16": {}}
    for precision in ("fp32", "bf16") if native_bf16() else ("fp32",):
        gflops[precision]["torch"] = torch_gflops(n, precision, repeats)
        gflops[precision]["openvino"] = openvino_gflops(n, precision, repeats)
    gflops["fp32"]["numpy"] = numpy_gflops(n, repeats)
    return {"cpu": f"{cpu_name()}, {os.cpu_count()} cores", "native_bf16": native_bf16(), "n": n,
            "gflops": gflops, "best": {p: max(v.values()) for p, v in gflops.items() if v}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure(args.n, args.repeats), indent=2))


if __name__ == "__main__":
    main()
