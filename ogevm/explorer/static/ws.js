// JSON-RPC over the node's WebSocket (same port and path as HTTP): batches and subscriptions on
// one connection. The connection is lost, for good, when it closes, when a batch is not answered
// within `timeout` ms, when a frame is not what the node sends, or when the node closes a
// subscription (it does so for a client that read too slowly): the owner then connects again
// and reads what it missed.

import {JsonRpc, Unreachable} from "./rpc.js";

export class WsClient extends JsonRpc {
  constructor(url, {timeout = 15_000} = {}) {
    super();
    this.url = url;
    this.timeout = timeout;
    this.waiting = new Map();   // id of a batch's first call -> {resolve, reject, timer}
    this.handlers = new Map();  // subscription id -> handler of its results
    this.closed = null;         // why the connection was lost, once it was
    this.onclose = () => {};    // called once, with that reason
  }

  /** Connect; resolves once open, throws Unreachable if the connection fails first. */
  open() {
    return new Promise((resolve, reject) => {
      this.socket = new WebSocket(this.url);
      this.socket.onopen = () => resolve();
      this.socket.onmessage = (message) => this.receive(message.data);
      this.socket.onclose = (event) => {
        const reason = `WebSocket closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`;
        reject(new Unreachable(reason));  // nothing once open
        this.lose(reason);
      };
    });
  }

  close() {
    this.lose("closed by the page");
  }

  /** Subscribe (eth_subscribe); `handler` gets each notification's result. Returns the id. */
  async subscribe(handler, type, ...params) {
    const id = await this.call("eth_subscribe", type, ...params);
    // registered before the next frame is read: promise callbacks run before the next message event
    this.handlers.set(id, handler);
    return id;
  }

  send(body) {
    if (this.closed !== null) return Promise.reject(new Unreachable(this.closed));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.lose(`the node did not answer within ${this.timeout} ms`), this.timeout);
      this.waiting.set(body[0].id, {resolve, reject, timer});
      this.socket.send(JSON.stringify(body));
    });
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return this.lose("the node sent a frame that is not JSON");
    }
    if (Array.isArray(message)) {
      // a batch's answers, in any order: the smallest id is the batch's first call
      const first = Math.min(...message.map((answer) => answer?.id).filter(Number.isInteger));
      const batch = this.waiting.get(first);
      if (batch === undefined) return this.lose("the node answered a batch the page did not send");
      this.waiting.delete(first);
      clearTimeout(batch.timer);
      return batch.resolve(message);
    }
    if (message?.method !== "eth_subscription" || typeof message.params !== "object" || message.params === null) {
      return this.lose("the node sent a frame that is neither an answer nor a notification");
    }
    const {subscription, result, error} = message.params;
    const handler = this.handlers.get(subscription);
    if (handler === undefined) return undefined;  // one this page no longer holds
    if (error !== undefined) return this.lose(`subscription closed: ${error?.message}`);
    return handler(result);
  }

  /** The connection is lost: every unanswered batch fails with `reason`, and onclose hears it. */
  lose(reason) {
    if (this.closed !== null) return;
    this.closed = reason;
    for (const {reject, timer} of this.waiting.values()) {
      clearTimeout(timer);
      reject(new Unreachable(reason));
    }
    this.waiting.clear();
    this.handlers.clear();
    this.socket?.close();
    this.onclose(reason);
  }
}
