// Module resolve hook (see register.mjs): `fs` / `node:fs` imported from a conformance
// package resolves to fs-shim.mjs; every other import resolves as usual.
const shim = new URL("./fs-shim.mjs", import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if ((specifier === "fs" || specifier === "node:fs") &&
      context.parentURL && /\/conformance-[^/]*\/dist\//.test(context.parentURL)) {
    return { url: shim, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
