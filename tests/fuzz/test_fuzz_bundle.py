"""Fuzzing a PIPE block's bundle: every single-byte change is rejected by the validator.

A block is built through PIPE with VANILLA records (outputs and an error result, in two
signed batches of stacked runs: root, index and path in every record), TEE records from a
simulated enclave and one ZKML record with a real proof. Then one byte at a
time is changed, at a seeded random position, in the encoded bundle as it travels
(``encode_bundle``) or in one record's encoding, and the model-free validator is given

* the changed bundle with the genuine block: the bundle root no longer matches (or the
  bytes do not decode), even when the change leaves the records' meaning intact;
* when the changed bytes still decode, the same bundle in a block whose ``extra_data`` is
  recomputed for it (what a dishonest block producer would send): some check must still
  fail, or the same block contents would have two valid bundles.

Every answer must be :class:`~ogevm.errors.InvalidBlock` with a reason; any other exception
fails the fuzzer. The genuine block and bundle are accepted at the end.
"""

from __future__ import annotations

import collections
import random
import re
import time

import pytest
import rlp

pytest.importorskip("ezkl", reason="the bundle fuzzer builds a ZKML record (the zkml extra)")

from eth.db.atomic import AtomicDB  # noqa: E402

from ogevm.abi.types import InferenceMode, ModelInferenceRequest, ModelInput, Number, NumberTensor  # noqa: E402
from ogevm.errors import InvalidBlock  # noqa: E402
from ogevm.fixtures import fixture_contract, fixture_model  # noqa: E402
from ogevm.pipe.bundle import bundle_root, decode_bundle, encode_bundle  # noqa: E402
from ogevm.records import MalformedBundle  # noqa: E402
from ogevm.pipe.executor import local_executor  # noqa: E402
from ogevm.pipe.pipeline import Pipeline, default_prover  # noqa: E402
from ogevm.pipe.validator import BlockValidator  # noqa: E402
from ogevm.precompile.modes import ReplayProvider  # noqa: E402
from ogevm.verify.tee import SimulatedEnclave  # noqa: E402
from ogevm.verify.zkml import CircuitProofChecker, CircuitStore  # noqa: E402
from ogevm.vm.chain import DevChain, chain_class  # noqa: E402
from ogevm.vm.genesis import genesis_params, genesis_state  # noqa: E402

from fuzz_budget import examples, report  # noqa: E402

pytestmark = pytest.mark.zkml

SEED = 20261130
FOUR = [(15, 1), (-2, 0), (325, 2), (1, 0)]
V, Z, T = InferenceMode.VANILLA, InferenceMode.ZKML, InferenceMode.TEE


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A PIPE block with records of every mode, and a model-free validator at its parent."""
    chain = DevChain(circuits=CircuitStore(tmp_path_factory.mktemp("circuits")))
    linear = chain.add_model(fixture_model("linear_regression"))
    log_model = chain.add_model(fixture_model("log_model"))
    chain.enable_zkml(linear.cid)
    mixed = [chain.deploy(fixture_contract("MixedModes")) for _ in range(3)]
    enclave = SimulatedEnclave(timestamp=chain.head.timestamp)
    # one worker, so each model's requests run as one stacked job: its VANILLA records are a batch
    executor = local_executor(chain.runtime, workers=1, enclave=enclave, prover=default_prover(chain))
    pipeline = Pipeline(chain, executor=executor)
    pipeline.register_nodes()
    compare = mixed[0].interface.function("compareWithModes")
    for sender, (contract, (mode_a, mode_b)) in enumerate(zip(mixed, [(V, T), (T, V), (Z, T)]), start=1):
        pipeline.submit(chain.sign(sender, contract.address,
                                   compare.encode(linear.cid, linear.cid, "x", "y", FOUR, mode_a, mode_b)))
    caller = chain.deploy(fixture_contract("InferenceCaller"))
    for sender, value in ((4, -1), (5, 2)):
        x = NumberTensor("x", (Number(value, 0),), (1, 1))
        log_request = ModelInferenceRequest(V, log_model.cid, ModelInput((x,), ()))
        pipeline.submit(chain.sign(sender, caller.address, caller.interface.function("infer").encode(log_request)))
    (built,) = pipeline.run_until_idle()
    executor.close()
    modes = collections.Counter(record.mode for record in built.records)
    assert modes == {V: 4, T: 3, Z: 1}, modes
    assert any(record.result.error for record in built.records)  # log_model of negative inputs: NaN
    batches = collections.Counter(record.batch.root for record in built.records if record.batch)
    assert sorted(batches.values()) == [2, 2] and all(r.batch for r in built.records if r.mode is V), batches
    assert all(record.proof for record in built.records if record.mode is Z)

    vm_class = chain.base_vm_class.with_provider(ReplayProvider({}, {}))
    replica = chain_class(vm_class).from_genesis(AtomicDB(), genesis_params(), genesis_state(chain.accounts))
    validator = BlockValidator(replica, chain.base_vm_class, dict(chain.models), CircuitProofChecker(chain.circuits))
    for number in range(1, built.block.number):
        validator.import_block(chain.chain.get_canonical_block_by_number(number), [])
    return built, validator


def _flip(rng: random.Random, data: bytes) -> bytes:
    """``data`` with the byte at a random position changed to a random other value."""
    changed = bytearray(data)
    changed[rng.randrange(len(changed))] ^= rng.randrange(1, 256)
    return bytes(changed)


def _reason_kind(reason: str) -> str:
    """The reason without its specifics (record numbers, hashes, values): for the summary."""
    kind = re.sub(r"^record \d+ \([^)]*\): ", "", reason)
    kind = re.sub(r"0x[0-9a-f]+(:\d+)?|\d+", "N", kind)
    return kind[:70]


def _rejected(validator: BlockValidator, block, bundle: bytes) -> str:
    """The validator's reason for rejecting ``bundle`` with ``block``; fails if it accepts."""
    with pytest.raises(InvalidBlock) as raised:
        validator.import_encoded(block, bundle)
    assert raised.value.reason, "an InvalidBlock without a reason"
    return raised.value.reason


def _forged(block, bundle: bytes):
    """``block`` with ``extra_data`` recomputed for ``bundle``, or None if it does not decode."""
    try:
        records = decode_bundle(bundle)
    except MalformedBundle:
        return None
    return block.copy(header=block.header.copy(extra_data=bundle_root(records)))


def test_every_single_byte_change_of_a_bundle_is_rejected(world):
    built, validator = world
    block, genuine = built.block, encode_bundle(built.records)
    encodings = [record.encode() for record in built.records]
    flips = examples(300)
    rng = random.Random(SEED)
    outcomes: collections.Counter = collections.Counter()
    seconds: dict[str, list[float]] = {"genuine block": [], "forged root": []}
    for case in range(flips):
        if case % 2 == 0:  # (a) a byte of the encoded bundle
            tampered = _flip(rng, genuine)
        else:  # (b) a byte of one record's encoding, in an otherwise genuine bundle
            index = rng.randrange(len(encodings))
            tampered = rlp.encode([*encodings[:index], _flip(rng, encodings[index]), *encodings[index + 1:]])
        for kind, candidate in (("genuine block", block), ("forged root", _forged(block, tampered))):
            if candidate is None:
                continue
            began = time.perf_counter()
            reason = _rejected(validator, candidate, tampered)
            seconds[kind].append(time.perf_counter() - began)
            outcomes[f"{kind}: {_reason_kind(reason)}"] += 1
    assert validator.import_encoded(block, genuine).header == block.header

    report("bundle byte flips", flips)
    for kind, times in seconds.items():
        times.sort()
        print(f"  {kind}: {len(times)} rejected in {sum(times):.1f} s, median {times[len(times) // 2] * 1e3:.1f} ms, "
              f"max {times[-1] * 1e3:.0f} ms")
    for outcome, count in outcomes.most_common():
        print(f"  {count:6d}  {outcome}")
    assert len(seconds["genuine block"]) == flips
