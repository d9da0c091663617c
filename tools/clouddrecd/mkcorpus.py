#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write the seed corpus of cd_fuzz (tools/clouddrecd/corpus/).

Each seed: one setup byte (bit 0: server with a key, bit 1: partial
sends, bit 2: several connections cut at "~CUT" + a control byte), then a
client's byte stream: HELLO, then requests of every opcode, good and bad.
"""
import os
import struct
import sys

MAGIC = 0x4f475256


def frame(op, payload=b"", tag=1, flags=0, status=0):
    return struct.pack("<IBBHIIQ", MAGIC, 1, op, flags, len(payload),
                       status, tag) + payload


def hello(vmin=1, vmax=1, caps=0):
    return frame(1, struct.pack("<HHI", vmin, vmax, caps) + bytes(range(32)))


def hello_r():
    """HELLO offering capability RESUME."""
    return hello(caps=1)


def resume(sid, proof=bytes(32)):
    """RESUME: cd_fuzz's resume ids are 1, 2, ..., its tokens zeroes."""
    return frame(9, struct.pack("<Q", sid) + proof)


def cut(end=True, expire=False):
    """Next connection: end this one (else keep it open), jump the clock."""
    return b"~CUT" + bytes([(1 if end else 0) | (2 if expire else 0)])


def alloc(*sizes):
    return frame(3, struct.pack("<II", len(sizes), 0) +
                 b"".join(struct.pack("<I", s) for s in sizes))


def free(*handles):
    return frame(4, struct.pack("<II", len(handles), 0) +
                 b"".join(struct.pack("<Q", h) for h in handles))


def discard(*handles):
    """DISCARD (capability bit 1, protocol.md 5.9)."""
    return frame(10, struct.pack("<II", len(handles), 0) +
                 b"".join(struct.pack("<Q", h) for h in handles))


def rw(op, h, off, length, data=b""):
    return frame(op, struct.pack("<QII", h, off, length) + data)


def main(out):
    # cd_fuzz is built with CD_FUZZ_HANDLES: a session's handles are 2,
    # 3, ... in ALLOC order (random in the daemon), so seeds name them.
    seeds = {
        "handshake": b"\x00" + hello() + frame(8, b"ping") + frame(7),
        "alloc_free": b"\x00" + hello() + alloc(16, 8192, 1) +
        rw(5, 3, 0, 8192, bytes(8192)) + free(2, 3) + frame(7),
        "rw": b"\x02" + hello() + alloc(4096) + rw(5, 2, 0, 4, b"abcd") +
        rw(6, 2, 0, 4) + rw(6, 0, 0, 4) + rw(5, 2, 0xffffffff, 2, b"xy") +
        rw(5, 2, 4000, 96, bytes(96)) + rw(6, 2, 4000, 97) + rw(6, 9, 0, 1) +
        free(2, 2, 3),
        "errors": b"\x04" + frame(3) + hello(2, 3) + hello() + hello() +
        frame(2, bytes(32)) + frame(8, flags=1) + alloc(0) + alloc(9000) +
        free() + frame(8, bytes(65)),
        "keyed": b"\x01" + frame(8) + hello() + frame(8) +
        frame(2, bytes(32)),
        "pipeline": b"\x06" + hello() + b"".join(
            frame(8, bytes([i]) * (i % 64), tag=i) for i in range(200)),
        "bigread": b"\x08" + hello() + alloc(*([8192] * 64)) + b"".join(
            rw(6, 2 + i % 64, 0, 8192) for i in range(100)),
        "badhdr": b"\x00" + hello() + b"VRGO\x02\x08" + bytes(18),
        # Resumption (protocol.md 6.1): an orphan taken over, its handles
        # read and freed, a second RESUME of it refused.
        "resume": b"\x04" + hello_r() + alloc(16, 4096) +
        rw(5, 3, 0, 4, b"abcd") + cut() + hello_r() + resume(1) +
        rw(6, 3, 0, 4) + alloc(8) + resume(1) + free(2, 3, 4) + frame(7) +
        cut() + hello_r() + resume(1) + resume(2),
        # The first connection still open: BUSY kicks it, then OK.
        "resume_busy": b"\x06" + hello_r() + alloc(64) + cut(end=False) +
        hello_r() + resume(1) + resume(1) + cut(end=False) + hello_r() +
        resume(1) + rw(6, 2, 0, 64) + cut(end=False) + hello_r(),
        # Expiry, eviction past max_sessions orphans, a header error
        # ending a session that holds chunks.
        "resume_expire": b"\x04" + hello_r() + alloc(8) + cut(expire=True) +
        hello_r() + resume(1) + alloc(8) + cut() + hello_r() + alloc(8) +
        cut() + hello_r() + alloc(8) + cut() + hello_r() + alloc(8) +
        b"VRGO\x02\x08" + bytes(18) + cut() + hello_r() + resume(2),
        # PERM before HELLO, PROTO without the capability, INVAL malformed
        # and after an ALLOC; NOENT own id, unknown id, wrong proof.
        "resume_errors": b"\x04" + resume(1) + hello() + resume(1) + cut() +
        hello_r() + resume(0) + frame(9, bytes(39)) + frame(9, bytes(41)) +
        resume(2) + resume(7) + resume(1, b"\x01" * 32) + alloc(8) +
        resume(1) + frame(9, flags=1),
        # DISCARD: PROTO unless agreed; then written and unwritten chunks
        # discarded (a duplicate, a foreign handle), read and written again.
        "discard": b"\x04" + discard(2) + hello(caps=2) + alloc(16, 8192) +
        rw(5, 3, 0, 8192, bytes(8192)) + rw(5, 2, 3, 4, b"abcd") +
        discard(2, 3, 3, 99) + rw(6, 3, 0, 8192) + rw(5, 3, 1, 1, b"x") +
        discard() + frame(10, bytes(12)) + discard(0) + free(2, 3) +
        cut() + hello() + alloc(8) + discard(2),
        # With a key: PERM before AUTH.
        "resume_keyed": b"\x05" + hello_r() + resume(1) + frame(2, bytes(32)),
        # With a key, a client that reads nothing: requests before AUTH
        # get PERM, and at most two replies wait for it.
        "preauth_deaf": b"\x11" + hello() + frame(8) * 2000,
    }
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))
