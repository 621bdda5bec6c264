// The live source: the node's WebSocket subscriptions turned into the events of source.js.
// newHeads says when to read a block; og_pipeTransitions carries every step of every
// transaction, from which the source keeps the status of those not finished;
// newPendingTransactions carries the body of each one admitted. No stream carries the PIPE
// statistics or the model catalogue: those are read at a low rate (and the statistics at each
// block), together with the head, which catches what no header announces (evm_revert).
//
// When the connection is lost (the node stopped, restarted, or did not answer) it connects
// again with a growing delay and reads what it missed. If the node refuses the WebSocket or
// its subscriptions while it answers over HTTP, the page polls instead (`fallback`).

import {RpcError, Unreachable} from "./rpc.js";
import {Source} from "./source.js";
import {WsClient} from "./ws.js";

/** WebSocket failures in a row, while HTTP answers, after which the page polls. */
const REFUSALS = 2;

export class WsSource extends Source {
  /**
   * `http` is the node's RpcClient (to tell a refused WebSocket from a node that is down),
   * `url` its ws:// address, and `fallback()` makes the PollingSource used if it is refused.
   */
  constructor(http, url, {fallback, statsInterval = 1000, modelsEvery = 5, retry = [200, 2000], timeout = 15_000,
    ...options} = {}) {
    super(null, options);
    Object.assign(this, {http, url, fallback, statsInterval, modelsEvery, retry, timeout});
    this.tracked = new Map();  // hash -> status, of transactions not finished (built from their steps)
    this.live = null;          // the connection whose subscriptions are in place
    this.delay = retry[0];
    this.refusals = 0;
    this.polls = 0;
    this.queue = Promise.resolve();
    this.polling = null;       // the fallback, once the WebSocket was refused
  }

  get via() {
    return this.polling ? "polling" : "websocket";
  }

  start() {
    this.running = true;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    clearInterval(this.ticker);
    this.rpc?.close();
    this.polling?.stop();
  }

  /** Over the stream every transaction's steps arrive anyway; the fallback needs telling. */
  follow(hash) {
    this.polling?.follow(hash);
  }

  async connect() {
    const rpc = new WsClient(this.url, {timeout: this.timeout});
    rpc.onclose = (reason) => this.lost(rpc, reason);
    try {
      await rpc.open();
      this.rpc = rpc;  // what the notifications below read with, as soon as they come
      await Promise.all([
        rpc.subscribe((header) => this.serially(() => this.onHead(header)), "newHeads"),
        rpc.subscribe((step) => this.serially(() => this.onStep(step)), "og_pipeTransitions"),
        rpc.subscribe((tx) => this.serially(() => this.emit({type: "tx", hash: tx.hash, tx})), "newPendingTransactions", true),
      ]);
      if (rpc.closed !== null) throw new Unreachable(rpc.closed);
    } catch (err) {
      if (!(err instanceof Unreachable || err instanceof RpcError)) throw err;
      rpc.close();
      return this.refused(err.message, err instanceof RpcError);
    }
    this.live = rpc;
    this.delay = this.retry[0];
    this.refusals = 0;
    await this.serially(() => this.resync());
    if (this.live !== rpc) return;
    this.connection(true, null);
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.serially(() => this.poll()), this.statsInterval);
  }

  /** A connection that had its subscriptions closed: say the node is gone, and connect again. */
  lost(rpc, reason) {
    if (this.live !== rpc) return;
    this.live = null;
    clearInterval(this.ticker);
    this.connection(false, reason);
    this.retryLater();
  }

  /**
   * An attempt failed before its subscriptions were in place. If HTTP answers, the WebSocket is
   * refused (or, at once, its subscriptions are); after REFUSALS such failures the page polls.
   * Otherwise the node is down: try again later.
   */
  async refused(reason, subscriptionsRefused) {
    if (!this.running) return;
    const httpAnswers = subscriptionsRefused || await this.http.call("eth_blockNumber").then(
      () => true, (err) => err instanceof RpcError);
    this.refusals = httpAnswers ? this.refusals + 1 : 0;
    if (subscriptionsRefused || this.refusals >= REFUSALS) {
      this.polling = this.fallback();
      for (const listener of this.listeners) this.polling.on(listener);
      this.polling.start();
      return;
    }
    if (!httpAnswers) this.connection(false, reason);
    this.retryLater();
  }

  retryLater() {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(2 * this.delay, this.retry[1]);
  }

  /** Run `work` after the work queued before it, so events keep the order the node sent them in. */
  serially(work) {
    const run = this.queue.then(work).catch((err) => {
      if (!(err instanceof Unreachable)) throw err;  // the connection went: `lost` deals with it
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** After (re)connecting: the steps missed meanwhile, then the head, statistics and models. */
  async resync() {
    await this.refresh([...this.tracked.keys()]);
    await this.poll();
    await this.finishReady([...this.tracked.keys()]);
  }

  async poll() {
    const withModels = this.polls % this.modelsEvery === 0;
    this.polls += 1;
    const [latest, stats, models] = await this.rpc.batch([
      ["eth_getBlockByNumber", ["latest", false]], ["og_pipeStats", []], ...(withModels ? [["og_listModels", []]] : []),
    ]);
    if (!(stats instanceof Error)) this.emit({type: "stats", at: Date.now(), stats});
    if (withModels && !(models instanceof Error)) this.emit({type: "models", models});
    if (!(latest instanceof Error)) await this.catchUp(parseInt(latest.number, 16), latest.hash);
  }

  async onHead(header) {
    const number = parseInt(header.number, 16);
    // behind the head: either a poll delivered it already or the chain went back; the latest head says which
    if (this.head !== null && number < this.head) return this.poll();
    return this.catchUp(number, header.hash);
  }

  /**
   * Deliver the blocks up to `number`, each with a statistics sample and its transactions
   * finished: receipt, records, and the status of those whose steps were not all seen.
   */
  async catchUp(number, hash) {
    do {
      const blocks = await this.newBlocks(number, hash);
      if (blocks.length === 0) return;
      const hashes = blocks.flatMap((block) => block.transactions.map((tx) => tx.hash));
      const [[stats]] = await Promise.all([
        this.rpc.batch([["og_pipeStats", []]]),
        this.refresh(hashes.filter((h) => this.tracked.get(h)?.state !== "included")),
      ]);
      if (!(stats instanceof Error)) this.emit({type: "stats", at: Date.now(), stats});
      await this.finishReady(hashes);
    } while (this.head < number);
  }

  /** Read the status of transactions whose steps may have been missed, and keep following them. */
  async refresh(hashes) {
    const statuses = await this.rpc.batch(hashes.map((h) => ["og_getTransactionStatus", [h]]));
    hashes.forEach((hash, i) => {
      const status = statuses[i];
      if (status instanceof RpcError) {  // not accepted by this node (e.g. before it restarted in memory)
        this.tracked.delete(hash);
        return;
      }
      this.tracked.set(hash, status);
      this.emit({type: "tx", hash, status});
    });
  }

  /** One PIPE step of a transaction. */
  async onStep(step) {
    const hash = step.txHash;
    let status = this.tracked.get(hash);
    if (status === undefined && step.state !== "pending") {
      // admitted before this connection: read its path so far (this step included)
      const [tx] = await this.rpc.batch([["eth_getTransactionByHash", [hash]]]);
      if (tx !== null && !(tx instanceof Error)) this.emit({type: "tx", hash, tx});
      await this.refresh([hash]);
      status = this.tracked.get(hash);
      if (status === undefined) return;
    }
    status ??= {state: step.state, reason: null, block: null, history: []};
    if (!status.history.some((s) => s.at === step.at && s.state === step.state)) {
      status = {...status, state: step.state, reason: step.reason, block: step.block, history: [...status.history, step]};
      this.tracked.set(hash, status);
      this.emit({type: "tx", hash, status});
    }
    await this.finishReady([hash]);
  }

  /** Finish those of `hashes` that are rejected, or included in a block delivered already. */
  async finishReady(hashes) {
    const ready = hashes.map((hash) => ({hash, ...this.tracked.get(hash)})).filter(({state, block}) =>
      state === "rejected" || (state === "included" && this.head !== null && block <= this.head));
    for (const hash of await this.finish(ready)) this.tracked.delete(hash);
  }

  forget() {
    this.tracked.clear();
  }
}
