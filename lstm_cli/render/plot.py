"""``run --plot``: the gates and states over time as a matplotlib figure (.png, .svg, .pdf),
drawn with the Agg backend (no display needed). matplotlib is the optional extra ``plot``.

A run of any length is reduced, while it runs, to at most :data:`MAX_COLUMNS` columns: each
column is the mean over a bucket of a whole number of steps (said in the figure's title).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from lstm_cli.core import Array
from lstm_cli.errors import InputError
from lstm_cli.io.atomic import check_writable, write_bytes

from .run import QUANTITIES

MAX_COLUMNS = 2000
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


class BucketMeans:
    """Per quantity, the mean of each unit over buckets of ``per_bucket`` consecutive steps
    (the last bucket may hold fewer), added chunk by chunk in bounded memory."""

    def __init__(self, n_steps: int, n_units: int, max_columns: int = MAX_COLUMNS) -> None:
        self.per_bucket = max(1, math.ceil(n_steps / max_columns))
        self.n_buckets = math.ceil(n_steps / self.per_bucket)
        shape = (self.n_buckets, n_units)
        self.sums = {q: np.zeros(shape) for q, _, _ in QUANTITIES}
        self.counts = np.zeros(self.n_buckets)
        self.seen = 0

    def add(self, values: dict[str, Array]) -> None:
        """The next steps: each quantity (n, H)."""
        n = len(next(iter(values.values())))
        buckets = (self.seen + np.arange(n)) // self.per_bucket
        for q, v in values.items():
            np.add.at(self.sums[q], buckets, np.asarray(v, dtype=np.float64))
        np.add.at(self.counts, buckets, 1)
        self.seen += n

    def means(self, q: str) -> Array:
        """(H, n_buckets): unit by time."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.sums[q] / self.counts[:, None]).T


def check_plot_path(path: Path, force: bool) -> None:
    """Refuse a plot path before any work: .png, .svg or .pdf, writable, matplotlib there."""
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise InputError(
            f"{path}: a plot is written as .png, .svg or .pdf, "
            f"not {path.suffix or 'no extension'!r}"
        )
    check_writable(path, force)
    _pyplot()  # a missing matplotlib is said before the run, not after


def _pyplot():  # type: ignore[no-untyped-def]
    try:
        import matplotlib
    except ImportError:
        raise InputError(
            "plotting needs matplotlib, the optional extra plot: pip install 'lstm-cell[plot]' "
            "(from a checkout: pip install '.[plot]')"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_plot(buckets: BucketMeans, path: Path, force: bool, title: str) -> None:
    """One panel per quantity (units on the vertical axis, time on the horizontal), each with
    its colour bar, written atomically in the format of ``path``'s extension."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(QUANTITIES), 1, figsize=(10, 2 + 1.6 * len(QUANTITIES)),
                             sharex=True, constrained_layout=True)  # fmt: skip
    steps = buckets.per_bucket
    extent = (0, buckets.n_buckets * steps, -0.5, buckets.sums["h"].shape[1] - 0.5)
    for ax, (q, words, gate) in zip(axes, QUANTITIES, strict=True):
        values = buckets.means(q)
        hi = 1.0 if gate else max(1.0, float(np.nanmax(np.abs(values))))  # c may pass 1
        lo, cmap = (0.0, "viridis") if gate else (-hi, "coolwarm")
        image = ax.imshow(values, aspect="auto", origin="lower", extent=extent,
                          vmin=lo, vmax=hi, cmap=cmap, interpolation="nearest")  # fmt: skip
        ax.set_title(f"{words} ({q})", loc="left", fontsize=10)
        ax.set_ylabel("unit")
        fig.colorbar(image, ax=ax, pad=0.01)
    axes[-1].set_xlabel("time step")
    each = "every step" if steps == 1 else f"each column the mean over {steps} steps"
    fig.suptitle(f"{title}: {buckets.seen} steps, {each}", fontsize=11)
    out = io.BytesIO()
    fig.savefig(out, format=path.suffix.lower().lstrip("."), dpi=120)
    plt.close(fig)
    write_bytes(path, out.getvalue(), force)
