// JSON-RPC to the node that served the page: what its two transports (HTTP here, WebSocket in
// ws.js) share, and the HTTP one.

/** The node did not answer at all (it is down, restarting, or the network failed). */
export class Unreachable extends Error {}

/** The node answered a call with a JSON-RPC error object. */
export class RpcError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
  }
}

/** The node refuses batches of more calls than this (docs/RPC.md): larger ones are split. */
const MAX_BATCH = 1000;

/** Calls and batches over a transport; a subclass sends one batch with `send(body)`. */
export class JsonRpc {
  constructor() {
    this.nextId = 1;
  }

  /** One call; throws RpcError or Unreachable. */
  async call(method, ...params) {
    const [answer] = await this.batch([[method, params]]);
    if (answer instanceof Error) throw answer;
    return answer;
  }

  /**
   * Several calls at once: `calls` is a list of [method, params]. Resolves to one entry per
   * call, in order: its result, or an RpcError for a call the node refused (so one bad call
   * does not hide the others). Throws Unreachable if the node cannot be reached.
   */
  async batch(calls) {
    const chunks = [];
    for (let i = 0; i < calls.length; i += MAX_BATCH) chunks.push(calls.slice(i, i + MAX_BATCH));
    const answers = await Promise.all(chunks.map((chunk) => this.chunk(chunk)));
    return answers.flat();
  }

  async chunk(calls) {
    const first = this.nextId;
    this.nextId += calls.length;
    const body = calls.map(([method, params], i) => ({jsonrpc: "2.0", id: first + i, method, params}));
    const answers = await this.send(body);
    if (!Array.isArray(answers)) throw new Unreachable("the node did not answer the batch");
    const byId = new Map(answers.map((a) => [a?.id, a]));
    return calls.map((_, i) => {
      const answer = byId.get(first + i);
      if (answer === undefined) return new RpcError({code: -32603, message: "no answer"});
      return "error" in answer ? new RpcError(answer.error) : answer.result;
    });
  }
}

/** JSON-RPC over HTTP: one POST per batch. */
export class RpcClient extends JsonRpc {
  constructor(url) {
    super();
    this.url = url;
  }

  async send(body) {
    try {
      const response = await fetch(this.url, {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
        cache: "no-store",
      });
      return await response.json();
    } catch (err) {
      throw new Unreachable(String(err && err.message || err));
    }
  }
}
