// Builds the TypeScript SDK (../sdks/typescript) that the dashboard depends on through a `file:` link:
// its package points at dist/, which is a build output and not committed.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "sdks", "typescript");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
if (!existsSync(join(sdk, "node_modules", ".package-lock.json"))) {
  execFileSync(npm, ["ci", "--no-audit", "--no-fund"], { cwd: sdk, stdio: "inherit" });
}
execFileSync(npm, ["exec", "--", "tsc", "-p", "tsconfig.json"], { cwd: sdk, stdio: "inherit" });
