// The web app's TypeScript modules as JavaScript for Node: compile(repo, ["download/zip-writer", ...])
// writes each client/web/src/<name>.ts, compiled by the app's own TypeScript, into a temporary
// folder (relative imports gain ".mjs") and returns that folder.

import { mkdtemp, mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";

export async function compile(repo, names) {
  const require = createRequire(path.join(repo, "client/web/package.json"));
  const ts = require("typescript");
  const folder = await mkdtemp(path.join(os.tmpdir(), "securepacs-web-"));
  for (const name of names) {
    const source = await readFile(path.join(repo, "client/web/src", `${name}.ts`), "utf8");
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    const target = path.join(folder, `${name}.mjs`);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, outputText.replace(/from "(\.\.?\/[^"]+)"/g, 'from "$1.mjs"'));
  }
  return folder;
}
