"""A real browser on a real Jupyter server: what a learner sees, asserted.

``lab`` (JupyterLab) and ``notebook7`` (Notebook 7) are module fixtures: each starts the
server from this interpreter's environment on a free port with a random token, fresh
settings, workspaces and runtime folders (the news popup off), in a temporary folder that
tests fill with notebooks; kernels get the repository on ``PYTHONPATH``. ``browser`` is
Debian's chromium driven by playwright (never ``playwright install``), per module: while
playwright's sync API runs, an event loop runs on the main thread and ``asyncio.run`` in
other tests would fail. Everything skips when chromium, playwright or the server is missing.

Screenshots go to ``$DLAB_SCREENSHOTS`` (default ``/tmp/dlab-screens``): look at them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("DLAB_SCREENSHOTS", "/tmp/dlab-screens"))
# A loaded 2-core machine starts a server in 5-15 s and a kernel in a few more.
SERVER_START = 90.0
KERNEL_IDLE = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, condition: Callable[[], Any], timeout: float, every: float = 0.25) -> Any:
    """Poll ``condition`` until it returns something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(every)


class JupyterServer:
    """A Jupyter server process serving ``root``; ``url(path)`` adds the token."""

    def __init__(self, app: str, root: Path, home: Path) -> None:
        self.app = app
        self.root = root
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        settings = home / "settings"
        news_off = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        news_off.parent.mkdir(parents=True)
        news_off.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        paths = [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(paths),
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        )
        app_class = "LabApp" if app == "jupyterlab" else "JupyterNotebookApp"
        self.log = (home / "server.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", app, "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             "--ServerApp.port_retries=0", "--allow-root", f"--IdentityProvider.token={self.token}",
             f"--{app_class}.expose_app_in_browser=True"],
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for(f"{app} to answer on port {self.port}", self._up, SERVER_START, every=0.5)

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.app} exited with {self.process.returncode}: see {self.log.name}")
        try:
            self.api("status")
        except (OSError, urllib.error.URLError):
            return False
        return True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}?token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.url(f"api/{path}"), method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str) -> str:
        if self.app == "jupyterlab":  # reset: not the tabs an earlier test left open
            return self.url(f"lab/tree/{name}") + "&reset"
        return self.url(f"notebooks/{name}")

    def kernel_of(self, name: str) -> dict[str, Any] | None:
        for session in self.api("sessions"):
            if session.get("path") == name and session.get("kernel"):
                return dict(session["kernel"])
        return None

    def wait_idle(self, name: str, quiet: float = 1.5, timeout: float = KERNEL_IDLE) -> dict[str, Any]:
        """Wait until the notebook's kernel has been idle for ``quiet`` seconds in a row (a Run
        All sent while the front end still restarts its first kernel is lost)."""
        since: list[float] = []

        def idle() -> dict[str, Any] | None:
            kernel = self.kernel_of(name)
            if kernel is None or kernel.get("execution_state") != "idle":
                since.clear()
                return None
            if not since:
                since.append(time.monotonic())
            return kernel if time.monotonic() - since[0] >= quiet else None

        return dict(wait_for(f"the kernel of {name} to be idle", idle, timeout))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _server(app: str) -> Iterator[JupyterServer]:
    pytest.importorskip(app)
    home = Path(tempfile.mkdtemp(prefix=f"dlab-{app}-"))
    root = home / "notebooks"
    root.mkdir()
    server = JupyterServer(app, root, home)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def lab(browser: Any) -> Iterator[JupyterServer]:
    """JupyterLab, serving an empty temporary folder."""
    yield from _server("jupyterlab")


@pytest.fixture(scope="module")
def notebook7(browser: Any) -> Iterator[JupyterServer]:
    """Notebook 7, serving an empty temporary folder."""
    yield from _server("notebook")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless chromium under playwright."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Any, name: str, locator: Any = None) -> Path:
    """Save the window as the learner sees it (with ``locator`` scrolled to its top). The
    window, not the element or ``full_page``: JupyterLab scrolls inside its own panel."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if locator is not None:
        locator.evaluate("(element) => element.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(path))
    return path


RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"


def start_run_all(page: Any, server: JupyterServer | None = None, name: str | None = None) -> None:
    """Run All, without waiting for it: the command's promise settles only when every cell has
    run, and never if JupyterLab lost the request (FACTS.md), which would hang the test with no
    time limit. Callers wait for what Run All should show, each wait with its own limit. Given
    the server and the notebook, it also checks that the kernel got the request, and sends it
    once more if not."""
    before = server.kernel_of(name) if server is not None and name is not None else None
    page.evaluate(RUN_ALL)
    if server is None or name is None or before is None:
        return

    def reached() -> bool:
        kernel = server.kernel_of(name) or {}
        return kernel.get("execution_state") == "busy" or kernel.get("last_activity") != before.get("last_activity")

    try:
        wait_for(f"Run All of {name} to reach its kernel", reached, 20)
    except AssertionError:
        screenshot(page, f"run-all-lost-{name}")
        page.evaluate(RUN_ALL)
