#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The table of tests/bench/bench-cluster.sh: medians and ratios.

    bench-table.py BENCH.TXT [NOTES.TXT]

BENCH.TXT has one line per measurement: "SMP ROUND METRIC SIZE NS...".
Metrics (times in ns):
  rtt1, rtt3         ping-pong round times with node1 / node1..3 at once
  tcp_send, tcp_recv one raw TCP stream of SIZE bytes
  nvme               NVMe/TCP O_DIRECT "write read"
  k1, d1, k3         virgo kernel API "cold set get idle" with node1's kernel
                     server, node1's daemon, three kernel servers
  k2n                the same with node2's kernel server, loaded with
                     pool_mb=0 (no pool of zeroed pages; node1's has 16 MiB)
  dev1               the same through /dev/virgo (node1's kernel server)
  dev1s              the same in 1 MiB pwrite()/pread() calls in turn
  mk1, md1, mk3      virgo_malloc() times (SIZE bytes each)
Throughput is SIZE / time (MB = 10^6 bytes); each cell is the median over
the rounds; a ratio is the median of the per-round ratios (both sides
measured in the same round), with its range.  Latency percentiles pool
every sample of every round (nearest rank).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchstat import (cell as median_of, load, pct,  # noqa: E402
                       per_round as rows, rate, ratio as ratio_of,
                       rounds as nrounds, samples, smps as smp_list)


def main():
    data = load(sys.argv[1])
    smps = smp_list(data)

    def per_round(smp, metric, size, col):
        """round -> MB/s of column col."""
        return rows(data, smp, metric, size, col, rate(size * 1e3))

    def cell(smp, metric, size, col):
        return median_of(per_round(smp, metric, size, col))

    def ratio(smp, a, b):
        return ratio_of(per_round(smp, *a), per_round(smp, *b))

    def lat(smp, metric, size):
        return samples(data, smp, metric, size)

    sizes = sorted({k[2] for k in data if k[1] in ("k1", "tcp_send")},
                   reverse=True)
    out = []
    for smp in smps:
        rounds = nrounds(data, smp)
        out.append("== guests with %s vCPU, %d rounds (medians; MB/s) ==" %
                   (smp, rounds))
        out.append("%-10s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s" % (
            "size", "tcp_tx", "tcp_rx", "nvme_w", "nvme_r",
            "k1_cold", "k1_set", "k1_get", "dev_set", "dev_get",
            "d1_set", "d1_get", "k3_set"))
        for size in sizes:
            row = [cell(smp, "tcp_send", size, 0), cell(smp, "tcp_recv", size, 0),
                   cell(smp, "nvme", size, 0), cell(smp, "nvme", size, 1),
                   cell(smp, "k1", size, 0), cell(smp, "k1", size, 1),
                   cell(smp, "k1", size, 2), cell(smp, "dev1", size, 1),
                   cell(smp, "dev1", size, 2), cell(smp, "d1", size, 1),
                   cell(smp, "d1", size, 2), cell(smp, "k3", size, 1)]
            out.append("%-10s " % ("%d KiB" % (size // 1024)) + " ".join(
                "%9s" % ("-" if x is None else "%.1f" % x) for x in row))
        out.append("ratios (median of per-round ratios, range):")
        for size in sizes:
            kb = "%d KiB" % (size // 1024)
            for name, a, b in (
                    ("virgo set / raw tx", ("k1", size, 1), ("tcp_send", size, 0)),
                    ("virgo get / raw rx", ("k1", size, 2), ("tcp_recv", size, 0)),
                    ("virgo set / NVMe write", ("k1", size, 1), ("nvme", size, 0)),
                    ("virgo get / NVMe read", ("k1", size, 2), ("nvme", size, 1)),
                    ("virgo cold / warm write", ("k1", size, 0), ("k1", size, 1)),
                    ("no pool (node2): cold / warm", ("k2n", size, 0), ("k2n", size, 1)),
                    ("cold: pool / no pool", ("k1", size, 0), ("k2n", size, 0)),
                    ("daemon cold / warm write", ("d1", size, 0), ("d1", size, 1)),
                    ("cold / warm after 1 s idle", ("k1", size, 0), ("k1", size, 3)),
                    ("warm after idle / warm", ("k1", size, 3), ("k1", size, 1)),
                    ("no pool: cold / warm after idle", ("k2n", size, 0), ("k2n", size, 3)),
                    ("daemon cold / warm after idle", ("d1", size, 0), ("d1", size, 3)),
                    ("/dev/virgo set / raw tx", ("dev1", size, 1), ("tcp_send", size, 0)),
                    ("/dev/virgo get / raw rx", ("dev1", size, 2), ("tcp_recv", size, 0)),
                    ("/dev/virgo / kernel API set", ("dev1", size, 1), ("k1", size, 1)),
                    ("/dev/virgo 1 call / 1 MiB calls set", ("dev1", size, 1), ("dev1s", size, 1)),
                    ("/dev/virgo 1 call / 1 MiB calls get", ("dev1", size, 2), ("dev1s", size, 2)),
                    ("/dev/virgo / kernel API get", ("dev1", size, 2), ("k1", size, 2)),
                    ("/dev/virgo cold / kernel cold", ("dev1", size, 0), ("k1", size, 0)),
                    ("daemon / kernel server set", ("d1", size, 1), ("k1", size, 1)),
                    ("daemon / kernel server get", ("d1", size, 2), ("k1", size, 2)),
                    ("daemon / kernel server cold", ("d1", size, 0), ("k1", size, 0)),
                    ("3 peers / 1 peer set", ("k3", size, 1), ("k1", size, 1)),
                    ("3 peers / 1 peer get", ("k3", size, 2), ("k1", size, 2))):
                r = ratio(smp, a, b)
                if r != "n/a":
                    out.append("  %-8s %-30s %s" % (kb, name, r))
        rtt1 = lat(smp, "rtt1", 16)
        rtt3 = lat(smp, "rtt3", 16)
        out.append("latency (us; pooled samples, nearest rank):")
        out.append("  TCP RTT node1: p50 %.0f p99 %.0f (n=%d); parallel to "
                   "node1..3: p50 %.0f p99 %.0f (n=%d)" % (
                       pct(rtt1, 50) / 1e3, pct(rtt1, 99) / 1e3, len(rtt1),
                       pct(rtt3, 50) / 1e3, pct(rtt3, 99) / 1e3, len(rtt3)))
        # A 4 KiB malloc is one chunk on one peer even with three peers:
        # its reference is one RTT; 16 MiB spreads over all three.
        for metric, what, ref, refname, msizes in (
                ("mk1", "kernel server, 1 peer", rtt1, "RTT", (4096, 16777216)),
                ("md1", "daemon, 1 peer", rtt1, "RTT", (4096, 16777216)),
                ("mk3", "kernel servers, 3 peers", rtt1, "RTT", (4096,)),
                ("mk3", "kernel servers, 3 peers", rtt3, "parallel RTT",
                 (16777216,))):
            for size in msizes:
                s = lat(smp, metric, size)
                if not s:
                    continue
                out.append("  malloc %-8s %-24s p50 %7.0f p99 %7.0f (n=%d)"
                           "  p50/%s p50 %.2f" % (
                               "%d KiB" % (size // 1024), what,
                               pct(s, 50) / 1e3, pct(s, 99) / 1e3, len(s),
                               refname, pct(s, 50) / pct(ref, 50)))
        for size in (4096, 16777216):
            a, b = lat(smp, "md1", size), lat(smp, "mk1", size)
            if a and b:
                out.append("  malloc %-8s daemon / kernel server p50 %.2f" % (
                    "%d KiB" % (size // 1024), pct(a, 50) / pct(b, 50)))
        out.append("")
    if len(sys.argv) > 2:
        try:
            with open(sys.argv[2]) as f:
                notes = sorted(set(f.read().split("\n")) - {""})
            out.extend(notes)
        except OSError:
            pass
    print("\n".join(out))


if __name__ == "__main__":
    main()
