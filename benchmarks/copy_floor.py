#!/usr/bin/env python3
"""The floor of a copy with the guarantees of an Isthmus task, in a plain Python loop: no
server, no task state, no access checks, one thread.

Each file is read in 1 MiB buffers, hashed (SHA-256) and written under a temporary name in
its destination folder. Every 1,000 files (or 256 MiB) the batch is made durable with one
syncfs, each file is read back and its digest compared, the files are renamed to their
names and the renames made durable with a second syncfs: what Isthmus does for a run of
small files, without its bookkeeping. `transfer_throughput.py` runs it as the "floor"
contender, to tell what the design costs on a machine from what Isthmus's code adds.

With ``--processes N`` the top-level entries of the source are shared among N processes
(round robin), each such a loop: the floor of a copy that uses every CPU, as a task's
threads cannot while they share one interpreter ("floor xN" in `transfer_throughput.py`).

    .venv/bin/python benchmarks/copy_floor.py SOURCE_FOLDER DESTINATION_FOLDER
    .venv/bin/python benchmarks/copy_floor.py --processes 2 SOURCE_FOLDER DESTINATION_FOLDER
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import multiprocessing
import os
import sys
from dataclasses import dataclass
from pathlib import Path

BUFFER = 1024 * 1024
BATCH_FILES = 1000
BATCH_BYTES = 256 * 1024 * 1024

_syncfs = ctypes.CDLL(None, use_errno=True).syncfs


def syncfs(fd: int) -> None:
    if _syncfs(fd) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


@dataclass
class Pending:
    folder: Path
    name: str
    fd: int  # the temporary file, open for reading back
    digest: bytes
    size: int


def copy_file(source: Path, folder: Path, buffer: memoryview) -> Pending:
    digest, size = hashlib.sha256(), 0
    temporary = folder / f".copy-floor-{source.name}"
    reading = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    writing = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while count := os.readv(reading, [buffer]):
            digest.update(buffer[:count])
            os.write(writing, buffer[:count])
            size += count
    except BaseException:
        os.close(writing)
        raise
    finally:
        os.close(reading)
    return Pending(folder, source.name, writing, digest.digest(), size)


def commit(batch: list[Pending], anchor: int, buffer: memoryview) -> None:
    syncfs(anchor)
    for pending in batch:
        digest, offset = hashlib.sha256(), 0
        while count := os.preadv(pending.fd, [buffer], offset):
            digest.update(buffer[:count])
            offset += count
        if digest.digest() != pending.digest:
            raise RuntimeError(f"{pending.folder / pending.name} differs when read back")
        os.rename(pending.folder / f".copy-floor-{pending.name}", pending.folder / pending.name)
        os.close(pending.fd)
    syncfs(anchor)


def copy_tree(source: Path, destination: Path, only: list[str] | None = None) -> int:
    """Copy ``source`` into a new folder ``destination`` (with ``only``, those of its top-level
    entries into the existing ``destination``); the number of files copied."""
    buffer = memoryview(bytearray(BUFFER))
    destination.mkdir(exist_ok=only is not None)
    anchor = os.open(destination, os.O_RDONLY | os.O_DIRECTORY)
    batch: list[Pending] = []
    batch_bytes = copied = 0
    try:
        for folder, folders, files in os.walk(source):
            if only is not None and folder == str(source):
                folders[:] = [name for name in folders if name in only]
                files = [name for name in files if name in only]
            folders.sort()
            target = destination / Path(folder).relative_to(source)
            target.mkdir(exist_ok=True)
            for name in sorted(files):
                batch.append(copy_file(Path(folder) / name, target, buffer))
                batch_bytes += batch[-1].size
                copied += 1
                if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
                    commit(batch, anchor, buffer)
                    batch, batch_bytes = [], 0
        commit(batch, anchor, buffer)
    finally:
        os.close(anchor)
    return copied


def copy_shared(source: Path, destination: Path, processes: int) -> int:
    """`copy_tree` by ``processes`` processes, each given a share of the top-level entries."""
    names = sorted(os.listdir(source))
    destination.mkdir()
    shares = [(source, destination, names[start::processes]) for start in range(processes)]
    # fork: this script holds no threads, and a forked child starts at once.
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return sum(pool.starmap(copy_tree, shares))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    parser.add_argument("--processes", type=int, default=1)
    arguments = parser.parse_args(argv)
    if arguments.processes > 1:
        copy_shared(arguments.source, arguments.destination, arguments.processes)
    else:
        copy_tree(arguments.source, arguments.destination)
    return 0


if __name__ == "__main__":
    sys.exit(main())
