// The gRPC-web client: the same quantix.v1 services the CLI uses, on this page's origin
// (the host's HTTP listener, which serves them through tonic-web).
import { createClient, ConnectError, Code, type Client } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ClusterService } from "./gen/quantix/v1/cluster_pb.js";
import { EventService } from "./gen/quantix/v1/event_pb.js";
import { FolderService } from "./gen/quantix/v1/folder_pb.js";
import { HostService } from "./gen/quantix/v1/host_pb.js";
import { ImageService } from "./gen/quantix/v1/image_pb.js";
import { PoolService } from "./gen/quantix/v1/pool_pb.js";
import { SpecService } from "./gen/quantix/v1/spec_pb.js";
import { VmService } from "./gen/quantix/v1/vm_pb.js";

import { sessionInterceptor } from "./session";

const transport = createGrpcWebTransport({
  baseUrl: window.location.origin,
  interceptors: [sessionInterceptor],
});

export const api = {
  cluster: createClient(ClusterService, transport),
  events: createClient(EventService, transport),
  folders: createClient(FolderService, transport),
  hosts: createClient(HostService, transport),
  images: createClient(ImageService, transport),
  pools: createClient(PoolService, transport),
  specs: createClient(SpecService, transport),
  vms: createClient(VmService, transport),
};
export type Api = typeof api;
export type VmClient = Client<typeof VmService>;

/** A fresh request id: a retry after a leader change must not apply twice. */
export function requestId(): string {
  return crypto.randomUUID();
}

/** The server's message and code name, e.g. "vm web1 already exists (AlreadyExists)". */
export function errorText(e: unknown): string {
  if (e instanceof ConnectError) {
    return `${e.rawMessage} (${Code[e.code]})`;
  }
  return e instanceof Error ? e.message : String(e);
}

export function errorCode(e: unknown): Code | undefined {
  return e instanceof ConnectError ? e.code : undefined;
}

export function mib(n: bigint | number): string {
  const v = Number(n);
  if (v >= 1024 * 1024) return `${+(v / 1024 / 1024).toFixed(1)} TiB`;
  if (v >= 1024) return `${+(v / 1024).toFixed(1)} GiB`;
  return `${v} MiB`;
}

export function when(ms: bigint | number): string {
  const v = Number(ms);
  if (!v) return "—";
  return new Date(v).toLocaleString(undefined, { hour12: false });
}

/** Parses "2048", "512MiB", "4GiB", "1TiB" to MiB, like the CLI; null when invalid. */
export function parseSize(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(MiB|GiB|TiB)?\s*$/.exec(s);
  if (!m) return null;
  const n = Number(m[1]);
  const mult = m[2] === "GiB" ? 1024 : m[2] === "TiB" ? 1024 * 1024 : 1;
  const v = n * mult;
  return Number.isInteger(v) ? v : null;
}

/** A DNS label: what VM, pool and host names must be. */
export function labelError(what: string, s: string): string | null {
  if (!s) return `${what} is required`;
  if (s.length > 63) return `${what} is at most 63 characters`;
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s))
    return `${what}: lower-case letters, digits and '-', not starting or ending with '-'`;
  return null;
}
