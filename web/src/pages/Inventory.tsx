import { useMemo, useState } from "react";
import { useStore } from "../store";
import { api, errorText, mib, requestId, when } from "../api";
import { href, navigate } from "../route";
import { ErrorLine, EventTable, Field, StatusBadge } from "../ui";
import type { Vm } from "../gen/quantix/v1/vm_pb.js";

const FIXED = new Set(["/", "/Discovered"]);

export function bootText(vm: Vm): string {
  const b = vm.boot?.media;
  switch (b?.case) {
    case "cloudImage": return `cloud image ${b.value}`;
    case "iso": return `ISO ${b.value}`;
    case "pxe": return "network (PXE)";
    case "foreign": return "as found on the host";
    default: return "—";
  }
}

export function Inventory({ route }: { route: string[] }) {
  const { data, refresh } = useStore();
  const [folder, setFolder] = useState("/");
  const [error, setError] = useState<string | null>(null);
  const [dragOver, setDragOver] = useState<string | null>(null);
  const vmName = route[0] === "vms" ? route[1] : undefined;

  async function moveVms(names: string[], to: string) {
    setError(null);
    try {
      for (const name of names) {
        await api.vms.updateVm({ name, folder: to, requestId: requestId() });
      }
      await refresh("vm");
    } catch (e) {
      setError(errorText(e));
    }
  }

  const depth = (p: string) => (p === "/" ? 0 : p.split("/").length - 1);
  const counts = useMemo(() => {
    const c = new Map<string, number>();
    for (const v of data.vms) c.set(v.folder, (c.get(v.folder) ?? 0) + 1);
    return c;
  }, [data.vms]);

  return (
    <section aria-labelledby="inv-h" className="inventory">
      <h1 id="inv-h">Inventory</h1>
      <ErrorLine error={error} />
      <div className="split">
        <aside aria-label="Folders" className="tree">
          <h2>Folders</h2>
          <ul role="list">
            {data.folders.map((f) => (
              <li key={String(f.id)}>
                <button
                  type="button"
                  className={`folder ${folder === f.path ? "sel" : ""} ${dragOver === f.path ? "drop" : ""}`}
                  style={{ paddingLeft: `${0.5 + depth(f.path) * 1}rem` }}
                  aria-current={folder === f.path ? "true" : undefined}
                  data-testid={`folder-${f.path}`}
                  onClick={() => {
                    setFolder(f.path);
                    if (vmName) navigate("inventory");
                  }}
                  onDragOver={(e) => {
                    e.preventDefault();
                    setDragOver(f.path);
                  }}
                  onDragLeave={() => setDragOver(null)}
                  onDrop={(e) => {
                    e.preventDefault();
                    setDragOver(null);
                    const names = e.dataTransfer.getData("text/x-quantix-vms").split("\n").filter(Boolean);
                    if (names.length) void moveVms(names, f.path);
                  }}
                >
                  <span aria-hidden="true">▸ </span>
                  {f.path === "/" ? "/ (root)" : f.name}
                  <span className="count"> {counts.get(f.path) ?? 0}</span>
                </button>
              </li>
            ))}
          </ul>
          <FolderActions folder={folder} onSelect={setFolder} />
        </aside>
        <div className="pane">
          {vmName ? (
            <VmDetail name={vmName} />
          ) : (
            <VmList folder={folder} onMove={moveVms} />
          )}
        </div>
      </div>
    </section>
  );
}

function FolderActions({ folder, onSelect }: { folder: string; onSelect: (p: string) => void }) {
  const { data, refresh } = useStore();
  const [child, setChild] = useState("");
  const [rename, setRename] = useState("");
  const [parent, setParent] = useState("/");
  const [recursive, setRecursive] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [err, setErr] = useState<Record<string, string | null>>({});
  const fixed = FIXED.has(folder);
  const join = (p: string, n: string) => (p === "/" ? `/${n}` : `${p}/${n}`);
  const nameErr = (n: string) =>
    !n ? "a name is required" : /^[A-Za-z0-9 _.-]{1,64}$/.test(n) ? null : "1–64 letters, digits, spaces, '-', '_' or '.'";

  async function run(key: string, f: () => Promise<string | void>) {
    setErr({ [key]: null });
    try {
      const next = await f();
      await refresh("folder");
      if (next) onSelect(next);
    } catch (e) {
      setErr({ [key]: errorText(e) });
    }
  }

  return (
    <div className="folder-actions">
      <h3>Folder {folder}</h3>
      <form onSubmit={(e) => {
        e.preventDefault();
        const bad = nameErr(child.trim());
        if (bad) return setErr({ create: bad });
        void run("create", async () => {
          const f = await api.folders.createFolder({ path: join(folder, child.trim()), requestId: requestId() });
          setChild("");
          return f.path;
        });
      }}>
        <Field label="New subfolder name" error={err.create}>
          {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={child} onChange={(e) => setChild(e.target.value)} />}
        </Field>
        <button type="submit">Create folder</button>
      </form>
      {!fixed && (
        <>
          <form onSubmit={(e) => {
            e.preventDefault();
            const bad = nameErr(rename.trim());
            if (bad) return setErr({ rename: bad });
            void run("rename", async () => {
              const f = await api.folders.renameFolder({ path: folder, newName: rename.trim(), requestId: requestId() });
              setRename("");
              return f.path;
            });
          }}>
            <Field label="Rename to" error={err.rename}>
              {(id, d, inv) => <input id={id} aria-describedby={d} aria-invalid={inv} value={rename} onChange={(e) => setRename(e.target.value)} />}
            </Field>
            <button type="submit">Rename</button>
          </form>
          <form onSubmit={(e) => {
            e.preventDefault();
            void run("move", async () => (await api.folders.moveFolder({ path: folder, newParent: parent, requestId: requestId() })).path);
          }}>
            <Field label="Move into" error={err.move}>
              {(id, d, inv) => (
                <select id={id} aria-describedby={d} aria-invalid={inv} value={parent} onChange={(e) => setParent(e.target.value)}>
                  {data.folders.filter((f) => f.path !== folder && !f.path.startsWith(folder + "/")).map((f) => (
                    <option key={String(f.id)} value={f.path}>{f.path}</option>
                  ))}
                </select>
              )}
            </Field>
            <button type="submit">Move folder</button>
          </form>
          <div className="danger">
            <label><input type="checkbox" checked={recursive} onChange={(e) => setRecursive(e.target.checked)} /> with subfolders</label>
            {!confirm ? (
              <button type="button" onClick={() => setConfirm(true)}>Delete folder…</button>
            ) : (
              <>
                <button type="button" className="bad" onClick={() => {
                  setConfirm(false);
                  void run("delete", async () => {
                    await api.folders.deleteFolder({ path: folder, recursive, requestId: requestId() });
                    return folder.slice(0, folder.lastIndexOf("/")) || "/";
                  });
                }}>Confirm delete {folder}</button>
                <button type="button" onClick={() => setConfirm(false)}>Cancel</button>
              </>
            )}
            <ErrorLine error={err.delete} />
          </div>
        </>
      )}
    </div>
  );
}

function VmList({ folder, onMove }: { folder: string; onMove: (names: string[], to: string) => Promise<void> }) {
  const { data } = useStore();
  const [q, setQ] = useState("");
  const [status, setStatus] = useState("");
  const [host, setHost] = useState("");
  const [sub, setSub] = useState(true);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [target, setTarget] = useState("/");

  const vms = data.vms.filter((v) => {
    const inFolder = v.folder === folder || (sub && (folder === "/" || v.folder.startsWith(folder + "/")));
    return inFolder && (!q || v.name.includes(q.toLowerCase())) && (!status || v.status === status) && (!host || v.host === host);
  });
  const statuses = [...new Set(data.vms.map((v) => v.status))].sort();
  const toggle = (n: string) => setSelected((s) => {
    const c = new Set(s);
    if (c.has(n)) c.delete(n); else c.add(n);
    return c;
  });
  const chosen = [...selected].filter((n) => vms.some((v) => v.name === n));

  return (
    <div>
      <h2>Virtual machines in {folder}{sub ? " and below" : ""}</h2>
      <div className="filters" role="search" aria-label="Filter VMs">
        <label>Name <input type="search" value={q} onChange={(e) => setQ(e.target.value)} /></label>
        <label>Status{" "}
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">any</option>
            {statuses.map((s) => <option key={s}>{s}</option>)}
          </select>
        </label>
        <label>Host{" "}
          <select value={host} onChange={(e) => setHost(e.target.value)}>
            <option value="">any</option>
            {data.hosts.map((h) => <option key={h.name}>{h.name}</option>)}
          </select>
        </label>
        <label><input type="checkbox" checked={sub} onChange={(e) => setSub(e.target.checked)} /> include subfolders</label>
        <a className="button" href={href("new-vm")}>New VM…</a>
      </div>
      <div className="filters">
        <label>Move selected ({chosen.length}) to{" "}
          <select value={target} onChange={(e) => setTarget(e.target.value)} aria-label="Destination folder">
            {data.folders.map((f) => <option key={String(f.id)} value={f.path}>{f.path}</option>)}
          </select>
        </label>
        <button type="button" disabled={chosen.length === 0} onClick={() => onMove(chosen, target).then(() => setSelected(new Set()))}>
          Move
        </button>
        <span className="muted small">or drag rows onto a folder</span>
      </div>
      <table className="grid" aria-label="Virtual machines">
        <thead>
          <tr>
            <th scope="col"><span className="sr-only">Select</span></th>
            <th scope="col">Name</th><th scope="col">Status</th><th scope="col">Host</th><th scope="col">Folder</th>
            <th scope="col">CPUs</th><th scope="col">Memory</th><th scope="col">Boot</th><th scope="col">Reason</th>
          </tr>
        </thead>
        <tbody>
          {vms.length === 0 && <tr><td colSpan={9} className="muted">No VMs here.</td></tr>}
          {vms.map((v) => (
            <tr key={v.name} draggable data-testid={`vm-row-${v.name}`}
              onDragStart={(e) => {
                const names = selected.has(v.name) ? chosen : [v.name];
                e.dataTransfer.setData("text/x-quantix-vms", names.join("\n"));
              }}>
              <td><input type="checkbox" aria-label={`Select ${v.name}`} checked={selected.has(v.name)} onChange={() => toggle(v.name)} /></td>
              <th scope="row"><a href={href("vms", v.name)}>{v.name}</a></th>
              <td><StatusBadge status={v.status} /></td>
              <td>{v.host || "—"}</td>
              <td>{v.folder}</td>
              <td>{v.cpus}</td>
              <td>{mib(v.memoryMib)}</td>
              <td>{bootText(v)}</td>
              <td className="small">{v.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function VmDetail({ name }: { name: string }) {
  const { data, refresh } = useStore();
  const vm = data.vms.find((v) => v.name === name);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [target, setTarget] = useState("");
  if (!vm) {
    return (
      <div>
        <p>No VM named {name} (it may have been deleted).</p>
        <a href={href("inventory")}>Back to the list</a>
      </div>
    );
  }
  const act = async (label: string, f: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
      await refresh("vm");
    } catch (e) {
      setError(`${label}: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };
  const rid = () => ({ name, requestId: requestId() });
  const events = data.events.filter((e) => e.target === name);
  return (
    <div aria-labelledby="vm-h">
      <p><a href={href("inventory")}>← All VMs</a></p>
      <h2 id="vm-h">VM {vm.name} <StatusBadge status={vm.status} /></h2>
      <dl className="facts">
        <div><dt>Status</dt><dd data-testid="vm-status">{vm.status}</dd></div>
        <div><dt>Desired power</dt><dd>{vm.power}</dd></div>
        <div><dt>Host</dt><dd data-testid="vm-host">{vm.host || "— (not placed)"}</dd></div>
        <div><dt>Folder</dt><dd data-testid="vm-folder">{vm.folder}</dd></div>
        <div><dt>CPUs</dt><dd>{vm.cpus}</dd></div>
        <div><dt>Memory</dt><dd>{mib(vm.memoryMib)}</dd></div>
        <div><dt>Boot</dt><dd>{bootText(vm)}</dd></div>
        <div><dt>Spec</dt><dd>{vm.spec || "—"}</dd></div>
        <div><dt>Pinned to</dt><dd>{vm.hostPin || "—"}</dd></div>
        <div><dt>Scheduled</dt><dd>{vm.scheduledAtMs ? when(vm.scheduledAtMs) : "now"}</dd></div>
        <div><dt>Created</dt><dd>{when(vm.createdAtMs)}</dd></div>
        <div><dt>Observed</dt><dd>{when(vm.observedAtMs)}</dd></div>
        <div className="wide"><dt>Reason</dt><dd data-testid="vm-reason">{vm.reason || "—"}</dd></div>
      </dl>
      <h3>Disks</h3>
      <table className="grid" aria-label="Disks">
        <thead><tr><th scope="col">#</th><th scope="col">Size</th><th scope="col">Pool</th><th scope="col">Backing image</th></tr></thead>
        <tbody>
          {vm.disks.length === 0 && <tr><td colSpan={4} className="muted">No disks.</td></tr>}
          {vm.disks.map((d, i) => (
            <tr key={i}><td>{i}</td><td>{mib(d.sizeMib)}</td><td>{d.pool}</td><td>{d.image || "— (blank)"}</td></tr>
          ))}
        </tbody>
      </table>
      <h3>Actions</h3>
      <div className="actions" role="group" aria-label="Power actions">
        <button type="button" disabled={busy} onClick={() => act("start", () => api.vms.startVm(rid()))}>Start</button>
        <button type="button" disabled={busy} onClick={() => act("stop", () => api.vms.stopVm(rid()))}>Stop</button>
        <button type="button" disabled={busy} onClick={() => act("force stop", () => api.vms.stopVm({ ...rid(), force: true }))}>Force stop</button>
        <button type="button" disabled={busy} onClick={() => act("reboot", () => api.vms.rebootVm(rid()))}>Reboot</button>
        <button type="button" disabled={busy} onClick={() => act("pause", () => api.vms.pauseVm(rid()))}>Pause</button>
        <button type="button" disabled={busy} onClick={() => act("resume", () => api.vms.resumeVm(rid()))}>Resume</button>
        {!confirm ? (
          <button type="button" disabled={busy} onClick={() => setConfirm(true)}>Delete…</button>
        ) : (
          <>
            <button type="button" className="bad" onClick={() => { setConfirm(false); void act("delete", () => api.vms.deleteVm(rid())); }}>
              Confirm delete {vm.name}
            </button>
            <button type="button" onClick={() => setConfirm(false)}>Cancel</button>
          </>
        )}
      </div>
      <form className="filters" onSubmit={(e) => {
        e.preventDefault();
        if (target && target !== vm.folder) void act("move", () => api.vms.updateVm({ name, folder: target, requestId: requestId() }));
      }}>
        <label>Move to folder{" "}
          <select value={target || vm.folder} onChange={(e) => setTarget(e.target.value)}>
            {data.folders.map((f) => <option key={String(f.id)} value={f.path}>{f.path}</option>)}
          </select>
        </label>
        <button type="submit" disabled={busy}>Move VM</button>
      </form>
      <ErrorLine error={error} />
      <EventTable events={events} caption={`Events for ${vm.name}`} />
    </div>
  );
}
