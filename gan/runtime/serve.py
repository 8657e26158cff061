"""Serving TensorBoard on this machine only, for the tests and the README's screenshot: start it on
a free localhost port over a folder of runs, wait until it answers, read its HTTP API, stop it.

``python -m gan.runtime.serve LOGDIR OUT.png [DASHBOARD]`` screenshots one dashboard (default
``custom_scalars``) with headless Chromium (Debian's ``chromium`` package), offline and sandboxed
from the user's profile (a fresh, temporary ``--user-data-dir``)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return int(s.getsockname()[1])


def tensorboard_command(logdir: str | Path, port: int) -> list[str]:
    """The venv's ``tensorboard`` over ``logdir``, bound to localhost (as ``make tensorboard``)."""
    return [str(Path(sys.executable).with_name("tensorboard")), "--logdir", str(logdir), "--host", LOCALHOST,
            "--port", str(port)]


def get_json(url: str, body: dict | None = None, timeout: float = 10.0) -> Any:
    """GET (or, with ``body``, POST as JSON) ``url`` and decode the JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read().decode())


@contextlib.contextmanager
def served_tensorboard(logdir: str | Path, port: int | None = None, ready_within: float = 120.0) -> Iterator[str]:
    """Run TensorBoard over ``logdir`` on localhost and yield its base URL once it lists its plugins;
    it is stopped (terminated, then killed) on the way out."""
    port = port or free_port()
    base = f"http://{LOCALHOST}:{port}"
    process = subprocess.Popen(tensorboard_command(logdir, port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + ready_within
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"tensorboard exited with status {process.returncode}: "
                                   f"{process.stderr.read().decode()[-2000:] if process.stderr else ''}")
            try:
                get_json(f"{base}/data/plugins_listing", timeout=2.0)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"tensorboard did not answer on {base} within {ready_within:.0f} s") from None
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")


def screenshot(url: str, out: str | Path, size: tuple[int, int] = (1400, 1000), wait_ms: int = 20000) -> Path:
    """A PNG of ``url`` as headless Chromium renders it after ``wait_ms`` of (virtual) time."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise RuntimeError("no chromium on PATH: apt-get install chromium")
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="gan-chromium-") as profile:
        subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                        f"--virtual-time-budget={wait_ms}", f"--screenshot={out}", url],
                       check=True, capture_output=True, timeout=300)
    return out


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3):
        print("usage: python -m gan.runtime.serve LOGDIR OUT.png [DASHBOARD (custom_scalars, timeseries, hparams...)]",
              file=sys.stderr)
        return 2
    logdir, out = args[0], args[1]
    dashboard = args[2] if len(args) == 3 else "custom_scalars"
    with served_tensorboard(logdir) as base:
        print(screenshot(f"{base}/#{dashboard}", out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
