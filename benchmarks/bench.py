"""Benchmark of the sequence core against the seed's per-step loop and torch.nn.LSTM.

Plain Python timing (time.perf_counter), every implementation measured in this one process on
the same data; best of --repeat runs. Prints Markdown tables with the ratios, then the CLI
start-up ratio and the peak RSS of a streamed `lstm-cell run`. Not a test: run it by hand.

    python benchmarks/bench.py            # every case in CASES, float32 and float64
    python benchmarks/bench.py --quick    # shorter sequences, for a smoke run

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

from lstm_cli import init_params, run_sequence, to_pytorch  # noqa: E402
from lstm_cli.params import LSTMParams  # noqa: E402

try:
    import torch
except ImportError:  # torch is optional, never a dependency
    torch = None

CASES = [  # (T, B, F, H): a long single sequence, a typical batch, a long batch
    (100_000, 1, 10, 4),
    (256, 32, 128, 256),
    (2048, 64, 128, 256),
]
QUICK_T = {100_000: 20_000, 256: 256, 2048: 256}


# --------------------------------------------------------------------------- the seed's loop


def seed_sigmoid(x):  # the notebook's, as written
    return 1 / (1 + np.exp(-x))


def seed_lstm_step(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc):
    """The notebook's lstm_step without its debug print. For a batch (B, F) the only change is
    concatenating on the last axis and ``unioned @ W.T`` for ``np.dot(W, unioned)``."""
    if x_t.ndim == 1:
        unioned = np.concatenate((h_prev, x_t), axis=0)
        i_t = seed_sigmoid(np.dot(Wi, unioned) + bi)
        f_t = seed_sigmoid(np.dot(Wf, unioned) + bf)
        o_t = seed_sigmoid(np.dot(Wo, unioned) + bo)
        c_t_candidate = np.tanh(np.dot(Wc, unioned) + bc)
    else:
        unioned = np.concatenate((h_prev, x_t), axis=-1)
        i_t = seed_sigmoid(unioned @ Wi.T + bi)
        f_t = seed_sigmoid(unioned @ Wf.T + bf)
        o_t = seed_sigmoid(unioned @ Wo.T + bo)
        c_t_candidate = np.tanh(unioned @ Wc.T + bc)
    c_t = f_t * c_prev + i_t * c_t_candidate
    h_t = o_t * np.tanh(c_t)
    return h_t, c_t


def seed_loop(p: LSTMParams, xs: np.ndarray) -> np.ndarray:
    h = np.zeros(xs.shape[1:-1] + (p.n_hidden,), xs.dtype)
    c = np.zeros_like(h)
    a = p.arrays()
    with np.errstate(over="ignore"):
        for x_t in xs:
            h, c = seed_lstm_step(x_t, h, c, **a)
    return h


# --------------------------------------------------------------------------- timing


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
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


def bench_case(T, B, F, H, dtype, repeat):
    rng = np.random.default_rng(0)
    p = init_params(F, H, seed=0, scheme="pytorch").params.astype(dtype)
    xs = rng.standard_normal((T, B, F)).astype(dtype)
    xs_seed = xs[:, 0] if B == 1 else xs  # the seed's function takes (F,) vectors
    row = {"case": f"T={T}, B={B}, F={F}, H={H}", "dtype": dtype, "T": T}
    run_sequence(p, xs[:10])  # warm up
    row["core"], r = best_of(lambda: run_sequence(p, xs), repeat)
    row["core_seq"], _ = best_of(lambda: run_sequence(p, xs, return_sequences=True), repeat)
    core_h = r.h_next  # (B, H)
    seed_repeat = 1 if T * B * H > 5_000_000 else repeat
    row["seed"], seed_h = best_of(lambda: seed_loop(p, xs_seed), seed_repeat)
    row["diff_seed"] = float(np.max(np.abs(np.reshape(seed_h, core_h.shape) - core_h)))
    if torch is not None:
        m = torch_lstm(p, dtype)
        x_t = torch.from_numpy(xs)
        with torch.inference_mode():
            m(x_t[:10])  # warm up

            def go():
                return m(x_t)[1][0][0].numpy()

            row["torch"], torch_h = best_of(go, repeat)
        row["diff_torch"] = float(np.max(np.abs(torch_h - core_h)))
    return row


def gemm_floor(T, B, F, H, dtype, repeat):
    """µs per step of the matrix products alone, as the core does them (no activations):
    the recurrent (4H, H) x (H, B) product and the step's share of the chunk projection."""
    from lstm_cli.sequence import FusedCell, default_chunk_steps

    rng = np.random.default_rng(0)
    cell = FusedCell.from_params(init_params(F, H, seed=0, scheme="pytorch").params, dtype)
    n = min(default_chunk_steps(H, B, dtype), T)
    x = rng.standard_normal((n, B, F)).astype(dtype)
    h = rng.standard_normal((H, B)).astype(dtype)
    z, xproj = np.empty((4 * H, B), dtype), np.empty((n, 4 * H, B), dtype)

    def recurrent():
        for _ in range(n):
            np.dot(cell.W_h, h, out=z)

    def projection():
        np.matmul(cell.W_x, x.transpose(0, 2, 1), out=xproj)

    rec, _ = best_of(recurrent, repeat)
    proj, _ = best_of(projection, repeat)
    return rec / n * 1e6, proj / n * 1e6


def fmt_ms(s: float | None) -> str:
    return "n/a" if s is None else f"{s * 1e3:,.1f} ms"


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
    print(f"\nratio of median wall times: **{med[step] / med[base]:.2f}x** (target <= 1.45x); "
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


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter sequences (smoke run)")
    ap.add_argument("--threads", type=int, default=THREADS_DEFAULT, help="BLAS/torch threads")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--startup-runs", type=int, default=21)
    ap.add_argument("--skip-cli", action="store_true", help="only the core timings")
    ap.add_argument(
        "--cli-only",
        action="store_true",
        help="only the start-up and peak-RSS measurements (run it with the python of a regular "
        "`pip install .`: an editable install without .pyc files recompiles the package on "
        "every start)",
    )
    args = ap.parse_args()
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"Machine: {machine()}")
    print(
        f"Threads: OpenBLAS/OMP {os.environ.get('OPENBLAS_NUM_THREADS')}, torch "
        + (str(torch.get_num_threads()) if torch is not None else "n/a")
        + f"; best of {args.repeat} runs"
    )
    if args.cli_only:
        startup(args.startup_runs)
        rss(args.quick)
        return
    print("\n## Sequence core vs the seed's per-step loop vs torch.nn.LSTM\n")
    print(
        "| case | dtype | core | core + h_seq, c_seq | seed loop | torch | core / torch "
        "| seed / torch | µs/step core, torch | max abs diff vs torch |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    torch_step_us: dict[tuple[int, int, str], float] = {}
    for dtype in ("float32", "float64"):
        for T, B, F, H in CASES:
            T = QUICK_T[T] if args.quick else T
            r = bench_case(T, B, F, H, dtype, args.repeat)
            tt = r.get("torch")
            if tt:
                torch_step_us[(T, B, dtype)] = tt / T * 1e6
            ratio = f"**{r['core'] / tt:.2f}x**" if tt else "n/a"
            seed_ratio = f"{r['seed'] / tt:.1f}x" if tt else "n/a"
            per_step = f"{r['core'] / r['T'] * 1e6:.2f}, " + (
                f"{tt / r['T'] * 1e6:.2f}" if tt else "n/a"
            )
            diff = f"{r['diff_torch']:.1e}" if "diff_torch" in r else "n/a"
            print(
                f"| {r['case']} | {dtype} | {fmt_ms(r['core'])} | {fmt_ms(r['core_seq'])} "
                f"| {fmt_ms(r['seed'])} | {fmt_ms(tt)} | {ratio} | {seed_ratio} | {per_step} "
                f"| {diff} |",
                flush=True,
            )
    print("\n## The matrix products alone (µs per step, batched cases)\n")
    print("| case | dtype | recurrent product | input projection | sum | torch's whole step |")
    print("| --- | --- | --- | --- | --- | --- |")
    for dtype in ("float32", "float64"):
        for T, B, F, H in CASES[1:]:
            rec, proj = gemm_floor(T, B, F, H, dtype, args.repeat)
            tt = torch_step_us.get((T, B, dtype))
            print(f"| T={T}, B={B}, F={F}, H={H} | {dtype} | {rec:.0f} | {proj:.0f} "
                  f"| {rec + proj:.0f} | {'n/a' if tt is None else f'{tt:.0f}'} |")  # fmt: skip
    if not args.skip_cli:
        startup(args.startup_runs)
        rss(args.quick)


if __name__ == "__main__":
    main()
