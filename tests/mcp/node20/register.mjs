// Lets @modelcontextprotocol/conformance 0.2.0-alpha (built for Node 22) run on Node 20:
// `node --import ./node20/register.mjs .../dist/index.js ...`. Its only Node 22 need found
// is `import { globSync } from "fs"`; a resolve hook hands the conformance package an `fs`
// that adds globSync to the real one. Nothing else is touched.
import { register } from "node:module";

const [major] = process.versions.node.split(".").map(Number);
if (major < 22) register("./fs-hooks.mjs", import.meta.url);
