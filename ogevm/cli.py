"""The ``ogevm`` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from ogevm.errors import OgevmError


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/ogevm`` (``~/.local/share/ogevm``), per user."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "ogevm"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ogevm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run SolidML example contracts through PIPE on an in-process chain")
    node = commands.add_parser("node", help="run a local JSON-RPC dev node (like anvil) with PIPE inside")
    node.add_argument("--host", default="127.0.0.1")
    node.add_argument("--port", type=int, default=8545)
    node.add_argument("--data-dir", type=Path, default=default_data_dir())
    node.add_argument("--in-memory", action="store_true", help="keep nothing on disk")
    node.add_argument("--block-time", type=float, default=0.0, help="seconds between blocks; 0 = automine")
    node.add_argument("--models", type=Path, help="a folder of .onnx files to add at start")
    node.add_argument("--workers", type=int, default=2, help="inference workers (threads, or Ray actors)")
    node.add_argument("--executor", choices=("threads", "ray"), default="threads",
                      help="where inference runs: this process's threads, or Ray actors (the ray extra)")
    node.add_argument("--sim-workers", type=int, metavar="N",
                      help="simulation worker processes (Ray actors with --executor ray); "
                           "default one per core beyond the first, 0 = simulate in the node process")
    node.add_argument("--ray-address", default="auto", metavar="ADDRESS",
                      help="Ray cluster to join (host:6379, ray://host:10001); auto starts a local one")
    node.add_argument("--ray-num-cpus", type=float, default=1.0, help="CPUs each Ray worker reserves")
    node.add_argument("--ray-num-gpus", type=float, default=0.0,
                      help="GPUs each Ray worker reserves (models then run on onnxruntime's CUDA provider)")
    models = commands.add_parser("models", help="manage the models of a data directory or a running node")
    models.add_argument("--data-dir", type=Path, default=default_data_dir())
    models.add_argument("--rpc", metavar="URL", help="talk to a running node instead (e.g. http://127.0.0.1:8545)")
    model_commands = models.add_subparsers(dest="action", required=True)
    add = model_commands.add_parser("add", help="validate and store an ONNX model")
    add.add_argument("file", type=Path)
    model_commands.add_parser("list", help="list stored models")
    bench = commands.add_parser("bench", help="run the benchmark scenarios (from a checkout) and write JSON + plots")
    bench.add_argument("--quick", action="store_true", help="small sizes: about 5 minutes on 2 cores")
    bench.add_argument("--out", type=Path, default=None, help="output folder (default benchmarks/results/latest)")
    bench.add_argument("--scenario", action="extend", nargs="+", metavar="NAME", dest="scenarios",
                       help="run only these scenarios (names, repeatable); default: all")
    args = parser.parse_args(argv)
    console = Console()
    try:
        if args.command == "demo":
            from ogevm.demo import run_demo

            run_demo(console)
        elif args.command == "node":
            from ogevm.node.run import run_node

            run_node(args, console)
        elif args.command == "models":
            _models(args, console)
        elif args.command == "bench":
            from ogevm.bench import run_bench

            return run_bench(quick=args.quick, out=args.out, scenarios=args.scenarios, console=console)
    except (OgevmError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    return 0


def _models(args: argparse.Namespace, console: Console) -> None:
    if args.rpc:
        listing = _rpc_models(args)
    else:
        from ogevm.models.store import ModelStore

        store = ModelStore(args.data_dir / "models")
        if args.action == "add":
            info = store.add_file(args.file)
            console.print(f"{info.cid}  {info.size} bytes  gas/sample {info.gas_per_sample}", highlight=False)
            return
        listing = [{"cid": i.cid, "size": i.size, "gasPerSample": i.gas_per_sample,
                    "inputs": [{"name": s.name, "type": s.type} for s in i.inputs]} for i in store.values()]
    if args.action == "add":
        console.print(listing, highlight=False)
        return
    for model in listing:
        inputs = ", ".join(f"{s['name']}:{s['type']}" for s in model["inputs"])
        console.print(f"{model['cid']}  {model['size']} bytes  gas/sample {model['gasPerSample']}  inputs {inputs}",
                      highlight=False)


def _rpc_models(args: argparse.Namespace):
    """``og_addModel`` / ``og_listModels`` on a running node."""
    import json
    import urllib.request

    if args.action == "add":
        method, params = "og_addModel", ["0x" + args.file.read_bytes().hex()]
    else:
        method, params = "og_listModels", []
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(args.rpc, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise OgevmError(answer["error"]["message"])
    return answer["result"]


if __name__ == "__main__":
    sys.exit(main())
