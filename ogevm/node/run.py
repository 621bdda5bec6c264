"""``ogevm node``: start a dev node, print its accounts like anvil, serve until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from rich.console import Console

from ogevm.errors import OgevmError
from ogevm.node.node import DevNode, NodeConfig
from ogevm.node.params import ParamError
from ogevm.node.rpc import RpcMethods
from ogevm.node.server import RpcServer


def run_node(args: argparse.Namespace, console: Console) -> None:
    config = NodeConfig(data_dir=None if args.in_memory else args.data_dir, block_time=args.block_time,
                        models_dir=args.models, workers=args.workers, executor=args.executor,
                        ray_address=args.ray_address, ray_num_cpus=args.ray_num_cpus, ray_num_gpus=args.ray_num_gpus,
                        sim_workers=args.sim_workers)
    node = DevNode(config).start()
    if args.load_state is not None:
        try:
            node.load_state(args.load_state.read_bytes(), "--load-state")
        except (OSError, ParamError) as exc:
            node.stop()
            raise OgevmError(f"--load-state {args.load_state}: {exc}") from exc
    try:
        server = RpcServer(RpcMethods(node), args.host, args.port)
        _banner(node, config, console)
        asyncio.run(serve(server, console))
        if args.dump_state is not None:
            args.dump_state.write_text(json.dumps(node.dump_state(), indent=2, sort_keys=True))
            console.print(f"state written to {args.dump_state}", highlight=False)
    finally:
        node.stop()


async def serve(server: RpcServer, console: Console) -> None:
    """Serve ``server`` (JSON-RPC, WebSocket, the explorer) until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    console.print(f"Listening on http://{server.host}:{server.port} and ws://{server.host}:{server.port} "
                  f"(explorer: http://{server.host}:{server.port}/)", highlight=False)
    await stop.wait()
    console.print("stopping...")
    await server.stop()


def _banner(node: DevNode, config: NodeConfig, console: Console) -> None:
    chain = node.chain
    console.print("[bold]ogevm dev node[/bold] (PIPE inference: pool -> parallel executor -> replay builder)")
    console.print(f"Chain ID: {chain.chain.chain_id}   fork: {chain.base_vm_class.fork}   "
                  f"head: block {chain.head.block_number}")
    console.print(f"Storage: {config.data_dir or 'in memory'}   "
                  f"blocks: {'automine' if config.block_time == 0 else f'every {config.block_time}s'}")
    console.print("\nAvailable Accounts\n==================")
    for i, account in enumerate(chain.accounts):
        console.print(f"({i}) {account.checksum_address} (10000 ETH)", highlight=False)
    console.print("\nPrivate Keys\n==================")
    for i, account in enumerate(chain.accounts):
        console.print(f"({i}) 0x{account.private_key.to_bytes().hex()}", highlight=False)
    console.print(f"\nInference precompile: 0x{'0' * 38}f4   node registry: 0x{'0' * 36}f4f4")
    where = "threads" if config.executor == "threads" else f"Ray actors ({config.ray_address})"
    console.print(f"\nInference workers: {config.workers} {where}")
    simulators = config.simulation_workers()
    kind = "processes" if config.executor == "threads" else "Ray actors"
    console.print(f"Simulation workers: {f'{simulators} {kind}' if simulators else 'none (the node process)'}")
    for identity in node.identities:
        console.print(f"  node 0x{identity.node.hex()}   TEE enclave 0x{identity.enclave.hex()}", highlight=False)
    console.print("  [yellow]TEE enclaves are SIMULATED: no enclave hardware; attested by the development "
                  "vendor root[/yellow]")
    console.print(f"Models: {len(chain.models)} loaded, language models: {len(chain.models.llms.models())}" +
                  (f" ({len(chain.models.skipped)} files skipped)" if chain.models.skipped else ""))
