// ethers.js v6 WebSocketProvider against a running ogevm dev node.
//
//   node ws_check.mjs <ws url> <PriceForecast artifact .json> <linear_regression .onnx>
//
// Everything goes over one WebSocket: og_addModel, the deployment, then a forecast
// transaction watched through ethers' own subscriptions ("block", "pending", a contract
// event) and through og_pipeTransitions read from the raw socket. Prints a JSON summary;
// exits 0 on success and 1 (with the error) otherwise.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ethers } from "ethers";

// Dev account 8 of the public "test test ... junk" mnemonic (anvil / Hardhat); never use it elsewhere.
const KEY = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97";
const FEATURES = [[1, 0], [2, 0], [3, 0], [4, 0]]; // y = 7.1 for linear_regression
const TIMEOUT_MS = 60_000;

// A promise and the function that resolves it; it rejects after TIMEOUT_MS.
function waitFor(what) {
  let settle;
  const promise = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
    settle = (value) => {
      clearTimeout(timer);
      resolve(value);
    };
  });
  return { promise, settle };
}

async function main() {
  const [url, artifactPath, modelPath] = process.argv.slice(2);
  if (!url || !artifactPath || !modelPath) {
    throw new Error("usage: node ws_check.mjs <ws url> <PriceForecast.json> <model.onnx>");
  }
  const artifact = JSON.parse(readFileSync(artifactPath, "utf8"));
  // cacheTimeout -1: ethers v6 otherwise reuses an identical answer for 250 ms (a stale nonce)
  const provider = new ethers.WebSocketProvider(url, undefined, { cacheTimeout: -1 });
  assert.equal((await provider.getNetwork()).chainId, 31337n);
  const wallet = new ethers.Wallet(KEY, provider);

  const cid = await provider.send("og_addModel", [ethers.hexlify(readFileSync(modelPath))]);
  const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, wallet);
  const contract = await factory.deploy(cid, "x", "y");
  await contract.deploymentTransaction().wait();

  // the PIPE lifecycle, an ogevm subscription: read from the socket ethers uses
  const pipeId = await provider.send("eth_subscribe", ["og_pipeTransitions"]);
  const transitions = [];
  provider.websocket.on("message", (data) => {
    const message = JSON.parse(data.toString());
    if (message.method === "eth_subscription" && message.params.subscription === pipeId) {
      transitions.push(message.params.result);
    }
  });

  const blocks = [];
  const event = waitFor("the Forecast event");
  const pending = waitFor("the pending transaction");
  let target = null;
  const pendingSeen = [];
  await provider.on("block", (number) => blocks.push(number));
  await provider.on("pending", (hash) => {
    pendingSeen.push(hash);
    if (hash === target) pending.settle(hash);
  });
  await contract.on("Forecast", (id, value, decimals) => event.settle({ value: value.toString(), decimals: decimals.toString() }));
  await provider.send("eth_chainId", []); // a round trip: the subscriptions above are in place

  const tx = await contract.forecast(FEATURES);
  target = tx.hash;
  if (pendingSeen.includes(target)) pending.settle(target);
  const receipt = await tx.wait();
  assert.equal(receipt.status, 1);
  const [forecast, pendingHash] = await Promise.all([event.promise, pending.promise]);
  const head = waitFor(`block ${receipt.blockNumber}`);
  const poll = setInterval(() => {
    if (blocks.includes(receipt.blockNumber)) head.settle();
  }, 20);
  await head.promise;
  const included = waitFor("the included transition");
  const pollPipe = setInterval(() => {
    if (transitions.some((t) => t.txHash === tx.hash && t.state === "included")) included.settle();
  }, 20);
  await included.promise;
  clearInterval(poll);
  clearInterval(pollPipe);
  assert.equal(await provider.send("eth_unsubscribe", [pipeId]), true);

  const summary = {
    ok: true,
    forecastTx: tx.hash,
    event: forecast,
    pending: pendingHash,
    blocks,
    pipe: transitions.filter((t) => t.txHash === tx.hash).map((t) => t.state),
  };
  await provider.destroy();
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
