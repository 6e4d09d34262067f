// Hash routes (#/inventory, #/vms/NAME, ...): the server serves one page at "/", and a
// redirect to the leader keeps the fragment, so the same view opens there.
import { useEffect, useState } from "react";

export function useRoute(): string[] {
  const parse = () => window.location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = () => setRoute(parse());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

export function href(...parts: string[]): string {
  return "#/" + parts.map(encodeURIComponent).join("/");
}

export function navigate(...parts: string[]) {
  window.location.hash = href(...parts);
}
