// A real 3-host Quantix cluster for the browser tests: three quantixd processes on loopback,
// each with its own libvirt test driver (test:///DIR/hostN/host.xml), formed with the quantix
// CLI exactly as scripts/demo.sh does (bootstrap host1, join host2 and host3 with tokens).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = process.env.QUANTIX_BIN_DIR ?? join(ROOT, "target/debug");

export interface HostProc {
  name: string;
  grpc: number;
  http: number;
  dir: string;
  proc?: ChildProcess;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, timeoutMs: number, f: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
    await sleep(200);
  }
}

export class Cluster {
  hosts: HostProc[] = [];
  dir = "";

  /** A bearer token for logging in to the dashboard (made once the cluster is formed). */
  token = "";

  /** Runs the CLI against a host through its administrator socket (as root on that host
   * would); returns stdout (throws with stderr on failure). */
  cli(h: HostProc, ...args: string[]): string {
    return execFileSync(join(BIN, "quantix"), ["--endpoint", `unix://${h.dir}/data/quantixd.sock`, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, QUANTIX_CONFIG_DIR: join(this.dir, "cli-config") },
    });
  }

  url(h: HostProc): string {
    return `https://127.0.0.1:${h.http}`;
  }

  byName(name: string): HostProc {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  byHttpPort(port: number): HostProc | undefined {
    return this.hosts.find((x) => x.http === port);
  }

  start(h: HostProc) {
    const log = openSync(join(h.dir, "quantixd.log"), "a");
    h.proc = spawn(join(BIN, "quantixd"), ["--config", join(h.dir, "quantixd.toml")], {
      stdio: ["ignore", log, log],
      env: { ...process.env, RUST_LOG: "info,openraft=warn" },
    });
  }

  kill(h: HostProc) {
    h.proc?.kill("SIGKILL");
    h.proc = undefined;
  }

  /** The leader's name, asked of any running host. */
  leader(): string {
    for (const h of this.hosts.filter((x) => x.proc)) {
      try {
        const s = JSON.parse(this.cli(h, "cluster", "status", "-o", "json"));
        if (s.leader) return s.leader as string;
      } catch {
        // try the next host
      }
    }
    return "";
  }

  static async start(): Promise<Cluster> {
    const c = new Cluster();
    c.dir = mkdtempSync(join(tmpdir(), "quantix-e2e-"));
    const sizes = [[8, 16], [16, 32], [4, 8]];
    for (let i = 1; i <= 3; i++) {
      const dir = join(c.dir, `host${i}`);
      mkdirSync(join(dir, "data"), { recursive: true });
      const [cores, gib] = sizes[i - 1];
      writeFileSync(join(dir, "host.xml"),
        `<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>${cores}</cores><threads>1</threads>` +
        `<mhz>2000</mhz><model>i686</model><active>${cores}</active></cpu><memory>${gib * 1024 * 1024}</memory></node>\n`);
      const h: HostProc = { name: `host${i}`, grpc: await freePort(), http: await freePort(), dir };
      writeFileSync(join(dir, "quantixd.toml"),
        `name = "${h.name}"\ndata_dir = "${dir}/data"\ngrpc_addr = "127.0.0.1:${h.grpc}"\n` +
        `http_addr = "127.0.0.1:${h.http}"\n\n[hypervisor]\nuri = "test://${dir}/host.xml"\n`);
      c.hosts.push(h);
      c.start(h);
    }
    const [h1, h2, h3] = c.hosts;
    await waitFor("host1 to bootstrap", 20_000, async () => (c.cli(h1, "cluster", "bootstrap"), true));
    for (const h of [h2, h3]) {
      const token = await waitFor("a join token", 15_000, async () => c.cli(h1, "cluster", "token").trim());
      await waitFor(`${h.name} to join`, 30_000, async () => (c.cli(h, "cluster", "join", token), true));
    }
    await waitFor("three online members with published dashboard addresses", 20_000, async () => {
      const s = JSON.parse(c.cli(h1, "cluster", "status", "-o", "json"));
      return s.members.length === 3 && s.members.every((m: { online: boolean }) => m.online) && s.leader;
    });
    c.cli(h1, "pool", "create", "local", "--type", "dir", "--path", join(c.dir, "pools/local"));
    c.token = c.cli(h1, "cluster", "add-token", "e2e").trim();
    return c;
  }

  stop() {
    for (const h of this.hosts) this.kill(h);
    if (!process.env.QUANTIX_E2E_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}
