import { useState } from "react";
import { useStore } from "../store";
import { api, errorText, requestId, when } from "../api";
import { ErrorLine, Field } from "../ui";
import { ImageFormat, ImageKind, ImageState } from "../gen/quantix/v1/image_pb.js";
import { imageStatus } from "./Wizard";
import { uploadImage } from "../upload";

/** Upload an ISO (or disk image) from this computer to the host serving the page. */
function UploadForm() {
  const { data, refresh } = useStore();
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [pool, setPool] = useState(data.pools[0]?.name ?? "");
  const [errs, setErrs] = useState<Record<string, string | null>>({});
  const [progress, setProgress] = useState<{ phase: string; pct: number } | null>(null);
  const [done, setDone] = useState<string | null>(null);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const x: Record<string, string | null> = {};
    if (!file) x.file = "choose a file";
    if (!/^[a-z0-9][a-z0-9.-]*$/.test(name)) x.name = "lower-case letters, digits, '-' and '.'";
    if (!pool) x.pool = "choose a pool";
    setErrs(x);
    setDone(null);
    if (Object.keys(x).length || !file) return;
    try {
      const r = await uploadImage(file, { name, pool, kind: 0, format: 0, os: "", requestId: requestId() },
        (phase, d, total) => setProgress({ phase, pct: total ? Math.floor((d * 100) / total) : 0 }));
      setDone(r.shared ? `Uploaded ${name}; every host sees pool ${pool}.` : `Uploaded ${name} to ${r.host}; only that host has it (pool ${pool} is not shared).`);
      await refresh("image");
    } catch (err) {
      const m = err instanceof Error ? err.message : String(err);
      setErrs({ [/pool/i.test(m) ? "pool" : /name|exists/i.test(m) ? "name" : "file"]: m });
    } finally {
      setProgress(null);
    }
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby="up-h">
      <h2 id="up-h">Upload from this computer</h2>
      <Field label="File" error={errs.file} hint="An ISO, or a qcow2 or raw disk image. It goes to the host serving this page.">
        {(id, d, inv) => (
          <input id={id} type="file" aria-describedby={d} aria-invalid={inv} accept=".iso,.qcow2,.img,.raw"
            onChange={(e) => {
              const f = e.target.files?.[0] ?? null;
              setFile(f);
              if (f && !name) setName(f.name.toLowerCase().replace(/\.(iso|qcow2|img|raw)$/, "").replace(/[^a-z0-9.-]+/g, "-").replace(/^[^a-z0-9]+/, ""));
            }} />
        )}
      </Field>
      <Field label="Name for the image" error={errs.name}>
        {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={name} onChange={(e) => setName(e.target.value)} />}
      </Field>
      <Field label="Store in pool" error={errs.pool}>
        {(id, d, inv) => (
          <select id={id} aria-describedby={d} aria-invalid={inv} value={pool} onChange={(e) => setPool(e.target.value)}>
            <option value="">— choose —</option>
            {data.pools.map((p) => <option key={p.name}>{p.name}</option>)}
          </select>
        )}
      </Field>
      <button type="submit" disabled={!!progress}>Upload</button>{" "}
      {progress && (
        <span role="status">
          <progress max={100} value={progress.pct} aria-label="Upload" /> {progress.phase} {progress.pct}%
        </span>
      )}
      {done && <p role="status" className="ok">{done}</p>}
    </form>
  );
}

export function Images() {
  const { data, refresh } = useStore();
  const [f, setF] = useState({ name: "", url: "", kind: "cloud", sha256: "", pool: data.pools[0]?.name ?? "", os: "" });
  const [errs, setErrs] = useState<Record<string, string | null>>({});
  const [catalog, setCatalog] = useState("");
  const [confirm, setConfirm] = useState<string | null>(null);
  const set = (k: keyof typeof f, v: string) => setF((x) => ({ ...x, [k]: v }));

  async function create(e: React.FormEvent) {
    e.preventDefault();
    const x: Record<string, string | null> = {};
    if (!/^[a-z0-9][a-z0-9.-]*$/.test(f.name)) x.name = "lower-case letters, digits, '-' and '.'";
    if (!/^https?:\/\/\S+$/.test(f.url)) x.url = "an http:// or https:// URL";
    if (f.sha256 && !/^[0-9a-fA-F]{64}$/.test(f.sha256)) x.sha256 = "64 hex characters, or empty";
    if (!f.pool) x.pool = "choose a pool";
    setErrs(x);
    if (Object.keys(x).length) return;
    try {
      const iso = f.kind === "iso";
      await api.images.createImage({
        name: f.name, url: f.url, sha256: f.sha256.toLowerCase(), pool: f.pool, os: f.os,
        kind: iso ? ImageKind.ISO : ImageKind.CLOUD, format: iso ? ImageFormat.ISO : ImageFormat.QCOW2,
        requestId: requestId(),
      });
      setF((v) => ({ ...v, name: "", url: "", sha256: "", os: "" }));
      await refresh("image");
    } catch (e) {
      const m = errorText(e);
      const k = /url/i.test(m) ? "url" : /pool/i.test(m) ? "pool" : /sha/i.test(m) ? "sha256" : "name";
      setErrs({ [k]: m });
    }
  }

  async function fromCatalog(e: React.FormEvent) {
    e.preventDefault();
    if (!catalog) return setErrs({ catalog: "choose a catalog image" });
    try {
      await api.images.createImage({ catalog, name: catalog, pool: f.pool, requestId: requestId() });
      await refresh("image");
      setErrs({});
    } catch (err) {
      setErrs({ catalog: errorText(err) });
    }
  }

  async function remove(name: string) {
    try {
      await api.images.deleteImage({ name, requestId: requestId() });
      await refresh("image");
    } catch (e) {
      setErrs({ list: errorText(e) });
    }
  }

  return (
    <section aria-labelledby="img-h">
      <h1 id="img-h">Images</h1>
      <ErrorLine error={errs.list} />
      <table className="grid" aria-label="Images">
        <thead>
          <tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Pool</th><th scope="col">Status</th><th scope="col">Hosts</th><th scope="col">Source</th><th scope="col"><span className="sr-only">Actions</span></th></tr>
        </thead>
        <tbody>
          {data.images.length === 0 && <tr><td colSpan={7} className="muted">No images yet.</td></tr>}
          {data.images.map((i) => {
            const st = imageStatus(i);
            const pct = i.status?.state === ImageState.READY ? 100 : i.status?.percent ?? 0;
            return (
              <tr key={i.name} data-testid={`image-row-${i.name}`}>
                <th scope="row">{i.name}<div className="muted small">{i.os}</div></th>
                <td>{i.kind === ImageKind.ISO ? "ISO" : "cloud"}</td>
                <td>{i.pool}</td>
                <td>
                  <progress max={100} value={pct} aria-label={`${i.name} download`} />{" "}
                  <span data-testid={`image-status-${i.name}`}>{st.text}</span>
                </td>
                <td className="small">
                  {i.hosts.map((h) => (
                    <div key={h.host}>{h.host}: {h.progress?.state === ImageState.READY ? "ready" : h.progress?.state === ImageState.DOWNLOADING ? `${h.progress.percent}%` : h.progress?.state === ImageState.FAILED ? `failed: ${h.progress.reason}` : "pending"}</div>
                  ))}
                </td>
                <td className="small mono">{i.url}<div className="muted">added {when(i.createdAtMs)}</div></td>
                <td>
                  {confirm === i.name ? (
                    <>
                      <button type="button" className="bad" onClick={() => { setConfirm(null); void remove(i.name); }}>Confirm delete</button>
                      <button type="button" onClick={() => setConfirm(null)}>Cancel</button>
                    </>
                  ) : (
                    <button type="button" onClick={() => setConfirm(i.name)} aria-label={`Delete image ${i.name}`}>Delete…</button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div className="cards">
        <form className="card" onSubmit={create} aria-labelledby="dl-h">
          <h2 id="dl-h">Download from a URL</h2>
          <Field label="Image name" error={errs.name}>
            {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={f.name} onChange={(e) => set("name", e.target.value)} />}
          </Field>
          <Field label="URL" error={errs.url}>
            {(id, d, inv) => <input id={id} type="url" aria-describedby={d} aria-invalid={inv} value={f.url} onChange={(e) => set("url", e.target.value)} />}
          </Field>
          <Field label="Kind">
            {(id) => (
              <select id={id} value={f.kind} onChange={(e) => set("kind", e.target.value)}>
                <option value="cloud">cloud image (qcow2)</option>
                <option value="iso">ISO</option>
              </select>
            )}
          </Field>
          <Field label="SHA-256 (optional)" error={errs.sha256}>
            {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={f.sha256} onChange={(e) => set("sha256", e.target.value)} />}
          </Field>
          <Field label="OS (optional)">
            {(id) => <input id={id} value={f.os} onChange={(e) => set("os", e.target.value)} />}
          </Field>
          <Field label="Pool" error={errs.pool}>
            {(id, d, inv) => (
              <select id={id} aria-describedby={d} aria-invalid={inv} value={f.pool} onChange={(e) => set("pool", e.target.value)}>
                <option value="">— choose —</option>
                {data.pools.map((p) => <option key={p.name}>{p.name}</option>)}
              </select>
            )}
          </Field>
          <button type="submit" className="primary">Download</button>
        </form>
        <form className="card" onSubmit={fromCatalog} aria-labelledby="cat-h">
          <h2 id="cat-h">From the catalog</h2>
          <Field label="Catalog image" error={errs.catalog}>
            {(id, d, inv) => (
              <select id={id} aria-describedby={d} aria-invalid={inv} value={catalog} onChange={(e) => setCatalog(e.target.value)}>
                <option value="">— choose —</option>
                {data.catalog.map((c) => <option key={c.name} value={c.name}>{c.name} — {c.description}</option>)}
              </select>
            )}
          </Field>
          <p className="muted small">Stored in the pool chosen on the left ({f.pool || "none"}).</p>
          <button type="submit">Add from catalog</button>
        </form>
        <UploadForm />
      </div>
    </section>
  );
}
