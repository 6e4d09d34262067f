// Generates the TypeScript client (src/gen) from ../proto/quantix/v1 with protoc and
// @bufbuild/protoc-gen-es. protoc comes from scripts/setup.sh (Debian protobuf-compiler).
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const protoRoot = join(web, "..", "proto");
const files = readdirSync(join(protoRoot, "quantix/v1"))
  .filter((f) => f.endsWith(".proto"))
  .map((f) => `quantix/v1/${f}`);
const out = join(web, "src/gen");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
execFileSync(
  "protoc",
  [
    `--plugin=protoc-gen-es=${join(web, "node_modules/.bin/protoc-gen-es")}`,
    `--es_out=${out}`,
    "--es_opt=target=ts,import_extension=js",
    `-I${protoRoot}`,
    ...files,
  ],
  { stdio: "inherit" },
);
console.log(`gen: ${files.length} protos -> src/gen`);
