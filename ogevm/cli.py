"""ogevm runs a local EVM chain whose contracts call ONNX models through the inference
precompile at 0x…F4 (the OpenGradient interface), with PIPE running the models off the
block-building path. Start with `ogevm demo`, or `ogevm node` (JSON-RPC on 127.0.0.1:8545,
like anvil) and `ogevm compile` for your contracts; `ogevm COMMAND --help` for the details.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.markup import escape

from ogevm.errors import OgevmError

#: Line width when the output is not a terminal: wide enough that no table cell wraps.
NON_TERMINAL_WIDTH = 240


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/ogevm`` (``~/.local/share/ogevm``), per user."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "ogevm"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ogevm`` and its subcommands."""
    parser = argparse.ArgumentParser(prog="ogevm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_node(commands)
    _add_compile(commands)
    _add_models(commands)
    demo = commands.add_parser("demo", help="run SolidML example contracts through PIPE on an in-process chain",
                               description="Start an in-memory node, send a burst of inference transactions "
                                           "through PIPE and have a second node with no models validate every "
                                           "block.")
    demo.add_argument("--serve", type=int, nargs="?", const=8545, default=None, metavar="PORT",
                      help="afterwards keep the node up on 127.0.0.1:PORT (JSON-RPC, WebSocket, the explorer "
                           "page) until Ctrl-C (PORT default: 8545; default: exit after the demo)")
    bench = commands.add_parser("bench", help="run the benchmark scenarios (from a checkout) and write JSON + plots",
                                description="Run the benchmark suite of an ogevm checkout.")
    bench.add_argument("--quick", action="store_true", help="small sizes: about 5 minutes on 2 cores")
    bench.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="output folder (default: benchmarks/results/latest)")
    bench.add_argument("--scenario", action="extend", nargs="+", metavar="NAME", dest="scenarios",
                       help="run only these scenarios (names, repeatable; default: all)")
    return parser


def _add_node(commands) -> None:
    node = commands.add_parser("node", help="run a local JSON-RPC dev node (like anvil) with PIPE inside",
                               description="A JSON-RPC dev node: chain id 31337, ten funded accounts, the "
                                           "inference precompile at 0x…F4, transactions through PIPE.")
    node.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    node.add_argument("--port", type=int, default=8545, help="port to listen on (default: %(default)s)")
    node.add_argument("--data-dir", type=Path, default=default_data_dir(), metavar="DIR",
                      help="where the chain, models and ZKML circuits are kept (default: %(default)s)")
    node.add_argument("--in-memory", action="store_true", help="keep nothing on disk (ignores --data-dir)")
    node.add_argument("--block-time", type=float, default=0.0, metavar="SECONDS",
                      help="seconds between blocks; 0 = automine (default: %(default)s)")
    node.add_argument("--models", type=Path, metavar="DIR",
                      help="a folder of .onnx files to add at start; language models (byte-window-v1 files) "
                           "are told apart by their metadata")
    node.add_argument("--load-state", type=Path, metavar="FILE",
                      help="set the accounts of an anvil_dumpState document (JSON, gzip or plain) at start")
    node.add_argument("--dump-state", type=Path, metavar="FILE",
                      help="write the head state as anvil_dumpState JSON when the node stops")
    node.add_argument("--workers", type=int, default=2, metavar="N",
                      help="inference workers: threads, or Ray actors (default: %(default)s)")
    node.add_argument("--executor", choices=("threads", "ray"), default="threads",
                      help="where inference runs: this process's threads, or Ray actors (the ray extra) "
                           "(default: %(default)s)")
    node.add_argument("--sim-workers", type=int, metavar="N",
                      help="simulation worker processes (Ray actors with --executor ray); "
                           "0 = simulate in the node process (default: one per core beyond the first)")
    node.add_argument("--ray-address", default="auto", metavar="ADDRESS",
                      help="Ray cluster to join (host:6379, ray://host:10001); auto starts a local one "
                           "(default: %(default)s)")
    node.add_argument("--ray-num-cpus", type=float, default=1.0, metavar="N",
                      help="CPUs each Ray worker reserves (default: %(default)s)")
    node.add_argument("--ray-num-gpus", type=float, default=0.0, metavar="N",
                      help="GPUs each Ray worker reserves; models then run on onnxruntime's CUDA provider "
                           "(default: %(default)s)")


def _add_compile(commands) -> None:
    from ogevm.compile import pinned_solc_version

    version = pinned_solc_version()
    build = commands.add_parser(
        "compile", help="compile Solidity contracts into Hardhat-style JSON artifacts",
        description=f"Compile contracts with solc-js {version} (optimizer, viaIR, cancun). Import the "
                    "inference interface as \"@ogevm/OGInference.sol\" and the helper library as "
                    "\"@ogevm/SolidML.sol\" (or \"@ogevm/contracts/...\", the npm package's path). "
                    "Sources are named by their path relative to the current folder. Needs Node.js and "
                    f"`npm install --save-dev solc@{version}`.")
    build.add_argument("files", nargs="+", type=Path, metavar="FILE", help="Solidity source files")
    build.add_argument("--out", type=Path, default=Path("artifacts"), metavar="DIR",
                       help="where artifacts go, as DIR/<source>/<Contract>.json (default: %(default)s)")


def _add_models(commands) -> None:
    description = "Add and list the models of a data directory, or of a running node with --rpc."
    models = commands.add_parser("models", help="manage the models of a data directory or a running node",
                                 description=description)
    _model_target(models)
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="validate and store an ONNX model or a language model",
                             description="Validate an ONNX model (its cost must be bounded by its input "
                                         "shapes) and store it under its CID; with --llm, a language model "
                                         "file that LLM calls may name by CID or by its name.")
    add.add_argument("file", type=Path, metavar="FILE", help="the .onnx file (or, with --llm, a model folder)")
    add.add_argument("--llm", action="store_true",
                     help="FILE is a language model: a byte-window-v1 ONNX file (its metadata gives its name, "
                          "window, context and output limits), or an onnxruntime-genai model folder (named "
                          "after the folder; data directory only)")
    listing = actions.add_parser("list", help="list stored models and language models",
                                 description="List stored models, then the language models (the fixture "
                                             "tiny_chat and those added).")
    for parser in (add, listing):
        _model_target(parser)
    # an option given at either level is kept: neither parser writes a default over it (SUPPRESS)
    models.set_defaults(data_dir=default_data_dir(), rpc=None)


def _model_target(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--rpc``, accepted before and after the action."""
    parser.add_argument("--data-dir", type=Path, metavar="DIR", default=argparse.SUPPRESS,
                        help=f"the data directory of a stopped node (default: {default_data_dir()})")
    parser.add_argument("--rpc", metavar="URL", default=argparse.SUPPRESS,
                        help="talk to a running node instead (e.g. http://127.0.0.1:8545)")


def main(argv: list[str] | None = None) -> int:
    console, errors = _console(), _console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        with _private_tempdir():
            return _run(args, console, errors)
    except (OgevmError, OSError) as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}")
        return 1
    except KeyboardInterrupt:  # Ctrl-C: stop quietly, with the shell's status for SIGINT
        return 130


def _run(args: argparse.Namespace, console: Console, errors: Console) -> int:
    if args.command == "demo":
        from ogevm.demo import run_demo

        run_demo(console, serve_port=args.serve)
    elif args.command == "node":
        from ogevm.node.run import run_node

        run_node(args, console)
    elif args.command == "compile":
        _compile(args, console, errors)
    elif args.command == "models":
        _models(args, console)
    elif args.command == "bench":
        from ogevm.bench import run_bench

        return run_bench(quick=args.quick, out=args.out, scenarios=args.scenarios, console=console)
    return 0


def _console(stderr: bool = False) -> Console:
    """A rich console; when its output is not a terminal, lines are never wrapped, so a log or
    a pipe keeps every value (address, key, CID) whole."""
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, soft_wrap=True, width=NON_TERMINAL_WIDTH)


@contextmanager
def _private_tempdir() -> Iterator[None]:
    """Make a folder of the command's own the default for temporary files of this process,
    and remove it on exit (Ctrl-C included).

    An in-memory node (and the demo's) keeps its ZKML circuits in a temporary folder that
    nothing else would remove. Other processes (Ray workers) keep their own default.
    """
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="ogevm-", ignore_cleanup_errors=True) as folder:
        tempfile.tempdir = folder
        try:
            yield
        finally:
            tempfile.tempdir = saved


def _compile(args: argparse.Namespace, console: Console, errors: Console) -> None:
    from ogevm.compile import compile_files, write_artifacts

    compilation = compile_files(args.files, Path.cwd())
    for warning in compilation.warnings:
        errors.print(escape(warning.rstrip()), highlight=False)
    for path in write_artifacts(compilation.artifacts, args.out):
        console.print(f"wrote {path}", highlight=False)


def _models(args: argparse.Namespace, console: Console) -> None:
    """``models add`` / ``models list`` on a data directory, or on a running node (``--rpc``)."""
    from ogevm.models.store import ModelStore

    store = None if args.rpc else ModelStore(args.data_dir / "models")
    if args.action == "list":
        _list_models(args.rpc, store, console)
    elif args.llm:
        console.print(_language_model_line(_add_language_model(args.file, args.rpc, store)), highlight=False)
    elif store is None:
        console.print(_rpc(args.rpc, "og_addModel", "0x" + args.file.read_bytes().hex()), highlight=False)
    else:
        info = store.add_file(args.file)
        console.print(f"{info.cid}  {info.size} bytes  gas/sample {info.gas_per_sample}", highlight=False)


def _list_models(rpc: str | None, store, console: Console) -> None:
    """One line per model, then one per language model, of a node (``rpc``) or a ``store``."""
    from ogevm.node.rpc.og import language_model_json, language_models

    if store is None:
        listing, llms = _rpc(rpc, "og_listModels"), _rpc(rpc, "og_listLanguageModels")
    else:
        listing = [{"cid": i.cid, "size": i.size, "gasPerSample": i.gas_per_sample,
                    "inputs": [{"name": s.name, "type": s.type} for s in i.inputs]} for i in store.values()]
        llms = [language_model_json(model) for model in language_models(store)]
    for model in listing:
        inputs = ", ".join(f"{s['name']}:{s['type']}" for s in model["inputs"])
        console.print(f"{model['cid']}  {model['size']} bytes  gas/sample {model['gasPerSample']}  inputs {inputs}",
                      highlight=False)
    for model in llms:
        console.print(_language_model_line(model), highlight=False)


def _add_language_model(path: Path, rpc: str | None, store) -> dict:
    """``models add --llm``: a byte-window-v1 file, to a data directory or a running node; or an
    onnxruntime-genai model folder, to a data directory (a node loads it when it starts)."""
    from ogevm.node.rpc.og import language_model_json

    if path.is_dir():
        if store is None:
            raise OgevmError(f"{path} is a folder: an onnxruntime-genai model folder is added to a data "
                             "directory (`ogevm models --data-dir DIR add --llm FOLDER`), and a node on it loads "
                             "the model when it starts; over --rpc only byte-window-v1 files can be sent")
        return language_model_json(store.add_llm_folder(path))
    data = path.read_bytes()
    if store is None:
        return _rpc(rpc, "og_addLanguageModel", "0x" + data.hex())
    return language_model_json(store.add_llm(data))


def _language_model_line(model: dict) -> str:
    """One language model of ``og_listLanguageModels`` as a line of ``models list``."""
    return (f"{model['cid']}  language model {model['name']}  context {model['contextLength']} tokens  "
            f"max output {model['maxOutputTokens']} tokens  gas/token {model['costPerToken']}")


def _rpc(url: str, method: str, *params):
    """The result of one JSON-RPC call to a running node; its error as :class:`OgevmError`."""
    from ogevm.client.rpc import NodeUnavailable, RpcCallError, RpcConnection

    try:
        return RpcConnection(url).rpc(method, *params)
    except NodeUnavailable as exc:
        raise OgevmError(f"{exc.reason}; is `ogevm node` running there?") from exc
    except RpcCallError as exc:
        raise OgevmError(exc.message) from exc


if __name__ == "__main__":
    sys.exit(main())
