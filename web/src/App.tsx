import { useStore } from "./store";
import { logout, session } from "./session";
import { href, useRoute } from "./route";
import { Overview } from "./pages/Overview";
import { Inventory } from "./pages/Inventory";
import { Wizard } from "./pages/Wizard";
import { Images } from "./pages/Images";
import { Pools } from "./pages/Pools";
import { Specs } from "./pages/Specs";
import { Events } from "./pages/Events";

const PAGES: [string, string][] = [
  ["", "Overview"],
  ["inventory", "Inventory"],
  ["new-vm", "New VM"],
  ["images", "Images"],
  ["pools", "Storage pools"],
  ["specs", "Customization specs"],
  ["events", "Events"],
];

export function App() {
  const { data } = useStore();
  const route = useRoute();
  const page = route[0] ?? "";
  const s = data.status;
  return (
    <div className="app">
      <a className="skip" href="#main">Skip to content</a>
      <header className="top">
        <span className="brand">Quantix</span>
        {s && (
          <span className="cluster-line" aria-label="cluster summary">
            leader <b data-testid="leader">{s.leader || "none"}</b> · term {String(s.term)} · commit{" "}
            {String(s.commitIndex)} · served by {s.answeredBy}
          </span>
        )}
        <span className="who">
          signed in as <b data-testid="who">{session()?.name ?? "?"}</b> ({session()?.kind})
          <button type="button" onClick={() => void logout()}>Log out</button>
        </span>
      </header>
      {data.connection === "lost" && (
        <div className="banner" role="status">{data.connectionNote}</div>
      )}
      <div className="body">
        <nav aria-label="Main">
          <ul>
            {PAGES.map(([id, label]) => (
              <li key={id}>
                <a href={href(...(id ? [id] : []))} aria-current={page === id || (id === "inventory" && page === "vms") ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          {!data.loaded ? (
            <p role="status">Loading…</p>
          ) : page === "" ? (
            <Overview />
          ) : page === "inventory" || page === "vms" ? (
            <Inventory route={route} />
          ) : page === "new-vm" ? (
            <Wizard />
          ) : page === "images" ? (
            <Images />
          ) : page === "pools" ? (
            <Pools />
          ) : page === "specs" ? (
            <Specs route={route} />
          ) : page === "events" ? (
            <Events />
          ) : (
            <p>No such page. <a href="#/">Overview</a></p>
          )}
        </main>
      </div>
    </div>
  );
}
