import { useState } from "react";
import { useStore } from "../store";
import { api, errorText, labelError, mib, requestId } from "../api";
import { ErrorLine, Field } from "../ui";
import { PoolType } from "../gen/quantix/v1/pool_pb.js";

export function Pools() {
  const { data, refresh } = useStore();
  const [f, setF] = useState({ name: "", type: "dir", path: "", shared: false, server: "", exp: "", mount: "", hosts: [] as string[] });
  const [errs, setErrs] = useState<Record<string, string | null>>({});
  const [confirm, setConfirm] = useState<string | null>(null);

  async function create(e: React.FormEvent) {
    e.preventDefault();
    const x: Record<string, string | null> = {};
    const n = labelError("pool name", f.name);
    if (n) x.name = n;
    if (f.type === "dir" && !f.path.startsWith("/")) x.path = "an absolute path";
    if (f.type === "nfs" && !f.server) x.server = "the NFS server";
    if (f.type === "nfs" && !f.exp.startsWith("/")) x.exp = "the absolute exported path";
    setErrs(x);
    if (Object.keys(x).length) return;
    try {
      await api.pools.createPool({
        name: f.name, type: f.type === "dir" ? PoolType.DIR : PoolType.NFS, path: f.path, shared: f.shared,
        server: f.server, export: f.exp, mountPoint: f.mount, allowedHosts: f.hosts, requestId: requestId(),
      });
      setF((v) => ({ ...v, name: "", path: "" }));
      await refresh("pool");
    } catch (err) {
      const m = errorText(err);
      setErrs({ [/path/i.test(m) ? "path" : /server/i.test(m) ? "server" : /export/i.test(m) ? "exp" : /host/i.test(m) ? "hosts" : "name"]: m });
    }
  }

  async function remove(name: string) {
    try {
      await api.pools.deletePool({ name, requestId: requestId() });
      await refresh("pool");
    } catch (e) {
      setErrs({ list: errorText(e) });
    }
  }

  return (
    <section aria-labelledby="pools-h">
      <h1 id="pools-h">Storage pools</h1>
      <ErrorLine error={errs.list} />
      <table className="grid" aria-label="Storage pools">
        <thead>
          <tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Source</th><th scope="col">Limited to</th><th scope="col">Hosts' reports</th><th scope="col"><span className="sr-only">Actions</span></th></tr>
        </thead>
        <tbody>
          {data.pools.length === 0 && <tr><td colSpan={6} className="muted">No pools yet.</td></tr>}
          {data.pools.map((p) => (
            <tr key={p.name} data-testid={`pool-row-${p.name}`}>
              <th scope="row">{p.name}</th>
              <td>{p.type === PoolType.NFS ? "nfs" : "dir"}{p.shared ? " (shared)" : ""}</td>
              <td className="mono small">{p.type === PoolType.NFS ? `${p.server}:${p.export} on ${p.mountPoint}` : p.path}</td>
              <td>{p.allowedHosts.join(", ") || "all hosts"}</td>
              <td className="small">
                {p.hosts.map((h) => (
                  <div key={h.host}>
                    {h.host}: {h.reachable ? <span className="ok">reachable</span> : <span className="bad">unreachable {h.reason}</span>}
                    {h.reachable && h.capacityMib ? ` · ${mib(h.freeMib)} free of ${mib(h.capacityMib)}` : ""}
                  </div>
                ))}
              </td>
              <td>
                {confirm === p.name ? (
                  <>
                    <button type="button" className="bad" onClick={() => { setConfirm(null); void remove(p.name); }}>Confirm delete</button>
                    <button type="button" onClick={() => setConfirm(null)}>Cancel</button>
                  </>
                ) : (
                  <button type="button" onClick={() => setConfirm(p.name)} aria-label={`Delete pool ${p.name}`}>Delete…</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="card" onSubmit={create} aria-labelledby="newpool-h">
        <h2 id="newpool-h">New pool</h2>
        <Field label="Pool name" error={errs.name}>
          {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={f.name} onChange={(e) => setF({ ...f, name: e.target.value })} />}
        </Field>
        <fieldset>
          <legend>Type</legend>
          <label className="radio"><input type="radio" name="ptype" checked={f.type === "dir"} onChange={() => setF({ ...f, type: "dir" })} /> Directory</label>
          <label className="radio"><input type="radio" name="ptype" checked={f.type === "nfs"} onChange={() => setF({ ...f, type: "nfs" })} /> NFS</label>
        </fieldset>
        {f.type === "dir" ? (
          <>
            <Field label="Directory path" error={errs.path}>
              {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={f.path} onChange={(e) => setF({ ...f, path: e.target.value })} />}
            </Field>
            <label className="radio"><input type="checkbox" checked={f.shared} onChange={(e) => setF({ ...f, shared: e.target.checked })} /> On storage every host shares</label>
          </>
        ) : (
          <>
            <Field label="NFS server" error={errs.server}>
              {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={f.server} onChange={(e) => setF({ ...f, server: e.target.value })} />}
            </Field>
            <Field label="Export" error={errs.exp}>
              {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={f.exp} onChange={(e) => setF({ ...f, exp: e.target.value })} />}
            </Field>
            <Field label="Mount point (optional)">
              {(id) => <input id={id} value={f.mount} onChange={(e) => setF({ ...f, mount: e.target.value })} />}
            </Field>
          </>
        )}
        <fieldset>
          <legend>Limit to hosts (none checked: every host)</legend>
          {data.hosts.map((h) => (
            <label key={h.name} className="radio">
              <input type="checkbox" checked={f.hosts.includes(h.name)}
                onChange={(e) => setF({ ...f, hosts: e.target.checked ? [...f.hosts, h.name] : f.hosts.filter((x) => x !== h.name) })} /> {h.name}
            </label>
          ))}
          <ErrorLine error={errs.hosts} />
        </fieldset>
        <button type="submit" className="primary">Create pool</button>
      </form>
    </section>
  );
}
