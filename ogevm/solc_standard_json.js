// Runs solc-js on Standard JSON input read from stdin and prints its Standard JSON output.
//
//   node solc_standard_json.js SOLC_DIR ROOTS_JSON < input.json
//
// SOLC_DIR is the solc npm package to use. ROOTS_JSON is a list of [prefix, folder]
// pairs: an import whose source unit name starts with `prefix` is read from `folder`
// (the rest of the name appended), first match wins. Used by `ogevm compile`, which
// checks the inputs and reads the diagnostics; this script only connects solc to files.

"use strict";

const fs = require("fs");
const path = require("path");

const [solcDir, rootsJson] = process.argv.slice(2);
const solc = require(solcDir);
const roots = JSON.parse(rootsJson);

function findImports(unit) {
  for (const [prefix, folder] of roots) {
    if (!unit.startsWith(prefix)) continue;
    const file = path.join(folder, unit.slice(prefix.length));
    if (fs.existsSync(file) && fs.statSync(file).isFile()) {
      return { contents: fs.readFileSync(file, "utf8") };
    }
  }
  return { error: "file not found (looked in " + roots.map(([p, f]) => (p ? p + " -> " : "") + f).join(", ") + ")" };
}

process.stdout.write(solc.compile(fs.readFileSync(0, "utf8"), { import: findImports }));
