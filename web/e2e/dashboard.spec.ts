// The dashboard in Debian's headless Chromium against a real 3-host cluster (e2e/cluster.ts).
// The tests run in order on one cluster; each asserts the page logged no console errors, and
// saves a screenshot of the page it exercised (docs/screenshots/ with UPDATE_SCREENSHOTS=1).
import { test, expect, request, type Page } from "@playwright/test";
import { createServer, type Server } from "node:http";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Cluster, waitFor } from "./cluster";

// UPDATE_SCREENSHOTS=1 refreshes the checked-in screenshots; otherwise they go to
// test-results/ (ignored by git), so a test run leaves the tree clean.
const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? resolve(import.meta.dirname, "../../docs/screenshots")
  : resolve(import.meta.dirname, "../test-results/screenshots");
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVhbnRpeGUyZXRlc3RrZXlub3RyZWFsbHl1c2Vk e2e@quantix";

test.describe.configure({ mode: "serial" });

let cluster: Cluster;
let errors: string[] = [];
/** Console errors that a test expects (e.g. requests to a host it killed). */
let allowed: RegExp | null = null;

// Every test but the login test runs logged in: the session cookie from one login (POST
// /login with the cluster's e2e token), kept as Playwright storage state.
const STATE = resolve(import.meta.dirname, "../test-results/session.json");
mkdirSync(dirname(STATE), { recursive: true });
writeFileSync(STATE, JSON.stringify({ cookies: [], origins: [] }));
test.use({ storageState: STATE });

test.beforeAll(async () => {
  cluster = await Cluster.start();
  const ctx = await request.newContext({ ignoreHTTPSErrors: true });
  const r = await ctx.post(leaderUrl() + "/login", { form: { token: cluster.token }, maxRedirects: 0 });
  expect(r.status(), "login").toBe(303);
  await ctx.storageState({ path: STATE });
  await ctx.dispose();
});
test.afterAll(() => cluster?.stop());

test.beforeEach(async ({ page }) => {
  errors = [];
  allowed = null;
  page.on("console", (m) => {
    if (m.type() === "error" && !(allowed && allowed.test(m.text()))) errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
});
test.afterEach(() => {
  expect(errors, "console errors").toEqual([]);
});

async function shot(page: Page, name: string) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

function leaderUrl(): string {
  return cluster.url(cluster.byName(cluster.leader()));
}

/** A gRPC-web call from the page (ClusterService/GetStatus, an empty request) with these
 * extra headers; returns its grpc-status: from the headers of a refusal (trailers-only), or
 * from the trailer frame at the end of the body of an answer. */
async function grpcWebStatus(page: Page, headers: Record<string, string> = {}): Promise<string | null> {
  return page.evaluate(async (extra) => {
    const r = await fetch("/quantix.v1.ClusterService/GetStatus", {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", ...extra },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    const inHeaders = r.headers.get("grpc-status");
    if (inHeaders !== null) return inHeaders;
    const body = new TextDecoder().decode(await r.arrayBuffer());
    return /grpc-status:\s*(\d+)/.exec(body)?.[1] ?? null;
  }, headers);
}

test("without a login only the login page answers; a wrong token is refused; the right one signs in", async ({ browser }) => {
  const ctx = await browser.newContext({ storageState: { cookies: [], origins: [] }, ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  page.on("console", (m) => {
    // The refused calls below are expected.
    if (m.type() === "error" && !/401|403|Unauthorized|Forbidden/.test(m.text())) errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  await page.goto(leaderUrl() + "/#/inventory");
  await expect(page).toHaveURL(new RegExp(`^${leaderUrl()}/login(#.*)?$`));
  // The API refuses a browser without a session: the page's session and any gRPC-web call.
  const refused = await page.evaluate(async () => (await fetch("/session")).status);
  expect(refused).toBe(401);
  expect(await grpcWebStatus(page), "gRPC-web without a login").toBe("16");
  await page.getByLabel("Token").fill("qxtok1.0123456789abcdef." + "0".repeat(64));
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.locator("#login-error")).toContainText("not known to this cluster");
  await shot(page, "login");
  await page.getByLabel("Token").fill(cluster.token);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByTestId("who")).toHaveText("e2e");

  // A call made with the cookie but without the CSRF header (as another site's form or
  // script would make it) is refused; with the page's CSRF value it is answered.
  expect(await grpcWebStatus(page), "cookie without the CSRF header").toBe("7");
  const csrf = await page.evaluate(async () => ((await (await fetch("/session")).json()) as { csrf: string }).csrf);
  expect(csrf).toHaveLength(32);
  expect(await grpcWebStatus(page, { "x-quantix-csrf": csrf }), "cookie with the CSRF header").toBe("0");
  // Another origin is refused even with the CSRF value (the context's request API sends the
  // browser's cookie and lets the test set Origin, which a page cannot).
  const cross = await ctx.request.post(leaderUrl() + "/quantix.v1.ClusterService/GetStatus", {
    headers: {
      "content-type": "application/grpc-web+proto", "x-grpc-web": "1",
      "x-quantix-csrf": csrf, origin: "https://evil.example",
    },
    data: Buffer.from([0, 0, 0, 0, 0]),
  });
  expect(cross.headers()["grpc-status"], "another origin").toBe("7");

  // Logging out drops the cookie: back to the login page, and the API refuses again.
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(`${leaderUrl()}/login`);
  expect(await page.evaluate(async () => (await fetch("/session")).status)).toBe(401);
  await page.goto(leaderUrl() + "/");
  await expect(page).toHaveURL(`${leaderUrl()}/login`);
  await ctx.close();
});

test("revoking the token ends the open page's session: it goes to the login page, which says why", async ({ browser }) => {
  const ctx = await browser.newContext({ storageState: { cookies: [], origins: [] }, ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  const token = cluster.cli(cluster.hosts[0], "cluster", "add-token", "e2e-revoked").trim();
  await page.goto(leaderUrl() + "/login");
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByTestId("who")).toHaveText("e2e-revoked");
  await expect(page.getByTestId("leader")).toBeVisible();
  // Revoked through another host; the page's next call (it polls every 2 s) is refused as
  // unauthenticated, and the page goes to the login, which names the reason.
  cluster.cli(cluster.hosts[1], "cluster", "revoke", "e2e-revoked");
  await expect(page).toHaveURL(`${leaderUrl()}/login`, { timeout: 10_000 });
  await expect(page.locator("#login-error")).toContainText("revoked");
  await ctx.close();
});

test("a follower redirects to the leader, whose overview shows hosts, Raft state and events", async ({ page }) => {
  const leader = cluster.leader();
  const follower = cluster.hosts.find((h) => h.name !== leader)!;
  await page.goto(cluster.url(follower) + "/");
  await expect(page).toHaveURL(leaderUrl() + "/");
  await expect(page.getByTestId("overview-leader")).toHaveText(leader);
  for (const h of cluster.hosts) {
    const row = page.getByTestId(`host-row-${h.name}`);
    await expect(row).toContainText("online");
    await expect(row).toContainText("local"); // the pool every host reaches
  }
  await expect(page.getByRole("table", { name: "Hosts" })).toContainText("voter");
  await expect(page.locator("table caption", { hasText: "Recent events" })).toBeVisible();
  await shot(page, "overview");
});

test("the wizard catches bad input, shows the server's refusal by its field, and creates a VM that runs", async ({ page }) => {
  await page.goto(leaderUrl() + "/#/new-vm");
  const next = page.getByRole("button", { name: "Next" });

  // Step 1: the name is checked before going on.
  await next.click();
  await expect(page.getByText("VM name is required")).toBeVisible();
  await page.getByLabel("Name", { exact: true }).fill("Web_1");
  await next.click();
  await expect(page.getByText(/lower-case letters, digits and '-'/)).toBeVisible();
  await page.getByLabel("Name", { exact: true }).fill("web1");
  // The keyboard works too: Enter in a field goes to the next step.
  await page.getByLabel("Name", { exact: true }).press("Enter");
  await expect(page.getByRole("heading", { name: "Compute" })).toBeVisible();

  // Step 2: more memory than any VM may have passes the page's check but not the server's.
  await page.getByLabel("CPUs").fill("2");
  await page.getByLabel("Memory").fill("20TiB");
  await next.click();

  // Step 3: an image that is not there is refused; PXE with an empty disk is fine.
  await page.getByLabel("A cloud image").check();
  await next.click();
  await expect(page.getByText("choose a cloud image")).toBeVisible();
  await shot(page, "wizard-boot");
  await page.getByLabel("The network (PXE), with an empty disk").check();
  await page.getByLabel("Empty disk size").fill("1GiB");
  await page.getByLabel("Disk pool").selectOption("local");
  await next.click();

  // Step 4: time zones grouped by region, with search; SSH keys are checked.
  await page.getByLabel("Hostname").fill("web1");
  await page.getByLabel("Search time zones").fill("berl");
  await page.getByLabel("Time zone", { exact: true }).selectOption("Europe/Berlin");
  await page.getByLabel("SSH public keys").fill("not a key");
  await next.click();
  await expect(page.getByText(/not an OpenSSH public key/)).toBeVisible();
  await page.getByLabel("SSH public keys").fill(KEY);
  await shot(page, "wizard-customization");
  await next.click();

  // Step 5: placement (automatic); step 6: now.
  await expect(page.getByLabel("Automatic: the scheduler picks the host")).toBeChecked();
  await next.click();
  await expect(page.getByLabel("Now")).toBeChecked();
  await next.click();

  // Review, submit: the server refuses the memory, and the wizard shows it on step 2.
  await expect(page.getByLabel("Summary", { exact: true })).toContainText("Europe/Berlin");
  await shot(page, "wizard-review");
  await page.getByRole("button", { name: "Create VM" }).click();
  const memory = page.getByLabel("Memory");
  await expect(memory).toHaveAttribute("aria-invalid", "true");
  await expect(page.getByRole("alert")).toContainText("memory must be between 64 MiB");
  await memory.fill("2GiB");
  for (let i = 0; i < 5; i++) await next.click();
  await page.getByRole("button", { name: "Create VM" }).click();

  // The VM's page: placed by the scheduler, started by its host's agent.
  await expect(page).toHaveURL(/#\/vms\/web1$/);
  await expect(page.getByTestId("vm-status")).toHaveText("running", { timeout: 30_000 });
  await expect(page.getByTestId("vm-host")).toHaveText(/^host[123]$/);
  const vm = JSON.parse(cluster.cli(cluster.hosts[0], "vm", "get", "web1", "-o", "json"));
  expect(vm.status).toBe("running");
  await shot(page, "vm-detail");
});

test("a folder is created in the tree and the VM moved into it, live", async ({ page }) => {
  await page.goto(leaderUrl() + "/#/inventory");
  await page.getByLabel("New subfolder name").fill("prod");
  await page.getByRole("button", { name: "Create folder" }).click();
  await expect(page.getByTestId("folder-/prod")).toBeVisible();
  await page.getByTestId("folder-/").click();
  await page.getByLabel("Select web1").check();
  await page.getByLabel("Destination folder").selectOption("/prod");
  await page.getByRole("button", { name: "Move", exact: true }).click();
  await expect(page.getByTestId("vm-row-web1")).toContainText("/prod");
  await waitFor("web1 in /prod", 10_000, async () =>
    JSON.parse(cluster.cli(cluster.hosts[1], "vm", "get", "web1", "-o", "json")).folder === "/prod");

  // A change made elsewhere (the CLI on another host) shows up without a reload.
  cluster.cli(cluster.hosts[2], "vm", "create", "db1", "--pxe", "--disk-size", "0", "--folder", "/prod");
  await expect(page.getByTestId("vm-row-db1")).toBeVisible();
  await expect(page.getByTestId("vm-row-db1")).toContainText("running", { timeout: 30_000 });

  // Filters: by name, and by status.
  await page.getByRole("searchbox", { name: "Name" }).fill("db");
  await expect(page.getByTestId("vm-row-db1")).toBeVisible();
  await expect(page.getByTestId("vm-row-web1")).toHaveCount(0);
  await page.getByRole("searchbox", { name: "Name" }).fill("");
  await page.getByRole("search").getByLabel("Status").selectOption("running");
  await expect(page.getByTestId("vm-row-web1")).toBeVisible();
  await page.getByRole("search").getByLabel("Status").selectOption("");

  // Drag a row onto a folder: db1 goes to a new folder /staging.
  await page.getByLabel("New subfolder name").fill("staging");
  await page.getByRole("button", { name: "Create folder" }).click();
  await expect(page.getByTestId("folder-/staging")).toBeVisible();
  await page.getByTestId("folder-/").click();
  await page.getByTestId("vm-row-db1").dragTo(page.getByTestId("folder-/staging"));
  await waitFor("db1 in /staging", 10_000, async () =>
    JSON.parse(cluster.cli(cluster.hosts[0], "vm", "get", "db1", "-o", "json")).folder === "/staging");
  await expect(page.getByTestId("vm-row-db1")).toContainText("/staging");

  // Rename, move and delete folders (the delete refused while a VM is inside).
  await page.getByTestId("folder-/staging").click();
  await page.getByLabel("Rename to").fill("stage");
  await page.getByRole("button", { name: "Rename" }).click();
  await expect(page.getByTestId("folder-/stage")).toBeVisible();
  await page.getByLabel("Move into").selectOption("/prod");
  await page.getByRole("button", { name: "Move folder" }).click();
  await expect(page.getByTestId("folder-/prod/stage")).toBeVisible();
  await page.getByRole("button", { name: "Delete folder…" }).click();
  await page.getByRole("button", { name: "Confirm delete /prod/stage" }).click();
  await expect(page.getByRole("alert")).toContainText("db1");
  await page.getByTestId("folder-/prod").click();
  await shot(page, "inventory");
});

test("storage pools, customization specs and events", async ({ page }) => {
  await page.goto(leaderUrl() + "/#/pools");
  await expect(page.getByTestId("pool-row-local")).toContainText("reachable");
  await page.getByLabel("Pool name").fill("fast");
  await page.getByLabel("Directory path").fill(join(cluster.dir, "pools/fast"));
  await page.getByRole("button", { name: "Create pool" }).click();
  await expect(page.getByTestId("pool-row-fast")).toBeVisible();
  await expect(page.getByTestId("pool-row-fast")).toContainText("reachable", { timeout: 20_000 });
  await shot(page, "pools");

  await page.goto(leaderUrl() + "/#/specs/new");
  await page.getByLabel("Name", { exact: true }).fill("web");
  await page.getByLabel("Description").fill("web servers");
  await page.getByLabel("Time zone").fill("Europe/Nowhere");
  await page.getByRole("button", { name: "Create spec" }).click();
  await expect(page.getByText(/not a time zone this cluster knows/)).toBeVisible();
  await page.getByLabel("Time zone").fill("Europe/Paris");
  await page.getByLabel("SSH public keys").fill(KEY);
  await page.getByLabel("Packages").fill("nginx");
  await page.getByRole("button", { name: "Create spec" }).click();
  await expect(page).toHaveURL(/#\/specs\/web$/);
  await expect(page.getByRole("heading", { name: "Edit web (revision 1)" })).toBeVisible();
  await page.getByLabel("Description").fill("web servers, edited");
  await page.getByRole("button", { name: "Save changes" }).click();
  await expect(page.getByRole("heading", { name: "Edit web (revision 2)" })).toBeVisible();
  await shot(page, "specs");

  await page.goto(leaderUrl() + "/#/events");
  await expect(page.getByRole("table")).toContainText("update_spec");
  await shot(page, "events");

  // The overview again, now with VMs allocated on the hosts.
  await page.goto(leaderUrl() + "/#/");
  await expect(page.getByTestId("host-row-host1")).toContainText("online");
  await expect(page.locator(".facts")).toContainText("VMs2");
  await shot(page, "overview");
});

// Serves a file slowly, so the download's progress can be seen on the way to ready.
function slowServer(bytes: number, chunk: number, everyMs: number): Promise<{ server: Server; url: string }> {
  return new Promise((res) => {
    const server = createServer((req, rsp) => {
      rsp.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(bytes) });
      let sent = 0;
      const tick = setInterval(() => {
        const n = Math.min(chunk, bytes - sent);
        rsp.write(Buffer.alloc(n, 0x51));
        sent += n;
        if (sent >= bytes) {
          clearInterval(tick);
          rsp.end();
        }
      }, everyMs);
      req.on("close", () => clearInterval(tick));
    });
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      res({ server, url: `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/tiny.iso` });
    });
  });
}

test("an image downloads from a local HTTP server, with live progress, to ready", async ({ page }) => {
  const { server, url } = await slowServer(8 * 1024 * 1024, 256 * 1024, 100);
  try {
    await page.goto(leaderUrl() + "/#/images");
    await page.getByLabel("Image name").fill("tiny-iso");
    await page.getByLabel("URL", { exact: true }).fill(url);
    await page.getByLabel("Kind").selectOption("iso");
    await page.getByLabel("Pool", { exact: true }).selectOption("local");
    await page.getByRole("button", { name: "Download", exact: true }).click();
    const status = page.getByTestId("image-status-tiny-iso");
    await expect(status).toHaveText(/downloading [1-9]\d?%/, { timeout: 20_000 });
    await shot(page, "images");
    await expect(status).toHaveText("ready", { timeout: 60_000 });
  } finally {
    server.close();
  }
});

test("an ISO uploads from the browser to the host serving the page, and is ready", async ({ page }) => {
  await page.goto(leaderUrl() + "/#/images");
  // 3 MiB and a bit: four chunk messages, and the page's own SHA-256 must match the host's.
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 4321);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 11)) & 0xff;
  await page.getByLabel("File", { exact: true }).setInputFiles({ name: "Tools.iso", mimeType: "application/octet-stream", buffer: bytes });
  await expect(page.getByLabel("Name for the image")).toHaveValue("tools");
  await page.getByLabel("Store in pool").selectOption("local");
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  const leader = cluster.leader();
  await expect(page.getByText(`Uploaded tools to ${leader}`)).toBeVisible();
  await expect(page.getByTestId("image-status-tools")).toHaveText("ready");
  const img = JSON.parse(cluster.cli(cluster.hosts[0], "image", "get", "tools", "-o", "json"));
  expect(JSON.stringify(img)).toContain("upload://");
  await shot(page, "images-upload");
});

test("when the leader is killed, the open page moves to the new leader by itself", async ({ page }) => {
  const old = cluster.leader();
  const oldHost = cluster.byName(old);
  await page.goto(cluster.url(oldHost) + "/#/inventory");
  await expect(page.getByTestId("vm-row-web1")).toBeVisible();
  // Requests to the killed host fail while the page looks for the new leader.
  allowed = /ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET|ERR_INCOMPLETE_CHUNKED_ENCODING|Failed to load resource/;
  cluster.kill(oldHost);
  // The page lands on a live host (a follower redirects it on to the new leader) and shows
  // that host as the leader.
  const onHost = () => cluster.byHttpPort(Number(new URL(page.url()).port));
  await expect
    .poll(async () => {
      const shown = await page.getByTestId("leader").textContent({ timeout: 500 }).catch(() => null);
      return shown && shown !== old && onHost()?.name === shown ? shown : null;
    }, { timeout: 30_000, message: "the page to show the new leader, served by it" })
    .not.toBeNull();
  const landed = onHost()!;
  expect(landed.name).toBe(cluster.leader());
  expect(page.url()).toContain("#/inventory");
  await expect(page.getByTestId("vm-row-web1")).toBeVisible();
  // The page is live on the new leader: a VM made elsewhere appears.
  const other = cluster.hosts.find((h) => h.proc && h !== landed)!;
  cluster.cli(other, "vm", "create", "after-failover", "--pxe", "--disk-size", "0");
  await expect(page.getByTestId("vm-row-after-failover")).toBeVisible();
});
