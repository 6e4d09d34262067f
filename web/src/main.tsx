import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { StoreProvider } from "./store";
import "./styles.css";
import { loadSession } from "./session";

// A page that came here after losing its leader carries ?after_term=N; the server has used
// it, so drop it from the address bar.
if (window.location.search) {
  window.history.replaceState(null, "", window.location.pathname + window.location.hash);
}

const root = document.getElementById("root");
// The page renders once the session is known (else it has gone to /login).
void loadSession().then((who) => {
  if (!who || !root) return;
  createRoot(root).render(
    <StrictMode>
      <StoreProvider>
        <App />
      </StoreProvider>
    </StrictMode>,
  );
});
