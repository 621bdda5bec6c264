#!/usr/bin/env node
// Compiles every .sol file under this folder with the pinned solc and writes
// one JSON artifact per deployable contract (plus the OGInference interface)
// to ../fixtures/contracts/.
//
//   node compile.js          write the artifacts
//   node compile.js --check  compile and compare with the artifacts on disk;
//                            exits 1 and lists the files that differ
//
// Source units are named by their path relative to this folder and the
// metadata hash is left out of the bytecode, so the output does not depend
// on where the repository is checked out.

"use strict";

const fs = require("fs");
const path = require("path");

let solc;
try {
  solc = require("solc");
} catch (err) {
  console.error("solc is not installed: run `npm ci` in " + __dirname);
  process.exit(1);
}

const SOURCE_DIR = __dirname;
const ARTIFACT_DIR = path.resolve(__dirname, "..", "fixtures", "contracts");
// Interfaces normally have nothing to deploy; these are kept for their ABI.
const KEPT_INTERFACES = new Set(["OGInference"]);

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  viaIR: true,
  metadata: { bytecodeHash: "none", appendCBOR: false },
  outputSelection: {
    "*": {
      "": ["ast"],
      "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"],
    },
  },
};

function findSources(dir, rel = "") {
  const found = [];
  const entries = fs.readdirSync(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const relPath = rel ? rel + "/" + entry.name : entry.name;
    if (entry.isDirectory()) {
      found.push(...findSources(path.join(dir, entry.name), relPath));
    } else if (entry.isFile() && entry.name.endsWith(".sol")) {
      found.push(relPath);
    }
  }
  return found;
}

function compilerVersion() {
  // "0.8.37+commit.f401782d.Emscripten.clang" -> "0.8.37"
  return solc.version().split("+")[0];
}

function compile() {
  const sources = {};
  for (const rel of findSources(SOURCE_DIR)) {
    sources[rel] = { content: fs.readFileSync(path.join(SOURCE_DIR, rel), "utf8") };
  }
  if (Object.keys(sources).length === 0) {
    throw new Error("no .sol files found under " + SOURCE_DIR);
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };

  // All sources are passed in; anything else imported is an error.
  const findImports = (p) => ({ error: "import not found (only local sources are allowed): " + p });
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  const diagnostics = output.errors || [];
  const errors = diagnostics.filter((d) => d.severity === "error");
  const warnings = diagnostics.filter((d) => d.severity !== "error");
  for (const d of warnings) {
    console.error(d.formattedMessage || d.message);
  }
  if (errors.length > 0) {
    for (const d of errors) {
      console.error(d.formattedMessage || d.message);
    }
    console.error(`compilation failed with ${errors.length} error(s)`);
    process.exit(1);
  }
  return { output, warnings };
}

function contractKinds(output) {
  // Maps "source:Name" to "contract" | "library" | "interface" | "abstract".
  const kinds = {};
  for (const [source, unit] of Object.entries(output.sources || {})) {
    for (const node of unit.ast.nodes) {
      if (node.nodeType !== "ContractDefinition") continue;
      kinds[source + ":" + node.name] = node.abstract ? "abstract" : node.contractKind;
    }
  }
  return kinds;
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const sorted = {};
    for (const key of Object.keys(value).sort()) sorted[key] = sortKeys(value[key]);
    return sorted;
  }
  return value;
}

function buildArtifacts(output) {
  const kinds = contractKinds(output);
  const version = compilerVersion();
  const artifacts = {};
  for (const source of Object.keys(output.contracts || {}).sort()) {
    const contracts = output.contracts[source];
    for (const name of Object.keys(contracts).sort()) {
      const kind = kinds[source + ":" + name];
      const keep = kind === "contract" || (kind === "interface" && KEPT_INTERFACES.has(name));
      if (!keep) continue;
      const file = name + ".json";
      if (artifacts[file]) {
        throw new Error(`two contracts are named ${name}: ${artifacts[file].sourceName} and ${source}`);
      }
      const c = contracts[name];
      artifacts[file] = {
        contractName: name,
        sourceName: source,
        compiler: "solc-" + version,
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      };
    }
  }
  const text = {};
  for (const file of Object.keys(artifacts)) {
    text[file] = JSON.stringify(sortKeys(artifacts[file]), null, 2) + "\n";
  }
  return text;
}

function existingArtifacts() {
  if (!fs.existsSync(ARTIFACT_DIR)) return [];
  return fs.readdirSync(ARTIFACT_DIR).filter((f) => f.endsWith(".json")).sort();
}

function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== "--check");
  if (unknown.length > 0) {
    console.error("usage: node compile.js [--check]");
    process.exit(2);
  }
  const check = args.includes("--check");

  const { output, warnings } = compile();
  const artifacts = buildArtifacts(output);
  const rel = (f) => path.relative(process.cwd(), path.join(ARTIFACT_DIR, f));

  if (check) {
    const problems = [];
    for (const file of Object.keys(artifacts).sort()) {
      const p = path.join(ARTIFACT_DIR, file);
      if (!fs.existsSync(p)) {
        problems.push(`missing: ${rel(file)}`);
      } else if (fs.readFileSync(p, "utf8") !== artifacts[file]) {
        problems.push(`differs: ${rel(file)}`);
      }
    }
    for (const file of existingArtifacts()) {
      if (!(file in artifacts)) problems.push(`stale (no such contract): ${rel(file)}`);
    }
    if (problems.length > 0) {
      console.error("compiled artifacts do not match the committed ones:");
      for (const p of problems) console.error("  " + p);
      console.error("run `npm run build` in solidity/ and commit the result");
      process.exit(1);
    }
    console.log(`${Object.keys(artifacts).length} artifacts up to date (solc ${compilerVersion()})`);
    return;
  }

  fs.mkdirSync(ARTIFACT_DIR, { recursive: true });
  for (const file of Object.keys(artifacts).sort()) {
    fs.writeFileSync(path.join(ARTIFACT_DIR, file), artifacts[file]);
    console.log("wrote " + rel(file));
  }
  for (const file of existingArtifacts()) {
    if (!(file in artifacts)) console.error(`warning: stale artifact left in place: ${rel(file)}`);
  }
  if (warnings.length > 0) {
    console.error(`${warnings.length} compiler warning(s)`);
  }
}

main();
