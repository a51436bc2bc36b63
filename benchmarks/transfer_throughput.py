#!/usr/bin/env python3
"""Transfer tasks against `rclone copy` and `cp -r`, on the same data, in one run.

Two datasets in the user's folder of the server's "<host> files" collection (POSIX):

* one large file (``--large-size``, default 2GiB, random bytes),
* many small files (``--small-count`` files of ``--small-size``, default 10,000 of 4KiB,
  spread over folders of 100).

For each, copies into fresh destinations on the same file system:

* Isthmus: a Transfer task (``TransferClient.submit_transfer`` of the official SDK,
  recursive, ``verify_checksum=True``) from the collection to itself, timed from submission
  until the task reports SUCCEEDED (polled every ``--poll-seconds``, 50 ms by default);
* ``rclone copy`` (Debian's; it compares hashes after each local copy by default);
* ``cp -r``: no verification and no durable task state, the physical floor of a copy
  into the page cache;
* ``cp -r`` then ``sync -f``: the floor of a copy that is on the disk when it ends, as an
  Isthmus file is before the task records it done (neither rclone nor cp syncs);
* "floor", for the small files: ``copy_floor.py``, a plain Python loop with the guarantees
  of a task (hashed, written under temporary names, made durable, read back and compared,
  renamed, durable again) without a server, task state or access checks: what the design
  costs per file here; and "floor xN", the same loop in one process per CPU, each given a
  share of the folders: about what a Python copier with those guarantees reaches here;
  and "floor C", ``copy_floor.c``, the same loop compiled (built at the start with ``cc``
  and OpenSSL's libcrypto, Debian's libssl-dev; left out when it cannot be built): what
  the guarantees cost when the per-file work runs outside an interpreter.

Before each copy the source is read once and the file system synced, so every contender
starts from a warm page cache with nothing left to write. Each of ``--rounds`` rounds (3 by
default) runs every contender in turn, so a busier moment of a shared machine slows them
alike; the median of each counts, and each round's ratio is shown too. The report gives
seconds, MB/s (10^6 bytes) and files/s, the ratios the issue sets targets for (Isthmus / cp
time on the large file, Isthmus / rclone speed on both), the server's CPU time per task
(user and system) and its peak resident memory during the tasks. The run
checks each destination against the source (sizes and SHA-256) before it counts.

Copies of many files are removed only after the last round (see `measure`): on ext4 without
a journal, making files soon after many were removed costs several times more. For the same
reason, start it when nothing removed many files on that file system in the last 6 minutes
(a test run, say).

    .venv/bin/python benchmarks/transfer_throughput.py
    .venv/bin/python benchmarks/transfer_throughput.py --large-size 256MiB --small-count 2000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from https_data import PeakMemory, collection_scopes, launch_isthmus, login, parse_size, status_kib
from oauth_throughput import Resources, run_benchmark

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MiB = 1024 * 1024
CPUS = os.cpu_count() or 1
FLOOR_ALL = f"floor x{CPUS}"  # copy_floor.py, one process per CPU
FLOOR_C = "floor C"  # copy_floor.c
TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"


@dataclass
class Site:
    collection_id: str
    home: Path  # the user's folder on disk: "~" on the collection
    pid: int
    transfer_token: str


def start_isthmus(resources: Resources, work: Path) -> Site:
    site = launch_isthmus(resources, work)
    data_access = collection_scopes(site.collection_id).data_access
    # Transfer, with the collection's data_access as its dependency (consented at login).
    token = login(site, [f"{TRANSFER_SCOPE}[*{data_access}]"])["transfer.api.globus.org"]
    home = site.data_dir / "files" / site.username
    home.mkdir(parents=True, exist_ok=True)
    return Site(site.collection_id, home, site.pid, token)


# --- data ---------------------------------------------------------------------------------


def make_large(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MiB))
            out.write(chunk)
            left -= len(chunk)


def make_small(root: Path, count: int, size: int) -> None:
    for index in range(count):
        folder = root / f"d{index // 100:04d}"
        if index % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:06d}.bin").write_bytes(os.urandom(size))


def tree_digests(root: Path) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest() \
                if path.stat().st_size <= 64 * MiB else _file_sha256(path)
    return found


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def warm(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as source:
                while source.read(8 * MiB):
                    pass


# --- the contenders ----------------------------------------------------------------------


def run_cp(source: Path, destination: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(destination)], check=True)
    return time.perf_counter() - started


def run_cp_sync(source: Path, destination: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(destination)], check=True)
    subprocess.run(["sync", "-f", str(destination)], check=True)  # syncfs of its file system
    return time.perf_counter() - started


def run_rclone(source: Path, destination: Path, work: Path) -> float:
    config = work / "rclone.conf"
    config.touch()
    started = time.perf_counter()
    subprocess.run(["rclone", "--config", str(config), "copy", str(source), str(destination)],
                   check=True, capture_output=True)
    return time.perf_counter() - started


def run_floor(source: Path, destination: Path, processes: int = 1) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).with_name("copy_floor.py")),
                    "--processes", str(processes), str(source), str(destination)], check=True)
    return time.perf_counter() - started


def build_floor_c(work: Path) -> Path | None:
    """copy_floor.c compiled into ``work``; None (and why, printed) when it cannot be."""
    binary = work / "copy_floor_c"
    built = subprocess.run(["cc", "-O2", "-o", str(binary),
                            str(Path(__file__).with_name("copy_floor.c")), "-lcrypto"],
                           capture_output=True, text=True, check=False)
    if built.returncode != 0:
        print(f"{FLOOR_C} left out: copy_floor.c did not build (cc and libssl-dev are "
              f"needed): {built.stderr.strip()[:300]}", flush=True)
        return None
    return binary


def run_floor_c(binary: Path, source: Path, destination: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(binary), str(source), str(destination)], check=True)
    return time.perf_counter() - started


def run_isthmus(site: Site, source: Path, destination: Path, timeout: float,
                poll_seconds: float) -> float:
    return run_task(site.transfer_token, (site.collection_id, f"~/{source.relative_to(site.home)}"),
                    (site.collection_id, f"~/{destination.relative_to(site.home)}"), timeout,
                    poll_seconds)


def run_task(transfer_token: str, source: tuple[str, str], destination: tuple[str, str],
             timeout: float, poll_seconds: float = 0.05) -> float:
    """A recursive, verified Transfer task from (collection, path) to (collection, path):
    seconds from submission until it reports SUCCEEDED (polled every ``poll_seconds``)."""
    import globus_sdk

    transfer = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(transfer_token))
    data = globus_sdk.TransferData(source_endpoint=source[0], destination_endpoint=destination[0],
                                   verify_checksum=True, label="benchmark")
    data.add_item(source[1], destination[1], recursive=True)
    started = time.perf_counter()
    task_id = transfer.submit_transfer(data)["task_id"]
    while True:
        task = transfer.get_task(task_id)
        if task["status"] in ("SUCCEEDED", "FAILED"):
            break
        if time.perf_counter() - started > timeout:
            events = [event["description"] for event in transfer.task_event_list(task_id)]
            raise RuntimeError(f"task {task_id} still {task['status']} after {timeout:g} s; "
                               f"its events: {events[:10]}")
        time.sleep(poll_seconds)
    elapsed = time.perf_counter() - started
    if task["status"] != "SUCCEEDED":
        raise RuntimeError(f"task {task_id} ended {task['status']}: {task.data}")
    return elapsed


def process_cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


@dataclass
class Cell:
    dataset: str
    contender: str
    seconds: float  # the median of the rounds
    bytes: int
    files: int
    rounds: list[float] = field(default_factory=list)

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds


def measure(site: Site, work: Path, dataset: str, source: Path,
            args: argparse.Namespace, floor_c: Path | None) -> list[Cell]:
    """Each round runs every contender once, one after the other, so a machine that is
    busier in one round slows them alike; a cell holds the median of its rounds."""
    expected = tree_digests(source)
    size = sum(path.stat().st_size for path in source.rglob("*") if path.is_file())
    # The floor is one thread copying file after file: for many small files the floor of the
    # per-file cost, for one large file only a slower copy than Isthmus's threads make.
    contenders: tuple[str, ...] = ("cp", "cp+sync", "rclone", "isthmus")
    if len(expected) > 1:
        contenders = ("cp", "cp+sync", "rclone", "floor", FLOOR_ALL,
                      *((FLOOR_C,) if floor_c else ()), "isthmus")
    times: dict[str, list[float]] = {contender: [] for contender in contenders}
    # Copies of many files are removed only once every contender is measured: ext4 without a
    # journal (this project's VMs) skips inodes freed in the last 1-6 minutes when it makes a
    # file, looking at each, so 10,000 files made just after 10,000 were removed took 4-5 s
    # of system time instead of 0.7 s, and whoever came after a removal paid for it.
    copies: list[Path] = []
    for attempt in range(args.rounds):
        for contender in contenders:
            destination = site.home / f"{dataset}-{contender.replace(' ', '')}-{attempt}"
            warm(source)
            os.sync()  # nothing of the data made or the copy before is still being written
            note = ""
            if contender == "cp":
                seconds = run_cp(source, destination)
            elif contender == "cp+sync":
                seconds = run_cp_sync(source, destination)
            elif contender == "rclone":
                seconds = run_rclone(source, destination, work)
            elif contender == "floor":
                seconds = run_floor(source, destination)
            elif contender == FLOOR_ALL:
                seconds = run_floor(source, destination, CPUS)
            elif contender == FLOOR_C:
                assert floor_c is not None
                seconds = run_floor_c(floor_c, source, destination)
            else:
                user, system = process_cpu_seconds(site.pid)
                seconds = run_isthmus(site, source, destination, args.task_timeout,
                                      args.poll_seconds)
                user_after, system_after = process_cpu_seconds(site.pid)
                note = (f" (server CPU {user_after - user:.2f} s user, "
                        f"{system_after - system:.2f} s system)")
            if tree_digests(destination) != expected:
                raise RuntimeError(f"{contender}: {destination} differs from {source}")
            if len(expected) > 1:
                copies.append(destination)
            else:
                shutil.rmtree(destination)
            times[contender].append(seconds)
            print(f"  {dataset:<6} {contender:<8} {seconds:8.2f} s{note}", flush=True)
        ours, theirs = times["isthmus"][-1], times["rclone"][-1]
        print(f"  {dataset:<6} round {attempt + 1}: isthmus speed / rclone speed "
              f"{theirs / ours:.2f}", flush=True)
    for destination in copies:
        shutil.rmtree(destination)
    return [Cell(dataset, contender, statistics.median(times[contender]), size, len(expected),
                 times[contender]) for contender in contenders]


def run(args: argparse.Namespace, resources: Resources) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="isthmus-transfer-bench-", dir=args.work_dir))
    resources.directories.append(work)
    site = start_isthmus(resources, work)
    print(f"Isthmus serving collection {site.collection_id}", flush=True)
    floor_c = build_floor_c(work) if args.small_count else None
    datasets = []
    if args.large_size:
        make_large(site.home / "large" / "big.bin", args.large_size)
        datasets.append(("large", site.home / "large"))
    if args.small_count:
        make_small(site.home / "small", args.small_count, args.small_size)
        datasets.append(("small", site.home / "small"))
    rest_kib = status_kib(site.pid, "VmRSS")
    cells: list[Cell] = []
    with PeakMemory(site.pid) as peak:
        for dataset, source in datasets:
            cells += measure(site, work, dataset, source, args, floor_c)
    return {"cells": cells, "rest_kib": rest_kib, "peak_kib": peak.peak_kib}


def print_cells(cells: list[Cell]) -> None:
    print()
    print(f"{'dataset':<8} {'contender':<9} {'seconds':>8} {'MB/s':>9} {'files/s':>9}")
    for cell in cells:
        print(f"{cell.dataset:<8} {cell.contender:<9} {cell.seconds:>8.2f} "
              f"{cell.mb_per_s:>9.1f} {cell.files_per_s:>9.1f}")


def report(results: dict[str, Any]) -> dict[str, Any]:
    cells: list[Cell] = results["cells"]
    print_cells(cells)
    by = {(cell.dataset, cell.contender): cell for cell in cells}
    ratios: dict[str, float] = {}
    for dataset in ("large", "small"):
        ours = by.get((dataset, "isthmus"))
        if ours is None:
            continue
        ratios[f"{dataset}: isthmus time / cp time"] = ours.seconds / by[(dataset, "cp")].seconds
        ratios[f"{dataset}: isthmus time / cp+sync time"] = (
            ours.seconds / by[(dataset, "cp+sync")].seconds)
        ratios[f"{dataset}: isthmus speed / rclone speed"] = (
            by[(dataset, "rclone")].seconds / ours.seconds)
        if (dataset, "floor") in by:
            ratios[f"{dataset}: isthmus speed / floor speed"] = (
                by[(dataset, "floor")].seconds / ours.seconds)
            ratios[f"{dataset}: {FLOOR_ALL} speed / rclone speed"] = (
                by[(dataset, "rclone")].seconds / by[(dataset, FLOOR_ALL)].seconds)
        if (dataset, FLOOR_C) in by:
            ratios[f"{dataset}: {FLOOR_C} speed / rclone speed"] = (
                by[(dataset, "rclone")].seconds / by[(dataset, FLOOR_C)].seconds)
    print()
    for name, value in ratios.items():
        print(f"  {name:<40} {value:6.2f}")
    print(f"\nIsthmus resident memory: {results['rest_kib'] / 1024:.1f} MiB at rest, "
          f"{results['peak_kib'] / 1024:.1f} MiB at the peak of the tasks")
    return {"cells": [asdict(cell) for cell in cells], "ratios": ratios,
            "rest_kib": results["rest_kib"], "peak_kib": results["peak_kib"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = dataset_arguments(__doc__, task_timeout=1800)
    parser.add_argument("--poll-seconds", type=float, default=0.05,
                        help="how often the task's status is asked for")
    return parser.parse_args(argv)


def dataset_arguments(doc: str | None, task_timeout: float) -> argparse.ArgumentParser:
    """The options of a benchmark over this module's two datasets."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--large-size", type=parse_size, default=parse_size("2GiB"),
                        help="size of the large file (0: skip it)")
    parser.add_argument("--small-count", type=int, default=10_000,
                        help="number of small files (0: skip them)")
    parser.add_argument("--small-size", type=parse_size, default=parse_size("4KiB"))
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of every contender; each cell is their median")
    parser.add_argument("--task-timeout", type=float, default=task_timeout,
                        help="seconds a task may take before the run stops")
    parser.add_argument("--work-dir", default=None,
                        help="where the temporary data dir goes (default: the system's)")
    parser.add_argument("--json-out", type=Path, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("rclone", "cp"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (apt-get install -y {tool})", file=sys.stderr)
            return 2
    return run_benchmark(lambda resources: report(run(args, resources)), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
