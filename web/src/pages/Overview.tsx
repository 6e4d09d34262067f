import { useStore } from "../store";
import { mib, when } from "../api";
import { Bar, EventTable } from "../ui";

export function Overview() {
  const { data } = useStore();
  const s = data.status;
  const members = new Map((s?.members ?? []).map((m) => [m.name, m]));
  return (
    <section aria-labelledby="overview-h">
      <h1 id="overview-h">Cluster overview</h1>
      {s && (
        <dl className="facts" aria-label="Raft state">
          <div><dt>Leader</dt><dd data-testid="overview-leader">{s.leader || "none"}</dd></div>
          <div><dt>Term</dt><dd>{String(s.term)}</dd></div>
          <div><dt>Commit index</dt><dd>{String(s.commitIndex)}</dd></div>
          <div><dt>Applied index</dt><dd>{String(s.appliedIndex)}</dd></div>
          <div><dt>Hosts</dt><dd>{s.members.length} (max {s.maxVoters} voters)</dd></div>
          <div><dt>VMs</dt><dd>{data.vms.length}</dd></div>
          <div className="wide"><dt>Cluster id</dt><dd className="mono">{s.clusterId}</dd></div>
        </dl>
      )}
      <table className="grid" aria-label="Hosts">
        <caption>Hosts</caption>
        <thead>
          <tr>
            <th scope="col">Host</th><th scope="col">Role</th><th scope="col">State</th>
            <th scope="col">CPU allocated</th><th scope="col">Memory allocated</th>
            <th scope="col">Pools</th><th scope="col">Address</th>
          </tr>
        </thead>
        <tbody>
          {data.hosts.map((h) => {
            const m = members.get(h.name);
            return (
              <tr key={h.name} data-testid={`host-row-${h.name}`}>
                <th scope="row">{h.name}</th>
                <td>{h.role}{h.leader ? " (leader)" : ""}</td>
                <td>
                  <span className={h.online ? "ok" : "bad"}>{h.online ? "online" : "offline"}</span>
                  {h.maintenance && <span className="badge st-paused"> maintenance</span>}
                </td>
                <td><Bar label={`${h.name} CPU`} used={h.allocatedCpus} total={h.cpus} text={`${h.allocatedCpus} / ${h.cpus}`} /></td>
                <td>
                  <Bar label={`${h.name} memory`} used={Number(h.allocatedMemoryMib)} total={Number(h.memoryMib)}
                    text={`${mib(h.allocatedMemoryMib)} / ${mib(h.memoryMib)}`} />
                </td>
                <td>{h.pools.join(", ") || "—"}</td>
                <td className="mono small">
                  {h.address}
                  {m?.httpAddress && <> · <a href={`https://${m.httpAddress}/`}>{m.httpAddress}</a></>}
                  <div className="muted">reported {when(h.reportedAtMs)}</div>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <EventTable events={data.events.slice(0, 10)} caption="Recent events" />
    </section>
  );
}
