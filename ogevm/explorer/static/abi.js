// Just enough Solidity ABI decoding to read the inference precompile's ModelInferenceEvent
// from a receipt: the request's inputs, which no og_ method returns.

export const PRECOMPILE = "0x00000000000000000000000000000000000000f4";

const NUMBER = {tuple: ["int", "int"]};
const NUMBER_TENSOR = {tuple: ["string", {array: NUMBER}, {array: "uint"}]};
const STRING_TENSOR = {tuple: ["string", {array: "string"}]};
const JSON_SCALAR = {tuple: ["string", "string"]};
const REQUEST = {tuple: ["uint", "string", {tuple: [{array: NUMBER_TENSOR}, {array: STRING_TENSOR}]}]};
const OUTPUT = {tuple: [{array: NUMBER_TENSOR}, {array: STRING_TENSOR}, {array: JSON_SCALAR}, "bool"]};
const MODES = ["VANILLA", "ZKML", "TEE"];

const isDynamic = (type) =>
  type === "string" || type.array !== undefined || (type.tuple !== undefined && type.tuple.some(isDynamic));

const headSize = (type) => (!isDynamic(type) && type.tuple ? type.tuple.reduce((n, t) => n + headSize(t), 0) : 32);

class Reader {
  constructor(hex) {
    if (!/^0x([0-9a-fA-F]{2})*$/.test(hex)) throw new Error("not hex data");
    this.hex = hex.slice(2);
    this.size = this.hex.length / 2;
  }

  word(at) {
    if (at < 0 || at + 32 > this.size) throw new Error(`read past the end at byte ${at}`);
    return BigInt("0x" + this.hex.slice(2 * at, 2 * at + 64));
  }

  offset(at) {
    const value = this.word(at);
    if (value > BigInt(this.size)) throw new Error(`offset ${value} past the end`);
    return Number(value);
  }

  tuple(types, start) {
    let head = start;
    return types.map((type) => {
      const value = isDynamic(type) ? this.value(type, start + this.offset(head)) : this.value(type, head);
      head += headSize(type);
      return value;
    });
  }

  value(type, at) {
    if (type === "uint") return this.word(at);
    if (type === "int") {
      const word = this.word(at);
      return word >= 1n << 255n ? word - (1n << 256n) : word;
    }
    if (type === "bool") return this.word(at) !== 0n;
    if (type === "string") {
      const length = this.offset(at);
      if (at + 32 + length > this.size) throw new Error("string past the end");
      const bytes = this.hex.slice(2 * (at + 32), 2 * (at + 32 + length)).match(/../g) || [];
      return new TextDecoder().decode(new Uint8Array(bytes.map((b) => parseInt(b, 16))));
    }
    if (type.array !== undefined) {
      const length = this.offset(at);
      if (at + 32 + length * headSize(type.array) > this.size) throw new Error("array past the end");
      return this.tuple(Array(length).fill(type.array), at + 32);
    }
    return this.tuple(type.tuple, at);
  }
}

/** `value × 10^-decimals` written exactly, as a decimal string. */
export function decimalString(value, decimals) {
  const v = BigInt(value);
  const d = BigInt(decimals);
  if (d <= 0n) return (v * 10n ** -d).toString();
  const digits = (v < 0n ? -v : v).toString().padStart(Number(d) + 1, "0");
  const cut = digits.length - Number(d);
  const fraction = digits.slice(cut).replace(/0+$/, "");
  return (v < 0n ? "-" : "") + digits.slice(0, cut) + (fraction ? "." + fraction : "");
}

const numberTensors = (tensors) => tensors.map(([name, values, shape]) => ({
  name, shape: shape.map(Number), decimal: values.map(([v, d]) => decimalString(v, d)),
}));

/**
 * The ModelInferenceEvent `data` of a log: {inferenceId, mode, modelCid, inputs, outputs}, numbers
 * as exact decimal strings. Throws Error on data that is not such an event.
 */
export function decodeInferenceEvent(data) {
  const reader = new Reader(data);
  const [inferenceId, [mode, modelCid, [numbers, strings]], [outNumbers, outStrings, jsons]] =
    reader.tuple(["string", REQUEST, OUTPUT], 0);
  return {
    inferenceId, mode: MODES[Number(mode)] ?? `mode ${mode}`, modelCid,
    inputs: {numbers: numberTensors(numbers), strings: strings.map(([name, values]) => ({name, values}))},
    outputs: {numbers: numberTensors(outNumbers), strings: outStrings.map(([name, values]) => ({name, values})),
      jsons: jsons.map(([name, value]) => ({name, value}))},
  };
}

/** The decoded inference events of a receipt, in log order; a log that does not decode is skipped. */
export function inferenceEvents(receipt) {
  const events = [];
  for (const log of receipt?.logs || []) {
    if (log.address.toLowerCase() !== PRECOMPILE) continue;
    try {
      events.push(decodeInferenceEvent(log.data));
    } catch {
      // not an inference event (the precompile emits nothing else today)
    }
  }
  return events;
}
