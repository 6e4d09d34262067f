// Who is logged in, and the CSRF value every call made with the session cookie must carry
// (x-quantix-csrf). The cookie itself is HttpOnly: this page never sees it. Without a session
// (or after it ends: the token was revoked or it expired) the page goes to /login.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

export interface SessionInfo {
  kind: string;
  name: string;
  csrf: string;
}

let current: SessionInfo | undefined;

export function session(): SessionInfo | undefined {
  return current;
}

export function toLogin(): void {
  window.location.assign("/login");
}

/** Loads /session; goes to the login page when there is none. */
export async function loadSession(): Promise<SessionInfo | undefined> {
  const r = await fetch("/session", { cache: "no-store", credentials: "same-origin" });
  if (r.status === 401) {
    toLogin();
    return undefined;
  }
  if (!r.ok) throw new Error(`GET /session: HTTP ${r.status}`);
  current = (await r.json()) as SessionInfo;
  return current;
}

export function csrfHeader(): Record<string, string> {
  return current?.csrf ? { "x-quantix-csrf": current.csrf } : {};
}

/** Adds the CSRF header; a refused session sends the page to the login. */
export const sessionInterceptor: Interceptor = (next) => async (req) => {
  for (const [k, v] of Object.entries(csrfHeader())) req.header.set(k, v);
  try {
    return await next(req);
  } catch (e) {
    if (e instanceof ConnectError && e.code === Code.Unauthenticated) toLogin();
    throw e;
  }
};

export async function logout(): Promise<void> {
  await fetch("/logout", { method: "POST", credentials: "same-origin", redirect: "manual" });
  toLogin();
}
