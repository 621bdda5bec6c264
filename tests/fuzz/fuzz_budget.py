"""How long the fuzzers run: a bounded number of cases in the normal test run, as many as
``OGEVM_FUZZ_EXAMPLES`` says when it is set (``OGEVM_FUZZ_EXAMPLES=20000 pytest tests/fuzz -s``)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def examples(default: int) -> int:
    """The number of cases a fuzzer runs: ``default``, or ``OGEVM_FUZZ_EXAMPLES``."""
    return int(os.environ.get("OGEVM_FUZZ_EXAMPLES", default))


def fuzz_settings(default: int) -> settings:
    """Hypothesis settings of a fuzzer: ``examples(default)`` cases, no deadline (a shared
    machine is noisy); the bounded run is derandomized so a CI failure reproduces, a long
    run explores new cases each time."""
    return settings(max_examples=examples(default), deadline=None,
                    derandomize="OGEVM_FUZZ_EXAMPLES" not in os.environ,
                    suppress_health_check=list(HealthCheck), database=None)


def report(name: str, cases: int) -> None:
    """Print the count of cases a fuzzer ran (shown with ``pytest -s``)."""
    print(f"\nfuzz {name}: {cases} cases")


def precompile_outcome(computation, gas: int, logs: int | None = None) -> str:
    """``success``, ``revert`` (with a readable reason, never an internal error) or ``out of
    gas`` (all the gas, no data): the only ways a precompile call may end, within ``gas``.
    With ``logs``, a success emits exactly that many logs (a failure never emits any)."""
    from ogevm.abi.codec import decode_revert_reason

    used, output = computation.get_gas_used(), bytes(computation.output)
    assert 0 <= used <= gas
    if not computation.is_error:
        assert logs is None or len(computation.get_log_entries()) == logs
        return "success"
    if output:
        reason = decode_revert_reason(output)
        assert reason and not reason.startswith("internal error"), reason
        return "revert"
    assert used == gas, "only out of gas returns no data, and it uses all the gas"
    return "out of gas"
