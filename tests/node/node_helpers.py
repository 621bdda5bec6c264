"""Helpers of the node tests: real ``python -m ogevm.cli node`` subprocesses on free loopback
ports, raw JSON-RPC to them, locally signed transactions, fixture artifacts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
CHAIN_ID = 31337
#: The first dev accounts (anvil / Hardhat mnemonic); index 0 is also used by the node itself.
DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JsonRpcError(Exception):
    def __init__(self, error: dict) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code, self.message, self.data = error.get("code"), error.get("message"), error.get("data")


class NodeProcess:
    """One ``ogevm node`` subprocess. ``start`` waits until it answers JSON-RPC."""

    def __init__(self, log_path: Path, *, data_dir: Path | None = None, block_time: float = 0.0,
                 extra: tuple[str, ...] = ()) -> None:
        self.log_path = log_path
        self.data_dir = data_dir
        self.block_time = block_time
        self.extra = extra
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._ids = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "NodeProcess":
        self.port = free_port()
        storage = ["--data-dir", str(self.data_dir)] if self.data_dir is not None else ["--in-memory"]
        command = [sys.executable, "-m", "ogevm.cli", "node", "--host", "127.0.0.1", "--port", str(self.port),
                   "--block-time", str(self.block_time), *storage, *self.extra]
        env = {**os.environ, "XDG_DATA_HOME": str(self.log_path.parent / "xdg")}  # never the user's data dir
        log = open(self.log_path, "ab")
        log.write(f"\n$ {' '.join(command)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.rpc("eth_chainId") == hex(CHAIN_ID):
                    return self
            except (OSError, urllib.error.URLError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"node did not answer within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (the crash the durability tests need)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it does not exit in 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    # --- JSON-RPC ---------------------------------------------------------------------
    def post(self, body: bytes, timeout: float = 30.0) -> tuple[int, Any]:
        """POST raw bytes; returns (HTTP status, decoded JSON body)."""
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def call(self, method: str, *params: Any) -> dict:
        """The whole JSON-RPC answer object of one call."""
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": list(params)})
        return self.post(body.encode())[1]

    def rpc(self, method: str, *params: Any) -> Any:
        """``result`` of one call; raises JsonRpcError with the error object."""
        answer = self.call(method, *params)
        if "error" in answer:
            raise JsonRpcError(answer["error"])
        return answer["result"]

    def wait_receipt(self, tx_hash: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise AssertionError(f"no receipt for {tx_hash} after {timeout} s; "
                                     f"status {self.rpc('og_getTransactionStatus', tx_hash)}")
            time.sleep(0.02)


def sign(key: str, nonce: int, to: str | None = None, data: bytes = b"", *, value: int = 0, gas: int = 300_000,
         max_fee: int = 10 * 10**9, tip: int = 10**9, chain_id: int = CHAIN_ID) -> tuple[str, str]:
    """(raw tx hex, tx hash hex) of an EIP-1559 transaction signed locally."""
    from eth_account import Account
    from eth_utils import to_checksum_address

    tx = {"type": 2, "chainId": chain_id, "nonce": nonce, "value": value, "data": data, "gas": gas,
          "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
    if to is not None:
        tx["to"] = to_checksum_address(to)
    signed = Account.sign_transaction(tx, key)
    return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()


def address_of(key: str) -> str:
    from eth_account import Account

    return Account.from_key(key).address


def artifact(name: str) -> dict:
    return json.loads((FIXTURES / "contracts" / f"{name}.json").read_text())


def model_bytes(name: str) -> bytes:
    return (FIXTURES / "models" / f"{name}.onnx").read_bytes()


def new_key() -> str:
    return "0x" + os.urandom(32).hex()


def fund(target: NodeProcess, eth: int = 100) -> str:
    """A fresh account funded with ``eth`` ETH by dev account 0 (through eth_sendTransaction)."""
    key = new_key()
    funder = address_of(DEV_KEYS[0])
    tx_hash = target.rpc("eth_sendTransaction", {"from": funder, "to": address_of(key), "value": hex(eth * 10**18)})
    assert target.wait_receipt(tx_hash)["status"] == "0x1"
    return key


def web3_for(node: NodeProcess):
    """A web3.py client of ``node`` over HTTP (long timeout: the machine may be busy)."""
    from web3 import Web3

    return Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
