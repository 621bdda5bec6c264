// ethers.js v6 against a running ogevm dev node.
//
//   node check.mjs <rpc url> <PriceForecast artifact .json> <linear_regression .onnx>
//
// Deploys PriceForecast, uploads the model with og_addModel, sends a forecast transaction,
// reads its receipt, the Forecast event and latestPrediction, calls forecastView, and checks
// the revert reason ethers decodes for a failing call. Prints a JSON summary; exits 0 on
// success and 1 (with the error) otherwise.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ethers } from "ethers";

// Dev account 1 of the public "test test ... junk" mnemonic (anvil / Hardhat); never use it elsewhere.
const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const PRECOMPILE = "0x00000000000000000000000000000000000000F4";
const FEATURES = [[1, 0], [2, 0], [3, 0], [4, 0]]; // y = 7.1 for linear_regression
const REASON = "input 'x' has shape [1, 1]; the model expects ['?', 4]";

const step = (what) => {
  if (process.env.CHECK_DEBUG) console.error(`[check] ${what}`);
};

async function main() {
  const [url, artifactPath, modelPath] = process.argv.slice(2);
  if (!url || !artifactPath || !modelPath) {
    throw new Error("usage: node check.mjs <rpc url> <PriceForecast.json> <model.onnx>");
  }
  const artifact = JSON.parse(readFileSync(artifactPath, "utf8"));
  // cacheTimeout -1: ethers v6 otherwise reuses an identical answer for 250 ms, e.g. the
  // "pending" nonce read before a transaction that an automining node has mined since.
  const provider = new ethers.JsonRpcProvider(url, undefined, { pollingInterval: 50, cacheTimeout: -1 });
  step("network");
  const network = await provider.getNetwork();
  assert.equal(network.chainId, 31337n);
  const wallet = new ethers.Wallet(KEY, provider);

  // og_* methods go through provider.send
  step("og_addModel");
  const cid = await provider.send("og_addModel", [ethers.hexlify(readFileSync(modelPath))]);
  const models = await provider.send("og_listModels", []);
  assert.ok(models.some((m) => m.cid === cid), "og_listModels lists the uploaded model");

  step("deploy");
  const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, wallet);
  const contract = await factory.deploy(cid, "x", "y");
  const deployment = await contract.deploymentTransaction().wait();
  assert.equal(deployment.status, 1);
  const address = await contract.getAddress();
  assert.equal(await contract.modelCID(), cid);

  // a forecast transaction: receipt, the contract's event, the precompile's log, the new state
  step("forecast");
  const tx = await contract.forecast(FEATURES);
  step("wait");
  const receipt = await tx.wait();
  assert.equal(receipt.status, 1);
  const events = receipt.logs.map((log) => contract.interface.parseLog(log)).filter((e) => e && e.name === "Forecast");
  assert.equal(events.length, 1);
  assert.equal(events[0].args.value, 71n);
  assert.equal(events[0].args.decimals, 1n);
  const precompileLogs = receipt.logs.filter((log) => log.address.toLowerCase() === PRECOMPILE.toLowerCase());
  assert.equal(precompileLogs.length, 1);
  const [value, decimals] = await contract.latestPrediction();
  assert.deepEqual([value, decimals], [71n, 1n]);
  const queried = await contract.queryFilter(contract.filters.Forecast(), receipt.blockNumber, receipt.blockNumber);
  assert.equal(queried.length, 1);
  const status = await provider.send("og_getTransactionStatus", [tx.hash]);
  assert.equal(status.state, "included");
  const records = await provider.send("og_getInferenceRecords", [tx.hash]);
  assert.deepEqual(records[0].output.numbers[0].decimal, ["7.1"]);

  // eth_call of a non-view function: staticCall
  step("forecastView");
  const view = await contract.forecastView.staticCall([[0, 0], [0, 0], [0, 0], [0, 0]]);
  assert.deepEqual([view.value, view.decimals], [1n, 1n]);

  // reverts: ethers decodes Error(string) into reason, for calls and for gas estimation
  step("revert call");
  let callError = null;
  try {
    await contract.forecast.staticCall([[1, 0]]);
  } catch (error) {
    callError = error;
  }
  assert.ok(callError, "the call must revert");
  assert.equal(callError.code, "CALL_EXCEPTION");
  assert.equal(callError.reason, REASON);
  step("revert estimate");
  let estimateError = null;
  try {
    await contract.forecast.estimateGas([[1, 0]]);
  } catch (error) {
    estimateError = error;
  }
  assert.equal(estimateError?.reason, REASON);

  // a mined transaction that reverts (explicit gas skips the estimate): wait() throws, status 0
  step("failing tx");
  const failing = await contract.forecast([[1, 0]], { gasLimit: 500_000 });
  step("failing wait");
  let minedError = null;
  try {
    await failing.wait();
  } catch (error) {
    minedError = error;
  }
  assert.equal(minedError?.code, "CALL_EXCEPTION");
  assert.equal(minedError.receipt.status, 0);

  const summary = {
    ok: true,
    ethers: ethers.version,
    chainId: Number(network.chainId),
    modelCid: cid,
    contract: address,
    forecastTx: tx.hash,
    block: receipt.blockNumber,
    gasUsed: receipt.gasUsed.toString(),
    event: { id: events[0].args.id.toString(), value: value.toString(), decimals: decimals.toString() },
    forecastView: [view.value.toString(), view.decimals.toString()],
    revertReason: callError.reason,
    failedTx: { hash: failing.hash, status: minedError.receipt.status },
  };
  console.log(JSON.stringify(summary));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    console.log(JSON.stringify({ ok: false, error: String(error?.shortMessage ?? error?.message ?? error) }));
    process.exit(1);
  },
);
