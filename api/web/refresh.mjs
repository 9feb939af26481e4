// Refreshes vendor/ from node_modules (after `npm ci`) and writes
// vendor/MANIFEST: each package with the version and integrity the lock
// file pins, and each copied file with its SHA-256. obmd embeds vendor/;
// api's TestEmbeddedWebFilesMatchLock checks the manifest against
// package-lock.json and the embedded files against the manifest.
// Run through `make web`.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";

const files = [
  ["xterm.js", "@xterm/xterm", "lib/xterm.js"],
  ["xterm.css", "@xterm/xterm", "css/xterm.css"],
  ["xterm-LICENSE", "@xterm/xterm", "LICENSE"],
  ["addon-fit.js", "@xterm/addon-fit", "lib/addon-fit.js"],
  ["addon-fit-LICENSE", "@xterm/addon-fit", "LICENSE"],
];

const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
const lines = [
  "# Written by `make web` (api/web/refresh.mjs); checked by api's TestEmbeddedWebFilesMatchLock.",
];
const pkgs = [...new Set(files.map((f) => f[1]))].sort();
for (const pkg of pkgs) {
  const entry = lock.packages["node_modules/" + pkg];
  if (!entry) throw new Error(pkg + " is not in package-lock.json");
  const installed = JSON.parse(readFileSync("node_modules/" + pkg + "/package.json", "utf8"));
  if (installed.version !== entry.version) {
    throw new Error(pkg + " " + installed.version + " is installed but the lock pins " + entry.version + ": run npm ci");
  }
  lines.push(["package", pkg, entry.version, entry.integrity].join(" "));
}
mkdirSync("vendor", { recursive: true });
for (const [name, pkg, path] of files) {
  copyFileSync("node_modules/" + pkg + "/" + path, "vendor/" + name);
  const sum = createHash("sha256").update(readFileSync("vendor/" + name)).digest("hex");
  lines.push(["file", name, pkg, path, sum].join(" "));
}
writeFileSync("vendor/MANIFEST", lines.join("\n") + "\n");
console.log("vendor/ refreshed: " + pkgs.join(", "));
