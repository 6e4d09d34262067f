import { useState } from "react";
import { useStore } from "../store";
import { api, errorText, requestId, when } from "../api";
import { href, navigate } from "../route";
import { ErrorLine, Field } from "../ui";
import { SpecOs, type CustomizationSpec } from "../gen/quantix/v1/spec_pb.js";

export function Specs({ route }: { route: string[] }) {
  const { data } = useStore();
  const editing = route[1];
  const spec = editing && editing !== "new" ? data.specs.find((s) => s.name === editing) : undefined;
  return (
    <section aria-labelledby="specs-h">
      <h1 id="specs-h">Customization specs</h1>
      <table className="grid" aria-label="Customization specs">
        <thead>
          <tr><th scope="col">Name</th><th scope="col">OS</th><th scope="col">Description</th><th scope="col">Time zone</th><th scope="col">Revision</th><th scope="col">Updated</th></tr>
        </thead>
        <tbody>
          {data.specs.map((s) => (
            <tr key={s.name}>
              <th scope="row"><a href={href("specs", s.name)}>{s.name}</a>{s.builtIn && <span className="muted"> (built-in)</span>}</th>
              <td>{s.os === SpecOs.WINDOWS ? "Windows" : "Linux"}</td>
              <td>{s.description}</td>
              <td>{s.settings.case ? s.settings.value.timezone || "UTC" : ""}</td>
              <td>{String(s.revision)}</td>
              <td>{when(s.updatedAtMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p><a className="button" href={href("specs", "new")}>New spec…</a></p>
      {editing && (editing === "new" || spec) && <SpecForm key={editing} spec={spec} />}
      {editing && editing !== "new" && !spec && <p>No spec named {editing}.</p>}
    </section>
  );
}

function lines(s: string): string[] {
  return s.split("\n").map((l) => l.trim()).filter(Boolean);
}

function SpecForm({ spec }: { spec?: CustomizationSpec }) {
  const { data, refresh } = useStore();
  const lin = spec?.settings.case === "linux" ? spec.settings.value : undefined;
  const win = spec?.settings.case === "windows" ? spec.settings.value : undefined;
  const [f, setF] = useState({
    name: spec?.name ?? "",
    os: spec?.os === SpecOs.WINDOWS ? "windows" : "linux",
    description: spec?.description ?? "",
    hostname: lin?.hostnamePattern ?? win?.computerName ?? "",
    domain: lin?.domain ?? "",
    timezone: lin?.timezone ?? win?.timezone ?? "",
    sshKeys: (lin?.sshKeys ?? []).join("\n"),
    dns: (lin?.dnsServers ?? []).join("\n"),
    packages: (lin?.packages ?? []).join("\n"),
    commands: (lin?.runCommands ?? []).join("\n"),
    agent: lin?.installAgent ?? true,
    workgroup: win?.membership.case === "workgroup" ? win.membership.value : "",
    adminPassword: "",
  });
  const [err, setErr] = useState<Record<string, string | null>>({});
  const [saved, setSaved] = useState<string | null>(null);
  const set = (k: keyof typeof f, v: string | boolean) => setF((x) => ({ ...x, [k]: v }));
  const zones = data.timezones.flatMap((r) => r.timezones);

  async function save(e: React.FormEvent) {
    e.preventDefault();
    const x: Record<string, string | null> = {};
    if (!spec && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(f.name)) x.name = "lower-case letters, digits and '-'";
    if (f.timezone && !zones.includes(f.timezone)) x.timezone = "not a time zone this cluster knows (see the list)";
    const badKey = lines(f.sshKeys).find((k) => !/^(ssh-|ecdsa-|sk-)\S+ \S+/.test(k));
    if (badKey) x.sshKeys = `not an OpenSSH public key: ${badKey.slice(0, 40)}`;
    if (f.os === "windows" && !spec && f.adminPassword && (f.adminPassword.length < 8 || f.adminPassword.length > 127)) x.adminPassword = "8 to 127 characters";
    setErr(x);
    if (Object.keys(x).length) return;
    const settings = f.os === "linux"
      ? {
          case: "linux" as const,
          value: {
            hostnamePattern: f.hostname, domain: f.domain, timezone: f.timezone, users: lin?.users ?? [],
            sshKeys: lines(f.sshKeys), dnsServers: lines(f.dns), searchDomains: lin?.searchDomains ?? [],
            staticNetwork: lin?.staticNetwork, packages: lines(f.packages), runCommands: lines(f.commands), installAgent: f.agent,
          },
        }
      : {
          case: "windows" as const,
          value: {
            computerName: f.hostname, timezone: f.timezone, workgroup: f.workgroup, adminPassword: f.adminPassword,
            productKey: "", joinPassword: "", clearAdminPassword: false, clearProductKey: false,
          },
        };
    try {
      if (spec) {
        await api.specs.updateSpec({ name: spec.name, description: f.description, expectedRevision: spec.revision, settings, requestId: requestId() });
      } else {
        await api.specs.createSpec({ name: f.name, description: f.description, settings, requestId: requestId() });
      }
      await refresh("spec");
      setSaved(`Saved ${spec?.name ?? f.name}.`);
      if (!spec) navigate("specs", f.name);
    } catch (e2) {
      const m = errorText(e2);
      const k = /time ?zone/i.test(m) ? "timezone" : /ssh/i.test(m) ? "sshKeys" : /hostname|computer/i.test(m) ? "hostname"
        : /dns/i.test(m) ? "dns" : /password/i.test(m) ? "adminPassword" : /domain/i.test(m) ? "domain" : "name";
      setErr({ [k]: m });
    }
  }

  const text = (k: keyof typeof f, label: string, hint?: string) => (
    <Field label={label} error={err[k]} hint={hint}>
      {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={String(f[k])} onChange={(e) => set(k, e.target.value)} />}
    </Field>
  );
  const area = (k: keyof typeof f, label: string, hint: string) => (
    <Field label={label} error={err[k]} hint={hint}>
      {(id, d, inv) => <textarea id={id} rows={3} aria-describedby={d} aria-invalid={inv} value={String(f[k])} onChange={(e) => set(k, e.target.value)} />}
    </Field>
  );

  return (
    <form className="card" onSubmit={save} aria-labelledby="specform-h">
      <h2 id="specform-h">{spec ? `Edit ${spec.name} (revision ${spec.revision})` : "New spec"}</h2>
      {!spec && text("name", "Name")}
      {!spec && (
        <fieldset>
          <legend>Operating system</legend>
          <label className="radio"><input type="radio" name="os" checked={f.os === "linux"} onChange={() => set("os", "linux")} /> Linux (cloud-init)</label>
          <label className="radio"><input type="radio" name="os" checked={f.os === "windows"} onChange={() => set("os", "windows")} /> Windows (cloudbase-init)</label>
        </fieldset>
      )}
      {text("description", "Description")}
      {text("hostname", f.os === "linux" ? "Hostname pattern" : "Computer name", "{vm} is the VM's name, {n} a number.")}
      <Field label="Time zone" error={err.timezone} hint="An IANA name such as Europe/Berlin; empty for UTC.">
        {(id, d, inv) => (
          <>
            <input id={id} list="spec-tz" aria-describedby={d} aria-invalid={inv} value={f.timezone} onChange={(e) => set("timezone", e.target.value)} />
            <datalist id="spec-tz">{zones.map((z) => <option key={z} value={z} />)}</datalist>
          </>
        )}
      </Field>
      {f.os === "linux" ? (
        <>
          {text("domain", "Domain")}
          {area("sshKeys", "SSH public keys", "One per line, for the image's default user.")}
          {area("dns", "DNS servers", "One IP address per line, at most 3.")}
          {area("packages", "Packages", "One per line.")}
          {area("commands", "Run commands", "One shell command per line, run once at first boot.")}
          <label className="radio"><input type="checkbox" checked={f.agent} onChange={(e) => set("agent", e.target.checked)} /> Install the Quantix guest agent</label>
        </>
      ) : (
        <>
          {text("workgroup", "Workgroup", "Empty: WORKGROUP.")}
          <Field label="Administrator password" error={err.adminPassword} hint={spec ? (win?.hasAdminPassword ? "Set; leave empty to keep it." : "Not set.") : "8–127 characters; never shown again."}>
            {(id, d, inv) => <input id={id} type="password" autoComplete="new-password" aria-describedby={d} aria-invalid={inv} value={f.adminPassword} onChange={(e) => set("adminPassword", e.target.value)} />}
          </Field>
        </>
      )}
      <button type="submit" className="primary">{spec ? "Save changes" : "Create spec"}</button>{" "}
      <a href={href("specs")}>Close</a>
      {saved && <p role="status" className="ok">{saved}</p>}
      <ErrorLine error={err.general} />
    </form>
  );
}
