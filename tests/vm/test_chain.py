"""The in-process development chain: accounts, transfers, blocks py-evm imports."""

from __future__ import annotations

from eth.db.atomic import AtomicDB
from eth_account import Account

from ogevm.constants import DEV_ACCOUNT_BALANCE, DEV_CHAIN_ID
from ogevm.fixtures import fixture_contract
from ogevm.vm.accounts import DEV_ACCOUNTS, DEV_MNEMONIC
from ogevm.vm.chain import DevChain, chain_class
from ogevm.vm.genesis import genesis_params, genesis_state
from ogevm.vm.forks import InferenceCancunVM


def test_dev_accounts_derive_from_the_public_mnemonic():
    Account.enable_unaudited_hdwallet_features()
    for i, account in enumerate(DEV_ACCOUNTS):
        derived = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        assert derived.address == account.checksum_address
    assert DEV_ACCOUNTS[0].checksum_address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_genesis_funds_accounts_and_uses_the_dev_chain_id(chain):
    assert chain.chain.chain_id == DEV_CHAIN_ID
    assert all(chain.balance(a.address) == DEV_ACCOUNT_BALANCE for a in DEV_ACCOUNTS)


def test_transfer_mines_a_block_that_py_evm_imports(chain):
    receiver = DEV_ACCOUNTS[1].address
    result = chain.send(0, receiver, value=10**18)
    assert result.success and result.gas_used == 21_000
    assert chain.balance(receiver) == DEV_ACCOUNT_BALANCE + 10**18
    replica = chain_class(chain.vm_class).from_genesis(AtomicDB(), genesis_params(), genesis_state())
    block = chain.chain.get_canonical_block_by_number(1)
    imported = replica.import_block(block).imported_block
    assert imported.header.state_root == block.header.state_root


def test_many_transactions_in_one_block(chain):
    txs = [chain.sign(0, DEV_ACCOUNTS[2].address, value=1, nonce=n) for n in range(50)]
    block, results = chain.mine(txs)
    assert len(block.transactions) == 50 and all(r.success for r in results)
    assert chain.nonce(DEV_ACCOUNTS[0].address) == 50


def test_inference_blocks_import_on_a_replica_running_inline(chain, cids):
    forecast = chain.deploy(fixture_contract("PriceForecast"), cids["linear_regression"], "x", "y")
    result = forecast.transact("forecast", [(1, 0), (2, 0), (3, 0), (4, 0)])
    assert result.success
    replica = chain_class(chain.vm_class).from_genesis(AtomicDB(), genesis_params(), genesis_state())
    for number in range(1, chain.head.block_number + 1):
        block = chain.chain.get_canonical_block_by_number(number)
        assert replica.import_block(block).imported_block.header.state_root == block.header.state_root


def test_cancun_fork_serves_the_precompile_too(fixture_store, cids):
    chain = DevChain(fixture_store, vm_class=InferenceCancunVM)
    forecast = chain.deploy(fixture_contract("PriceForecast"), cids["linear_regression"], "x", "y")
    assert forecast.call("forecastView", [(1, 0), (2, 0), (3, 0), (4, 0)]) == ((71, 1),)
