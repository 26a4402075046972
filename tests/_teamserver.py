"""Team servers for the tests: in-process (a real HTTP server on 127.0.0.1 in a thread) for the
conformance suite, and real ``chachaml server`` processes for everything about the server."""

from __future__ import annotations

import io
import os
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0  # a deadline for a loaded machine, never a timing assertion


class InProcessServer:
    """``TeamApp`` over a store, served by the stdlib server in a thread (port 0)."""

    def __init__(
        self,
        store_target: str,
        tokens: dict[str, tuple[str, str]] | None = None,
        *,
        check_alerts: bool = True,
    ) -> None:
        from chachaml.client import Client
        from chachaml.store import open_store
        from chachaml.web.app import create_app
        from chachaml.web.serve import make_server
        from chachaml.web.server import AttributedStore, TeamApp

        self.store = open_store(store_target)
        self.log = io.StringIO()
        app = TeamApp(
            create_app(Client(AttributedStore(self.store))),
            tokens,
            access_log=self.log,
            check_alerts=check_alerts,
        )
        self.server = make_server(app, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        self.store.close()


@dataclass
class ServerProcess:
    """``python -m chachaml server`` over ``store``; the URL read from its first stdout line."""

    store: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    first_line: str = ""

    def start(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("CHACHAML_STORE", "CHACHAML_TOKEN")}
        env.update(self.env)
        cmd = [sys.executable, "-m", "chachaml", "server", "--store", self.store,
               "--port", str(self.port), *self.args]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
        try:
            self.first_line = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            self.stop()
            raise AssertionError("the server printed nothing") from None
        if not self.first_line.startswith("chachaml UI at http://"):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"unexpected first line {self.first_line!r}; stderr: {err}")
        self.url = self.first_line.split(" at ", 1)[1].strip().rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal the server and wait; returns (exit code, stderr)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        err = self.proc.stderr.read() if self.proc.stderr else ""
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.proc.stderr:
            self.proc.stderr.close()
        return self.proc.returncode, err


def write_tokens(path: Path, **roles: tuple[str, str]) -> dict[str, str]:
    """A tokens file: name -> (role, token); returns name -> token."""
    path.write_text("".join(f"{n} {r} {t}\n" for n, (r, t) in roles.items()), encoding="utf-8")
    return {n: t for n, (_, t) in roles.items()}


def request(url: str, method: str = "GET", body: Any = None, token: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    """One HTTP request; returns (status, parsed JSON or raw bytes)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=START_TIMEOUT_S)
    hdrs = dict(headers or {})
    data: bytes | None = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw


class ReplyDropper:
    """A real TCP proxy to a server that loses the reply of the first ``log_batch`` it sees
    (the server applied it; the client never hears so), then turns connections away until
    ``resume()``: the network failure that makes a sender resend a batch."""

    def __init__(self, upstream_port: int) -> None:
        import socket

        self.upstream_port = upstream_port
        self.dropped = threading.Event()
        self._resume = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def resume(self) -> None:
        self._resume.set()

    def close(self) -> None:
        self._closed = True
        self.sock.close()

    def _accept(self) -> None:
        import socket

        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.dropped.is_set() and not self._resume.is_set():
                client.close()  # the "network" is down
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            armed = threading.Event()
            threading.Thread(target=self._up, args=(client, upstream, armed), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, armed), daemon=True).start()

    def _up(self, client: Any, upstream: Any, armed: threading.Event) -> None:
        try:
            while data := client.recv(1 << 16):
                if not self.dropped.is_set() and b"POST /api/v1/store/log_batch" in data:
                    armed.set()
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()

    def _down(self, upstream: Any, client: Any, armed: threading.Event) -> None:
        try:
            while data := upstream.recv(1 << 16):
                if armed.is_set() and not self.dropped.is_set():
                    self.dropped.set()  # the reply of an applied batch: lost
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()
