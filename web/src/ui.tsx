import { useId, type ReactNode } from "react";
import type { Event } from "./gen/quantix/v1/event_pb.js";
import { when } from "./api";

/** A labelled control with its error right below it (aria-describedby links them). */
export function Field(props: {
  label: string;
  error?: string | null;
  hint?: ReactNode;
  children: (id: string, describedBy: string | undefined, invalid: boolean) => ReactNode;
}) {
  const id = useId();
  const errId = `${id}-err`;
  const hintId = `${id}-hint`;
  const describedBy = [props.error ? errId : "", props.hint ? hintId : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      {props.children(id, describedBy, !!props.error)}
      {props.hint && <div className="hint" id={hintId}>{props.hint}</div>}
      {props.error && (
        <div className="error" id={errId} role="alert">
          {props.error}
        </div>
      )}
    </div>
  );
}

/** Used / total as a bar with the numbers beside it. */
export function Bar({ used, total, label, text }: { used: number; total: number; label: string; text: string }) {
  const pct = total > 0 ? Math.min(100, Math.round((used / total) * 100)) : 0;
  return (
    <span className="barwrap">
      <span className="bar" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={total} aria-valuenow={used}>
        <span style={{ width: `${pct}%` }} className={pct > 90 ? "hot" : ""} />
      </span>
      <span className="bartext">{text}</span>
    </span>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge st-${status}`}>{status || "—"}</span>;
}

export function ErrorLine({ error }: { error?: string | null }) {
  return error ? <p className="error" role="alert">{error}</p> : null;
}

export function EventTable({ events, caption }: { events: Event[]; caption: string }) {
  return (
    <table className="grid">
      <caption>{caption}</caption>
      <thead>
        <tr><th scope="col">#</th><th scope="col">When</th><th scope="col">What</th><th scope="col">Target</th><th scope="col">By</th><th scope="col">Result</th></tr>
      </thead>
      <tbody>
        {events.length === 0 && (
          <tr><td colSpan={6} className="muted">No events.</td></tr>
        )}
        {events.map((e) => (
          <tr key={String(e.seq)}>
            <td>{String(e.seq)}</td>
            <td>{when(e.atMs)}</td>
            <td>{e.what}</td>
            <td>{e.target}</td>
            <td>{e.by}</td>
            <td className={e.ok ? "ok" : "bad"}>{e.ok ? "ok" : `refused: ${e.message}`}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
