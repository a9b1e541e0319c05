"""The measurements behind `gtx translate`'s hardware-dependent defaults (batch size, compile, the
int8 hint), on this CPU as it is and with native bf16 switched off.

    python benchmarks/bench_defaults.py [--size 256] [--rounds 5] [--batches 1,8]
        [--isa native,AVX512_CORE_VNNI] [--network resnet_9blocks] [--checkpoint RUN]
        [--json PATH]

For each ``--isa`` setting a worker process measures, interleaved round by round (one call of
each path in turn, so a machine that slows down hurts all paths alike), the seconds per image of

* ``eager-fp32``: what ``--compile off`` runs; ``eager-bf16``: bf16 autocast, eager (batch 1);
* ``compiled``: torch.compile at ``--precision auto`` (bf16 where the CPU computes it natively,
  else fp32), with the compile time of each batch size from a cold inductor cache;
* ``onnx-fp32``, ``onnx-int8``: onnxruntime on the exported file / the static int8 file;

at each ``--batches`` size (``eager-bf16`` at batch 1 only), and derives what the rules in
``gantransfer/inference/defaults.py`` use: the best batch size per path, the number of images after
which compiling repays its cost, and the speed-up of the int8 file over the path the defaults run.

``--isa native`` runs as the machine is. Any other value is passed to oneDNN as
``ONEDNN_MAX_CPU_ISA`` (``AVX512_CORE_VNNI``: an AVX-512 VNNI Xeon without avx512_bf16/AMX, such
as Cascade Lake), so PyTorch's convolutions and matmuls cannot use bf16 or AMX instructions; the
worker also denies itself the AMX permission Linux requires (``arch_prctl(ARCH_REQ_XCOMP_PERM)``
fails for it), which keeps onnxruntime's int8 kernels off AMX too. Each worker first times a
1024x1024 matmul in fp32 and bf16 and records the ratio, which shows whether bf16 really is
native (~4x faster than fp32 with AMX) or emulated (several times slower) under the setting.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NATIVE = "native"
# Whether the CPU computes bf16 natively, per oneDNN ISA cap (no cap: as the CPU says).
_NO_BF16_ISAS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                 "AVX512_CORE_VNNI"}


def deny_amx() -> bool:
    """Make this process's requests for the AMX register state fail (seccomp filter).

    Linux gives a process AMX only after ``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``;
    onnxruntime (MLAS) and oneDNN ask for it and use AMX kernels only if it succeeds. A filter
    that answers that one call with EPERM makes both fall back to AVX-512 (VNNI) kernels, as on
    a CPU without AMX. Call before torch/onnxruntime start threads (the filter covers the calling
    thread and threads created after it). Returns whether the filter was installed.
    """
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return False

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    ld_abs, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET
    arch_prctl, req_xcomp_perm = 158, 0x1023
    errno_eperm, allow = 0x00050000 | 1, 0x7FFF0000  # SECCOMP_RET_ERRNO|EPERM, RET_ALLOW
    code = (Filter * 6)(
        Filter(ld_abs, 0, 0, 0),  # seccomp_data.nr
        Filter(jeq, 0, 3, arch_prctl),  # not arch_prctl: allow
        Filter(ld_abs, 0, 0, 16),  # seccomp_data.args[0] (low 32 bits)
        Filter(jeq, 0, 1, req_xcomp_perm),
        Filter(ret, 0, 0, errno_eperm),
        Filter(ret, 0, 0, allow),
    )
    libc = ctypes.CDLL(None, use_errno=True)
    prog = Program(len(code), code)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS (required for an unprivileged filter)
        return False
    return libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0  # PR_SET_SECCOMP, MODE_FILTER


def amx_permitted() -> bool | None:
    """Whether this process may use AMX (None where the question does not apply)."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(158, 0x1023, 18) == 0  # arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)


# -- the worker: one ISA setting ---------------------------------------------------------------
def _median_time(fn: Any, *, reps: int) -> float:
    fn()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _matmul_check() -> dict[str, float]:
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    fp32 = _median_time(lambda: a @ b, reps=10)
    a16, b16 = a.bfloat16(), b.bfloat16()
    bf16 = _median_time(lambda: a16 @ b16, reps=10)
    return {"fp32_ms": fp32 * 1e3, "bf16_ms": bf16 * 1e3, "bf16_speedup": fp32 / bf16}


def _paths(model: Any, work: Path, calib: Path, *, size: int, batches: list[int],
           threads: int | None) -> dict[tuple[str, int], Any]:
    """(path, batch) -> a Translator; compiled paths get one per batch size (a compiled
    translator keeps the batch size it first ran at)."""
    import gantransfer
    from gantransfer.inference import translator

    fp32 = gantransfer.export_onnx(model, work / "fp32.onnx", target="a2b")[0].path
    int8 = gantransfer.export_onnx(model, work / "int8.onnx", target="a2b", precision="int8",
                                   calib=calib, calib_size=size, min_psnr=0.0)[0].path

    def onnx(path: Path) -> Any:
        # No spin-waiting: idle onnxruntime threads would busy-wait after each run and steal
        # the cores from the path timed next.
        return translator(gantransfer.onnx.load(
            path, providers="cpu", threads=threads,
            session_config={"session.intra_op.allow_spinning": "0"}))

    out: dict[tuple[str, int], Any] = {}
    for b in batches:
        out[("eager-fp32", b)] = translator(model, precision="fp32", compile="off")
        if b == 1:
            out[("eager-bf16", b)] = translator(model, precision="bf16", compile="off")
        out[("compiled", b)] = translator(model, precision="auto", compile="on", bucket=1)
        out[("onnx-fp32", b)] = onnx(fp32)
        out[("onnx-int8", b)] = onnx(int8)
    return out


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every path at every batch size under this process's ISA setting."""
    amx_denied = args.isa != NATIVE and deny_amx()
    import numpy as np
    import torch

    import gantransfer
    from gantransfer.data.demo import make_single
    from gantransfer.data.images import read_image
    from gantransfer.export.bench import machine_summary
    from gantransfer.pixels import from_uint8
    from gantransfer.precision import cpu_has_native_bf16

    batches = [int(b) for b in args.batches.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        "isa": args.isa, "machine": machine_summary(), "amx_denied": amx_denied,
        "amx_permitted": amx_permitted(), "library_says_native_bf16": cpu_has_native_bf16(),
        "matmul": _matmul_check(), "size": args.size,
        "model": args.checkpoint or f"{args.network} (random weights)",
        "threads": torch.get_num_threads(),
    }
    torch.manual_seed(0)
    model = (gantransfer.load(args.checkpoint) if args.checkpoint
             else gantransfer.get("cyclegan", netG=args.network).eval())
    with tempfile.TemporaryDirectory(prefix="gtx-bench-defaults-") as tmp:
        work = Path(tmp)
        make_single(work / "calib", n=16, size=args.size, seed=1)
        make_single(work / "x", n=max(batches), size=args.size, seed=2)
        arrays = [np.asarray(read_image(p, channels=3))
                  for p in sorted((work / "x").glob("*.png"))]
        x = from_uint8(torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2))
        paths = _paths(model, work, work / "calib", size=args.size, batches=batches,
                       threads=args.threads)
        compile_s: dict[int, float] = {}
        with model.evaluating():
            for (name, b), run in paths.items():  # first calls: compiling, one-off set-up
                start = time.perf_counter()
                run(x[:b])
                if name == "compiled":
                    compile_s[b] = time.perf_counter() - start
            times: dict[tuple[str, int], list[float]] = {key: [] for key in paths}
            for r in range(args.rounds):
                for (name, b), run in paths.items():
                    start = time.perf_counter()
                    run(x[:b])
                    times[(name, b)].append((time.perf_counter() - start) / b)
                print(f"[{args.isa}] round {r + 1}/{args.rounds} done", file=sys.stderr,
                      flush=True)
        description = {name: run.description for (name, _), run in paths.items()}
    per_image = {f"{name}@{b}": statistics.median(t) for (name, b), t in times.items()}
    # The compile cost is the first call minus one steady call at that batch size.
    compile_cost = {b: compile_s[b] - per_image[f"compiled@{b}"] * b for b in compile_s}
    result.update({"per_image_s": per_image, "samples_s": {
        f"{n}@{b}": t for (n, b), t in times.items()}, "compile_cost_s": compile_cost,
        "runs_as": description, "rounds": args.rounds})
    return result


# -- the parent: one worker per ISA setting, then the derived numbers --------------------------
def derive(result: dict[str, Any]) -> dict[str, Any]:
    """The numbers the rules use, from one worker's result."""
    t = result["per_image_s"]
    batches = sorted({int(k.split("@")[1]) for k in t})
    best = {}
    for name in ("eager-fp32", "compiled", "onnx-fp32", "onnx-int8"):
        b = min(batches, key=lambda b, n=name: t[f"{n}@{b}"])
        best[name] = {"batch": b, "s_per_image": t[f"{name}@{b}"],
                      "batch_ratio": {str(b2): t[f"{name}@{b2}"] / t[f"{name}@1"]
                                      for b2 in batches}}
    eager, compiled = t["eager-fp32@1"], t["compiled@1"]
    saving = eager - compiled
    cost = result["compile_cost_s"].get(1) or result["compile_cost_s"].get("1")
    return {
        "best": best,
        "compiled_speedup_b1": eager / compiled,
        "compile_break_even_images": (cost / saving) if saving > 0 else None,
        "int8_speedup_vs_eager_fp32_b1": eager / t["onnx-int8@1"],
        "int8_speedup_vs_compiled_b1": compiled / t["onnx-int8@1"],
        "int8_speedup_vs_onnx_fp32_b1": t["onnx-fp32@1"] / t["onnx-int8@1"],
        "eager_bf16_vs_fp32_b1": t["eager-fp32@1"] / t["eager-bf16@1"],
    }


def report(result: dict[str, Any], derived: dict[str, Any]) -> str:
    m = result["matmul"]
    lines = [
        f"== ISA {result['isa']}: {result['machine']}",
        f"   bf16 matmul 1024^2 {m['bf16_ms']:.1f} ms vs fp32 {m['fp32_ms']:.1f} ms "
        f"(bf16 x{m['bf16_speedup']:.2f}); library says native bf16: "
        f"{result['library_says_native_bf16']}; AMX permitted: {result['amx_permitted']}",
        f"   {result['model']} at {result['size']}x{result['size']}, medians of "
        f"{result['rounds']} interleaved rounds, {result.get('threads', '?')} thread(s) "
        "(s/image: median, min):",
    ]
    t = result["per_image_s"]
    for key in t:
        name = key.split("@")[0]
        lines.append(f"   {key:<16} {t[key]:7.3f} {min(result['samples_s'][key]):7.3f}   "
                     f"{result['runs_as'].get(name, '')}")
    for b, cost in result["compile_cost_s"].items():
        lines.append(f"   compile cost at batch {b} (cold inductor cache): {cost:.1f} s")
    d = derived
    be = d["compile_break_even_images"]
    lines += [
        "   derived: " + "; ".join(
            f"{n} best at batch {v['batch']} (batch 8 / batch 1 = "
            f"{v['batch_ratio'].get('8', float('nan')):.2f})" for n, v in d["best"].items()),
        f"   compiled x{d['compiled_speedup_b1']:.2f} eager fp32 at batch 1; compiling repays "
        f"after {'never' if be is None else f'{be:.0f} images'}",
        f"   int8 file x{d['int8_speedup_vs_eager_fp32_b1']:.2f} eager fp32, "
        f"x{d['int8_speedup_vs_compiled_b1']:.2f} compiled, "
        f"x{d['int8_speedup_vs_onnx_fp32_b1']:.2f} onnx fp32 (batch 1); eager bf16 is "
        f"x{d['eager_bf16_vs_fp32_b1']:.2f} eager fp32",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="resnet_9blocks")
    parser.add_argument("--checkpoint", default=None, help="use this run's a2b generator")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--isa", default=f"{NATIVE},AVX512_CORE_VNNI",
                        help="comma list: native and/or oneDNN ISA caps (ONEDNN_MAX_CPU_ISA)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch and onnxruntime (default: theirs, all cores); 1 "
                             "keeps a busy machine's numbers comparable (no thread barriers)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    results = []
    for isa in [s.strip() for s in args.isa.split(",") if s.strip()]:
        env = dict(os.environ)
        env.pop("ONEDNN_MAX_CPU_ISA", None)
        env.pop("DNNL_MAX_CPU_ISA", None)
        if isa != NATIVE:
            env["ONEDNN_MAX_CPU_ISA"] = isa
        with tempfile.TemporaryDirectory(prefix="gtx-inductor-") as cache:
            env["TORCHINDUCTOR_CACHE_DIR"] = cache  # cold compile cache: the cost a user pays
            argv = [sys.executable, __file__, "--worker", "--isa", isa, "--size", str(args.size),
                    "--batches", args.batches, "--rounds", str(args.rounds), "--network",
                    args.network]
            if args.threads:
                argv += ["--threads", str(args.threads)]
            if args.checkpoint:
                argv += ["--checkpoint", args.checkpoint]
            out = subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["derived"] = derive(result)
        results.append(result)
        print(report(result, result["derived"]), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "defaults", "settings": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "results": results}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
