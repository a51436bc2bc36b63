#!/usr/bin/env python3
"""POSIX -> S3 Transfer tasks against `rclone copy` into the same bucket, in one run.

A moto S3 server (server mode, on loopback) and an all-in-one Isthmus whose endpoint gets an
S3 storage gateway on moto, the user's keys (a user credential) and a mapped collection on a
bucket, made through the GCS Manager API with the official SDK. Two datasets in the user's
folder of the server's "<host> files" collection (POSIX):

* one large file (``--large-size``, default 2GiB, random bytes),
* many small files (``--small-count`` files of ``--small-size``, default 10,000 of 4KiB,
  spread over folders of 100).

Each goes into a fresh prefix of the bucket twice:

* Isthmus: a Transfer task (``TransferClient.submit_transfer``, recursive,
  ``verify_checksum=True``) from the POSIX collection to the S3 one, timed from submission
  until SUCCEEDED (polled every 50 ms);
* ``rclone copy`` (Debian's) from the same folder on disk to the same bucket, with its
  defaults (4 transfers; MD5 sent with each upload and compared after it).

Each copy is then checked against the source: the same keys and sizes, and S3's MD5 (the
ETag) of every object uploaded whole; then deleted, so moto (which holds objects in memory)
never holds more than one copy. The report gives seconds, MB/s (10^6 bytes) and files/s and
the ratio Isthmus speed / rclone speed for each dataset, with the server's peak resident
memory during the tasks.

    .venv/bin/python benchmarks/s3_throughput.py
    .venv/bin/python benchmarks/s3_throughput.py --large-size 64MiB --small-count 500
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from https_data import IsthmusSite, PeakMemory, collection_scopes, launch_isthmus, login
from oauth_throughput import Resources, run_benchmark
from transfer_throughput import (
    TRANSFER_SCOPE,
    Cell,
    dataset_arguments,
    make_large,
    make_small,
    print_cells,
    run_task,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
S3_CONNECTOR = "7643e831-5f6c-4b47-a07f-8ee90f401d23"


def start_moto(resources: Resources, work: Path) -> Any:
    from tests.s3_server import start_moto as start

    return start(work / "moto.log",
                 lambda argv, env, log: resources.spawn(argv, env=env, log=log))


def s3_collection(site: IsthmusSite, work: Path, moto: Any, bucket: str) -> str:
    """An S3 gateway on moto, the user's keys and a collection on ``bucket``: its id."""
    import globus_sdk

    found = re.search(r"Globus Connect Server endpoint: ([0-9a-f-]{36})",
                      (work / "isthmus.log").read_text())
    if found is None:
        raise RuntimeError("isthmus serve named no endpoint")
    endpoint_id = found.group(1)
    scope = globus_sdk.GCSClient.get_gcs_endpoint_scopes(endpoint_id).manage_collections
    token = login(site, [str(scope)])[endpoint_id]
    manager = globus_sdk.GCSClient(site.base_url.rstrip("/"),
                                   authorizer=globus_sdk.AccessTokenAuthorizer(token))
    gateway = manager.create_storage_gateway(globus_sdk.StorageGatewayDocument(
        display_name="Benchmark bucket", connector_id=S3_CONNECTOR,
        allowed_domains=[site.username.rpartition("@")[2]],
        policies=globus_sdk.S3StoragePolicies(s3_endpoint=moto.endpoint_url,
                                              s3_buckets=[bucket],
                                              s3_user_credential_required=True)))
    manager.create_user_credential(globus_sdk.UserCredentialDocument(
        storage_gateway_id=gateway["id"], policies={
            "DATA_TYPE": "s3_user_credential_policies#1.0.0", "s3_key_id": moto.key_id,
            "s3_secret_key": moto.secret_key}))
    collection = manager.create_collection(globus_sdk.MappedCollectionDocument(
        display_name="Benchmark bucket", storage_gateway_id=gateway["id"],
        collection_base_path=f"/{bucket}"))
    return str(collection["id"])


def source_files(source: Path) -> dict[str, tuple[int, str]]:
    """Size and MD5 of every file under ``source``, by its path there."""
    found = {}
    for path in sorted(source.rglob("*")):
        if path.is_file():
            digest = hashlib.md5(usedforsecurity=False)
            with path.open("rb") as handle:
                while chunk := handle.read(8 * 1024 * 1024):
                    digest.update(chunk)
            found[str(path.relative_to(source))] = (path.stat().st_size, digest.hexdigest())
    return found


def check_and_empty(moto: Any, bucket: str, prefix: str,
                    expected: dict[str, tuple[int, str]]) -> None:
    """The prefix holds exactly the source's files (keys, sizes, and the MD5 of those
    uploaded whole); then it is emptied."""
    client = moto.client()
    stored: dict[str, tuple[int, str]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                 Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix) + 1:]
            if name and not name.endswith("/"):  # directory markers hold no file
                stored[name] = (int(item["Size"]), item["ETag"].strip('"'))
    if set(stored) != set(expected):
        raise RuntimeError(f"{prefix}: {len(stored)} objects for {len(expected)} files")
    for name, (size, etag) in stored.items():
        if size != expected[name][0] or ("-" not in etag and etag != expected[name][1]):
            raise RuntimeError(f"{prefix}/{name} differs from the source")
    keys = [{"Key": f"{prefix}/{name}"} for name in stored]
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                 Prefix=prefix + "/"):
        keys += [{"Key": item["Key"]} for item in page.get("Contents", [])
                 if item["Key"].endswith("/")]
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": keys[start:start + 1000],
                                                     "Quiet": True})
    client.close()


def run_rclone(moto: Any, source: Path, bucket: str, prefix: str) -> float:
    started = time.perf_counter()
    subprocess.run(["rclone", "copy", str(source), f"moto:{bucket}/{prefix}"], check=True,
                   capture_output=True, env=moto.rclone_env())
    return time.perf_counter() - started


def run(args: argparse.Namespace, resources: Resources) -> dict[str, Any]:
    load = os.getloadavg()
    print(f"Load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"(the machine should be otherwise idle)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="isthmus-s3-bench-", dir=args.work_dir))
    resources.directories.append(work)
    moto = start_moto(resources, work)
    bucket = moto.new_bucket("bench")
    site = launch_isthmus(resources, work)
    s3_id = s3_collection(site, work, moto, bucket)
    dependencies = " ".join(f"*{collection_scopes(collection).data_access}"
                           for collection in (site.collection_id, s3_id))
    transfer_token = login(site, [f"{TRANSFER_SCOPE}[{dependencies}]"])[
        "transfer.api.globus.org"]
    home = site.data_dir / "files" / site.username
    print(f"Isthmus: POSIX collection {site.collection_id} -> S3 collection {s3_id} "
          f"(moto at {moto.endpoint_url}, bucket {bucket})", flush=True)
    datasets = []
    if args.large_size:
        make_large(home / "large" / "big.bin", args.large_size)
        datasets.append(("large", home / "large"))
    if args.small_count:
        make_small(home / "small", args.small_count, args.small_size)
        datasets.append(("small", home / "small"))
    cells: list[Cell] = []
    with PeakMemory(site.pid) as peak:
        for dataset, source in datasets:
            expected = source_files(source)
            size = sum(entry[0] for entry in expected.values())
            for contender in ("rclone", "isthmus"):
                best = float("inf")
                for attempt in range(args.rounds):
                    prefix = f"{dataset}-{contender}-{attempt}"
                    if contender == "rclone":
                        seconds = run_rclone(moto, source, bucket, prefix)
                    else:
                        seconds = run_task(transfer_token, (site.collection_id,
                                                            f"~/{source.name}/"),
                                           (s3_id, f"/{prefix}/"), args.task_timeout)
                    check_and_empty(moto, bucket, prefix, expected)
                    best = min(best, seconds)
                    print(f"  {dataset:<6} {contender:<8} {seconds:8.2f} s", flush=True)
                cells.append(Cell(dataset, contender, best, size, len(expected)))
    return {"cells": cells, "peak_kib": peak.peak_kib, "load_before": load,
            "load_after": os.getloadavg()}


def report(results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    cells: list[Cell] = results["cells"]
    print_cells(cells)
    by = {(cell.dataset, cell.contender): cell for cell in cells}
    ratios = {f"{dataset}: isthmus speed / rclone speed":
              by[(dataset, "rclone")].seconds / by[(dataset, "isthmus")].seconds
              for dataset in ("large", "small") if (dataset, "isthmus") in by}
    print()
    for name, value in ratios.items():
        print(f"  {name:<40} {value:6.2f}")
    print(f"\nIsthmus resident memory at the peak of the tasks: "
          f"{results['peak_kib'] / 1024:.1f} MiB")
    return {"cells": [asdict(cell) for cell in cells], "ratios": ratios,
            "peak_kib": results["peak_kib"], "load_before": results["load_before"],
            "load_after": results["load_after"], "large_size": args.large_size,
            "small_count": args.small_count, "small_size": args.small_size}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return dataset_arguments(__doc__, task_timeout=3600).parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("rclone") is None:
        print("rclone is needed (apt-get install -y rclone)", file=sys.stderr)
        return 2
    return run_benchmark(lambda resources: report(run(args, resources), args), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
