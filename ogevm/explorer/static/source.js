// Where the page's live data comes from. A source turns the node's state into a stream of
// events; the store and the views only see events. Two sources make them: this module's
// PollingSource, which asks the node what changed every 500 ms, and stream.js's WsSource, which
// follows the node's WebSocket subscriptions. `via` names the one at work.
//
// Events:
//   {type: "connection", up, error}          the node answered (again), or stopped answering
//   {type: "reset"}                          the chain was replaced (an in-memory node restarted)
//   {type: "blocks", blocks}                 new blocks, ascending, with full transactions and
//                                            `buildStats` (og_getBlockStats; null if the node has none)
//   {type: "tx", hash, tx?, status?, receipt?, records?}   what is known of a transaction
//   {type: "stats", at, stats}               og_pipeStats, sampled at `at` (ms since the epoch)
//   {type: "models", models}                 og_listModels

import {RpcError, Unreachable} from "./rpc.js";

export const TERMINAL = new Set(["included", "rejected"]);

/** `stats` (an answer to og_getBlockStats) if it is that of `block`, else null. */
export function withBuildStats(block, stats) {
  return stats instanceof Error || stats?.hash !== block.hash ? null : stats;
}

/** What both sources do: emit events, follow the chain's head, read finished transactions. */
export class Source {
  constructor(rpc, {backfill = 30, maxBlocksPerPoll = 50} = {}) {
    Object.assign(this, {rpc, backfill, maxBlocksPerPoll});
    this.listeners = [];
    this.head = null;          // number of the last block delivered
    this.headHash = null;
    this.up = null;
  }

  on(listener) {
    this.listeners.push(listener);
  }

  emit(event) {
    for (const listener of this.listeners) listener(event);
  }

  connection(up, error) {
    if (up === this.up) return;
    this.up = up;
    this.emit({type: "connection", up, error});
  }

  /**
   * Deliver the blocks after the last one delivered, up to block `number` (whose hash is
   * `hash`), at most `maxBlocksPerPoll` of them; on first contact (or after the chain was
   * replaced) the last `backfill` ones. Returns the blocks delivered.
   */
  async newBlocks(number, hash) {
    if (this.head !== null && (number < this.head || (number === this.head && hash !== this.headHash))) {
      this.replaced();
      return this.newBlocks(number, hash);
    }
    const from = this.head === null ? Math.max(0, number - this.backfill + 1) : this.head + 1;
    const to = Math.min(number, from + this.maxBlocksPerPoll - 1);
    if (to < from) return [];
    const numbers = Array.from({length: to - from + 1}, (_, i) => from + i);
    const answers = await this.rpc.batch(numbers.flatMap((n) => [
      ["eth_getBlockByNumber", ["0x" + n.toString(16), true]], ["og_getBlockStats", ["0x" + n.toString(16)]],
    ]));
    const blocks = numbers.map((_, i) => answers[2 * i]);
    if (blocks.some((b) => b === null || b instanceof Error)) return []; // a reorg under us: try again later
    blocks.forEach((block, i) => { block.buildStats = withBuildStats(block, answers[2 * i + 1]); });
    if (this.head !== null && blocks[0].parentHash !== this.headHash) {
      this.replaced();
      return this.newBlocks(number, hash);
    }
    this.head = to;
    this.headHash = blocks[blocks.length - 1].hash;
    this.emit({type: "blocks", blocks});
    return blocks;
  }

  replaced() {
    this.head = this.headHash = null;
    this.forget();
    this.emit({type: "reset"});
  }

  /** Drop what the source keeps about the transactions of a chain that was replaced. */
  forget() {}

  /**
   * Read and emit the receipt and inference records of finished transactions ([{hash, state}]).
   * Returns the hashes done: an included one whose receipt is not readable yet is not.
   */
  async finish(finished) {
    const details = await this.rpc.batch(finished.flatMap(({hash}) => [
      ["eth_getTransactionReceipt", [hash]], ["og_getInferenceRecords", [hash]],
    ]));
    const done = [];
    finished.forEach(({hash, state}, i) => {
      const [receipt, records] = details.slice(2 * i, 2 * i + 2);
      if (receipt instanceof Error || records instanceof Error) return; // asked again later
      if (receipt === null && state === "included") return; // not readable yet
      done.push(hash);
      this.emit({type: "tx", hash, receipt, records});
    });
    return done;
  }
}

export class PollingSource extends Source {
  /**
   * Polls every `interval` ms and asks only for what changed: the head, new blocks, the
   * status of transactions not yet finished, and the pool's new transactions (a filter).
   * On first contact it loads the last `backfill` blocks.
   */
  constructor(rpc, {interval = 500, modelsEvery = 20, ...options} = {}) {
    super(rpc, options);
    Object.assign(this, {interval, modelsEvery});
    this.filter = null;        // id of the pending-transaction filter
    this.watching = new Set(); // transactions whose final status is not known yet
    this.described = new Set(); // transactions whose body was delivered
    this.polls = 0;
    this.timer = null;
  }

  get via() {
    return "polling";
  }

  start() {
    this.running = true;
    this.loop();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
  }

  /** Keep reporting `hash` until it is included or rejected (e.g. a transaction searched for). */
  follow(hash) {
    this.watching.add(hash);
  }

  async loop() {
    const started = Date.now();
    try {
      await this.poll();
      this.connection(true, null);
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err;
      this.filter = null; // filters live in the node's memory: make a new one when it is back
      this.connection(false, err.message);
    } finally {
      // a poll every `interval` ms from start to start, however long the node took to answer
      if (this.running) this.timer = setTimeout(() => this.loop(), Math.max(0, started + this.interval - Date.now()));
    }
  }

  async poll() {
    const calls = [
      ["eth_getBlockByNumber", ["latest", false]],
      ["og_pipeStats", []],
      this.filter === null ? ["eth_newPendingTransactionFilter", []] : ["eth_getFilterChanges", [this.filter]],
    ];
    const withModels = this.polls % this.modelsEvery === 0 || this.up === false;
    if (withModels) calls.push(["og_listModels", []]);
    this.polls += 1;
    const [latest, stats, pending, models] = await this.rpc.batch(calls);
    for (const answer of [latest, stats]) if (answer instanceof Error) throw answer;
    if (pending instanceof RpcError) this.filter = null; // unknown filter: the node restarted
    else if (this.filter === null) this.filter = pending;
    else for (const hash of pending) this.watching.add(hash);
    this.emit({type: "stats", at: Date.now(), stats});
    if (withModels && !(models instanceof Error)) this.emit({type: "models", models});
    for (const block of await this.newBlocks(parseInt(latest.number, 16), latest.hash)) {
      for (const tx of block.transactions) {
        this.watching.add(tx.hash);
        this.described.add(tx.hash);
      }
    }
    await this.transactions();
  }

  forget() {
    this.watching.clear();
    this.described.clear();
  }

  async transactions() {
    const hashes = [...this.watching];
    const undescribed = hashes.filter((h) => !this.described.has(h));
    const answers = await this.rpc.batch([
      ...hashes.map((h) => ["og_getTransactionStatus", [h]]),
      ...undescribed.map((h) => ["eth_getTransactionByHash", [h]]),
    ]);
    const statuses = answers.slice(0, hashes.length);
    undescribed.forEach((hash, i) => {
      const tx = answers[hashes.length + i];
      if (tx instanceof Error || tx === null) return;
      this.described.add(hash);
      this.emit({type: "tx", hash, tx});
    });
    const finished = [];
    hashes.forEach((hash, i) => {
      const status = statuses[i];
      if (status instanceof RpcError) {  // not accepted by this node (e.g. before it restarted in memory)
        this.watching.delete(hash);
        return;
      }
      this.emit({type: "tx", hash, status});
      if (TERMINAL.has(status.state)) finished.push({hash, state: status.state});
    });
    for (const hash of await this.finish(finished)) this.watching.delete(hash);
  }
}
