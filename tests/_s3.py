"""A real S3 endpoint for tests: moto's server mode over HTTP on 127.0.0.1 (port 0).

One ``ThreadedMotoServer`` per test process, started on first use and stopped at exit; each test
gets its own bucket. Without moto the tests skip, except on CI (``CI`` set), where they FAIL:
object storage is then part of what CI must prove (common rules: a missing service never
silently passes).
"""

from __future__ import annotations

import atexit
import os
import uuid
from typing import Any

import pytest

_server: Any = None
_endpoint: str | None = None

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def endpoint() -> str:
    """The URL of the moto server (started on first call); skip or fail if it cannot start."""
    global _server, _endpoint
    if _endpoint is not None:
        return _endpoint
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - dev extra installed everywhere we test
        if os.environ.get("CI"):
            pytest.fail(f"moto[server] is required on CI for the S3 tests: {exc}")
        pytest.skip(f"moto[server] is not installed ({exc}); pip install -e '.[dev]'")
    try:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
    except Exception as exc:  # pragma: no cover
        if os.environ.get("CI"):
            pytest.fail(f"the moto S3 server could not start on 127.0.0.1: {exc}")
        pytest.skip(f"the moto S3 server could not start on 127.0.0.1: {exc}")
    _server = server
    _endpoint = f"http://{host}:{port}"
    atexit.register(server.stop)
    return _endpoint


def environ() -> dict[str, str]:
    """What a process needs to reach the moto server with boto3."""
    return {"AWS_ENDPOINT_URL": endpoint(), **CREDENTIALS}


def use_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point boto3 in this process at the moto server."""
    for key, value in environ().items():
        monkeypatch.setenv(key, value)


_client: Any = None
_bucket: str | None = None


def client() -> Any:
    """A boto3 S3 client on the moto server (for checks behind chachaml's back)."""
    global _client
    if _client is None:
        import boto3

        _client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint(),
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
    return _client


def new_bucket() -> str:
    """A fresh, empty bucket on the moto server; its name."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    client().create_bucket(Bucket=name)
    return name


def new_location() -> str:
    """A fresh, empty ``s3://bucket/prefix`` (one bucket per test process, a prefix per call)."""
    global _bucket
    if _bucket is None:
        _bucket = new_bucket()
    return f"s3://{_bucket}/{uuid.uuid4().hex[:12]}/artifacts"
