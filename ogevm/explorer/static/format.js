// How values read on the page.

export const short = (hex, keep = 6) => (hex && hex.length > 2 * keep + 4 ? `${hex.slice(0, keep + 2)}…${hex.slice(-keep)}` : hex ?? "");

export const quantity = (hex) => (hex === null || hex === undefined ? null : parseInt(hex, 16));

export const grouped = (n) => (n === null || n === undefined ? "–" : n.toLocaleString("en-US"));

export function ether(hexWei) {
  const wei = BigInt(hexWei);
  if (wei !== 0n && wei < 10n ** 12n) return `${wei} wei`;
  const whole = wei / 10n ** 18n;
  const fraction = (wei % 10n ** 18n).toString().padStart(18, "0").slice(0, 6).replace(/0+$/, "");
  return `${whole}${fraction ? "." + fraction : ""} ETH`;
}

export const seconds = (s) => (s === null || s === undefined ? "–" : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`);

export const clock = (unixSeconds) => new Date(unixSeconds * 1000).toLocaleTimeString("en-GB");

/** The mode as a user should read it: TEE here is a software enclave. */
export const modeLabel = (mode) => (mode === "TEE" ? "TEE (simulated)" : mode);

/** A model has no name on chain: its signature, e.g. "x[?,4] → y", says what it is. */
export function modelSignature(model) {
  if (!model) return "";
  const inputs = model.inputs.map((i) => `${i.name}[${i.shape.map((d) => d ?? "?").join(",")}]`);
  return `${inputs.join(", ")} → ${model.outputs.map((o) => o.name).join(", ")}`;
}

/** Number tensors as "name = [1.5, 2] (shape 1×2)". */
export const tensors = (numbers) =>
  numbers.map((t) => `${t.name} = [${t.decimal.join(", ")}]${t.shape ? ` (shape ${t.shape.join("×")})` : ""}`);

/** The passes a transaction has taken so far (EVM executions: simulations and replays). */
export const passes = (status) => status?.history?.at(-1)?.passes ?? null;
