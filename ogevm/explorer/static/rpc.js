// JSON-RPC over HTTP to the node that served the page.

/** The node did not answer at all (it is down, restarting, or the network failed). */
export class Unreachable extends Error {}

/** The node answered a call with a JSON-RPC error object. */
export class RpcError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
  }
}

export class RpcClient {
  constructor(url) {
    this.url = url;
    this.nextId = 1;
  }

  /** One call; throws RpcError or Unreachable. */
  async call(method, ...params) {
    const [answer] = await this.batch([[method, params]]);
    if (answer instanceof Error) throw answer;
    return answer;
  }

  /**
   * Several calls in one POST: `calls` is a list of [method, params]. Resolves to one entry
   * per call, in order: its result, or an RpcError for a call the node refused (so one bad
   * call does not hide the others). Throws Unreachable if the node cannot be reached.
   */
  async batch(calls) {
    if (calls.length === 0) return [];
    const first = this.nextId;
    this.nextId += calls.length;
    const body = calls.map(([method, params], i) => ({jsonrpc: "2.0", id: first + i, method, params}));
    let answers;
    try {
      const response = await fetch(this.url, {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
        cache: "no-store",
      });
      answers = await response.json();
    } catch (err) {
      throw new Unreachable(String(err && err.message || err));
    }
    if (!Array.isArray(answers)) throw new Unreachable("the node did not answer the batch");
    const byId = new Map(answers.map((a) => [a.id, a]));
    return calls.map((_, i) => {
      const answer = byId.get(first + i);
      if (answer === undefined) return new RpcError({code: -32603, message: "no answer"});
      return "error" in answer ? new RpcError(answer.error) : answer.result;
    });
  }
}
