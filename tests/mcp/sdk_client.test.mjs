// The official MCP TypeScript SDK client (@modelcontextprotocol/sdk, version pinned in
// package-lock.json) driving `rlm mcp` over stdio and over streamable HTTP: tools listed and
// validated, a stateful sandbox_exec sequence, binary upload/download, rlm_run with progress
// notifications (the replay LLM, offline), and a cancellation that frees the run's sandbox.
// Usage: RLM_BIN=path/to/rlm node --test sdk_client.test.mjs
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ProgressNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

const RLM = process.env.RLM_BIN;
assert.ok(RLM, "set RLM_BIN to the rlm executable");
const TMP = mkdtempSync(join(tmpdir(), "rlm-mcp-sdk-"));
const TOOLS = ["rlm_run", "sandbox_create", "sandbox_exec", "sandbox_upload", "sandbox_download",
  "sandbox_files", "sandbox_destroy", "rlm_status"];
const TOKEN = "sdk-test-token-0123456789abcdef";

// One script for every run: a query containing SLOWTASK gets a cell that runs for a minute
// (what a cancellation must stop); any other prints, then SUBMITs.
const SCRIPT = join(TMP, "script.jsonl");
writeFileSync(SCRIPT, [
  { match: "SLOWTASK", response: "```python\nimport time\nfor _ in range(600):\n    time.sleep(0.1)\n```" },
  { response: "Looking.\n```python\nprint('chars', len(context))\n```" },
  { response: "```python\nSUBMIT(answer=context[::-1], n=len(context))\n```" },
].map((e) => JSON.stringify(e)).join("\n") + "\n");
const SERVER_ARGS = ["--set", "llm.provider=replay", "--set", `llm.script=${JSON.stringify(SCRIPT)}`,
  "--set", "llm.match=key", "--trajectory-dir", join(TMP, "traj")];

async function waitUntil(what, fn, timeoutMs = 90000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function status(client) {
  return (await client.callTool({ name: "rlm_status", arguments: {} })).structuredContent;
}

async function noSandboxLeft(client) {
  await waitUntil("every sandbox to be gone", async () => {
    const s = (await status(client)).sandboxes;
    return s.handles === 0 && s.runs === 0 && s.pools.every((p) => p.live === 0);
  });
}

// The same behaviours on both transports.
function suite(connect) {
  let client;
  before(async () => { client = await connect(); });
  after(async () => { await client?.close(); });

  test("lists the tools in their fixed order, each with input and output schemas", async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name), TOOLS);
    for (const t of tools) {
      assert.equal(t.inputSchema.type, "object", t.name);
      assert.equal(t.outputSchema.type, "object", t.name);
    }
    const { prompts } = await client.listPrompts();
    assert.deepEqual(prompts.map((p) => p.name), ["analyze", "code", "decompose"]);
  });

  test("sandbox_exec keeps state on a handle; binary files round-trip", async () => {
    const created = await client.callTool({ name: "sandbox_create", arguments: {} });
    const sandbox = created.structuredContent.sandbox;
    assert.match(sandbox, /^sbx_[0-9a-f]{32}$/);
    await client.callTool({ name: "sandbox_exec", arguments: { sandbox, code: "total = 0" } });
    for (const n of [1, 2, 3]) {
      await client.callTool({ name: "sandbox_exec", arguments: { sandbox, code: "total += n", variables: { n } } });
    }
    const r = await client.callTool({ name: "sandbox_exec", arguments: { sandbox, code: "print(total)" } });
    assert.equal(r.structuredContent.stdout, "6\n");
    assert.equal(r.content[0].type, "text");
    const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) % 256));
    const up = await client.callTool({ name: "sandbox_upload",
      arguments: { sandbox, path: "bin/data.bin", content: bytes.toString("base64"), encoding: "base64" } });
    assert.equal(up.structuredContent.bytes, 512);
    const down = await client.callTool({ name: "sandbox_download", arguments: { sandbox, path: "bin/data.bin" } });
    assert.equal(down.structuredContent.encoding, "base64");
    assert.ok(Buffer.from(down.structuredContent.content, "base64").equals(bytes));
    const ls = await client.callTool({ name: "sandbox_files", arguments: { sandbox, path: "bin" } });
    assert.deepEqual(ls.structuredContent.entries, [{ name: "data.bin", type: "file", size: 512 }]);
    const gone = await client.callTool({ name: "sandbox_destroy", arguments: { sandbox } });
    assert.equal(gone.structuredContent.destroyed, true);
    const after = await client.callTool({ name: "sandbox_exec", arguments: { sandbox, code: "total" } });
    assert.equal(after.isError, true);
    assert.equal(after.structuredContent.error.code, "unknown_sandbox");
  });

  test("rlm_run sends one progress notification per iteration", async () => {
    // The SDK's own onprogress path drops a notification read in the same chunk as the
    // response (1.32 dispatches notifications a microtask later, responses at once, and the
    // token's handler is gone by then), which a fast run on stdio does every time. So the
    // notifications are taken from the client's notification handler, which sees every one.
    const seen = [];
    client.setNotificationHandler(ProgressNotificationSchema, (n) => { seen.push(n.params); });
    const r = await client.callTool({ name: "rlm_run", arguments: { query: "reverse it", context: "abcdef" } },
      undefined, { onprogress: () => {}, timeout: 120000 });
    assert.equal(r.isError, false);
    assert.deepEqual(r.structuredContent.submit, { answer: "fedcba", n: 6 });
    assert.equal(r.structuredContent.iterations, 2);
    assert.ok(existsSync(r.structuredContent.trajectory));
    await waitUntil("both progress notifications", () => seen.length >= 2, 30000);
    assert.equal(seen.length, 2);
    assert.equal(seen[0].progressToken, seen[1].progressToken);
    assert.ok(seen[0].progress < seen[1].progress);
    assert.equal(seen[0].total, 20);
    assert.match(seen[0].message, /printed: chars 6/);
    assert.match(seen[1].message, /SUBMIT/);
  });

  test("a cancelled rlm_run frees its sandbox", async () => {
    const ac = new AbortController();
    const call = client.callTool({ name: "rlm_run", arguments: { query: "SLOWTASK" } }, undefined,
      { signal: ac.signal, timeout: 120000 });
    const rejected = assert.rejects(call);
    await waitUntil("the run to hold a sandbox", async () => (await status(client)).sandboxes.runs === 1);
    ac.abort("test cancels");
    await rejected;
    await noSandboxLeft(client);
  });
}

describe("stdio", () => {
  suite(async () => {
    const client = new Client({ name: "rlm-sdk-test", version: "1.0.0" });
    await client.connect(new StdioClientTransport({ command: RLM, args: ["mcp", ...SERVER_ARGS],
      env: { ...process.env }, stderr: "inherit" }));
    assert.equal(client.getServerVersion().name, "rlm");
    return client;
  });
});

describe("streamable HTTP", () => {
  let server;
  const portFile = join(TMP, "port");
  before(async () => {
    server = spawn(RLM, ["mcp", "--http", "--listen", "127.0.0.1:0", "--port-file", portFile,
      "--token-env", "RLM_SDK_TEST_TOKEN", ...SERVER_ARGS],
    { env: { ...process.env, RLM_SDK_TEST_TOKEN: TOKEN }, stdio: ["ignore", "inherit", "inherit"] });
    await waitUntil("the port file", () => existsSync(portFile));
  });
  after(async () => {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
    assert.equal(server.exitCode, 0);
  });
  const url = () => new URL(`http://127.0.0.1:${readFileSync(portFile, "utf8").trim()}/mcp`);

  test("a client without the token is refused", async () => {
    const client = new Client({ name: "no-token", version: "1.0.0" });
    await assert.rejects(client.connect(new StreamableHTTPClientTransport(url())), /401|Unauthorized/);
  });

  suite(async () => {
    const client = new Client({ name: "rlm-sdk-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(url(),
      { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } }));
    return client;
  });
});
