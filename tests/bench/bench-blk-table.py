#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The table of tests/bench/bench-blk.sh: medians and ratios.

    bench-blk-table.py BENCH.TXT [NOTES.TXT]

BENCH.TXT has one line per measurement: "SMP ROUND METRIC SIZE N...".
Metrics (times in ns):
  load                 the host's 1-min load average x100 (SIZE 0)
  rtt1                 16-byte TCP ping-pong round times with node1
  tcp_send, tcp_recv   one raw TCP stream of SIZE bytes
  seq_nvme, seq_vb     "write read" of SIZE bytes in 1 MiB O_DIRECT
                       requests: NVMe/TCP on brd, /dev/virgob0
  rand_nvme, rand_vb   SIZE random 4 KiB requests: "write w_p50 w_p99
                       read r_p50 r_p99 ctxt busy": ctxt and busy are the
                       client's context switches and busy CPU ns (10 ms
                       ticks) over both passes (2 x SIZE requests)
  lat_nvme, lat_vb     the same with one request in flight (no ctxt, busy)
Throughput is bytes / time (MB = 10^6 bytes), IOPS requests / time; a
cell is the median over the rounds (latency: of the per-round
percentiles); a ratio is the median of the per-round ratios (both sides
measured in the same round), with its range.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchstat import (cell, load, pct, per_round, rate, ratio,  # noqa: E402
                       rounds, samples, smps)

GOALS = {"seq": 1.0, "rand": 0.8}


def main():
    data = load(sys.argv[1])
    out = []

    def sizes(smp, metric):
        return sorted(k[2] for k in data if k[0] == smp and k[1] == metric)

    for smp in smps(data):
        def thr(metric, col):
            """round -> MB/s (seq, tcp) or IOPS (rand) of column col."""
            s = sizes(smp, metric)
            if not s:
                return {}
            scale = 1e3 if metric.startswith(("seq", "tcp")) else 1e9
            return per_round(data, smp, metric, s[0], col, rate(s[0] * scale))

        def lat(metric, col):
            """round -> that round's latency percentile of col, in us."""
            s = sizes(smp, metric)
            if not s:
                return {}
            return per_round(data, smp, metric, s[0], col,
                             lambda n: n / 1e3)

        def fmt(rows, f="%.1f"):
            c = cell(rows)
            return "-" if c is None else f % c

        loads = samples(data, smp, "load", 0)
        seq = sizes(smp, "seq_vb") or sizes(smp, "seq_nvme")
        out.append("== guests with %s vCPU, %d rounds (medians over the "
                   "rounds) ==" % (smp, rounds(data, smp)))
        out.append("sequential %s MiB in 1 MiB requests (MB/s); random 4 KiB "
                   "(IOPS, latency us p50/p99):" %
                   (seq[0] >> 20 if seq else "?"))
        out.append("%-16s %9s %9s %9s %9s %15s %15s" % (
            "", "seq_w", "seq_r", "rand_w", "rand_r", "rand_w lat",
            "rand_r lat"))
        for name, d in (("virgo_blk", "vb"), ("NVMe/TCP+brd", "nvme")):
            out.append("%-16s %9s %9s %9s %9s %15s %15s" % (
                name, fmt(thr("seq_" + d, 0)), fmt(thr("seq_" + d, 1)),
                fmt(thr("rand_" + d, 0), "%.0f"),
                fmt(thr("rand_" + d, 3), "%.0f"),
                "%s/%s" % (fmt(lat("rand_" + d, 1), "%.0f"),
                           fmt(lat("rand_" + d, 2), "%.0f")),
                "%s/%s" % (fmt(lat("rand_" + d, 4), "%.0f"),
                           fmt(lat("rand_" + d, 5), "%.0f"))))
        rtt = samples(data, smp, "rtt1", 16)
        rtt_p50 = {}  # round -> that round's RTT p50, us
        for rnd, ns in data.get((smp, "rtt1", 16), []):
            rtt_p50[rnd] = pct(ns, 50) / 1e3
        out.append("%-16s %9s %9s %9s %9s %15s" % (
            "raw TCP", fmt(thr("tcp_send", 0)), fmt(thr("tcp_recv", 0)),
            "", "", "RTT %.0f/%.0f" % (pct(rtt, 50) / 1e3,
                                       pct(rtt, 99) / 1e3)))
        for name, d in (("virgo_blk", "vb"), ("NVMe/TCP+brd", "nvme")):
            s = sizes(smp, "rand_" + d)
            if not s:
                continue
            per = 2.0 * s[0]
            cs = per_round(data, smp, "rand_" + d, s[0], 6, lambda n: n / per)
            cpu = per_round(data, smp, "rand_" + d, s[0], 7,
                            lambda n: n / per / 1e3)
            if cs:
                out.append("%-16s random 4 KiB, client per request: %s "
                           "context switches, %s us busy CPU" % (
                               name, fmt(cs), fmt(cpu, "%.0f")))
        for name, d in (("virgo_blk", "vb"), ("NVMe/TCP+brd", "nvme")):
            if sizes(smp, "lat_" + d):
                out.append("%-16s 1 in flight, latency us p50/p99: write "
                           "%s/%s, read %s/%s" % (
                               name, fmt(lat("lat_" + d, 1), "%.0f"),
                               fmt(lat("lat_" + d, 2), "%.0f"),
                               fmt(lat("lat_" + d, 4), "%.0f"),
                               fmt(lat("lat_" + d, 5), "%.0f")))
        out.append("ratios (median of per-round ratios, range; goal):")
        for what, a, b, goal in (
                ("seq write  virgo_blk / NVMe", thr("seq_vb", 0),
                 thr("seq_nvme", 0), GOALS["seq"]),
                ("seq read   virgo_blk / NVMe", thr("seq_vb", 1),
                 thr("seq_nvme", 1), GOALS["seq"]),
                ("rand write virgo_blk / NVMe (IOPS)", thr("rand_vb", 0),
                 thr("rand_nvme", 0), GOALS["rand"]),
                ("rand read  virgo_blk / NVMe (IOPS)", thr("rand_vb", 3),
                 thr("rand_nvme", 3), GOALS["rand"]),
                ("seq write  virgo_blk / raw tx", thr("seq_vb", 0),
                 thr("tcp_send", 0), None),
                ("seq read   virgo_blk / raw rx", thr("seq_vb", 1),
                 thr("tcp_recv", 0), None),
                ("seq write  NVMe / raw tx", thr("seq_nvme", 0),
                 thr("tcp_send", 0), None),
                ("seq read   NVMe / raw rx", thr("seq_nvme", 1),
                 thr("tcp_recv", 0), None),
                ("rand write p50 latency vb / NVMe (lower: better)",
                 lat("rand_vb", 1), lat("rand_nvme", 1), None),
                ("rand read  p50 latency vb / NVMe (lower: better)",
                 lat("rand_vb", 4), lat("rand_nvme", 4), None),
                ("1 in flight write p50 vb / NVMe (lower: better)",
                 lat("lat_vb", 1), lat("lat_nvme", 1), None),
                ("1 in flight read  p50 vb / NVMe (lower: better)",
                 lat("lat_vb", 4), lat("lat_nvme", 4), None),
                ("1 in flight read  p50 vb / TCP RTT p50",
                 lat("lat_vb", 4), rtt_p50, None),
                ("1 in flight read  p50 NVMe / TCP RTT p50",
                 lat("lat_nvme", 4), rtt_p50, None)):
            r = ratio(a, b)
            if r == "n/a":
                continue
            verdict = ""
            if goal is not None:
                verdict = "  goal >= %.1f: %s" % (
                    goal, "met" if float(r.split()[0]) >= goal else "missed")
            out.append("  %-50s %s%s" % (what, r, verdict))
        if loads:
            out.append("host load average (1 min) at the rounds' start: "
                       "%.2f-%.2f, median %.2f" % (
                           min(loads) / 100, max(loads) / 100,
                           pct(loads, 50) / 100))
        out.append("")
    if len(sys.argv) > 2:
        try:
            with open(sys.argv[2]) as f:
                out.extend(sorted(set(f.read().split("\n")) - {""}))
        except OSError:
            pass
    print("\n".join(out))


if __name__ == "__main__":
    main()
