// The page's copy of the cluster: lists loaded once, then kept current from the Watch stream
// (EventService.Watch: each change names an entity, whose list is loaded again). Also follows
// the leader: only the leader serves pages, so when another host leads, or this host stops
// answering, the page moves to the leader's dashboard by itself.
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { api } from "./api";
import type { ClusterStatus } from "./gen/quantix/v1/cluster_pb.js";
import type { Event } from "./gen/quantix/v1/event_pb.js";
import type { Folder } from "./gen/quantix/v1/folder_pb.js";
import type { Host } from "./gen/quantix/v1/host_pb.js";
import type { Image, ImageCatalogEntry } from "./gen/quantix/v1/image_pb.js";
import type { Pool } from "./gen/quantix/v1/pool_pb.js";
import type { CustomizationSpec, TimezoneRegion } from "./gen/quantix/v1/spec_pb.js";
import type { Vm } from "./gen/quantix/v1/vm_pb.js";

export type Entity = "vm" | "folder" | "host" | "image" | "pool" | "spec" | "event" | "status";

export interface Data {
  status?: ClusterStatus;
  hosts: Host[];
  vms: Vm[];
  folders: Folder[];
  images: Image[];
  pools: Pool[];
  specs: CustomizationSpec[];
  events: Event[];
  catalog: ImageCatalogEntry[];
  timezones: TimezoneRegion[];
  loaded: boolean;
  /** ok: live; lost: this host stopped answering, looking for the leader. */
  connection: "ok" | "lost";
  connectionNote?: string;
}

const empty: Data = {
  hosts: [], vms: [], folders: [], images: [], pools: [], specs: [], events: [],
  catalog: [], timezones: [], loaded: false, connection: "ok",
};

interface Store {
  data: Data;
  refresh: (e: Entity) => Promise<void>;
}

const Ctx = createContext<Store>({ data: empty, refresh: async () => {} });
export const useStore = () => useContext(Ctx);

const EVENTS_SHOWN = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function allVms(): Promise<{ vms: Vm[]; revision: bigint }> {
  const vms: Vm[] = [];
  let pageToken = "";
  let revision = 0n;
  for (;;) {
    const r = await api.vms.listVms({ pageSize: 1000, pageToken });
    if (!revision) revision = r.revision;
    vms.push(...r.vms);
    if (!r.nextPageToken) break;
    pageToken = r.nextPageToken;
  }
  return { vms, revision };
}

/** Moves the page to the same view on another host's HTTP listener. `afterTerm`: the page
 * lost the leader of that term, so that host must not send it back there (see src/web). */
function goTo(addr: string, afterTerm?: bigint) {
  const q = afterTerm !== undefined ? `?after_term=${afterTerm}` : "";
  window.location.href = `https://${addr}/${q}${window.location.hash}`;
}

export function StoreProvider({ children }: { children: ReactNode }) {
  const [data, setData] = useState<Data>(empty);
  const statusRef = useRef<ClusterStatus | undefined>(undefined);
  const recovering = useRef(false);
  const watchAbort = useRef<AbortController | null>(null);
  const pending = useRef(new Set<Entity>());
  const timer = useRef<number | undefined>(undefined);

  const load = useCallback(async (e: Entity): Promise<Partial<Data>> => {
    switch (e) {
      case "vm": return { vms: (await allVms()).vms };
      case "folder": return { folders: (await api.folders.listFolders({})).folders };
      case "host": return { hosts: (await api.hosts.listHosts({})).hosts };
      case "image": return { images: (await api.images.listImages({})).images };
      case "pool": return { pools: (await api.pools.listPools({})).pools };
      case "spec": return { specs: (await api.specs.listSpecs({})).specs };
      case "event":
        return { events: (await api.events.listEvents({ limit: EVENTS_SHOWN })).events.slice().reverse() };
      case "status": {
        const status = await api.cluster.getStatus({});
        statusRef.current = status;
        followLeader(status);
        return { status };
      }
    }
  }, []);

  const refresh = useCallback(async (e: Entity) => {
    const part = await load(e);
    setData((d) => ({ ...d, ...part }));
  }, [load]);

  // Coalesces bursts of changes into one reload per entity.
  const schedule = useCallback((e: Entity) => {
    pending.current.add(e);
    if (timer.current !== undefined) return;
    timer.current = window.setTimeout(async () => {
      timer.current = undefined;
      const todo = [...pending.current];
      pending.current.clear();
      try {
        const parts = await Promise.all(todo.map(load));
        setData((d) => Object.assign({ ...d }, ...parts));
      } catch {
        void recover();
      }
    }, 100);
  }, [load]);

  const watch = useCallback(async (from: bigint) => {
    watchAbort.current?.abort();
    const abort = new AbortController();
    watchAbort.current = abort;
    try {
      for await (const c of api.events.watch({ fromRevision: from }, { signal: abort.signal })) {
        const e = c.entity as Entity;
        schedule(e);
        if (e === "host") schedule("status");
      }
      if (!abort.signal.aborted) void recover();
    } catch {
      if (!abort.signal.aborted) void recover();
    }
  }, [schedule]);

  const loadAll = useCallback(async () => {
    const { vms, revision } = await allVms();
    void watch(revision);
    const parts = await Promise.all(
      (["folder", "host", "image", "pool", "spec", "event", "status"] as Entity[]).map(load),
    );
    const [catalog, timezones] = await Promise.all([
      api.images.listCatalog({}).then((r) => r.entries),
      api.specs.listTimezones({}).then((r) => r.regions),
    ]);
    setData((d) => Object.assign({ ...d, vms, catalog, timezones, loaded: true, connection: "ok", connectionNote: undefined }, ...parts));
  }, [load, watch]);

  // This host stopped answering (or the stream broke): ask it again, then the other hosts,
  // and move to whichever answers; a follower redirects to the leader, or shows a page that
  // retries until there is one.
  const recover = useCallback(async () => {
    if (recovering.current) return;
    recovering.current = true;
    watchAbort.current?.abort();
    setData((d) => ({ ...d, connection: "lost", connectionNote: "Lost contact with this host; looking for the leader…" }));
    for (;;) {
      try {
        const status = await api.cluster.getStatus({}, { timeoutMs: 2000 });
        statusRef.current = status;
        if (status.leader && status.leader === status.answeredBy) {
          recovering.current = false;
          await loadAll();
          return;
        }
        if (followLeader(status)) return;
      } catch {
        const others = (statusRef.current?.members ?? [])
          .map((m) => m.httpAddress)
          .filter((a) => a && a !== window.location.host);
        for (const addr of others) {
          try {
            await fetch(`https://${addr}/healthz`, { mode: "no-cors", cache: "no-store", signal: AbortSignal.timeout(1000) });
            setData((d) => ({ ...d, connectionNote: `Moving to ${addr}…` }));
            goTo(addr, statusRef.current?.term ?? 0n);
            return;
          } catch {
            // that host does not answer either; try the next
          }
        }
      }
      await sleep(700);
    }
  }, [loadAll]);

  useEffect(() => {
    loadAll().catch(() => void recover());
    // Liveness (online flags) and Raft indexes are not on the change feed: poll them.
    const poll = window.setInterval(() => {
      if (recovering.current) return;
      Promise.all([load("status"), load("host")])
        .then(([a, b]) => setData((d) => ({ ...d, ...a, ...b })))
        .catch(() => void recover());
    }, 2000);
    return () => {
      window.clearInterval(poll);
      watchAbort.current?.abort();
    };
  }, [loadAll, load, recover]);

  return <Ctx.Provider value={{ data, refresh }}>{children}</Ctx.Provider>;
}

/** When another host leads and its address is known, go there. True when leaving. */
function followLeader(status: ClusterStatus): boolean {
  if (!status.leader || status.leader === status.answeredBy) return false;
  const leader = status.members.find((m) => m.name === status.leader);
  if (leader?.httpAddress && leader.httpAddress !== window.location.host) {
    goTo(leader.httpAddress);
    return true;
  }
  return false;
}
