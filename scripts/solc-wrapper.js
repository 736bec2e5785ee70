#!/usr/bin/env node
// A native-solc look-alike over the solcjs JS API, for tools that exec a `solc` binary
// (py-solc-x `solc_binary=`, slither/crytic-compile `--solc`). The solcjs CLI prints a line before
// its JSON in --standard-json mode, which those tools cannot parse; this wrapper prints only JSON.
// Supports: --version, --standard-json (input on stdin), --allow-paths/--base-path (ignored: imports
// are read from the file system relative to the working directory and node_modules).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const solc = createRequire(import.meta.url)("solc");

const args = process.argv.slice(2);

if (args.includes("--version")) {
  process.stdout.write(
    "solc, the solidity compiler commandline interface\nVersion: " + solc.version() + "\n",
  );
  process.exit(0);
}

if (!args.includes("--standard-json")) {
  process.stderr.write("solc-wrapper: only --version and --standard-json are supported\n");
  process.exit(2);
}

const roots = [process.cwd(), path.join(process.cwd(), "node_modules")];
function findImports(importPath) {
  for (const root of roots) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, "utf8") };
    }
  }
  return { error: "File not found: " + importPath };
}

// solcjs cannot read sources given by "urls" (crytic-compile sends those): inline them.
const input = JSON.parse(fs.readFileSync(0, "utf8"));
for (const source of Object.values(input.sources ?? {})) {
  if (source.content === undefined && Array.isArray(source.urls)) {
    for (const url of source.urls) {
      const found = findImports(url);
      if (found.contents !== undefined) {
        source.content = found.contents;
        delete source.urls;
        break;
      }
    }
  }
}
process.stdout.write(solc.compile(JSON.stringify(input), { import: findImports }));
