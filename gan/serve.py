"""Serving TensorBoard on this machine only, for the tests and the README's screenshot: start it on
a free localhost port over a folder of runs, wait until it answers, read its HTTP API, stop it."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
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
