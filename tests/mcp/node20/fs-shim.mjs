// node:fs plus globSync (Node 22's fs.globSync), for the conformance package on Node 20.
// Supports what a glob of file paths needs: `*`, `?` and `**` path segments, relative to
// options.cwd (default process.cwd()); returns matching paths relative to it.
import fs from "node:fs";
import path from "node:path";

export * from "node:fs";
export default fs;

function segmentRegex(segment) {
  const body = segment.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]");
  return new RegExp(`^${body}$`);
}

export function globSync(pattern, options = {}) {
  const cwd = options.cwd ? String(options.cwd) : process.cwd();
  const patterns = Array.isArray(pattern) ? pattern : [pattern];
  const found = new Set();
  const walk = (dir, rel, parts) => {
    if (parts.length === 0) {
      found.add(rel);
      return;
    }
    const [head, ...rest] = parts;
    if (head === "**") {
      walk(dir, rel, rest);
      let entries = [];
      try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
      for (const e of entries) {
        if (e.isDirectory()) walk(path.join(dir, e.name), rel ? `${rel}/${e.name}` : e.name, parts);
      }
      return;
    }
    if (!/[*?]/.test(head)) {
      const next = path.join(dir, head);
      if (fs.existsSync(next)) walk(next, rel ? `${rel}/${head}` : head, rest);
      return;
    }
    const re = segmentRegex(head);
    let entries = [];
    try { entries = fs.readdirSync(dir); } catch { return; }
    for (const name of entries) {
      if (re.test(name)) walk(path.join(dir, name), rel ? `${rel}/${name}` : name, rest);
    }
  };
  for (const p of patterns) {
    const absolute = path.isAbsolute(p);
    const parts = p.split("/").filter((s) => s.length > 0);
    walk(absolute ? "/" : cwd, absolute ? "" : "", parts);
  }
  return [...found].map((r) => (patterns.some((p) => path.isAbsolute(p)) ? `/${r}` : r));
}
