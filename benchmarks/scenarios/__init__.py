"""One module per scenario, run by ``ogevm bench`` in this order.

Each module has ``TITLE``, ``SIZES`` (``smoke``, ``quick`` and ``full`` configurations),
``run(config, reporter) -> dict`` (``results``, ``targets``, ``table`` and, when a target
is not met, ``profile``) and ``plot(result, path)``.
"""

SCENARIOS = (
    "block_building",
    "end_to_end",
    "model_sweep",
    "llm_point",
    "executor_scaling",
    "precompile_overhead",
    "mempool_simulation",
    "validator",
    "verification",
    "ray_executor",
    "gas_calibration",
    "rpc_burst",
)
