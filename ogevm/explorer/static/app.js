// The page: a source feeds the store, the views draw it; the URL fragment names the block,
// transaction, request or address shown in detail (#/block/12, #/tx/0x…, #/request/0x…:0,
// #/address/0x…), so every view has a link and the back button works. The page follows the node
// over its WebSocket, or polls it with `?poll` (every 500 ms; `?poll=200`: every 200 ms) or when
// the node refuses the WebSocket.

import {RpcClient, RpcError, Unreachable} from "./rpc.js";
import {PollingSource, withBuildStats} from "./source.js";
import {Store} from "./store.js";
import {WsSource} from "./stream.js";
import {
  addressView, blockView, messageView, renderBlocks, renderCharts, renderModels, renderRecords,
  renderTxs, requestView, txView,
} from "./views.js";

const $ = (id) => document.getElementById(id);
const rpc = new RpcClient(new URL("/", location.href).href);
const [MIN_INTERVAL, MAX_INTERVAL] = [100, 60_000];  // beyond 2^31 ms a timer would fire at once
const query = new URLSearchParams(location.search);
const asked = Number(query.get("poll"));
const interval = asked > 0 ? Math.min(MAX_INTERVAL, Math.max(MIN_INTERVAL, asked)) : 500;
const polling = () => new PollingSource(rpc, {interval});
const socketUrl = new URL("/", location.href);
socketUrl.protocol = location.protocol === "https:" ? "wss:" : "ws:";
const source = query.has("poll") ? polling() : new WsSource(rpc, socketUrl.href, {fallback: polling});
const store = new Store();

// --- search and routes --------------------------------------------------------------------
const HASH = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const REQUEST = /^(0x[0-9a-fA-F]{64}):(\d+)$/;

/** The route a search means, or null: a number is a block, 0x+64 a tx or block hash, …:n a request. */
function searchRoute(text) {
  const query = text.trim().replace(/^#/, "");
  if (/^\d+$/.test(query)) return `#/block/${Number(query)}`;
  if (REQUEST.test(query)) return `#/request/${query.toLowerCase()}`;
  if (HASH.test(query)) return `#/hash/${query.toLowerCase()}`;
  if (ADDRESS.test(query)) return `#/address/${query}`;
  return null;
}

/** {kind, value} of a fragment such as #/tx/0x…, or null (the overview). */
function parseRoute(fragment) {
  const match = /^#\/(block|tx|request|hash|address)\/(.+)$/.exec(fragment);
  if (!match) return null;
  let value;
  try {
    value = decodeURIComponent(match[2]);
  } catch {
    return null;  // a malformed %-escape: show the overview
  }
  return {kind: match[1], value: match[1] === "address" ? value : value.toLowerCase()};
}

let route = null;
let extra = null;   // what a route needs that the store does not hold (an old block, an account)
let shownKey = null;

async function loadTx(hash) {
  const [status, tx, receipt, records] = await rpc.batch([
    ["og_getTransactionStatus", [hash]], ["eth_getTransactionByHash", [hash]],
    ["eth_getTransactionReceipt", [hash]], ["og_getInferenceRecords", [hash]],
  ]);
  if (status instanceof RpcError) return false;
  const event = {type: "tx", hash, status};
  if (!(tx instanceof Error) && tx !== null) event.tx = tx;
  if (["included", "rejected"].includes(status.state) && !(receipt instanceof Error) && !(records instanceof Error)) {
    Object.assign(event, {receipt, records});
  }
  store.apply(event);
  source.follow(hash);
  return true;
}

/** Fetch what the route needs beyond the store; returns a message view if there is nothing to show. */
async function resolve(current) {
  const {kind, value} = current;
  if (kind === "hash") {
    if (store.txs.has(value) || await loadTx(value)) return location.replace(`#/tx/${value}`);
    const block = await rpc.call("eth_getBlockByHash", value, false);
    if (block) return location.replace(`#/block/${parseInt(block.number, 16)}`);
    return messageView("Not found", `No transaction or block ${value} on this node.`);
  }
  if (kind === "tx" && !HASH.test(value)) return messageView("Not a transaction hash", value);
  if (kind === "tx" && !store.txs.get(value)?.status && !await loadTx(value)) {
    return messageView("Unknown transaction", `This node never accepted transaction ${value}.`);
  }
  if (kind === "request") {
    const [, txHash] = REQUEST.exec(value) || [];
    if (!txHash) return messageView("Not a request id", `${value} is not <tx hash>:<index>.`);
    if (!store.records.has(value) && !await loadTx(txHash)) {
      return messageView("Unknown request", `This node never accepted transaction ${txHash}.`);
    }
    if (!store.records.has(value)) return messageView("No record yet", `No inference record ${value} yet: the transaction is ${store.txs.get(txHash)?.status?.state ?? "unknown"}.`);
  }
  if (kind === "block") {
    const number = Number(value);
    if (!Number.isSafeInteger(number) || number < 0) return messageView("Not a block number", value);
    if (!store.blocks.has(number)) {
      const [block, stats] = await rpc.batch([["eth_getBlockByNumber", ["0x" + number.toString(16), true]],
        ["og_getBlockStats", ["0x" + number.toString(16)]]]);
      if (block instanceof Error) throw block;
      if (block === null) return messageView("No such block yet", `Block #${number} is beyond the head.`);
      extra = {block: {...block, buildStats: withBuildStats(block, stats)}};
    }
  }
  if (kind === "address") {
    if (!ADDRESS.test(value)) return messageView("Not an address", value);
    const [balance, nonce, code] = await rpc.batch([
      ["eth_getBalance", [value, "latest"]], ["eth_getTransactionCount", [value, "latest"]], ["eth_getCode", [value, "latest"]],
    ]);
    extra = {account: {balance, nonce, code}};
  }
  return null;
}

function detailView() {
  const {kind, value} = route;
  if (extra?.message) return extra.message;
  if (kind === "tx") return store.txs.get(value) ? txView(store, store.tx(value)) : messageView("Loading", value);
  if (kind === "block") {
    const block = store.blocks.get(Number(value)) ?? extra?.block;
    return block ? blockView(store, block) : messageView("Loading", value);
  }
  if (kind === "request") {
    const record = store.records.get(value);
    return record ? requestView(store, record) : messageView("Loading", value);
  }
  if (kind === "address" && extra?.account) return addressView(store, value, extra.account);
  return messageView("Loading", value);
}

function drawDetail(focus) {
  const detail = $("detail");
  if (route === null) {
    detail.hidden = true;
    detail.replaceChildren();
    shownKey = null;
    return;
  }
  const {key, node} = detailView();
  if (key !== shownKey || focus) {
    shownKey = key;
    detail.replaceChildren(node, closeButton());
    detail.hidden = false;
    if (focus) detail.querySelector("h2").focus();
  }
}

function closeButton() {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "close";
  button.textContent = "Close details";
  button.addEventListener("click", () => { location.hash = "#/"; });
  return button;
}

async function onRoute() {
  const current = parseRoute(location.hash);
  route = current;
  extra = null;
  if (current === null) return drawDetail(false);
  drawDetail(true);
  try {
    const message = await resolve(current);
    if (route !== current) return;  // the user went elsewhere meanwhile
    if (message) extra = {message};
  } catch (err) {
    if (!(err instanceof Unreachable || err instanceof RpcError)) throw err;
    if (route === current) extra = {message: messageView("The node did not answer", err.message)};
  }
  if (route === current) drawDetail(true);
}

function onSearch(event) {
  event.preventDefault();
  const input = $("q");
  const target = searchRoute(input.value);
  const error = $("search-error");
  if (target === null) {
    input.setAttribute("aria-invalid", "true");
    error.textContent = "Type a transaction or block hash (0x + 64 hex digits), a block number, "
      + "a request id (tx hash:index) or an address (0x + 40 hex digits).";
    return;
  }
  input.removeAttribute("aria-invalid");
  error.textContent = "";
  if (location.hash === target) onRoute(); else location.hash = target;
}

// --- live drawing -------------------------------------------------------------------------
function drawConnection() {
  const element = $("connection");
  const {up, error, at} = store.connection;
  element.dataset.state = up === null ? "connecting" : up ? "up" : "down";
  element.dataset.source = source.via;
  if (up === null) element.textContent = "Connecting to the node…";
  else if (up) {
    const head = store.head();
    const pooled = store.samples.at(-1)?.stats.pooled ?? 0;
    const how = source.via === "websocket" ? "over WebSocket" : `polling every ${interval} ms`;
    element.textContent = `Live · ${how} · head #${head ?? "–"} · ${pooled} in the pool`;
  } else {
    element.textContent = `Node not answering since ${new Date(at).toLocaleTimeString("en-GB")} (${error}); retrying…`;
  }
}

function draw() {
  drawConnection();
  renderBlocks(store, $("block-rows"));
  renderTxs(store, $("tx-rows"));
  renderRecords(store, $("record-rows"));
  renderModels(store, $("model-rows"));
  renderCharts(store, {pool: $("chart-pool"), inflight: $("chart-inflight"), passes: $("chart-passes"), blocks: $("chart-blocks"),
    batches: $("chart-batches")});
  for (const [list, count] of [["blocks", store.blocks.size], ["transactions", store.txs.size],
    ["records", store.records.size], ["models", store.models.length]]) {
    $(`${list}-empty`).hidden = count > 0;
  }
  if (route !== null) drawDetail(false);
}

let scheduled = false;
/** Draw once per frame, however many events came since (a burst streams thousands). */
function scheduleDraw() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    draw();
  });
}

source.on((event) => {
  store.apply(event);
  scheduleDraw();
});
$("search").addEventListener("submit", onSearch);
window.addEventListener("hashchange", onRoute);
onRoute();
draw();
source.start();
