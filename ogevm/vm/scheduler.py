"""Scheduled tasks: the genesis ``TaskScheduler`` and the system calls that run its tasks.

At the top of every block, after py-evm's own pre-processing and before the first
transaction, the inference forks run the block's due tasks (:func:`run_due_tasks`):

1. the due task ids are ``TaskScheduler.dueTasks(block.timestamp)`` on the state at that
   point (the parent's, as the scheduler's storage goes): at most ``MAX_TASKS_PER_BLOCK``,
   the most overdue first;
2. each task's ``run()`` is a message from the scheduler's address to the task's contract,
   with origin ``SYSTEM_ADDRESS``, gas price 0 and ``TASK_GAS_LIMIT`` gas: no transaction,
   no fee, no receipt, and no share of the block's gas;
3. its inference requests are identified by the pseudo transaction hash
   :func:`~ogevm.records.scheduled_call_hash` of (block number, task id);
4. its outcome goes back to the scheduler by ``recordRun(id, status, reason)``, a system
   call from ``SYSTEM_ADDRESS``. A revert or an exceptional halt undoes the task's call
   only; in REPLAY, a call that met a request with no result in the block's bundle is
   undone too and recorded ``Deferred`` (it stays due, so it runs in the next block).

Every step is a function of the state and the header (and, for deferral, of the bundle
the block commits to), so a builder and a validator that imports the block with py-evm's
``import_block`` run the same calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

from eth.abc import ComputationAPI, StateAPI
from eth.exceptions import InvalidInstruction, OutOfGas, Revert
from eth.vm.message import Message
from eth_typing import Address

from ogevm.abi.codec import decode_revert_reason
from ogevm.abi.contract import ContractInterface
from ogevm.constants import MAX_REASON_CHARS
from ogevm.errors import OgevmError
from ogevm.fixtures import fixture_contract
from ogevm.precompile.modes import ReplayProvider
from ogevm.records import scheduled_call_hash
from ogevm.vm.calls import execute_call
from ogevm.vm.tracing import ERROR_TEXT

#: The ``TaskScheduler`` system contract, deployed at genesis.
TASK_SCHEDULER_ADDRESS = Address(b"\x00" * 18 + b"\xf4\xf5")
#: The origin of every scheduled call and the only sender ``recordRun`` accepts (EIP-4788's).
SYSTEM_ADDRESS = Address(b"\xff" * 19 + b"\xfe")
#: Gas of one task's ``run()`` call (its inference included).
TASK_GAS_LIMIT = 1_000_000
#: Gas of the system calls to the scheduler itself (``dueTasks``, ``recordRun``).
SCHEDULER_CALL_GAS = 5_000_000
#: Storage slot of the scheduler's ``_active`` array (its length: the active tasks).
ACTIVE_TASKS_SLOT = 1
#: Fields of ``TaskScheduler.Task`` as ``getTask`` returns it.
_TASK_TARGET, _TASK_ACTIVE = 0, 8
#: What the scheduler calls on a task's contract: ``run()``.
RUN_CALLDATA = bytes.fromhex("c0406226")


class TaskStatus(IntEnum):
    """``TaskScheduler.Status``: the outcome of a task's last run."""

    PENDING = 0
    SUCCEEDED = 1
    REVERTED = 2
    OUT_OF_GAS = 3
    FAILED = 4
    DEFERRED = 5


@dataclass(frozen=True)
class TaskRun:
    """One task's call in a block, as the scheduler recorded it."""

    task_id: int
    call_hash: bytes
    status: TaskStatus
    reason: str
    gas_used: int


class SchedulerFailure(OgevmError):
    """The scheduler itself failed a system call: a broken genesis, never a task's fault."""


@lru_cache(maxsize=1)
def scheduler_interface() -> ContractInterface:
    return fixture_contract("TaskScheduler")


def scheduler_genesis_account() -> dict:
    """The scheduler's account in a genesis state: its runtime code and empty storage."""
    return {"balance": 0, "nonce": 1, "code": scheduler_interface().runtime_code, "storage": {}}


def due_tasks(state: StateAPI, timestamp: int) -> tuple[int, ...]:
    """The ids of the tasks a block with ``timestamp`` runs on ``state``, in order (none
    without a scheduler or with no active task: then no EVM call is made)."""
    if not state.get_code(TASK_SCHEDULER_ADDRESS) or not state.get_storage(TASK_SCHEDULER_ADDRESS, ACTIVE_TASKS_SLOT):
        return ()
    return tuple(_scheduler_call(state, "dueTasks", timestamp)[0])


def scheduled_call_hashes(state: StateAPI, block_number: int, timestamp: int) -> tuple[bytes, ...]:
    """The pseudo transaction hashes of the calls a block runs before its transactions."""
    return tuple(scheduled_call_hash(block_number, task_id) for task_id in due_tasks(state, timestamp))


def run_due_tasks(state: StateAPI) -> list[TaskRun]:
    """Run the due tasks of the block ``state`` executes and record each outcome (a task
    stopped by an earlier one's run in the same block is skipped).

    Raises :class:`SchedulerFailure` only if the scheduler itself fails a system call."""
    runs = []
    for task_id in due_tasks(state, state.timestamp):
        task = _scheduler_call(state, "getTask", task_id)[0]
        if not task[_TASK_ACTIVE]:  # stopped by an earlier task's run in this block
            continue
        run = _run_task(state, task_id, bytes.fromhex(task[_TASK_TARGET][2:]))
        _record(state, run)
        runs.append(run)
    return runs


def _run_task(state: StateAPI, task_id: int, target: bytes) -> TaskRun:
    """Call ``target.run()`` for task ``task_id``; its changes stay only if it succeeded."""
    call_hash = scheduled_call_hash(state.block_number, task_id)
    state.lock_changes()  # a fresh access list, as a transaction would have
    snapshot = state.snapshot()
    context = state.get_transaction_context_class()(gas_price=0, origin=SYSTEM_ADDRESS)
    context.inference_tx_hash = call_hash
    message = Message(gas=TASK_GAS_LIMIT, to=target, sender=TASK_SCHEDULER_ADDRESS, value=0, data=RUN_CALLDATA,
                      code=state.get_code(target))
    try:
        computation = state.computation_class.apply_message(state, message, context)
    except Exception as exc:  # py-evm lets a few VM errors escape a message
        state.revert(snapshot)
        return TaskRun(task_id, call_hash, TaskStatus.FAILED, f"cannot be executed: {type(exc).__name__}",
                       TASK_GAS_LIMIT)
    finally:
        state.clear_transient_storage()
    provider = state.inference_provider
    if isinstance(provider, ReplayProvider) and call_hash in provider.divergences:
        state.revert(snapshot)
        return TaskRun(task_id, call_hash, TaskStatus.DEFERRED, provider.divergences[call_hash][:MAX_REASON_CHARS], 0)
    state.commit(snapshot)  # apply_message already undid a failed call's changes
    status, reason = _outcome(computation, state.get_code(target))
    return TaskRun(task_id, call_hash, status, reason[:MAX_REASON_CHARS], computation.get_gas_used())


def _outcome(computation: ComputationAPI, code: bytes) -> tuple[TaskStatus, str]:
    """The status of a finished call and its reason, fit for a user (not cut yet)."""
    if not computation.is_error:
        return TaskStatus.SUCCEEDED, ""
    error, output = computation.error, computation.output
    if isinstance(error, Revert):
        if not output:
            missing = "" if _may_have_run(code) else ": the contract has no run() function"
            return TaskStatus.REVERTED, f"reverted without a reason{missing}"
        reason = decode_revert_reason(output)
        return TaskStatus.REVERTED, reason if reason is not None else f"reverted with data 0x{output.hex()}"
    if isinstance(error, OutOfGas):
        return TaskStatus.OUT_OF_GAS, f"out of gas (a task's call has {TASK_GAS_LIMIT} gas)"
    return TaskStatus.FAILED, halt_text(error)


def halt_text(error: Exception) -> str:
    """A fixed text for each kind of exceptional halt (geth's words), not the EVM's own
    message: the reason is stored on chain, so no implementation's wording may reach it."""
    for kind in type(error).__mro__:
        if kind in ERROR_TEXT:
            return ERROR_TEXT[kind]
    return "invalid opcode" if isinstance(error, InvalidInstruction) else "exceptional halt"


def _may_have_run(code: bytes) -> bool:
    """Whether ``code`` pushes ``run()``'s selector, as a Solidity dispatcher that has it does."""
    return b"\x63" + RUN_CALLDATA in code


def _record(state: StateAPI, run: TaskRun) -> None:
    function = scheduler_interface().function("recordRun")
    data = function.encode(run.task_id, int(run.status), run.reason)
    context = state.get_transaction_context_class()(gas_price=0, origin=SYSTEM_ADDRESS)
    message = Message(gas=SCHEDULER_CALL_GAS, to=TASK_SCHEDULER_ADDRESS, sender=SYSTEM_ADDRESS, value=0, data=data,
                      code=state.get_code(TASK_SCHEDULER_ADDRESS))
    computation = state.computation_class.apply_message(state, message, context)
    if computation.is_error:
        raise SchedulerFailure(f"recordRun({run.task_id}) failed: {decode_revert_reason(computation.output)}")


def _scheduler_call(state: StateAPI, name: str, *args) -> tuple:
    function = scheduler_interface().function(name)
    computation = execute_call(state, TASK_SCHEDULER_ADDRESS, function.encode(*args), SYSTEM_ADDRESS,
                               gas=SCHEDULER_CALL_GAS)
    if computation.is_error:
        raise SchedulerFailure(f"{name} failed: {decode_revert_reason(computation.output)}")
    return function.decode(computation.output)
