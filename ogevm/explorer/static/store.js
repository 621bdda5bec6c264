// What the page knows: the events of a source folded into blocks, transactions, inference
// records, statistics samples and the model catalogue. No I/O and no DOM here.

export class Store {
  constructor({keepBlocks = 200, keepSamples = 240} = {}) {
    this.keepBlocks = keepBlocks;
    this.keepSamples = keepSamples;
    this.blocks = new Map();   // number -> block (full transactions)
    this.txs = new Map();      // hash -> {hash, tx, status, receipt, records, block, seen, version}
    this.records = new Map();  // request id -> record
    this.samples = [];         // [{at, stats}], oldest first
    this.models = [];
    this.connection = {up: null, error: null, at: Date.now()};
  }

  /** Fold one source event in. */
  apply(event) {
    switch (event.type) {
      case "connection":
        this.connection = {up: event.up, error: event.error, at: Date.now()};
        break;
      case "reset":
        this.blocks.clear();
        this.txs.clear();
        this.records.clear();
        break;
      case "blocks":
        for (const block of event.blocks) this.addBlock(block);
        break;
      case "tx":
        this.updateTx(event);
        break;
      case "stats":
        this.samples.push({at: event.at, stats: event.stats});
        if (this.samples.length > this.keepSamples) this.samples.shift();
        break;
      case "models":
        this.models = event.models;
        break;
      default:
        throw new Error(`unknown event ${event.type}`);
    }
  }

  addBlock(block) {
    const number = parseInt(block.number, 16);
    this.blocks.set(number, block);
    for (const tx of block.transactions) {
      const entry = this.tx(tx.hash);
      entry.tx = tx;
      entry.block = number;
      entry.version += 1;
    }
    for (const old of [...this.blocks.keys()].sort((a, b) => a - b).slice(0, -this.keepBlocks)) {
      for (const tx of this.blocks.get(old).transactions) this.forgetTx(tx.hash);
      this.blocks.delete(old);
    }
  }

  /** Merge what an event tells about a transaction; its version changes only if something did. */
  updateTx({hash, ...news}) {
    const entry = this.tx(hash);
    let changed = false;
    for (const name of ["tx", "status", "receipt", "records"]) {
      if (news[name] === undefined || JSON.stringify(entry[name]) === JSON.stringify(news[name])) continue;
      entry[name] = news[name];
      changed = true;
    }
    for (const record of news.records || []) this.records.set(record.requestId, record);
    if (changed) entry.version += 1;
  }

  forgetTx(hash) {
    const entry = this.txs.get(hash);
    for (const record of entry?.records || []) this.records.delete(record.requestId);
    this.txs.delete(hash);
  }

  /** The entry of `hash`, created empty if the page has not heard of it yet. */
  tx(hash) {
    let entry = this.txs.get(hash);
    if (entry === undefined) {
      entry = {hash, tx: null, status: null, receipt: null, records: null, block: null, seen: Date.now(), version: 0};
      this.txs.set(hash, entry);
    }
    return entry;
  }

  /** Transactions still in the pool first, then by block, newest first. */
  recentTxs(limit) {
    const block = (e) => (e.block === null ? Infinity : e.block);
    return [...this.txs.values()].sort((a, b) => block(b) - block(a) || b.seen - a.seen).slice(0, limit);
  }

  /** Inference records, newest transaction first. */
  recentRecords(limit) {
    return this.recentTxs(Infinity).flatMap((e) => e.records || []).slice(0, limit);
  }

  model(cid) {
    return this.models.find((m) => m.cid === cid) || null;
  }

  head() {
    return this.blocks.size === 0 ? null : Math.max(...this.blocks.keys());
  }
}

/**
 * Seconds a transaction spent waiting for its models (inferring -> ready, over every round):
 * time PIPE kept off the block path. Null without a history (e.g. read back after a restart).
 */
export function inferenceSeconds(status) {
  const history = status?.history || [];
  let total = 0;
  let started = null;
  for (const step of history) {
    if (step.state === "inferring") started = step.at;
    else if (step.state === "ready" && started !== null) {
      total += step.at - started;
      started = null;
    }
  }
  return history.length === 0 ? null : total;
}
