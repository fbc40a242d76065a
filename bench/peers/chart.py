"""The chart of a make bench run: chart.py results.json results.png (matplotlib, Agg, no display).

Left: processing rate of one worker process per kind, jobwire beside its peers (log scale);
right: enqueue rates, one by one and bulk. Bars are medians, whiskers the min-max of the rounds."""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def bars(ax, items, title):
    names = [n for n, _ in items]
    med = [f["median"] for _, f in items]
    err = [[f["median"] - f["min"] for _, f in items], [f["max"] - f["median"] for _, f in items]]
    colors = ["#1f6feb" if n.startswith("jobwire") else "#9aa4ad" for n in names]
    ax.barh(names, med, xerr=err, color=colors, capsize=2)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel("jobs/s (log)")
    for y, (_, f) in enumerate(items):  # the label right of the spread's whisker, not on it
        ax.text(f["max"] * 1.08, y, f"{f['median']:,.0f}", va="center", fontsize=7)
    ax.set_xlim(right=max(f["max"] for _, f in items) * 4)  # room for the last label


def main() -> int:
    data = json.loads(open(sys.argv[1]).read())
    s, meta = data["summary"], data["meta"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 6), gridspec_kw={"width_ratios": [1, 1]})
    bars(a, [(n, w["jobs_per_s"]) for n, w in s["workers"].items()], "no-op jobs, one worker process")
    bars(b, list(s["enqueue"].items()), "enqueue, one client")
    fig.suptitle(
        f"make bench, {meta['date']}: {meta['machine']} ({meta['rounds']} rounds, median, min-max)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=90)
    return 0


if __name__ == "__main__":
    sys.exit(main())
