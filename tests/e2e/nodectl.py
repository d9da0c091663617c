#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host side of the virgo e2e command channel (python3 stdlib only).

Each qemu node exposes its second serial port (ttyS1 in the guest) as a unix
socket; the guest's /init (tests/e2e/guest-init.sh) answers on it.  See that
file for the line protocol.

    nodectl.py ping    SOCK DEADLINE_SECS         wait until the node answers
    nodectl.py run     SOCK TIMEOUT_SECS CMD       run CMD with sh -c on the node
    nodectl.py monitor SOCK CMD                    one qemu monitor (HMP) command

run prints the command's stdout to stdout and its stderr to stderr and exits
with the command's exit status.  Transport problems are reported on stderr
and exit with status 255 (node unreachable / protocol error) or 124 (no
answer in time).  In the guest the command is killed with SIGKILL after
TIMEOUT_SECS, which shows up as status 137.

When NODECTL_LOG names a file, every run appends a transcript (command,
exit status, output) to it.

Calls for the same node are serialized with an flock on SOCK.lock, so
scenarios may call node_run for one node from several background jobs.
"""

import base64
import fcntl
import hashlib
import os
import secrets
import socket
import sys
import time

EXIT_TIMEOUT = 124
EXIT_TRANSPORT = 255
GRACE = 10  # seconds the host waits beyond the guest-side timeout
ACK_WAIT = 2.0  # first wait for VIRGO-ACK (+1 s per 8 KB of frame; doubles)
MAX_RESENDS = 4  # RUN resends without an ACK (the node may be busy)
POLL_EVERY = 5.0  # after the ACK: ask for a lost result this often


def err(msg):
    print(f"nodectl: {msg}", file=sys.stderr, flush=True)


def connect(path, deadline):
    """Connect to a qemu chardev socket, retrying until the deadline."""
    last = None
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(max(0.1, min(2.0, deadline - time.monotonic())))
            s.connect(path)
            return s
        except OSError as e:
            s.close()
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"cannot connect to {path}: {last}")
        time.sleep(0.2)


class Lines:
    """Line reader over a socket with an absolute deadline."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def next(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise ConnectionError("node closed the channel (qemu exited?)")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("ascii", "replace")


def transcript(command, rc, out, errb):
    """Append one command and its result to $NODECTL_LOG, if set."""
    log = os.environ.get("NODECTL_LOG")
    if not log:
        return
    stamp = time.strftime("%H:%M:%S")
    with open(log, "ab") as f:
        f.write(f"### {stamp} $ {command}\n".encode())
        f.write(out)
        if out and not out.endswith(b"\n"):
            f.write(b"\n")
        if errb:
            f.write(b"--- stderr\n" + errb)
            if not errb.endswith(b"\n"):
                f.write(b"\n")
        f.write(f"### exit {rc}\n".encode())


def lock(path):
    fd = os.open(path + ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def cmd_ping(path, secs):
    deadline = time.monotonic() + secs
    lk = lock(path)
    try:
        while time.monotonic() < deadline:
            try:
                s = connect(path, deadline)
            except TimeoutError as e:
                err(str(e))
                return EXIT_TIMEOUT
            with s:
                rd = Lines(s)
                try:
                    # Re-send now and then: the first pings can reach the
                    # guest before its /init opened the port.
                    while time.monotonic() < deadline:
                        tag = secrets.token_hex(6)
                        s.sendall(f"\nVIRGO-PING {tag}\n".encode())
                        step = min(deadline, time.monotonic() + 2.0)
                        while True:
                            line = rd.next(step)
                            if line is None:
                                break
                            if line == f"VIRGO-PONG {tag}":
                                return 0
                except (ConnectionError, OSError):
                    time.sleep(0.5)
        err(f"{path}: node did not answer within {secs}s")
        return EXIT_TIMEOUT
    finally:
        os.close(lk)


def hash8(text):
    """First 8 hex digits of the md5 of text (frame integrity check)."""
    return hashlib.md5(text.encode()).hexdigest()[:8]


def parse_res(line, tag):
    """(rc, stdout, stderr) if line is an intact result for tag, else None."""
    f = line.split(" ")
    if len(f) != 6 or f[0] != "VIRGO-RES" or f[1] != tag:
        return None
    if not (f[4].startswith("o") and f[5].startswith("e")):
        return None
    if hash8(f"{f[4]} {f[5]}") != f[3]:
        return None
    try:
        return (int(f[2]), base64.b64decode(f[4][1:], validate=True),
                base64.b64decode(f[5][1:], validate=True))
    except ValueError:
        return None


def cmd_run(path, secs, command):
    tag = secrets.token_hex(8)
    payload = base64.b64encode(command.encode()).decode()
    frame = f"\nVIRGO-RUN {tag} {secs} {hash8(payload)} {payload}\n".encode()
    lk = lock(path)
    try:
        try:
            s = connect(path, time.monotonic() + 10)
        except TimeoutError as e:
            err(str(e))
            transcript(command, f"transport error: {e}", b"", b"")
            return EXIT_TRANSPORT
        with s:
            rd = Lines(s)
            try:
                now = time.monotonic()
                deadline = now + secs + GRACE
                s.sendall(frame)
                acked = False
                resends = 0
                # The guest reads the frame a byte per syscall (busybox
                # read): give big frames time before sending them again.
                ack_wait = ACK_WAIT + len(frame) / 8000
                next_action = now + ack_wait
                while True:
                    line = rd.next(min(deadline, next_action))
                    now = time.monotonic()
                    if line is None:
                        if now >= deadline:
                            what = ("no result" if acked else
                                    "command not even acknowledged")
                            err(f"{path}: {what} within {secs + GRACE}s "
                                f"(node hung or dead?)")
                            transcript(command, f"timeout ({what}, "
                                       f"{resends} resends)", b"", b"")
                            return EXIT_TIMEOUT
                        if not acked and resends < MAX_RESENDS:
                            # Frame lost or mangled on the way in: the guest
                            # answers a repeated id from its stored result,
                            # so this never runs the command twice.
                            s.sendall(frame)
                            resends += 1
                            ack_wait *= 2
                            next_action = now + ack_wait
                        elif acked:
                            # Result lost on the way out: ask again.
                            s.sendall(f"\nVIRGO-POLL {tag}\n".encode())
                            next_action = now + POLL_EVERY
                        else:
                            next_action = deadline
                        continue
                    if line == f"VIRGO-ACK {tag}":
                        if not acked:
                            acked = True
                            next_action = now + POLL_EVERY
                        continue
                    res = parse_res(line, tag)
                    if res is None:
                        continue  # stale answer, mangled frame or noise
                    rc, out, errb = res
                    transcript(command, rc if not resends else
                               f"{rc} ({resends} resends)", out, errb)
                    sys.stdout.buffer.write(out)
                    sys.stdout.flush()
                    sys.stderr.buffer.write(errb)
                    sys.stderr.flush()
                    return rc
            except (ConnectionError, OSError) as e:
                err(f"{path}: {e}")
                transcript(command, f"transport error: {e}", b"", b"")
                return EXIT_TRANSPORT
    finally:
        os.close(lk)


def cmd_monitor(path, command):
    """Send one HMP command to the qemu monitor socket, print the reply."""
    try:
        s = connect(path, time.monotonic() + 5)
    except TimeoutError as e:
        err(str(e))
        return EXIT_TRANSPORT
    with s:
        buf = b""
        deadline = time.monotonic() + 10

        def until_prompt():
            nonlocal buf
            while b"(qemu) " not in buf:
                if time.monotonic() > deadline:
                    raise TimeoutError("no monitor prompt")
                s.settimeout(1.0)
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                buf += data
            text, _, buf = buf.partition(b"(qemu) ")
            return text

        try:
            until_prompt()  # banner
            s.sendall(command.encode() + b"\n")
            reply = until_prompt().decode("utf-8", "replace")
        except (TimeoutError, OSError) as e:
            err(f"monitor {path}: {e}")
            return EXIT_TRANSPORT
        # The monitor echoes the command line first; drop it and ANSI junk.
        lines = [ln for ln in reply.replace("\r", "").split("\n")[1:]
                 if ln.strip()]
        if lines:
            print("\n".join(lines))
        return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "ping":
        return cmd_ping(argv[1], float(argv[2]))
    if len(argv) >= 4 and argv[0] == "run":
        return cmd_run(argv[1], int(argv[2]), " ".join(argv[3:]))
    if len(argv) >= 3 and argv[0] == "monitor":
        return cmd_monitor(argv[1], " ".join(argv[2:]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
