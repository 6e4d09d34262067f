// The VM creation wizard: name and folder → compute → boot media → customization →
// placement → schedule → review. Each step checks its fields before it lets you on; the
// server's refusal is shown next to the field it is about, on that field's step.
import { useMemo, useState } from "react";
import { Code } from "@connectrpc/connect";
import { useStore, type Data } from "../store";
import { api, errorCode, errorText, labelError, mib, parseSize, requestId } from "../api";
import { navigate } from "../route";
import { ErrorLine, Field } from "../ui";
import { ImageKind, ImageState, type Image } from "../gen/quantix/v1/image_pb.js";

const STEPS = ["Name and folder", "Compute", "Boot media", "Customization", "Placement", "Schedule", "Review"];

type Boot = "cloud" | "iso" | "pxe";
interface W {
  name: string; folder: string;
  cpus: string; memory: string;
  boot: Boot; image: string; iso: string; diskSize: string; pool: string; downloadPool: string;
  spec: string; hostname: string; timezone: string; tzSearch: string; sshKeys: string;
  placement: "auto" | "host"; host: string;
  when: "now" | "at"; at: string;
}
type Errors = Partial<Record<keyof W | "general", string>>;

const STEP_OF: Record<keyof W | "general", number> = {
  name: 0, folder: 0, cpus: 1, memory: 1, boot: 2, image: 2, iso: 2, diskSize: 2, pool: 2, downloadPool: 2,
  spec: 3, hostname: 3, timezone: 3, tzSearch: 3, sshKeys: 3, placement: 4, host: 4, when: 5, at: 5, general: 6,
};

/** What the boot picker shows for an image: ready, downloading N%, waiting, failed. */
export function imageStatus(img: Image): { ready: boolean; text: string } {
  const s = img.status;
  switch (s?.state) {
    case ImageState.READY: return { ready: true, text: "ready" };
    case ImageState.DOWNLOADING: return { ready: false, text: `downloading ${s.percent}%` };
    case ImageState.FAILED: return { ready: false, text: `failed: ${s.reason}` };
    default: return { ready: false, text: "waiting for a host to download it" };
  }
}

function validate(w: W, data: Data): Errors {
  const e: Errors = {};
  const n = labelError("VM name", w.name);
  if (n) e.name = n;
  else if (data.vms.some((v) => v.name === w.name)) e.name = `a VM named ${w.name} already exists`;
  if (!data.folders.some((f) => f.path === w.folder)) e.folder = "choose a folder";
  const cpus = Number(w.cpus);
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 512) e.cpus = "1 to 512 CPUs";
  const mem = parseSize(w.memory);
  if (mem === null) e.memory = "a size such as 2048, 512MiB or 4GiB";
  else if (mem < 64) e.memory = "at least 64 MiB";
  const disk = parseSize(w.diskSize);
  if (disk === null) e.diskSize = "a size such as 10GiB (0 for no disk)";
  if (w.boot === "cloud") {
    if (!w.image) e.image = "choose a cloud image";
    else if (w.image.startsWith("cat:")) e.image = "this catalog image is not downloaded yet: download it first";
    else {
      const img = data.images.find((i) => i.name === w.image);
      if (!img) e.image = "this image no longer exists";
      else if (!imageStatus(img).ready) e.image = `image ${img.name} is not ready (${imageStatus(img).text})`;
    }
    if (disk === 0) e.diskSize = "a VM that boots a cloud image needs a disk";
  } else if (w.boot === "iso") {
    const img = data.images.find((i) => i.name === w.iso);
    if (!img) e.iso = "choose an ISO";
    else if (!imageStatus(img).ready) e.iso = `ISO ${img.name} is not ready (${imageStatus(img).text})`;
  }
  if (disk && w.boot !== "cloud" && !w.pool) e.pool = "choose a pool for the disk";
  if (w.hostname) {
    const h = labelError("hostname", w.hostname);
    if (h) e.hostname = h;
  }
  if (w.timezone && !data.timezones.some((r) => r.timezones.includes(w.timezone))) e.timezone = "choose a time zone from the list";
  const bad = w.sshKeys.split("\n").map((l) => l.trim()).filter(Boolean)
    .find((k) => !/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-\S+|sk-\S+) [A-Za-z0-9+/=]+( .*)?$/.test(k));
  if (bad) e.sshKeys = `not an OpenSSH public key: ${bad.slice(0, 40)}`;
  if (w.placement === "host") {
    const h = data.hosts.find((x) => x.name === w.host);
    if (!h) e.host = "choose a host";
    else if (h.maintenance) e.host = `${h.name} is in maintenance and takes no new VMs`;
    else if (!h.online) e.host = `${h.name} is offline`;
  }
  if (w.when === "at") {
    const t = Date.parse(w.at);
    if (!w.at || Number.isNaN(t)) e.at = "choose a date and time";
    else if (t <= Date.now()) e.at = "the time must be in the future";
  }
  return e;
}

/** Which field a server refusal is about, from its code and words. */
function fieldOf(err: unknown): keyof W | "general" {
  if (errorCode(err) === Code.AlreadyExists) return "name";
  const m = errorText(err).toLowerCase();
  const rules: [RegExp, keyof W][] = [
    [/vm name|vm \S+ already/, "name"], [/folder/, "folder"], [/cpu/, "cpus"], [/memory/, "memory"],
    [/iso/, "iso"], [/image/, "image"], [/pool/, "pool"], [/disk/, "diskSize"], [/spec/, "spec"],
    [/time ?zone/, "timezone"], [/hostname/, "hostname"], [/ssh/, "sshKeys"], [/schedul/, "at"], [/host/, "host"],
  ];
  return rules.find(([re]) => re.test(m))?.[1] ?? "general";
}

export function Wizard() {
  const { data, refresh } = useStore();
  const [step, setStep] = useState(0);
  const [reached, setReached] = useState(0);
  const [shown, setShown] = useState<Errors>({});
  const [server, setServer] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const firstPool = data.pools[0]?.name ?? "";
  const [w, setW] = useState<W>({
    name: "", folder: "/", cpus: "1", memory: "1GiB",
    boot: "pxe", image: "", iso: "", diskSize: "10GiB", pool: firstPool, downloadPool: firstPool,
    spec: "", hostname: "", timezone: "", tzSearch: "", sshKeys: "",
    placement: "auto", host: "", when: "now", at: "",
  });
  const set = <K extends keyof W>(k: K, v: W[K]) => {
    setW((x) => ({ ...x, [k]: v }));
    // An edited field's old complaint goes; it is checked again on Next.
    setShown((s) => ({ ...s, [k]: undefined }));
    setServer((s) => ({ ...s, [k]: undefined, general: undefined }));
  };
  const errors = validate(w, data);
  const err = (k: keyof W) => server[k] ?? shown[k] ?? null;
  const stepErrors = (s: number) => Object.fromEntries(Object.entries(errors).filter(([k]) => STEP_OF[k as keyof W] === s)) as Errors;

  function next() {
    const se = stepErrors(step);
    setShown(se);
    if (Object.keys(se).length) return;
    const n = Math.min(step + 1, STEPS.length - 1);
    setStep(n);
    setReached((r) => Math.max(r, n));
  }

  async function submit() {
    if (Object.keys(errors).length) {
      setShown(errors);
      const first = Math.min(...Object.keys(errors).map((k) => STEP_OF[k as keyof W]));
      setStep(first);
      return;
    }
    setBusy(true);
    setServer({});
    const disk = parseSize(w.diskSize) ?? 0;
    const image = w.boot === "cloud" ? w.image : "";
    const keys = w.sshKeys.split("\n").map((l) => l.trim()).filter(Boolean);
    try {
      await api.vms.createVm({
        name: w.name,
        folder: w.folder,
        cpus: Number(w.cpus),
        memoryMib: BigInt(parseSize(w.memory) ?? 0),
        disks: disk > 0 ? [{ sizeMib: BigInt(disk), pool: w.boot === "cloud" ? w.pool : w.pool, image }] : [],
        boot: {
          media: w.boot === "cloud" ? { case: "cloudImage", value: w.image }
            : w.boot === "iso" ? { case: "iso", value: w.iso } : { case: "pxe", value: true },
        },
        nics: [{ network: "user", mac: "" }],
        spec: w.spec,
        overrides: { hostname: w.hostname, timezone: w.timezone, sshKeys: keys, userData: "" },
        hostPin: w.placement === "host" ? w.host : "",
        scheduledAtMs: w.when === "at" ? BigInt(Date.parse(w.at)) : 0n,
        requestId: requestId(),
      });
      await refresh("vm");
      navigate("vms", w.name);
    } catch (e) {
      const f = fieldOf(e);
      setServer({ [f]: errorText(e) });
      setStep(STEP_OF[f]);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="wiz-h" className="wizard">
      <h1 id="wiz-h">New virtual machine</h1>
      <ol className="steps" aria-label="Steps">
        {STEPS.map((s, i) => (
          <li key={s}>
            <button type="button" aria-current={i === step ? "step" : undefined} disabled={i > reached}
              onClick={() => setStep(i)}>
              {i + 1}. {s}
            </button>
          </li>
        ))}
      </ol>
      <form
        aria-label={STEPS[step]}
        onSubmit={(e) => {
          e.preventDefault();
          if (step === STEPS.length - 1) void submit();
          else next();
        }}
      >
        <h2>{STEPS[step]}</h2>
        {step === 0 && <StepName w={w} set={set} err={err} />}
        {step === 1 && <StepCompute w={w} set={set} err={err} />}
        {step === 2 && <StepBoot w={w} set={set} err={err} />}
        {step === 3 && <StepCustomize w={w} set={set} err={err} />}
        {step === 4 && <StepPlacement w={w} set={set} err={err} />}
        {step === 5 && <StepSchedule w={w} set={set} err={err} />}
        {step === 6 && <Review w={w} />}
        <ErrorLine error={server.general} />
        <div className="wizard-nav">
          {step > 0 && <button type="button" onClick={() => setStep(step - 1)}>Back</button>}
          {step < STEPS.length - 1 ? (
            <button type="submit" className="primary">Next</button>
          ) : (
            <button type="submit" className="primary" disabled={busy}>{busy ? "Creating…" : "Create VM"}</button>
          )}
        </div>
      </form>
    </section>
  );
}

interface StepProps {
  w: W;
  set: <K extends keyof W>(k: K, v: W[K]) => void;
  err: (k: keyof W) => string | null;
}

function StepName({ w, set, err }: StepProps) {
  const { data } = useStore();
  return (
    <>
      <Field label="Name" error={err("name")} hint="Lower-case letters, digits and '-'; also the libvirt domain's name.">
        {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={w.name} autoFocus onChange={(e) => set("name", e.target.value)} />}
      </Field>
      <Field label="Folder" error={err("folder")}>
        {(id, d, inv) => (
          <select id={id} aria-describedby={d} aria-invalid={inv} value={w.folder} onChange={(e) => set("folder", e.target.value)}>
            {data.folders.map((f) => <option key={String(f.id)} value={f.path}>{f.path}</option>)}
          </select>
        )}
      </Field>
    </>
  );
}

function StepCompute({ w, set, err }: StepProps) {
  return (
    <>
      <Field label="CPUs" error={err("cpus")}>
        {(id, d, inv) => <input id={id} type="number" min={1} max={512} aria-describedby={d} aria-invalid={inv} value={w.cpus} onChange={(e) => set("cpus", e.target.value)} />}
      </Field>
      <Field label="Memory" error={err("memory")} hint="MiB, or with a unit: 512MiB, 4GiB.">
        {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={w.memory} onChange={(e) => set("memory", e.target.value)} />}
      </Field>
    </>
  );
}

function StepBoot({ w, set, err }: StepProps) {
  const { data, refresh } = useStore();
  const [dlErr, setDlErr] = useState<string | null>(null);
  const cloud = data.images.filter((i) => i.kind !== ImageKind.ISO);
  const isos = data.images.filter((i) => i.kind === ImageKind.ISO);
  const notRegistered = data.catalog.filter((c) => c.kind !== ImageKind.ISO && !data.images.some((i) => i.name === c.name));
  const chosenCatalog = w.image.startsWith("cat:") ? w.image.slice(4) : null;

  async function download() {
    setDlErr(null);
    try {
      const img = await api.images.createImage({ catalog: chosenCatalog ?? "", name: chosenCatalog ?? "", pool: w.downloadPool, requestId: requestId() });
      await refresh("image");
      set("image", img.name);
      if (!w.pool) set("pool", img.pool);
    } catch (e) {
      setDlErr(errorText(e));
    }
  }

  return (
    <>
      <fieldset>
        <legend>Boot from</legend>
        {([["cloud", "A cloud image (the disk is an overlay on it)"], ["iso", "An ISO (installer or live CD)"], ["pxe", "The network (PXE), with an empty disk"]] as [Boot, string][]).map(([v, l]) => (
          <label key={v} className="radio"><input type="radio" name="boot" value={v} checked={w.boot === v} onChange={() => set("boot", v)} /> {l}</label>
        ))}
      </fieldset>
      {w.boot === "cloud" && (
        <>
          <Field label="Cloud image" error={err("image")}>
            {(id, d, inv) => (
              <select id={id} aria-describedby={d} aria-invalid={inv} value={w.image} onChange={(e) => {
                set("image", e.target.value);
                const img = data.images.find((i) => i.name === e.target.value);
                if (img) set("pool", img.pool);
              }}>
                <option value="">— choose —</option>
                <optgroup label="Downloaded or downloading">
                  {cloud.map((i) => <option key={i.name} value={i.name}>{i.name} ({imageStatus(i).text})</option>)}
                </optgroup>
                <optgroup label="Catalog (needs download)">
                  {notRegistered.map((c) => <option key={c.name} value={`cat:${c.name}`}>{c.name} — {c.description} (needs download)</option>)}
                </optgroup>
              </select>
            )}
          </Field>
          {chosenCatalog && (
            <div className="inline">
              <label>Download into pool{" "}
                <select value={w.downloadPool} onChange={(e) => set("downloadPool", e.target.value)}>
                  {data.pools.map((p) => <option key={p.name}>{p.name}</option>)}
                </select>
              </label>
              <button type="button" onClick={download} disabled={!w.downloadPool}>Download {chosenCatalog}</button>
              <ErrorLine error={dlErr} />
            </div>
          )}
        </>
      )}
      {w.boot === "iso" && (
        <Field label="ISO" error={err("iso")}>
          {(id, d, inv) => (
            <select id={id} aria-describedby={d} aria-invalid={inv} value={w.iso} onChange={(e) => set("iso", e.target.value)}>
              <option value="">— choose —</option>
              {isos.map((i) => <option key={i.name} value={i.name}>{i.name} ({imageStatus(i).text})</option>)}
            </select>
          )}
        </Field>
      )}
      <Field label={w.boot === "cloud" ? "Disk size" : "Empty disk size"} error={err("diskSize")} hint={w.boot === "cloud" ? "At least the image's size." : "0 for no disk."}>
        {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={w.diskSize} onChange={(e) => set("diskSize", e.target.value)} />}
      </Field>
      <Field label="Disk pool" error={err("pool")}>
        {(id, d, inv) => (
          <select id={id} aria-describedby={d} aria-invalid={inv} value={w.pool} onChange={(e) => set("pool", e.target.value)}>
            <option value="">{w.boot === "cloud" ? "— the image's pool —" : "— choose —"}</option>
            {data.pools.map((p) => <option key={p.name} value={p.name}>{p.name} (reachable from {p.reachableFrom.join(", ") || "no host yet"})</option>)}
          </select>
        )}
      </Field>
    </>
  );
}

function StepCustomize({ w, set, err }: StepProps) {
  const { data } = useStore();
  const q = w.tzSearch.trim().toLowerCase();
  const regions = useMemo(
    () => data.timezones
      .map((r) => ({ name: r.name, zones: r.timezones.filter((z) => !q || z.toLowerCase().includes(q)) }))
      .filter((r) => r.zones.length > 0),
    [data.timezones, q],
  );
  return (
    <>
      <Field label="Customization spec" error={err("spec")} hint="How the guest is set up at first boot (cloud-init or cloudbase-init).">
        {(id, d, inv) => (
          <select id={id} aria-describedby={d} aria-invalid={inv} value={w.spec} onChange={(e) => set("spec", e.target.value)}>
            <option value="">— none —</option>
            {data.specs.map((s) => <option key={s.name} value={s.name}>{s.name}{s.description ? ` — ${s.description}` : ""}</option>)}
          </select>
        )}
      </Field>
      <Field label="Hostname" error={err("hostname")} hint="Empty: from the spec (by default the VM's name).">
        {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={w.hostname} onChange={(e) => set("hostname", e.target.value)} />}
      </Field>
      <Field label="Search time zones" hint={`${regions.reduce((n, r) => n + r.zones.length, 0)} match`}>
        {(id, d) => <input id={id} type="search" aria-describedby={d} value={w.tzSearch} onChange={(e) => set("tzSearch", e.target.value)} placeholder="e.g. berlin" />}
      </Field>
      <Field label="Time zone" error={err("timezone")}>
        {(id, d, inv) => (
          <select id={id} aria-describedby={d} aria-invalid={inv} value={w.timezone} onChange={(e) => set("timezone", e.target.value)}>
            <option value="">— the spec's —</option>
            {w.timezone && !regions.some((r) => r.zones.includes(w.timezone)) && <option value={w.timezone}>{w.timezone}</option>}
            {regions.map((r) => (
              <optgroup key={r.name} label={r.name}>
                {r.zones.map((z) => <option key={z} value={z}>{z}</option>)}
              </optgroup>
            ))}
          </select>
        )}
      </Field>
      <Field label="SSH public keys" error={err("sshKeys")} hint="One OpenSSH public key per line, for the image's default user.">
        {(id, d, inv) => <textarea id={id} rows={3} aria-describedby={d} aria-invalid={inv} value={w.sshKeys} onChange={(e) => set("sshKeys", e.target.value)} />}
      </Field>
    </>
  );
}

function StepPlacement({ w, set, err }: StepProps) {
  const { data } = useStore();
  return (
    <>
      <fieldset>
        <legend>Placement</legend>
        <label className="radio"><input type="radio" name="placement" checked={w.placement === "auto"} onChange={() => set("placement", "auto")} /> Automatic: the scheduler picks the host</label>
        <label className="radio"><input type="radio" name="placement" checked={w.placement === "host"} onChange={() => set("placement", "host")} /> On a host I choose</label>
      </fieldset>
      {w.placement === "host" && (
        <Field label="Host" error={err("host")}>
          {(id, d, inv) => (
            <select id={id} aria-describedby={d} aria-invalid={inv} value={w.host} onChange={(e) => set("host", e.target.value)}>
              <option value="">— choose —</option>
              {data.hosts.map((h) => (
                <option key={h.name} value={h.name}>
                  {h.name}: {h.cpus - h.allocatedCpus} of {h.cpus} CPUs and {mib(h.memoryMib - h.allocatedMemoryMib)} free
                  {h.online ? "" : " (offline)"}{h.maintenance ? " (maintenance)" : ""}
                </option>
              ))}
            </select>
          )}
        </Field>
      )}
    </>
  );
}

function StepSchedule({ w, set, err }: StepProps) {
  return (
    <>
      <fieldset>
        <legend>When</legend>
        <label className="radio"><input type="radio" name="when" checked={w.when === "now"} onChange={() => set("when", "now")} /> Now</label>
        <label className="radio"><input type="radio" name="when" checked={w.when === "at"} onChange={() => set("when", "at")} /> At a time</label>
      </fieldset>
      {w.when === "at" && (
        <Field label="Create at (your local time)" error={err("at")}>
          {(id, d, inv) => <input id={id} type="datetime-local" aria-describedby={d} aria-invalid={inv} value={w.at} onChange={(e) => set("at", e.target.value)} />}
        </Field>
      )}
    </>
  );
}

function Review({ w }: { w: W }) {
  const rows: [string, string][] = [
    ["Name", w.name], ["Folder", w.folder], ["CPUs", w.cpus], ["Memory", w.memory],
    ["Boot", w.boot === "cloud" ? `cloud image ${w.image}` : w.boot === "iso" ? `ISO ${w.iso}` : "network (PXE)"],
    ["Disk", parseSize(w.diskSize) ? `${w.diskSize} in ${w.pool || "the image's pool"}` : "none"],
    ["Spec", w.spec || "none"], ["Hostname", w.hostname || "from the spec"], ["Time zone", w.timezone || "from the spec"],
    ["SSH keys", String(w.sshKeys.split("\n").filter((l) => l.trim()).length)],
    ["Placement", w.placement === "auto" ? "automatic" : `on ${w.host}`],
    ["When", w.when === "now" ? "now" : new Date(w.at).toLocaleString()],
  ];
  return (
    <dl className="facts review" aria-label="Summary">
      {rows.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v}</dd></div>)}
    </dl>
  );
}
