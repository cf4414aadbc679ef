"""Benchmark of the sequence core against torch.nn.LSTM, the CLI's start-up and its memory.

Plain Python timing (time.perf_counter), every implementation measured in this one process on
the same data (``--scheme pytorch`` weights: the notebook's standard-normal weights make a
chaotic cell at H = 256), best of --repeat runs, with a pause before each run so that
OpenBLAS's spinning threads do not slow the next implementation. torch is timed with its
default threads and with one; the peak-FLOP limit is the step's products at NumPy's own
large-GEMM rate. Prints Markdown tables with the ratios, then the CLI start-up ratio and the
peak RSS of `lstm-cell run`. Not a test: run it by hand.

    python benchmarks/bench.py              # every case in CASES
    python benchmarks/bench.py --quick      # T / 8, for a smoke run
    python benchmarks/bench.py --cli-only   # start-up and peak RSS (a regular `pip install .`)

torch is optional: without it the torch columns say "n/a".
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THREADS_DEFAULT = os.cpu_count() or 1
if __name__ == "__main__":  # BLAS threads are fixed when numpy loads: set them first
    _pre = argparse.ArgumentParser(add_help=False)
    _pre.add_argument("--threads", type=int, default=THREADS_DEFAULT)
    _n = str(_pre.parse_known_args()[0].threads)
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _n)

import numpy as np  # noqa: E402

from lstm_cli import compiled, init_params, run_sequence, to_pytorch  # noqa: E402
from lstm_cli.params import LSTMParams  # noqa: E402

try:
    import torch
except ImportError:  # torch is optional, never a dependency
    torch = None

CASES = [  # (T, B, F, H, dtype): the cases
    (2048, 64, 128, 256, "float32"),
    (1024, 32, 128, 256, "float32"),
    (1024, 32, 128, 256, "float64"),
    (64, 256, 128, 1024, "float32"),
    (256, 1, 128, 512, "float32"),
    (100_000, 1, 10, 4, "float32"),
]
TARGETS = CASES[:4]  # --interleaved: the large cases of the speed targets
PAUSE_S = 0.5  # OpenBLAS's threads spin ~0.1 s after a product: let them sleep between runs


# --------------------------------------------------------------------------- timing


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        time.sleep(PAUSE_S)
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def torch_lstm(p: LSTMParams, dtype: str):
    pt = to_pytorch(p)
    tdt = getattr(torch, dtype)
    m = torch.nn.LSTM(p.n_features, p.n_hidden).to(tdt)  # input (T, B, F)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(pt["weight_ih"]))
        m.weight_hh_l0.copy_(torch.from_numpy(pt["weight_hh"]))
        m.bias_ih_l0.copy_(torch.from_numpy(pt["bias_ih"]))
        m.bias_hh_l0.copy_(torch.from_numpy(pt["bias_hh"]))
    return m


def peak_gemm_rate(dtype: str, repeat: int) -> float:
    """The machine's peak: NumPy's own rate on a large square product, FLOP/s."""
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    np.matmul(a, a)
    t, _ = best_of(lambda: np.matmul(a, a), repeat)
    return 2 * n**3 / t


def projected_only(fn):
    """``fn`` run with the one-product-per-step path switched off (every chunk projected)."""
    import lstm_cli.sequence as sequence

    real = sequence._run_stacked
    sequence._run_stacked = lambda *a: None
    try:
        return fn()
    finally:
        sequence._run_stacked = real


def bench_case(T, B, F, H, dtype, repeat, torch_threads):
    """Seconds of each implementation on the same data (pytorch-scheme weights), and the
    largest difference of the final h from torch's."""
    rng = np.random.default_rng(0)
    p = init_params(F, H, seed=0, scheme="pytorch").params.astype(dtype)
    xs = rng.standard_normal((T, B, F)).astype(dtype)
    row: dict[str, float] = {}
    run_sequence(p, xs[:10])  # warm up
    row["core"], r = best_of(lambda: run_sequence(p, xs), repeat)
    row["projected"], _ = best_of(lambda: projected_only(lambda: run_sequence(p, xs)), repeat)
    if compiled.available():  # the whole C loop (B = 1, small H) or the fused kernel
        run_sequence(p, xs[:10], backend="compiled")
        row["compiled"], rc = best_of(lambda: run_sequence(p, xs, backend="compiled"), repeat)
        row["compiled_diff"] = float(np.max(np.abs(rc.h_next - r.h_next)))  # type: ignore[attr-defined]
    if torch is None:
        return row
    m = torch_lstm(p, dtype)
    x_t = torch.from_numpy(xs)
    with torch.inference_mode():
        for n in torch_threads:
            torch.set_num_threads(n)
            m(x_t[:10])  # warm up
            row[f"torch{n}"], th = best_of(lambda: m(x_t)[1][0][0].numpy(), repeat)
    torch.set_num_threads(torch_threads[0])
    row["diff"] = float(np.max(np.abs(th - r.h_next)))  # type: ignore[union-attr]
    return row


def core_table(quick: bool, repeat: int, tiny: bool = False) -> None:
    threads = [torch.get_num_threads(), 1] if torch is not None else []
    peak = {dt: peak_gemm_rate(dt, repeat) for dt in ("float32", "float64")}
    print("\n## Sequence core vs torch.nn.LSTM (µs per step, best of runs)\n")
    print("Peak GEMM rate (NumPy, 2048x2048): "
          + ", ".join(f"{dt} {r / 1e9:.1f} GFLOP/s" for dt, r in peak.items()))  # fmt: skip
    t_cols = " | ".join(f"torch {n} thr" for n in threads)
    print(
        f"\n| case | core | core, projected only | compiled | {t_cols} | core / torch "
        "| core / torch 1 thr | compiled / torch | compiled / torch 1 thr | peak-FLOP limit "
        "| core / limit | max abs diff | compiled vs core |"
    )
    print("| --- " * (13 + len(threads)) + "|")
    for T, B, F, H, dtype in CASES[-1:] if tiny else CASES:
        T = max(T // 8, 16) if quick else T
        r = bench_case(T, B, F, H, dtype, repeat, threads)
        us = {k: v / T * 1e6 for k, v in r.items() if not k.endswith("diff")}
        limit = 2 * B * 4 * H * (H + F) / peak[dtype] * 1e6  # the products alone, at peak
        tcols = " | ".join(f"{us[f'torch{n}']:,.2f}" for n in threads)

        def ratio(k: str, of: str = "core", us: dict[str, float] = us) -> str:
            return f"{us[of] / us[k]:.2f}x" if k in us and of in us else "n/a"

        t0 = f"torch{threads[0]}" if threads else "none"
        comp = f"{us['compiled']:,.2f}" if "compiled" in us else "n/a"
        print(f"| {dtype} T={T} B={B} F={F} H={H} | {us['core']:,.2f} | {us['projected']:,.2f} "
              f"| {comp} | {tcols} | **{ratio(t0)}** | {ratio('torch1')} "
              f"| **{ratio(t0, 'compiled')}** | {ratio('torch1', 'compiled')} "
              f"| {limit:,.2f} | {us['core'] / limit:.1f}x "
              f"| {r.get('diff', float('nan')):.1e} "
              f"| {r.get('compiled_diff', float('nan')):.1e} |", flush=True)  # fmt: skip


def machine() -> str:
    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    cfg = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
    try:
        blas = cfg["Build Dependencies"]["blas"]["name"]  # type: ignore[index]
    except (KeyError, TypeError):
        blas = "?"
    tv = torch.__version__ if torch is not None else "not installed"
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__} ({blas}), torch {tv}"
    )


# --------------------------------------------------------------------------- start-up, RSS


def lstm_cell_cmd() -> list[str]:
    exe = shutil.which("lstm-cell", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "lstm_cli"]


def median_wall(cmd: list[str], n: int) -> float:
    return statistics.median(run_timed(cmd)[0] for _ in range(n))


def run_timed(cmd: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + sys, from RUSAGE_CHILDREN) of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def startup(n: int) -> None:
    """`lstm-cell step --json` against `import numpy` and the floor `import numpy, typer`:
    one run of each in turn, n times (interleaved, so all see the same machine load)."""
    cmds = {
        'python -c "import numpy"': [sys.executable, "-c", "import numpy"],
        'python -c "import numpy, typer" (the floor)': [
            sys.executable, "-c", "import numpy, typer"
        ],
        # lstm-cell ends with os._exit (no interpreter teardown): the same for numpy alone
        'python -c "import numpy, os; os._exit(0)"': [
            sys.executable, "-c", "import numpy, os; os._exit(0)"
        ],
        "lstm-cell step --json": [*lstm_cell_cmd(), "step", "--json"],
    }  # fmt: skip
    for cmd in cmds.values():
        median_wall(cmd, 2)  # warm the file cache
    wall: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(n):
        for name, cmd in cmds.items():
            w, c = run_timed(cmd)
            wall[name].append(w)
            cpu[name].append(c)
    med = {k: statistics.median(v) for k, v in wall.items()}
    low = {k: min(v) for k, v in wall.items()}
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    base = 'python -c "import numpy"'
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lstm_cli", "step", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = [line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines()]
    rich = any(m == "rich" or m.startswith("rich.") for m in loaded)
    rnd = any(m.startswith("numpy.random") for m in loaded)
    print(f"\n## CLI start-up ({n} runs each, interleaved)\n")
    print("| command | median wall | ratio | best wall | ratio | median CPU | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in cmds:
        print(
            f"| `{name}` | {med[name] * 1e3:.0f} ms | {med[name] / med[base]:.2f}x "
            f"| {low[name] * 1e3:.0f} ms | {low[name] / low[base]:.2f}x "
            f"| {mcpu[name] * 1e3:.0f} ms | {mcpu[name] / mcpu[base]:.2f}x |"
        )
    step = "lstm-cell step --json"
    fast = 'python -c "import numpy, os; os._exit(0)"'
    print(f"\nratio of median wall times: **{med[step] / med[base]:.2f}x** (target <= 1.45x); "
          f"to numpy without its teardown: {med[step] / med[fast]:.2f}x; "
          f"rich imported: {rich}; numpy.random imported: {rnd}")  # fmt: skip


# A small launcher process: a child forked from this (large, torch-holding) process would
# count the parent's resident pages in its ru_maxrss.
_LAUNCHER = (
    "import resource, subprocess, sys; "
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_run(cmd: list[str]) -> int:
    """Peak resident set of ``cmd``, in KiB (RUSAGE_CHILDREN of a fresh launcher)."""
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True, check=True
    )
    code, kib = out.stdout.split()
    if code != "0":
        raise RuntimeError(f"{cmd} failed: {out.stderr}")
    return int(kib)


def rss(quick: bool) -> None:
    """Peak RSS of `run --json` and of `run --out o.npz --gates` (h_seq, c_seq and the four
    gates written as they are computed) at two lengths, 10x apart."""
    lengths = (20_000, 200_000) if quick else (200_000, 2_000_000)
    variants = {"run --json": [], "run --out o.npz --gates": ["--out", "o.npz", "--gates"]}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        subprocess.run(
            [*lstm_cell_cmd(), "init", "--seed", "1", "--out", str(d / "p.npz"), "--json"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for T in lengths:
            path = d / f"xs{T}.npy"
            _write_inputs(path, T)
            for name, extra in variants.items():
                cmd = [*lstm_cell_cmd(), "run", "--params", str(d / "p.npz"), "--xs", str(path)]
                out = d / "o.npz"
                extra = [str(out) if a == "o.npz" else a for a in extra]
                t0 = time.perf_counter()
                kib = peak_rss_run([*cmd, *extra, "--json"])
                wall = time.perf_counter() - t0
                size = out.stat().st_size if out.exists() else 0
                out.unlink(missing_ok=True)
                rows.append((name, T, path.stat().st_size, size, kib, wall))
            path.unlink()
    print("\n## Peak RSS of `lstm-cell run` (streamed .npy, F = 10, H = 4, float64)\n")
    print("| command | steps | input file | output file | peak RSS | wall time |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, T, size, osize, kib, wall in rows:
        print(f"| `{name}` | {T:,} | {size / 2**20:.1f} MiB | {osize / 2**20:.1f} MiB "
              f"| {kib / 1024:.1f} MiB | {wall:.2f} s |")  # fmt: skip
    print()
    for name in variants:
        a, b = (r[4] for r in rows if r[0] == name)
        print(f"- `{name}`: peak RSS at {lengths[1]:,} vs {lengths[0]:,} steps: "
              f"**{b / a:.3f}x** (target <= 1.25x)")  # fmt: skip


def _write_inputs(path: Path, T: int) -> None:
    """A (T, 10) float64 .npy of standard normals, written in pieces (this script stays small)."""
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (T, 10)}
        )
        for lo in range(0, T, 100_000):
            f.write(rng.standard_normal((min(100_000, T - lo), 10)).tobytes())


def interleaved(rounds: int, quick: bool, only: list[int] | None = None) -> None:
    """The large cases (or the ``only`` ones, by index in CASES), ``rounds`` times, every
    implementation once per round in turn (a pause before each), so that all see the same
    load; best and median per implementation."""
    print(f"\n## Interleaved, {rounds} rounds (µs per step; load average before each case)\n")
    print("| case | load | impl | best | median | best / torch 1 thr | median / torch 1 thr |")
    print("| --- " * 7 + "|")
    for T, B, F, H, dtype in [CASES[i] for i in only] if only else TARGETS:
        T = max(T // 8, 16) if quick else T
        p = init_params(F, H, seed=0, scheme="pytorch").params.astype(dtype)
        xs = np.random.default_rng(0).standard_normal((T, B, F)).astype(dtype)
        impls = {"numpy": lambda p=p, xs=xs: run_sequence(p, xs, backend="numpy")}
        if compiled.available():
            impls["compiled"] = lambda p=p, xs=xs: run_sequence(p, xs, backend="compiled")
        if torch is not None:
            m, x_t = torch_lstm(p, dtype), torch.from_numpy(xs)
            for n in sorted({1, THREADS_DEFAULT}):
                impls[f"torch {n} thr"] = lambda m=m, x_t=x_t, n=n: _torch_run(m, x_t, n)
        load = os.getloadavg()[0]
        times: dict[str, list[float]] = {k: [] for k in impls}
        for fn in impls.values():
            fn()  # warm up
        for _ in range(rounds):
            for k, fn in impls.items():
                times[k].append(best_of(fn, 1)[0] / T * 1e6)
        ref = times.get("torch 1 thr")
        for k, v in times.items():
            b, med = min(v), statistics.median(v)
            rb = f"{b / min(ref):.2f}x" if ref else "n/a"
            rm = f"{med / statistics.median(ref):.2f}x" if ref else "n/a"
            print(f"| {dtype} T={T} B={B} F={F} H={H} | {load:.2f} | {k} | {b:,.2f} "
                  f"| {med:,.2f} | {rb} | {rm} |", flush=True)  # fmt: skip


def _torch_run(m, x_t, n: int):
    torch.set_num_threads(n)
    with torch.inference_mode():
        return m(x_t)[1][0][0].numpy()


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter sequences (smoke run)")
    ap.add_argument("--threads", type=int, default=THREADS_DEFAULT, help="BLAS threads")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--startup-runs", type=int, default=21)
    ap.add_argument("--skip-cli", action="store_true", help="only the core timings")
    ap.add_argument("--tiny", action="store_true", help="only the tiny case (T=100k, H=4)")
    ap.add_argument(
        "--interleaved",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="only the large target cases, every implementation once per round, ROUNDS rounds",
    )
    ap.add_argument(
        "--case",
        type=int,
        action="append",
        metavar="INDEX",
        help="with --interleaved: only this case (0-5, in the order of CASES; repeatable)",
    )
    ap.add_argument(
        "--cli-only",
        action="store_true",
        help="only the start-up and peak-RSS measurements (run it with the python of a regular "
        "`pip install .`: an editable install without .pyc files recompiles the package on "
        "every start)",
    )
    args = ap.parse_args()
    print(f"Machine: {machine()}")
    print(f"Compiled kernel: {compiled.kernel_path() or 'not built'}")
    print(
        f"Threads: OpenBLAS/OMP {os.environ.get('OPENBLAS_NUM_THREADS')}, torch "
        + (str(torch.get_num_threads()) if torch is not None else "n/a")
        + f"; best of {args.repeat} runs"
    )
    if args.cli_only:
        startup(args.startup_runs)
        rss(args.quick)
        return
    if args.interleaved:
        interleaved(args.interleaved, args.quick, args.case)
        return
    core_table(args.quick, args.repeat, args.tiny)
    if not args.skip_cli:
        startup(args.startup_runs)
        rss(args.quick)


if __name__ == "__main__":
    main()
