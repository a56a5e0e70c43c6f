"""`make lab`, the README's first command: JupyterLab from .venv, serving the repository, at the
first tutorial, whose URL it prints first (with the token)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIRST = "notebooks/tutorials/01-hello-workflow.ipynb"

pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or not (REPO / ".venv" / "bin" / "jupyter").exists(),
    reason="needs make and a .venv with JupyterLab (make setup)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:  # not listening yet
        return 0


def test_make_lab_serves_the_first_tutorial_at_the_url_it_prints() -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # no browser is opened without one
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"PORT={port}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"make lab ended before printing its URL (exit {proc.poll()})"
            found = re.search(r"durable-lab: open (http://\S+)", line)
            url = found.group(1) if found else None
        assert url is not None, "make lab printed no URL within 2 minutes"
        assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/{FIRST}?token=")
        token = url.rsplit("token=", 1)[1]
        base = f"http://127.0.0.1:{port}"
        while _get(f"{base}/api/status?token={token}") != 200:
            assert time.monotonic() < deadline, "JupyterLab did not answer within 2 minutes"
            assert proc.poll() is None, "JupyterLab exited"
            time.sleep(0.5)
        # The notebook the URL names is in the server's root (the repository), and the page loads.
        assert _get(f"{base}/api/contents/{FIRST}?content=0&token={token}") == 200
        assert _get(url) == 200
        assert _get(f"{base}/api/status") == 403, "the server must want its token"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_make_lab_refuses_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            ["make", "--no-print-directory", "lab", f"PORT={port}"],
            cwd=REPO, env={k: v for k, v in os.environ.items() if k != "DISPLAY"},
            capture_output=True, text=True, timeout=120,
        )
    assert done.returncode != 0
    assert "already in use" in (done.stdout + done.stderr)
