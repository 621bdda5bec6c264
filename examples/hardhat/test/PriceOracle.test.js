// PriceOracle against `ogevm node`: a model call, a mocked model, snapshots and time travel.
// Run: `ogevm node` in one terminal, `npx hardhat test --network ogevm` here.
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { ethers, network } = require("hardhat");

const MODEL = path.join(__dirname, "..", "..", "..", "fixtures", "models", "linear_regression.onnx");
const FEATURES = [[1, 0], [2, 0], [3, 0], [4, 0]]; // y = 0.5 - 2.5 + 6 + 3 + 0.1 = 7.1
const rpc = (method, params = []) => network.provider.send(method, params);

describe("PriceOracle on ogevm", function () {
  let cid, oracle, snapshot;

  before(async function () {
    cid = await rpc("og_addModel", ["0x" + fs.readFileSync(MODEL).toString("hex")]);
    oracle = await (await ethers.getContractFactory("PriceOracle")).deploy(cid, 3600);
    await oracle.waitForDeployment();
  });

  beforeEach(async function () {
    snapshot = await rpc("evm_snapshot");
  });

  afterEach(async function () {
    await rpc("og_clearMocks");
    assert.equal(await rpc("evm_revert", [snapshot]), true);
  });

  it("keeps the model's forecast", async function () {
    await (await oracle.update(FEATURES)).wait();
    const [value, decimals] = await oracle.price();
    assert.deepEqual([value, decimals], [71n, 1n]);
    assert.equal(await oracle.stale(), false);
  });

  it("goes stale an hour later (time travel)", async function () {
    await (await oracle.update(FEATURES)).wait();
    await rpc("evm_increaseTime", [3601]);
    await rpc("evm_mine");
    assert.equal(await oracle.stale(), true);
  });

  it("refuses a negative price from a mocked model", async function () {
    const negative = { numbers: [{ name: "y", shape: [1, 1], values: [[-5, 0]] }] };
    assert.equal(await rpc("og_mockInference", [cid, negative]), true);
    await assert.rejects(oracle.update.staticCall(FEATURES), /negative price/);
    const tx = await oracle.update(FEATURES, { gasLimit: 3_000_000 });
    await assert.rejects(tx.wait(), /reverted/);
    const [record] = await rpc("og_getInferenceRecords", [tx.hash]);
    assert.equal(record.output.numbers[0].values[0][0], -5); // signed by the dev mock key
  });

  it("passes on a failing model's reason", async function () {
    await rpc("og_mockInference", [cid, { error: "output 'y' contains NaN" }]);
    await assert.rejects(oracle.update.staticCall(FEATURES), /contains NaN/);
  });

  it("starts every test from the snapshot", async function () {
    assert.equal(await oracle.updatedAt(), 0n);
    assert.equal(await rpc("og_clearMocks"), 0);
  });
});
