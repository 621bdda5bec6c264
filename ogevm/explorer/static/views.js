// What the page draws from the store: the live lists, the charts, and the detail of one block,
// transaction, inference request or address.

import {inferenceEvents} from "./abi.js";
import {drawChart} from "./charts.js";
import {h, syncRows} from "./dom.js";
import * as f from "./format.js";
import {inferenceSeconds} from "./store.js";

const MAX_ROWS = 50;
const CHART_BLOCKS = 30;
export const POOL_STATES = ["pending", "simulated", "inferring", "ready", "deferred"];

const txLink = (hash) => ({text: f.short(hash), href: `#/tx/${hash}`, title: hash, class: "mono"});
const addressLink = (address) => (address ? h("a", {href: `#/address/${address}`, class: "mono"}, address) : "–");
const badge = (state) => h("span", {class: "badge", "data-state": state}, state);

/** Model time a block's transactions spent off the block path (null if none is known). */
function blockInferenceSeconds(store, block) {
  const times = block.transactions.map((tx) => inferenceSeconds(store.txs.get(tx.hash)?.status)).filter((s) => s !== null);
  return times.length ? times.reduce((a, b) => a + b, 0) : null;
}

/**
 * Sizes of the executor batches that ran a block's requests: records signed together share a
 * batch root (a record signed alone is a batch of one). Counted over every record the page holds.
 */
function batchSizes(store, block) {
  const sizes = new Map();
  for (const record of store.records.values()) {
    const key = record.batch?.root ?? record.requestId;
    sizes.set(key, (sizes.get(key) ?? 0) + 1);
  }
  const roots = new Set(block.transactions.flatMap((tx) => (store.txs.get(tx.hash)?.records ?? [])
    .map((r) => r.batch?.root ?? r.requestId)));
  return [...roots].map((root) => sizes.get(root));
}

/** The block a transaction is in: from the blocks read, or its status if its block is not read yet. */
const blockOf = (entry) => entry.block ?? entry.status?.block ?? null;

const recordCount = (store, block) => block.transactions.reduce((n, tx) => n + (store.txs.get(tx.hash)?.records?.length ?? 0), 0);

// --- live lists ---------------------------------------------------------------------------
export function renderBlocks(store, tbody) {
  const numbers = [...store.blocks.keys()].sort((a, b) => b - a).slice(0, MAX_ROWS);
  syncRows(tbody, numbers.map((n) => {
    const block = store.blocks.get(n);
    return {
      key: block.hash, attrs: {"data-number": String(n)}, cells: [
        {text: `#${n}`, href: `#/block/${n}`},
        {text: f.short(block.hash, 4), title: block.hash, class: "mono"},
        f.clock(f.quantity(block.timestamp)),
        String(block.transactions.length),
        String(recordCount(store, block)),
        f.grouped(f.quantity(block.gasUsed)),
        {text: f.short(block.extraData, 4), title: block.extraData, class: "mono"},
        `${f.seconds(block.buildStats?.buildSeconds)} / ${f.seconds(blockInferenceSeconds(store, block))}`,
      ],
    };
  }));
}

function outcome(entry) {
  if (entry.status?.state === "rejected") return entry.status.reason ?? "rejected";
  if (entry.receipt?.status === "0x0") {
    const failed = (entry.records || []).find((r) => r.error);
    return failed ? `reverted: ${failed.error}` : "reverted";
  }
  if (entry.status?.state === "deferred") return entry.status.reason ?? "";
  return entry.receipt?.status === "0x1" ? "success" : "";
}

export function renderTxs(store, tbody) {
  syncRows(tbody, store.recentTxs(MAX_ROWS).map((entry) => {
    const state = entry.status?.state ?? (entry.block !== null ? "included" : "pending");
    return {
      key: entry.hash, attrs: {"data-hash": entry.hash, "data-state": state}, cells: [
        txLink(entry.hash),
        {text: state, state},
        blockOf(entry) !== null ? {text: `#${blockOf(entry)}`, href: `#/block/${blockOf(entry)}`} : "pool",
        {text: f.short(entry.tx?.from, 4), title: entry.tx?.from ?? "", class: "mono"},
        {text: entry.tx ? (entry.tx.to ? f.short(entry.tx.to, 4) : "new contract") : "", title: entry.tx?.to ?? "", class: "mono"},
        String(f.passes(entry.status) ?? "–"),
        {text: outcome(entry), class: entry.receipt?.status === "0x0" || state === "rejected" ? "error" : ""},
      ],
    };
  }));
}

function verification(record) {
  const parts = [];
  if (record.signature) parts.push(record.batch ? `batch signature (path ${record.batch.path.length})` : "signature");
  if (record.attestation) parts.push("attestation (simulated TEE)");
  if (record.proof) parts.push("ZK proof");
  return parts.join(" + ") || "none";
}

const outputText = (record) => (record.output ? f.tensors(record.output.numbers).concat(
  record.output.strings.map((s) => `${s.name} = ${JSON.stringify(s.values)}`),
  record.output.jsons.map((j) => `${j.name} = ${j.value}`)).join("; ") : `error: ${record.error}`);

export function renderRecords(store, tbody) {
  syncRows(tbody, store.recentRecords(MAX_ROWS).map((record) => ({
    key: record.requestId, attrs: {"data-request": record.requestId}, cells: [
      {text: `${f.short(record.txHash, 4)}:${record.index}`, href: `#/request/${record.requestId}`, title: record.requestId, class: "mono"},
      {text: `${f.short(record.modelCid, 5)} ${f.modelSignature(store.model(record.modelCid))}`, title: record.modelCid},
      f.modeLabel(record.mode),
      {text: outputText(record), class: record.error ? "error" : "values"},
      verification(record),
      {text: f.short(record.node, 4), title: record.node, class: "mono"},
    ],
  })));
}

export function renderModels(store, tbody) {
  syncRows(tbody, store.models.map((model) => ({
    key: model.cid, cells: [
      {text: model.cid, class: "mono cid"},
      model.inputs.map((i) => `${i.name} ${i.type} [${i.shape.map((d) => d ?? "?").join(", ")}]`).join("; "),
      model.outputs.map((o) => `${o.name} ${o.type}`).join("; "),
      f.grouped(model.gasPerSample),
      model.batchable ? `yes: ${model.batchSizes.join(", ") || "none verified"}` : `no (${model.rowMixing})`,
      f.grouped(model.size),
    ],
  })));
}

// --- charts -------------------------------------------------------------------------------
export function renderCharts(store, figures) {
  const samples = store.samples;
  const now = samples.length ? samples.at(-1).at : 0;
  const overTime = (label, value) => ({label, points: samples.map((s) => [(s.at - now) / 1000, value(s.stats)])});
  const window = samples.length ? `seconds (last ${Math.round((now - samples[0].at) / 1000)} s)` : "seconds";
  drawChart(figures.pool, {
    title: "Pool by state", xLabel: window,
    series: POOL_STATES.map((state) => overTime(state, (s) => s.pool[state] ?? 0)),
  });
  drawChart(figures.inflight, {
    title: "Inference requests in flight", xLabel: window,
    series: [overTime("in flight", (s) => s.inFlightRequests)],
  });
  drawChart(figures.passes, {
    title: "EVM passes per included transaction", xLabel: window,
    series: [overTime("passes", (s) => s.evmPassesPerIncludedTx)],
  });
  const numbers = [...store.blocks.keys()].sort((a, b) => a - b).slice(-CHART_BLOCKS);
  drawChart(figures.blocks, {
    title: "Transactions and inference records per block", xLabel: "block number",
    series: [
      {label: "transactions", points: numbers.map((n) => [n, store.blocks.get(n).transactions.length])},
      {label: "records", points: numbers.map((n) => [n, recordCount(store, store.blocks.get(n))])},
    ],
  });
  const batches = numbers.map((n) => [n, batchSizes(store, store.blocks.get(n))]);
  drawChart(figures.batches, {
    title: "Executor batches per block", xLabel: "block number",
    series: [
      {label: "batches", points: batches.map(([n, sizes]) => [n, sizes.length])},
      {label: "largest batch", points: batches.map(([n, sizes]) => [n, Math.max(0, ...sizes)])},
    ],
  });
}

// --- details ------------------------------------------------------------------------------
const field = (label, ...value) => [h("dt", {}, label), h("dd", {}, ...value)];
const heading = (text, sub) => h("h2", {tabindex: "-1"}, text, sub ? h("span", {class: "mono sub"}, sub) : null);

function timeline(status) {
  if (!status.history.length) {
    return h("p", {}, `No step-by-step history (read back from disk after a restart); final state: ${status.state}.`);
  }
  const start = status.history[0].at;
  // a step keeps the reason of the step that set it (a re-simulation after a deferral): say it once
  const fresh = (step, i) => step.reason && step.reason !== status.history[i - 1]?.reason;
  return h("ol", {class: "timeline", "aria-label": "Path through PIPE"}, status.history.map((step, i) => h("li",
    {"data-state": step.state},
    badge(step.state),
    h("span", {class: "when"}, `+${Math.round((step.at - start) * 1000)} ms`),
    h("span", {class: "counts"}, `round ${step.rounds} · ${step.passes} pass${step.passes === 1 ? "" : "es"}`),
    step.block !== null ? h("a", {href: `#/block/${step.block}`}, `block #${step.block}`) : null,
    fresh(step, i) ? h("span", {class: "reason"}, step.reason) : null)));
}

function recordCard(store, record, event, entry) {
  const model = store.model(record.modelCid);
  const block = entry ? blockOf(entry) : null;
  const bundle = block !== null ? store.blocks.get(block)?.extraData : null;
  return h("article", {class: "record", "data-request": record.requestId, "aria-label": `Inference request ${record.requestId}`},
    h("h3", {}, "Request ", h("a", {href: `#/request/${record.requestId}`, class: "mono"}, record.requestId)),
    h("dl", {},
      field("Model", h("span", {class: "mono"}, record.modelCid), model ? ` ${f.modelSignature(model)}` : ""),
      field("Mode", f.modeLabel(record.mode)),
      field("Inputs", event ? h("ul", {class: "values inputs"}, f.tensors(event.inputs.numbers).map((t) => h("li", {}, t)),
        event.inputs.strings.map((s) => h("li", {}, `${s.name} = ${JSON.stringify(s.values)}`)))
        : "not in the receipt (only successful requests log their inputs)"),
      record.output
        ? field("Outputs", h("ul", {class: "values outputs"}, f.tensors(record.output.numbers).map((t) => h("li", {}, t)),
          record.output.strings.map((s) => h("li", {}, `${s.name} = ${JSON.stringify(s.values)}`)),
          record.output.jsons.map((j) => h("li", {}, `${j.name} = ${j.value}`))))
        : field("Error", h("span", {class: "error reason"}, record.error)),
      field("Inference node", h("span", {class: "mono"}, record.node)),
      field("Verification", verification(record),
        block !== null ? ` · committed in block #${block}'s bundle` : " · not in a block yet",
        bundle ? h("span", {class: "mono"}, ` (root ${f.short(bundle)})`) : ""),
      record.batch ? field("Batch", h("span", {class: "mono"}, f.short(record.batch.root)),
        ` · leaf ${record.batch.index} · ${record.batch.path.length} sibling hashes`) : [],
      field("Request digest", h("span", {class: "mono"}, record.digest)),
      field("Transaction model time", f.seconds(inferenceSeconds(entry?.status)))));
}

/** Records of a transaction with the inputs its receipt logged (successful requests, in order). */
function recordCards(store, entry) {
  const events = inferenceEvents(entry.receipt);
  const byId = new Map(events.map((e) => [e.inferenceId, e]));
  const successful = (entry.records || []).filter((r) => r.output);
  return (entry.records || []).map((record) => recordCard(store, record,
    byId.get(record.requestId) ?? (record.output ? events[successful.indexOf(record)] : undefined), entry));
}

export function txView(store, entry) {
  const {tx, status, receipt} = entry;
  const state = status?.state ?? "unknown";
  const created = receipt?.contractAddress;
  const key = `tx:${entry.hash}:${entry.version}:${store.models.length}`;
  const node = h("div", {},
    heading("Transaction ", entry.hash),
    h("dl", {class: "facts"},
      field("State", badge(state), status?.reason ? h("span", {class: "reason"}, ` ${status.reason}`) : ""),
      field("Block", blockOf(entry) !== null ? h("a", {href: `#/block/${blockOf(entry)}`}, `#${blockOf(entry)}`) : "not in a block"),
      field("Result", receipt ? (receipt.status === "0x1" ? "success" : h("span", {class: "error"}, outcome(entry))) : "no receipt yet"),
      field("From", addressLink(tx?.from)),
      field("To", tx?.to ? addressLink(tx.to) : created ? ["new contract ", addressLink(created)] : "new contract"),
      tx ? field("Nonce · value", `${f.quantity(tx.nonce)} · ${f.ether(tx.value)}`) : [],
      receipt ? field("Gas used", f.grouped(f.quantity(receipt.gasUsed))) : [],
      field("EVM passes", String(f.passes(status) ?? "–")),
      field("Model time off the block path", f.seconds(inferenceSeconds(status)))),
    h("h3", {}, "Path through PIPE"),
    status ? timeline(status) : h("p", {}, "Waiting for the node…"),
    h("h3", {}, "Inference records"),
    entry.records === null ? h("p", {}, "Known once the transaction is finished.")
      : entry.records.length ? recordCards(store, entry) : h("p", {}, "This transaction made no inference request."));
  return {key, node};
}

export function blockView(store, block) {
  const number = f.quantity(block.number);
  const entries = block.transactions.map((tx) => store.txs.get(tx.hash));
  const key = `block:${block.hash}:${entries.map((e) => e?.version ?? 0).join(",")}`;
  const node = h("div", {},
    heading(`Block #${number} `, block.hash),
    h("p", {class: "pager"},
      number > 0 ? h("a", {href: `#/block/${number - 1}`}, "← previous block") : null, " ",
      h("a", {href: `#/block/${number + 1}`}, "next block →")),
    h("dl", {class: "facts"},
      field("Time", new Date(f.quantity(block.timestamp) * 1000).toISOString()),
      field("Parent", number > 0 ? h("a", {href: `#/block/${number - 1}`, class: "mono"}, block.parentHash) : "–"),
      field("Gas used / limit", `${f.grouped(f.quantity(block.gasUsed))} / ${f.grouped(f.quantity(block.gasLimit))}`),
      field("Base fee", `${f.grouped(f.quantity(block.baseFeePerGas))} wei`),
      field("Inference bundle root (extraData)", h("span", {class: "mono"}, block.extraData)),
      field("Inference records", String(recordCount(store, block))),
      field("Model time off the block path", f.seconds(blockInferenceSeconds(store, block))),
      field("Build time (replay and sealing)", f.seconds(block.buildStats?.buildSeconds)),
      field("Model run time the build did not spend", f.seconds(block.buildStats?.inferenceSecondsSaved)),
      field("State root", h("span", {class: "mono"}, block.stateRoot))),
    h("h3", {}, `${block.transactions.length} transaction${block.transactions.length === 1 ? "" : "s"}`),
    block.transactions.length ? h("ul", {class: "plain"}, block.transactions.map((tx, i) => h("li", {},
      h("a", {href: `#/tx/${tx.hash}`, class: "mono"}, tx.hash),
      entries[i]?.status ? [" ", badge(entries[i].status.state), ` ${f.passes(entries[i].status) ?? "–"} passes`] : "")))
      : h("p", {}, "An empty block."));
  return {key, node};
}

export function requestView(store, record) {
  const entry = store.txs.get(record.txHash);
  return {
    key: `request:${record.requestId}:${entry?.version ?? 0}`,
    node: h("div", {}, heading("Inference request ", record.requestId),
      h("p", {}, "Made by transaction ", h("a", {href: `#/tx/${record.txHash}`, class: "mono"}, record.txHash)),
      entry ? recordCards(store, entry).find((card) => card.dataset.request === record.requestId)
        : recordCard(store, record, undefined, undefined)),
  };
}

export function addressView(store, address, account) {
  const lower = address.toLowerCase();
  const entries = store.recentTxs(Infinity).filter((e) => e.tx && (e.tx.from.toLowerCase() === lower
    || e.tx.to?.toLowerCase() === lower || e.receipt?.contractAddress?.toLowerCase() === lower));
  const key = `address:${lower}:${entries.map((e) => `${e.hash}${e.version}`).join(",")}`;
  const node = h("div", {},
    heading("Address ", address),
    h("dl", {class: "facts"},
      field("Balance", f.ether(account.balance)),
      field("Nonce", String(f.quantity(account.nonce))),
      field("Code", account.code === "0x" ? "none (an account)" : `${(account.code.length - 2) / 2} bytes (a contract)`)),
    h("h3", {}, "Transactions in the blocks this page holds"),
    entries.length ? h("ul", {class: "plain"}, entries.map((e) => h("li", {},
      h("a", {href: `#/tx/${e.hash}`, class: "mono"}, e.hash), " ", badge(e.status?.state ?? "included"),
      e.tx.from.toLowerCase() === lower ? " sent" : e.tx.to?.toLowerCase() === lower ? " received" : " created it")))
      : h("p", {}, "None in the loaded blocks."));
  return {key, node};
}

export const messageView = (title, text) => ({key: `message:${title}:${text}`, node: h("div", {}, heading(title), h("p", {}, text))});
