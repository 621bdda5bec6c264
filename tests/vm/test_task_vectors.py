"""The block-level vectors of scheduled tasks (``fixtures/vectors/tasks``): the committed
files are what the generator makes, and every scenario replays on a fresh chain built from
the vector file alone, through py-evm's ``Chain.import_block``, to every expected value.

The replay shares no code with the generator: it builds the genesis from the file's
allocation, decodes each block from its RLP, reads the scheduler with hand-encoded calls
and decodes with the types the file names. Only the VM (ogevm's Prague fork, INLINE) is
ogevm's: it is the rule the vectors pin.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth.chains.base import Chain
from eth.db.atomic import AtomicDB
from eth.vm.message import Message
from eth_abi import decode, encode
from eth_utils import ValidationError, keccak

from ogevm.models.store import ModelStore
from ogevm.precompile.modes import InlineProvider
from ogevm.vm.forks import InferencePragueVM

from fixture_scripts import fixture_script

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TASKS = FIXTURES / "vectors" / "tasks"
VIEW_GAS = 5_000_000
CALLER = b"\x00" * 20


@lru_cache(maxsize=1)
def vectors() -> dict[str, Any]:
    return json.loads((TASKS / "vectors.json").read_text(encoding="utf-8"))


def scenario(name: str) -> dict[str, Any]:
    return next(s for s in vectors()["scenarios"] if s["name"] == name)


def unhex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def as_json(value: Any) -> Any:
    """A decoded ABI value as the vectors write it: bytes as 0x-hex, tuples as lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (tuple, list)):
        return [as_json(v) for v in value]
    return value


@lru_cache(maxsize=1)
def vm_class():
    """ogevm's Prague fork with INLINE inference over the models the file names."""
    store = ModelStore()
    for name, cid in vectors()["models"].items():
        if store.add_file(FIXTURES / "models" / name).cid != cid:
            raise AssertionError(f"{name} does not have the CID the vectors name")
    return InferencePragueVM.with_provider(InlineProvider(store))


def fresh_chain(document: dict[str, Any]) -> Chain:
    """The genesis of ``document``, from its params and allocation only."""
    genesis = document["genesis"]
    params = {name: unhex(value) if isinstance(value, str) else value for name, value in genesis["params"].items()}
    alloc = {
        unhex(address): {
            "balance": int(account["balance"], 16),
            "nonce": account["nonce"],
            "code": unhex(account["code"]),
            "storage": {int(slot, 16): int(value, 16) for slot, value in account["storage"].items()},
        }
        for address, account in genesis["alloc"].items()
    }
    klass = Chain.configure(__name__="TaskVectorChain", vm_configuration=((0, vm_class()),),
                            chain_id=document["chain_id"])
    return klass.from_genesis(AtomicDB(), params, alloc)


def view(state, to: bytes, data: bytes) -> bytes:
    """Output of a read-only message call on ``state``; raises AssertionError if it fails."""
    context = state.get_transaction_context_class()(gas_price=0, origin=CALLER)
    message = Message(gas=VIEW_GAS, to=to, sender=CALLER, value=0, data=data, code=state.get_code(to))
    computation = state.computation_class.apply_message(state, message, context)
    if computation.is_error:
        raise AssertionError(f"view 0x{data.hex()} on 0x{to.hex()} failed")
    return bytes(computation.output)


class Scheduler:
    """The scheduler's views, encoded by hand from their signatures."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.address = unhex(document["task_scheduler"])
        self.views = document["views"]
        self.fields = document["task_fields"]

    def call(self, state, signature: str, *args: int) -> Any:
        selector = keccak(signature.encode())[:4]
        if "0x" + selector.hex() != self.views[signature]["selector"]:
            raise AssertionError(f"the vectors name another selector for {signature}")
        output = view(state, self.address, selector + encode(["uint256"] * len(args), list(args)))
        return decode([self.views[signature]["returns"]], output)[0]

    def tasks(self, state) -> dict[str, dict[str, Any]]:
        out = {}
        for task_id in range(1, self.call(state, "taskCount()") + 1):
            task = dict(zip(self.fields, self.call(state, "getTask(uint256)", task_id)))
            task["target"], task["owner"] = task["target"].lower(), task["owner"].lower()
            out[str(task_id)] = task
        return out


def replay(document: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    """Replay one scenario of ``document`` from its genesis; every mismatch, readably (empty
    when the chain does all the vectors say). Stops at the first block py-evm refuses."""
    chain = fresh_chain(document)
    scheduler = Scheduler(document)
    problems = []
    if "0x" + chain.get_canonical_head().hash.hex() != document["genesis"]["hash"]:
        return [f"{entry['name']}: the genesis hash is not {document['genesis']['hash']}"]
    block_class = vm_class().get_block_class()
    for number, expected_block in enumerate(entry["blocks"], start=1):
        def expect(what: str, got: Any, want: Any) -> None:
            if got != want:
                problems.append(f"{entry['name']} block {number}: {what}: got {got!r}, expected {want!r}")

        expected = expected_block["expected"]
        parent = chain.get_canonical_head()
        due = scheduler.call(chain.get_vm(parent).state, "dueTasks(uint256)", expected_block["timestamp"])
        expect("due", list(due), expected["due"])
        block = rlp.decode(unhex(expected_block["rlp"]), sedes=block_class)
        header = expected_block["header"]
        expect("header", {"number": block.number, "hash": "0x" + block.hash.hex(),
                          "timestamp": block.header.timestamp, "state_root": "0x" + block.header.state_root.hex(),
                          "receipts_root": "0x" + block.header.receipt_root.hex(), "gas_used": block.header.gas_used},
               {k: header[k] for k in ("number", "hash", "timestamp", "state_root", "receipts_root", "gas_used")})
        expect("timestamp", block.header.timestamp, expected_block["timestamp"])
        expect("transactions", ["0x" + tx.encode().hex() for tx in block.transactions],
               [tx["raw"] for tx in expected_block["transactions"]])
        try:
            chain.import_block(block)
        except ValidationError as exc:
            problems.append(f"{entry['name']} block {number}: import refused: {exc}")
            break
        receipts = block.get_receipts(chain.chaindb)
        cumulative = [0] + [r.gas_used for r in receipts]
        expect("receipts", [(r.state_root == b"\x01", after - before)
                            for r, before, after in zip(receipts, cumulative, cumulative[1:])],
               [(tx["success"], tx["gas_used"]) for tx in expected_block["transactions"]])
        state = chain.get_vm(chain.get_canonical_head()).state
        tasks = scheduler.tasks(state)
        expect("tasks", tasks, expected["tasks"])
        expect("active tasks", list(scheduler.call(state, "activeTasks()")), expected["active_tasks"])
        ran = {run["task"]: run for run in expected["ran"]}
        for task_id in due:
            task = tasks[str(task_id)]
            if task_id in ran:
                status = document["statuses"][task["lastStatus"]]
                expect(f"task {task_id}'s run", (task["lastRunBlock"], status, task["lastReason"]),
                       (number, ran[task_id]["status"], ran[task_id]["reason"]))
            else:
                expect(f"skipped task {task_id}'s last run block", task["lastRunBlock"] == number, False)
        for call in expected["calls"]:
            output = view(state, unhex(call["to"]), keccak(call["signature"].encode())[:4])
            expect(call["signature"], ("0x" + output.hex(), as_json(decode([call["returns"]], output)[0])),
                   (call["output"], call["value"]))
    return problems


# --- the files ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generator():
    return fixture_script("make_task_vectors.py")


def test_the_committed_vectors_are_what_the_generator_makes(generator, tmp_path):
    files = generator.generate()
    assert generator.compare(TASKS, files) == []
    # bad input: a changed and a missing file are each named
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    vectors_file = tmp_path / generator.VECTORS_FILE
    vectors_file.write_text(vectors_file.read_text().replace('"lastStatus": 2', '"lastStatus": 1', 1))
    (tmp_path / generator.README_FILE).unlink()
    assert sorted(generator.compare(tmp_path, files)) == [
        f"differs: {vectors_file}", f"missing: {tmp_path / generator.README_FILE}"]


def test_the_vectors_cover_every_scenario_of_the_issue():
    names = {s["name"] for s in vectors()["scenarios"]}
    assert {"no_run_function", "reverts_with_reason", "reverts_without_reason", "out_of_gas", "task_ends",
            "stopped_by_owner", "inference_in_a_run", "five_due_tasks"} <= names
    outcomes = {(run["status"], run["reason"]) for s in vectors()["scenarios"] for b in s["blocks"]
                for run in b["expected"]["ran"]}
    assert {status for status, _ in outcomes} == {"Succeeded", "Reverted", "OutOfGas", "Failed"}
    # a failing task's block still holds a transaction that succeeds: the chain goes on
    for s in vectors()["scenarios"]:
        for b in s["blocks"]:
            if any(run["status"] != "Succeeded" for run in b["expected"]["ran"]):
                assert any(tx["success"] for tx in b["transactions"]), (s["name"], b["header"]["number"])


# --- the replay --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [s["name"] for s in vectors()["scenarios"]])
def test_each_scenario_replays_through_import_block(name):
    assert replay(vectors(), scenario(name)) == []


def test_five_due_tasks_run_four_the_most_overdue_first():
    blocks = scenario("five_due_tasks")["blocks"]
    crowded = next(b for b in blocks if len(b["expected"]["due"]) == 4)
    tasks = crowded["expected"]["tasks"]
    # before the block: 4 and 5 every 5 s, 1 to 3 every 10 s, all registered in the block before it
    assert [tasks[str(i)]["frequency"] for i in (1, 2, 3, 4, 5)] == [10, 10, 10, 5, 5]
    assert crowded["expected"]["due"] == [4, 5, 1, 2]
    assert tasks["3"]["runs"] == 0 and tasks["3"]["nextRun"] <= crowded["timestamp"]
    after = blocks[blocks.index(crowded) + 1]
    assert after["expected"]["due"] == [3] and after["expected"]["tasks"]["3"]["runs"] == 1


# --- tampered vectors fail, naming what differs -------------------------------------------------
def tampered(name: str, change) -> tuple[dict[str, Any], dict[str, Any]]:
    document = copy.deepcopy(vectors())
    entry = next(s for s in document["scenarios"] if s["name"] == name)
    change(entry)
    return document, entry


def test_a_wrong_recorded_reason_is_named():
    def change(entry):
        entry["blocks"][2]["expected"]["tasks"]["1"]["lastReason"] = "something else"
    problems = replay(*tampered("reverts_with_reason", change))
    assert len(problems) == 1 and problems[0].startswith("reverts_with_reason block 3: tasks:")
    assert "'something else'" in problems[0] and "'TaskHarness: told to revert'" in problems[0]


def test_a_wrong_due_list_is_named():
    def change(entry):
        entry["blocks"][2]["expected"]["due"] = [1, 2]
    assert replay(*tampered("reverts_with_reason", change)) == [
        "reverts_with_reason block 3: due: got [1], expected [1, 2]"]


def test_a_block_whose_state_root_disagrees_is_refused_by_import():
    block_class = vm_class().get_block_class()

    def change(entry):
        block = rlp.decode(unhex(entry["blocks"][2]["rlp"]), sedes=block_class)
        forged = block.copy(header=block.header.copy(state_root=keccak(b"not the state root")))
        entry["blocks"][2]["rlp"] = "0x" + rlp.encode(forged).hex()
    problems = replay(*tampered("reverts_with_reason", change))
    assert problems[-1].startswith("reverts_with_reason block 3: import refused:")
    assert "state_root" in problems[-1]


def test_a_changed_genesis_is_named():
    document = copy.deepcopy(vectors())
    scheduler = document["genesis"]["alloc"][document["task_scheduler"]]
    scheduler["storage"]["0x" + "00" * 31 + "01"] = "0x" + "00" * 31 + "01"  # one active task, from nowhere
    assert replay(document, document["scenarios"][0]) == [
        f"no_run_function: the genesis hash is not {document['genesis']['hash']}"]
