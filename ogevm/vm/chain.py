"""An in-process development chain for tests and the demo.

Like anvil or the Hardhat node in automine mode: genesis funds the ten development
accounts, every ``send`` mines a block, calls run the precompile INLINE. Blocks are
built with :class:`~ogevm.vm.blocks.PendingBlock`, never with ``MiningChain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Type

from eth import constants as eth_constants
from eth.abc import AtomicDatabaseAPI, BlockAPI, ComputationAPI, ReceiptAPI, SignedTransactionAPI
from eth.chains.base import Chain
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.exceptions import CanonicalHeadNotFound
from eth.vm.base import VM
from eth._utils.address import generate_contract_address

from ogevm.abi.codec import decode_revert_reason
from ogevm.abi.contract import ContractInterface
from ogevm.abi.types import ModelOutput
from ogevm.constants import DEV_CHAIN_ID, INFERENCE_REGISTRY_ADDRESS
from ogevm.errors import OgevmError, TransactionFailed
from ogevm.models.runtime import ModelRuntime
from ogevm.records import EMPTY_BUNDLE_ROOT
from ogevm.models.store import ModelInfo, ModelStore
from ogevm.precompile.mocks import InferenceMocks, InvalidMock
from ogevm.precompile.modes import InlineProvider
from ogevm.vm.accounts import DEV_ACCOUNTS, DEV_OPERATOR, DevAccount
from ogevm.vm.blocks import PendingBlock
from ogevm.vm.calls import execute_call
from ogevm.vm.forks import InferencePragueVM
from ogevm.vm.genesis import genesis_params, genesis_state, registry_interface

DEFAULT_GAS = 10_000_000
def chain_class(vm_class: Type[VM], chain_id: int = DEV_CHAIN_ID) -> Type[Chain]:
    """A py-evm chain class that runs ``vm_class`` from genesis on."""
    return Chain.configure(__name__="InferenceChain", vm_configuration=((0, vm_class),), chain_id=chain_id)


@dataclass(frozen=True)
class TxResult:
    """What one transaction did, as a client reads it from its receipt."""

    tx_hash: bytes
    block_number: int
    receipt: ReceiptAPI
    computation: ComputationAPI
    gas_used: int
    contract_address: bytes | None

    @property
    def success(self) -> bool:
        return not self.computation.is_error

    @property
    def return_data(self) -> bytes:
        return self.computation.output

    @property
    def revert_reason(self) -> str | None:
        return None if self.success else decode_revert_reason(self.computation.output)

    @property
    def logs(self):
        return self.receipt.logs


class DevChain:
    """A funded development chain whose precompile runs models INLINE.

    ``models`` is the store of models the chain knows; add more with :meth:`add_model`.
    ``vm_class`` is the inference fork (Prague by default). With ``db`` holding a chain
    already, the chain resumes from its head; otherwise it starts from the dev genesis.
    """

    def __init__(self, models: ModelStore | None = None, vm_class: Type[VM] = InferencePragueVM,
                 accounts: Sequence[DevAccount] = DEV_ACCOUNTS, db: AtomicDatabaseAPI | None = None,
                 circuits=None) -> None:
        self.models = models if models is not None else ModelStore()
        self.runtime = ModelRuntime(self.models)
        #: ZKML circuits (``ogevm.verify.zkml.CircuitStore``), if this chain serves ZKML.
        self.circuits = circuits
        self.base_vm_class = vm_class
        #: Mocked inference results (:meth:`mock_inference`), for INLINE calls and PIPE alike.
        self.mocks = InferenceMocks()
        self.vm_class = vm_class.with_provider(InlineProvider(self.models, self.runtime, circuits, self.mocks))
        self.accounts = tuple(accounts)
        klass = chain_class(self.vm_class)
        db = db if db is not None else AtomicDB()
        try:
            ChainDB(db).get_canonical_head()
        except CanonicalHeadNotFound:
            self.chain = klass.from_genesis(db, genesis_params(), genesis_state(accounts))
        else:
            self.chain = klass(db)  # an existing database: resume from its head

    # --- models -----------------------------------------------------------------
    def add_model(self, model: bytes | Path | str) -> ModelInfo:
        """Add ONNX bytes, or the file at a path, to the chain's models."""
        return self.models.add(model) if isinstance(model, bytes) else self.models.add_file(model)

    def enable_zkml(self, cid: str):
        """Build the model's ZKML circuit and register its verifying key on chain (as the
        registry owner, the development operator). Raises ZkmlUnsupported with ezkl's reason, and
        TransactionFailed if the registry refuses."""
        if self.circuits is None:
            raise OgevmError("this chain has no circuit store: create it with circuits=CircuitStore(dir)")
        info = self.circuits.prepare(cid, self.models.load(cid))
        result = self.send(DEV_OPERATOR, INFERENCE_REGISTRY_ADDRESS,
                           registry_interface().function("registerCircuit").encode(cid, info.vk_hash))
        if not result.success:
            raise TransactionFailed(result.revert_reason, result.return_data)
        return info

    def mock_inference(self, cid: str, output: ModelOutput | None = None, error: str | None = None,
                       digest: bytes | None = None) -> None:
        """Make model ``cid`` answer ``output``, or revert with ``error``, for the request whose
        calldata digest is ``digest`` (any request if None), until :meth:`clear_mocks`.
        ``cid`` may name a language model (by CID or name): its ``output`` is then a reply in the
        form records carry (``ogevm.precompile.llm.completion_output`` / ``chat_output``).
        Raises :class:`~ogevm.precompile.mocks.InvalidMock` for an unknown model or a bad mock."""
        if cid not in self.models and not self.models.llms.knows(cid):
            raise InvalidMock(f"unknown model CID {cid!r}: add the model first")
        self.mocks.set(cid, output, error, digest)

    def clear_mocks(self, cid: str | None = None) -> int:
        """Remove the mocks of ``cid`` (all if None); returns how many were removed."""
        return self.mocks.clear(cid)

    # --- state --------------------------------------------------------------------
    @property
    def head(self):
        return self.chain.get_canonical_head()

    def state(self):
        """The state after the head block, in a throwaway VM."""
        return self.chain.get_vm(self.head).state

    def balance(self, address: bytes) -> int:
        return self.state().get_balance(address)

    def nonce(self, address: bytes) -> int:
        return self.state().get_nonce(address)

    # --- transactions -------------------------------------------------------------------
    def sign(self, sender: DevAccount | int, to: bytes | None, data: bytes = b"", value: int = 0,
             gas: int = DEFAULT_GAS, nonce: int | None = None, max_fee_per_gas: int | None = None,
             max_priority_fee_per_gas: int = 0) -> SignedTransactionAPI:
        """An EIP-1559 transaction from ``sender``, signed (``to=None`` creates a contract)."""
        account = self.accounts[sender] if isinstance(sender, int) else sender
        if nonce is None:
            nonce = self.nonce(account.address)
        if max_fee_per_gas is None:
            max_fee_per_gas = 2 * self.head.base_fee_per_gas + max_priority_fee_per_gas
        builder = self.vm_class.get_transaction_builder()
        unsigned = builder.new_unsigned_dynamic_fee_transaction(
            chain_id=self.chain.chain_id, nonce=nonce, max_priority_fee_per_gas=max_priority_fee_per_gas,
            max_fee_per_gas=max_fee_per_gas, gas=gas, to=to or eth_constants.CREATE_CONTRACT_ADDRESS,
            value=value, data=data, access_list=(),
        )
        return unsigned.as_signed_transaction(account.private_key, chain_id=self.chain.chain_id)

    def mine(self, transactions: Sequence[SignedTransactionAPI] = (), vm_class: Type[VM] | None = None,
             extra_data: bytes = EMPTY_BUNDLE_ROOT, timestamp: int | None = None) -> tuple[BlockAPI, list[TxResult]]:
        """Mine one block with ``transactions`` in order (INLINE unless ``vm_class`` says).

        ``extra_data`` defaults to the root of an empty inference bundle: INLINE blocks
        carry no records, so only those without inference validate on a PIPE validator.

        Raises :class:`InvalidTransaction` (nothing mined) if one cannot be included.
        """
        pending = PendingBlock(self.chain, vm_class or self.vm_class, timestamp=timestamp)
        for transaction in transactions:
            pending.apply(transaction)
        block = pending.seal(extra_data)
        results = []
        previous = 0
        for tx, receipt, computation in zip(block.transactions, pending.receipts, pending.computations):
            created = None
            if tx.to == eth_constants.CREATE_CONTRACT_ADDRESS and not computation.is_error:
                created = generate_contract_address(tx.sender, tx.nonce)
            results.append(TxResult(tx.hash, block.number, receipt, computation,
                                    receipt.gas_used - previous, created))
            previous = receipt.gas_used
        return block, results

    def send(self, sender: DevAccount | int, to: bytes | None, data: bytes = b"", value: int = 0,
             gas: int = DEFAULT_GAS) -> TxResult:
        """Sign, mine in its own block and return the result (reverts do not raise)."""
        _, (result,) = self.mine([self.sign(sender, to, data, value, gas)])
        return result

    def call(self, to: bytes, data: bytes = b"", sender: bytes | None = None, value: int = 0,
             gas: int = DEFAULT_GAS) -> bytes:
        """Execute a call on the head state (INLINE) and return its output.

        Raises :class:`TransactionFailed` with the decoded reason if it reverts.
        """
        computation = self.execute_call(to, data, sender, value, gas)
        if computation.is_error:
            raise TransactionFailed(decode_revert_reason(computation.output), computation.output)
        return computation.output

    def execute_call(self, to: bytes, data: bytes, sender: bytes | None = None, value: int = 0,
                     gas: int = DEFAULT_GAS) -> ComputationAPI:
        """The computation of a call on the head state; the state is left unchanged."""
        state = self.chain.get_vm(self.chain.create_header_from_parent(self.head)).state
        return execute_call(state, to, data, sender or self.accounts[0].address, value, gas)

    # --- contracts --------------------------------------------------------------------
    def deploy(self, interface: ContractInterface, *args: Any, sender: DevAccount | int = 0,
               gas: int = DEFAULT_GAS) -> "DeployedContract":
        """Deploy ``interface`` with constructor ``args``. Raises TransactionFailed on revert."""
        result = self.send(sender, None, interface.bytecode + interface.constructor_args(*args), gas=gas)
        if not result.success:
            raise TransactionFailed(result.revert_reason, result.return_data)
        return DeployedContract(self, interface, result.contract_address)


@dataclass(frozen=True)
class DeployedContract:
    """A deployed contract: call or transact its functions by name."""

    chain: DevChain
    interface: ContractInterface
    address: bytes

    def call(self, name: str, *args: Any, sender: bytes | None = None) -> tuple:
        """Decoded outputs of ``name(*args)`` run as a call. Raises TransactionFailed."""
        function = self.interface.function(name)
        return function.decode(self.chain.call(self.address, function.encode(*args), sender))

    def transact(self, name: str, *args: Any, sender: DevAccount | int = 0, value: int = 0,
                 gas: int = DEFAULT_GAS) -> TxResult:
        """Send ``name(*args)`` in a transaction mined in its own block."""
        return self.chain.send(sender, self.address, self.interface.function(name).encode(*args), value, gas)

    def events(self, result: TxResult, name: str) -> list[dict[str, Any]]:
        """The decoded ``name`` events this contract emitted in ``result``."""
        event = self.interface.event(name)
        topic = int.from_bytes(event.topic, "big")
        return [event.decode(topics, data) for address, topics, data in
                ((log.address, log.topics, log.data) for log in result.logs)
                if address == self.address and topics and topics[0] == topic]
