#!/usr/bin/env python3
"""What a plain copy costs the kernel on this machine into memory that was free for a while,
and into memory just freed: no Isthmus, no hashing, one 4 MiB buffer, read then write, one
fsync, twice (the first copy deleted before the second).

On the project's virtual machines writing a file into pages that had been free for more
than a moment cost about 2.5-3.5 s of system time per GiB with a 4 MiB buffer, into pages
freed just before 0.3-0.6 s. The Transfer engine drops the cached pages of what a large copy
has made durable, so its next writes reuse them (`PosixAtomicWriter._drop_behind`). Run it to
see whether a machine has it.

    .venv/bin/python benchmarks/fresh_writes.py --size 2GiB
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from https_data import parse_size

CHUNK = 4 * 1024 * 1024


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for _ in range(0, size, CHUNK):
            out.write(os.urandom(CHUNK))
    os.sync()


def copy(source: Path, destination: Path) -> tuple[float, float, float]:
    """Wall, user and system seconds of a buffered copy ending in one fsync."""
    started, before = time.perf_counter(), os.times()
    buffer = memoryview(bytearray(CHUNK))
    reading = os.open(source, os.O_RDONLY)
    writing = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while count := os.readv(reading, [buffer]):
            os.write(writing, buffer[:count])
        os.fsync(writing)
    finally:
        os.close(reading)
        os.close(writing)
    after = os.times()
    return time.perf_counter() - started, after.user - before.user, after.system - before.system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", type=parse_size, default=parse_size("2GiB"))
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="isthmus-fresh-writes-", dir=args.work_dir) as work:
        source, other = Path(work) / "source", Path(work) / "other"
        write_random(source, args.size)
        write_random(other, args.size)  # the large write the first copy comes after
        for attempt in ("first", "second"):
            destination = Path(work) / f"copy-{attempt}"
            wall, user, system = copy(source, destination)
            print(f"{attempt} copy: {wall:.2f} s wall, {user:.2f} s user, {system:.2f} s system",
                  flush=True)
            destination.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
