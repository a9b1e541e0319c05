"""Benchmark helpers and `gtx bench` (tiny sizes: checks the plumbing, not the speed)."""

from __future__ import annotations

import torch
from torch import nn
from typer.testing import CliRunner

from gantransfer.cli.app import app
from gantransfer.export.bench import count_flops


def test_count_flops_counts_a_multiply_add_as_two():
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    assert count_flops(conv, torch.zeros(1, 3, 8, 8)) == 2 * (4 * 8 * 8) * (3 * 3 * 3)


def test_gtx_bench_times_eager_and_onnxruntime_side_by_side():
    result = CliRunner().invoke(app, ["bench", "dcgan", "--set", "ngf=4", "--set", "nz=8",
                                      "--set", "image_size=32", "--batch", "1,2",
                                      "--repeats", "2"])
    assert result.exit_code == 0, (result.output, result.exception)
    rows = [[c.strip() for c in ln.strip("│ ").split("│")] for ln in result.output.splitlines()
            if ln.startswith("│") and ("torch eager" in ln or "onnxruntime" in ln)]
    assert [(r[0], r[1]) for r in rows] == [("torch eager", "1"), ("onnxruntime", "1"),
                                            ("torch eager", "2"), ("onnxruntime", "2")]
    for backend, _, median_ms, per_s, gflops, ratio in rows:
        assert float(median_ms) > 0 and float(per_s) > 0 and float(gflops) >= 0
        assert ratio == "1.00x" if backend == "torch eager" else float(ratio.rstrip("x")) > 0
