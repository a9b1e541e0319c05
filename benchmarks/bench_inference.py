"""PyTorch eager vs onnxruntime inference speed for a CycleGAN resnet_9blocks generator.

    python benchmarks/bench_inference.py [--size 256] [--batch 1,4] [--repeats 10] [--device cpu]
                                         [--network resnet_9blocks] [--threads N]

Builds the generator from the registry (random weights: speed does not depend on them), exports
it to a verified temporary ONNX file, then times both backends interleaved and prints a table
with medians, images/s, achieved GFLOP/s and the ratio to eager.
"""

from __future__ import annotations

import argparse

import torch

import gantransfer
from gantransfer.export.bench import benchmark_network, format_table, machine_summary
from gantransfer.model import ExportSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="resnet_9blocks")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", default="1,4")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.network not in gantransfer.list(kind="network"):
        raise SystemExit(f"network {args.network!r} is not registered (is the CycleGAN plugin "
                         f"installed?); available: {gantransfer.list(kind='network')}")
    torch.manual_seed(0)
    net = gantransfer.get_network(args.network)
    spec = ExportSpec(net=args.network, size_divisor=int(getattr(net, "size_divisor", 4)),
                      min_size=int(getattr(net, "min_size", 8)))
    print(machine_summary())
    rows = benchmark_network(net, spec, size=args.size,
                             batches=[int(b) for b in args.batch.split(",")],
                             repeats=args.repeats, device=args.device, threads=args.threads)
    table = format_table(rows)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(line, widths, strict=True))))


if __name__ == "__main__":
    main()
