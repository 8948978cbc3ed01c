// Parses a Mermaid diagram (stdin) with Mermaid's own parser, as Forgejo and GitHub render it:
// prints "ok <diagram type>" or "error <first lines of the parse error>" and exits 1.
// Needs mermaid and jsdom (Mermaid expects a DOM) in the node_modules folder that
// DEVSTACK_MERMAID_MODULES names (tests/test_graph_mermaid_real.py).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const modules = process.env.DEVSTACK_MERMAID_MODULES;
const require = createRequire(path.join(modules, "index.js"));
const { JSDOM } = require("jsdom");
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const entry = pathToFileURL(path.join(modules, "mermaid", "dist", "mermaid.core.mjs"));
const { default: mermaid } = await import(entry.href);
mermaid.initialize({ startOnLoad: false });
try {
  const result = await mermaid.parse(readFileSync(0, "utf8"));
  console.log("ok", result.diagramType);
} catch (error) {
  console.log("error", String(error.message || error).split("\n").slice(0, 4).join(" | "));
  process.exit(1);
}
