# SPDX-License-Identifier: GPL-2.0
"""Medians, ratios and percentiles of the cluster benchmarks' raw figures
(tests/bench/bench-table.py, tests/bench/bench-blk-table.py).

A raw file has one line per measurement: "SMP ROUND METRIC SIZE N...";
what SIZE and the N columns are depends on the metric.  A cell is the
median over the rounds; a ratio is the median of the per-round ratios
(both sides measured in the same round), with its range.
"""
import statistics
from collections import defaultdict


def pct(values, p):
    """The p-th percentile of values, nearest rank (nan if none)."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def load(path):
    """(smp, metric, size) -> [(round, [int...])] from a raw file."""
    data = defaultdict(list)
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) < 5:
                continue
            smp, rnd, metric, size = w[0], int(w[1]), w[2], int(w[3])
            data[(smp, metric, size)].append((rnd, [int(x) for x in w[4:]]))
    return data


def smps(data):
    return sorted({k[0] for k in data}, key=int)


def rounds(data, smp):
    return len({r for k, v in data.items() if k[0] == smp for r, _ in v})


def rate(scale):
    """Per round: scale / n (e.g. bytes * 1e3 / ns = MB/s)."""
    return lambda n: scale / n if n > 0 else None


def per_round(data, smp, metric, size, col, fn):
    """round -> median over that round's lines of fn(column col)."""
    out = {}
    for rnd, ns in data.get((smp, metric, size), []):
        if col < len(ns):
            v = fn(ns[col])
            if v is not None:
                out.setdefault(rnd, []).append(v)
    return {r: statistics.median(v) for r, v in out.items()}


def cell(rows):
    """The median over the rounds of a per_round() dict, or None."""
    return statistics.median(rows.values()) if rows else None


def ratio(ra, rb):
    """Median (range, n) of ra[r] / rb[r] over the rounds both have."""
    rs = [ra[r] / rb[r] for r in ra if r in rb and rb[r]]
    if not rs:
        return "n/a"
    return "%.2f (%.2f-%.2f, n=%d)" % (statistics.median(rs), min(rs),
                                       max(rs), len(rs))


def samples(data, smp, metric, size):
    """Every number of every round of one metric, pooled."""
    return [x for _, ns in data.get((smp, metric, size), []) for x in ns]
