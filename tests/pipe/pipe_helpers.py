"""Helpers of the PIPE tests: requests, re-signed records, receipts, a model-free replica."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Mapping, Sequence

from eth.abc import BlockAPI
from eth.db.atomic import AtomicDB
from eth_keys import keys
from eth_utils import keccak

from ogevm.abi import InferenceMode, ModelInferenceRequest, ModelInput, Number, NumberTensor
from ogevm.abi.codec import encode_run_model_inference
from ogevm.fixtures import fixture_contract
from ogevm.models.binding import bind_inputs, samples
from ogevm.models.store import ModelInfo
from ogevm.pipe.mempool import TERMINAL
from ogevm.pipe.pipeline import Pipeline
from ogevm.pipe.validator import BlockValidator
from ogevm.precompile.modes import ReplayProvider
from ogevm.records import InferenceRecord, InferenceRequest, RequestId
from ogevm.verify.vanilla import sign_result
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY
from ogevm.vm.blocks import PendingBlock
from ogevm.vm.chain import DeployedContract, DevChain, chain_class
from ogevm.vm.genesis import genesis_params, genesis_state

#: The inference node of the tests: the development node the genesis registry allows.
NODE_KEY = DEV_INFERENCE_NODE_KEY
NODE = NODE_KEY.public_key.to_canonical_address()
#: A key the registry does not know.
ROGUE_KEY = keys.PrivateKey(b"\x22" * 32)

FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]  # linear_regression: 7.1
GAS = 2_000_000
GWEI = 10**9


def tensor(values: Sequence, shape: Sequence[int], name: str = "x") -> NumberTensor:
    """A number tensor of integer or (value, decimals) entries."""
    numbers = tuple(Number(*v) if isinstance(v, tuple) else Number(v, 0) for v in values)
    return NumberTensor(name, numbers, tuple(shape))


def call_for(cid: str, *tensors: NumberTensor, mode: InferenceMode = InferenceMode.VANILLA) -> ModelInferenceRequest:
    return ModelInferenceRequest(mode, cid, ModelInput(tuple(tensors), ()))


def inference_request(info: ModelInfo, call: ModelInferenceRequest, tx_hash: bytes, index: int = 0) -> InferenceRequest:
    """The request the precompile would make for ``call`` as call ``index`` of ``tx_hash``."""
    return InferenceRequest(RequestId(tx_hash, index), keccak(encode_run_model_inference(call)), call,
                            samples(info, call.input), bind_inputs(info, call.input))


def resign(record: InferenceRecord, key: keys.PrivateKey = NODE_KEY, **result_changes) -> InferenceRecord:
    """``record`` with its result changed by ``result_changes``, signed again (alone) by ``key``."""
    result = replace(record.result, **result_changes)
    return replace(record, result=result, node=key.public_key.to_canonical_address(),
                   signature=sign_result(key, result), batch=None)


def receipt_ok(receipt) -> bool:
    """Post-Byzantium receipts carry the status where the state root used to be."""
    return receipt.state_root == b"\x01"


def receipts_of(chain: DevChain, block: BlockAPI) -> list:
    return list(block.get_receipts(chain.chain.chaindb))


def assert_all_settled(pipeline: Pipeline, hashes: Iterable[bytes]) -> None:
    """Every tx is included or rejected; a rejected one has a reason."""
    for tx_hash in hashes:
        status = pipeline.pool.status(tx_hash)
        assert status is not None, f"0x{tx_hash.hex()} is unknown to the pool"
        assert status.state in TERMINAL, f"0x{tx_hash.hex()} is still {status.state.value}"
        if status.state.value == "rejected":
            assert status.reason
        else:
            assert status.block_number is not None


class Replica:
    """A chain from the same genesis that validates blocks with a catalogue only (no model
    bytes); which nodes may sign results comes from the registry in its genesis state."""

    def __init__(self, source: DevChain) -> None:
        self.source = source
        # The replica's own provider has no results: it can never run a model.
        vm_class = source.base_vm_class.with_provider(ReplayProvider({}, {}))
        self.chain = chain_class(vm_class).from_genesis(AtomicDB(), genesis_params(), genesis_state(source.accounts))
        catalogue: dict[str, ModelInfo] = dict(source.models)
        assert all(isinstance(info, ModelInfo) for info in catalogue.values())
        self.validator = BlockValidator(self.chain, source.base_vm_class, catalogue)

    @property
    def head(self):
        return self.chain.get_canonical_head()

    def sync(self, bundles: Mapping[int, Sequence[InferenceRecord]] = {}, upto: int | None = None) -> None:
        """Import the source's canonical blocks (with their bundles by number) up to ``upto``."""
        last = self.source.head.block_number if upto is None else upto
        for number in range(self.head.block_number + 1, last + 1):
            block = self.source.chain.get_canonical_block_by_number(number)
            imported = self.validator.import_block(block, list(bundles.get(number, ())))
            assert imported.header == block.header

    def import_block(self, block: BlockAPI, records: Sequence[InferenceRecord]):
        return self.validator.import_block(block, list(records))


def mine_inline_like(twin: DevChain, block: BlockAPI) -> tuple[BlockAPI, list]:
    """Mine ``block``'s transactions, in its order, on ``twin`` with INLINE inference.

    ``DevChain.mine`` stamps blocks with the twin's own clock, while the PIPE builder
    stamps ``parent.timestamp + 1``; a contract may read ``block.timestamp``, so the twin
    uses a :class:`PendingBlock` with the PIPE block's timestamp instead. Sealed with the
    same ``extra_data`` (the bundle root), an equivalent execution gives the very same
    header: state root, receipts root, gas used, logs bloom and hash. Returns the twin's
    block and the computation of each transaction.
    """
    pending = PendingBlock(twin.chain, twin.vm_class, timestamp=block.header.timestamp)
    for transaction in block.transactions:
        pending.apply(transaction)
    return pending.seal(extra_data=block.header.extra_data), pending.computations


def deploy_all(chain: DevChain, contracts: Sequence[tuple[str, tuple]]) -> list[DeployedContract]:
    """Deploy ``(name, constructor args)`` pairs from account 0, one block each.

    Blocks are stamped ``parent + 1`` rather than with the wall clock, so two chains from
    the same genesis that deploy the same list have the very same blocks.
    """
    deployed = []
    for name, args in contracts:
        interface = fixture_contract(name)
        tx = chain.sign(0, None, interface.bytecode + interface.constructor_args(*args))
        _, (result,) = chain.mine([tx], timestamp=chain.head.timestamp + 1)
        assert result.success, result.revert_reason
        deployed.append(DeployedContract(chain, interface, result.contract_address))
    return deployed
