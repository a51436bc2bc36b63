"""A real S3 server for the tests: moto in server mode on loopback, in a subprocess.

It checks signatures and IAM policies from its fourth request on (``INITIAL_NO_AUTH_ACTION_COUNT``),
so keys it never issued are refused as real S3 refuses them; the first three requests make
the one IAM user (allowed everything) whose keys the tests use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from tests.live import free_port

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
SETUP_REQUESTS = 3


@dataclass
class MotoS3:
    endpoint_url: str
    key_id: str
    secret_key: str
    process: subprocess.Popen[bytes]

    def client(self, key_id: str | None = None, secret_key: str | None = None) -> Any:
        """A plain boto3 client, as any S3 user has (not the connector's)."""
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
            aws_access_key_id=key_id or self.key_id,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(s3={"addressing_style": "path"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))

    def new_bucket(self, prefix: str = "bucket") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        client.close()
        return name

    def rclone_env(self, remote: str = "moto") -> dict[str, str]:
        """The environment that makes ``remote:`` an rclone remote on this server: this
        remote's settings only (no config file, no AWS_* of the machine: a CA bundle, a
        profile)."""
        clean = {key: value for key, value in os.environ.items()
                 if not key.startswith(("AWS_", "RCLONE_"))}
        name = f"RCLONE_CONFIG_{remote.upper()}_"
        return {**clean, "RCLONE_CONFIG": os.devnull, f"{name}TYPE": "s3",
                f"{name}PROVIDER": "Other", f"{name}ENDPOINT": self.endpoint_url,
                f"{name}ACCESS_KEY_ID": self.key_id, f"{name}SECRET_ACCESS_KEY": self.secret_key,
                f"{name}REGION": "us-east-1", f"{name}FORCE_PATH_STYLE": "true"}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# How a caller that keeps track of its processes starts one: argv, environment, log file.
Spawn = Callable[[list[str], dict[str, str], Path], "subprocess.Popen[bytes]"]


def _popen(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)


def start_moto(log: Path, spawn: Spawn = _popen) -> MotoS3:
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
    process = spawn([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)], env, log)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            # The dashboard answers without counting as an action.
            requests.get(f"{endpoint}/moto-api/", timeout=2)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto_server did not start: {log.read_text()}") from None
            time.sleep(0.1)
    iam = boto3.session.Session().client(
        "iam", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="isthmus-tests")
    key = iam.create_access_key(UserName="isthmus-tests")["AccessKey"]
    iam.put_user_policy(UserName="isthmus-tests", PolicyName="everything",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                            {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    iam.close()
    return MotoS3(endpoint, key["AccessKeyId"], key["SecretAccessKey"], process)
