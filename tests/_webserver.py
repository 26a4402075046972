"""A real ``chachaml ui`` server process for the web tests, and a tiny HTTP client for it."""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

START_TIMEOUT_S = 60.0  # a loaded CI machine can be slow to start Python; this is only a deadline


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        doc = self.json()
        assert set(doc) == {"error"}, doc
        assert isinstance(doc["error"]["type"], str) and doc["error"]["message"], doc
        return doc["error"]  # type: ignore[no-any-return]


@dataclass
class Server:
    """``chachaml ui --port 0 --no-browser`` over ``store``, read from its first stdout line."""

    store: str
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    host: str = "127.0.0.1"
    port: int = 0
    first_line: str = ""

    def start(self) -> Server:
        env = dict(os.environ)
        env.pop("CHACHAML_STORE", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chachaml",
                "ui",
                "--store",
                self.store,
                "--port",
                "0",
                "--no-browser",
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
        try:
            self.first_line = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            self.stop()
            raise AssertionError("the server printed nothing") from None
        prefix = "chachaml UI at http://"
        assert self.first_line.startswith(prefix), (
            self.first_line,
            self.proc.stderr.read() if self.proc.poll() is not None else "",
        )  # type: ignore[union-attr]
        hostport = self.first_line[len(prefix) :].strip().rstrip("/")
        self.host, _, port = hostport.rpartition(":")
        self.port = int(port)
        return self

    def stop(self) -> int:
        """Ctrl-C the server and return its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        """One request; a dict/list ``body`` is sent as JSON, ``raw`` as it is."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        hdrs = dict(headers or {})
        data: bytes | None = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()
