#!/usr/bin/env node
// A native-solc look-alike over the solcjs JS API (offline: the npm `solc`), for tools that exec a
// `solc` binary: py-solc-x (`solc_binary=`), slither/crytic-compile (`--solc`). The solcjs CLI
// prints a line before its JSON in --standard-json mode, which those tools cannot parse; this
// wrapper prints only what solc prints.
//
// Modes: --version, --help, --standard-json (input on stdin), --combined-json LIST with source
// files or `-` (stdin, source name `<stdin>`; py-solc-x's compile_source/compile_files).
// Imports are found as solc finds them: remappings (`prefix=target` arguments), then the source
// unit name under --base-path (default: the working directory) and each --include-path; files
// must lie in an allowed directory: the base path, the include paths, --allow-paths (comma
// separated) and the directories of the sources given. Last, `@scope/package/...` imports (e.g.
// `@openzeppelin/contracts/...`) that no root holds come from the project's node_modules or,
// failing that, the packages installed next to this wrapper (the repository's node_modules).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const solc = createRequire(import.meta.url)("solc");
const INSTALLED_MODULES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "node_modules");

// What solc >= 0.8.10 lists after --combined-json in --help (py-solc-x reads this line).
const COMBINED = {
  abi: ["abi"],
  asm: ["evm.legacyAssembly"],
  ast: null, // per source, not per contract
  bin: ["evm.bytecode.object"],
  "bin-runtime": ["evm.deployedBytecode.object"],
  devdoc: ["devdoc"],
  "function-debug": ["evm.bytecode.functionDebugData"],
  "function-debug-runtime": ["evm.deployedBytecode.functionDebugData"],
  "generated-sources": ["evm.bytecode.generatedSources"],
  "generated-sources-runtime": ["evm.deployedBytecode.generatedSources"],
  hashes: ["evm.methodIdentifiers"],
  metadata: ["metadata"],
  opcodes: ["evm.bytecode.opcodes"],
  srcmap: ["evm.bytecode.sourceMap"],
  "srcmap-runtime": ["evm.deployedBytecode.sourceMap"],
  "storage-layout": ["storageLayout"],
  userdoc: ["userdoc"],
};

function fail(message) {
  process.stderr.write(`Error: ${message}\n`);
  process.exit(1);
}

// ---- arguments (solc's spellings: `--opt value` and `--opt=value`)
const WITH_VALUE = new Set([
  "--base-path", "--include-path", "--allow-paths", "--combined-json", "--evm-version",
  "--optimize-runs", "--output-dir", "--revert-strings", "--metadata-hash", "--libraries",
]);
const opts = { includePaths: [], allowPaths: [], remappings: [], files: [], flags: new Set() };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  let arg = argv[i];
  let value;
  if (arg.startsWith("--") && arg.includes("=")) {
    [arg, value] = [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)];
  } else if (WITH_VALUE.has(arg)) {
    if (i + 1 >= argv.length) fail(`the option '${arg}' requires an argument`);
    value = argv[++i];
  }
  if (arg === "--base-path") opts.basePath = value;
  else if (arg === "--include-path") opts.includePaths.push(value);
  else if (arg === "--allow-paths") opts.allowPaths.push(...value.split(",").filter(Boolean));
  else if (arg === "--combined-json") opts.combined = value.split(",").filter(Boolean);
  else if (arg === "--evm-version") opts.evmVersion = value;
  else if (arg === "--optimize-runs") opts.optimizeRuns = Number(value);
  else if (WITH_VALUE.has(arg)) opts[arg] = value; // accepted, not used by the JS compiler
  else if (arg.startsWith("-") && arg !== "-") opts.flags.add(arg);
  else if (arg !== "-" && arg.includes("=") && !fs.existsSync(arg)) opts.remappings.push(arg);
  else opts.files.push(arg);
}

if (opts.flags.has("--version")) {
  process.stdout.write(
    "solc, the solidity compiler commandline interface\nVersion: " + solc.version() + "\n",
  );
  process.exit(0);
}
if (opts.flags.has("--help")) {
  process.stdout.write(
    "solc-wrapper: solc " + solc.version() + " over solcjs\n\nUsage: solc [options] [input_file...]\n\n" +
    "  --standard-json         Standard JSON input on stdin, output on stdout.\n" +
    "  --base-path path        Root of the source tree.\n" +
    "  --include-path path     Extra roots for imports (repeatable).\n" +
    "  --allow-paths path(s)   Further directories files may be read from (comma separated).\n" +
    "  --evm-version version   Target EVM.\n  --optimize              Enable the optimizer.\n" +
    "  --optimize-runs n       Optimizer runs (default 200).\n" +
    "  --combined-json " + Object.keys(COMBINED).join(",") + "\n",
  );
  process.exit(0);
}
if (!opts.flags.has("--standard-json") && !opts.combined) {
  fail("solc-wrapper supports --version, --help, --standard-json and --combined-json");
}

// ---- file reading, as solc's: base path, include paths, allowed directories
const cwd = process.cwd();
const basePath = path.resolve(cwd, opts.basePath ?? "");
const roots = [basePath, ...opts.includePaths.map((p) => path.resolve(cwd, p))];
const allowed = [...roots, ...opts.allowPaths.map((p) => path.resolve(cwd, p))];
const projectModules = [path.join(basePath, "node_modules"), path.join(cwd, "node_modules")];

function inside(dir, file) {
  const rel = path.relative(dir, file);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

// solc has applied the remappings already: `name` is the source unit name to load.
function findImports(name) {
  const candidates = path.isAbsolute(name) ? [name] : roots.map((r) => path.join(r, name));
  let outside = null;
  for (const candidate of candidates) {
    if (!fs.existsSync(candidate) || !fs.statSync(candidate).isFile()) continue;
    if (!allowed.some((dir) => inside(dir, path.resolve(candidate)))) {
      outside = candidate;
      continue;
    }
    return { contents: fs.readFileSync(candidate, "utf8") };
  }
  // A package import (`@openzeppelin/contracts/...`, `solady/...`): the project's node_modules,
  // then the packages installed with this wrapper.
  if (!path.isAbsolute(name) && !name.startsWith(".")) {
    for (const dir of [...projectModules, INSTALLED_MODULES]) {
      const candidate = path.join(dir, name);
      if (inside(dir, candidate) && fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
        return { contents: fs.readFileSync(candidate, "utf8") };
      }
    }
  }
  if (outside !== null) {
    return {
      error: `File outside of allowed directories. The following are allowed: ${allowed.join(", ")}` +
        ` (${outside}; add its directory to --allow-paths)`,
    };
  }
  return { error: "File not found. Searched the following locations: " + roots.join(", ") };
}

function compile(input) {
  return JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
}

function readStdin() {
  try {
    return fs.readFileSync(0, "utf8");
  } catch (exc) {
    fail(`cannot read standard input: ${exc.message}`);
  }
}

// Output goes to a pipe asynchronously: set the exit code and let Node flush, never exit() after a
// large write (that cuts the JSON at the pipe's buffer size).
if (opts.flags.has("--standard-json")) standardJson();
else combinedJson();

function standardJson() {
  let input;
  try {
    input = JSON.parse(readStdin());
  } catch (exc) {
    process.stdout.write(JSON.stringify({
      errors: [{ component: "general", formattedMessage: `Error: Invalid JSON supplied: ${exc.message}`,
        message: `Invalid JSON supplied: ${exc.message}`, severity: "error", type: "JSONError" }],
    }) + "\n");
    return;
  }
  // solcjs cannot read sources given by "urls" (crytic-compile sends those): inline them; their
  // directories are allowed, as the directories of files given to solc are.
  for (const source of Object.values(input.sources ?? {})) {
    if (source.content === undefined && Array.isArray(source.urls)) {
      for (const url of source.urls) {
        const file = path.resolve(basePath, url);
        if (fs.existsSync(file)) allowed.push(path.dirname(file));
      }
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
  if (opts.remappings.length) {  // given on the command line: solc applies them with the input's
    input.settings = { ...input.settings,
      remappings: [...(input.settings?.remappings ?? []), ...opts.remappings] };
  }
  process.stdout.write(solc.compile(JSON.stringify(input), { import: findImports }));
}

// ---- --combined-json: standard JSON underneath, output reshaped as solc's combined JSON
function combinedJson() {
  const unknown = opts.combined.filter((k) => !(k in COMBINED));
  if (unknown.length) fail(`Invalid option to --combined-json: ${unknown.join(",")}`);
  const sources = {};
  if (opts.files.length === 0) opts.files.push("-");
  for (const file of opts.files) {
    if (file === "-") {
      sources["<stdin>"] = { content: readStdin() };
      continue;
    }
    const abs = path.resolve(cwd, file);
    if (!fs.existsSync(abs)) fail(`"${file}" is not found.`);
    allowed.push(path.dirname(abs));
    // The source unit name: the path relative to the base path (or an include path) when inside.
    const root = roots.find((r) => inside(r, abs));
    const unit = root ? path.relative(root, abs).split(path.sep).join("/") : abs;
    sources[unit] = { content: fs.readFileSync(abs, "utf8") };
  }
  const selection = new Set();
  for (const key of opts.combined) for (const sel of COMBINED[key] ?? []) selection.add(sel);
  const settings = {
    outputSelection: { "*": { "*": [...selection], ...(opts.combined.includes("ast") ? { "": ["ast"] } : {}) } },
    remappings: opts.remappings,
  };
  if (opts.evmVersion) settings.evmVersion = opts.evmVersion;
  if (opts.flags.has("--optimize")) {
    settings.optimizer = { enabled: true, runs: Number.isFinite(opts.optimizeRuns) ? opts.optimizeRuns : 200 };
  }
  const output = compile({ language: "Solidity", sources, settings });
  let failed = false;
  for (const e of output.errors ?? []) {
    process.stderr.write((e.formattedMessage ?? e.message) + "\n");
    if (e.severity === "error") failed = true;
  }
  if (failed) {
    process.exitCode = 1;
    return;
  }

  const get = (obj, dotted) => dotted.split(".").reduce((o, k) => (o == null ? o : o[k]), obj);
  const contracts = {};
  for (const [unit, byName] of Object.entries(output.contracts ?? {})) {
    for (const [name, c] of Object.entries(byName)) {
      const out = {};
      for (const key of opts.combined) {
        if (key === "ast") continue;
        const value = get(c, COMBINED[key][0]);
        if (value !== undefined) out[key] = value;
      }
      contracts[`${unit}:${name}`] = out;
    }
  }
  const result = { contracts, version: solc.version() };
  if (opts.combined.includes("ast")) {
    result.sourceList = Object.keys(output.sources ?? {});
    result.sources = Object.fromEntries(
      Object.entries(output.sources ?? {}).map(([unit, s]) => [unit, { AST: s.ast, id: s.id }]),
    );
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}
