"""Running the ``ogevm`` command as a user does: a real process, stopped like Ctrl-C would."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rpc(port: int, method: str, *params) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["result"]


@contextmanager
def running_node(command: Sequence[str], cwd: Path, env: dict, timeout: float = 60.0,
                 options: Sequence[str] = ()) -> Iterator[int]:
    """Start ``command node --in-memory [options]`` on a free port and yield the port once it
    answers; afterwards stop it with SIGTERM and check that it exited cleanly."""
    port = free_port()
    node = subprocess.Popen([*command, "node", "--in-memory", "--port", str(port), "--sim-workers", "0", *options],
                            cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if node.poll() is not None:
                raise AssertionError(f"the node exited with {node.returncode}:\n{node.stdout.read()}")
            try:
                rpc(port, "eth_chainId")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the node did not answer within {timeout} s") from None
                time.sleep(0.1)
        yield port
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
        output = node.communicate(timeout=30)[0]
    assert node.returncode == 0, output
