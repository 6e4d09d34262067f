import { useStore } from "../store";
import { EventTable } from "../ui";

export function Events() {
  const { data } = useStore();
  return (
    <section aria-labelledby="events-h">
      <h1 id="events-h">Events</h1>
      <p className="muted">Every write to the cluster, newest first; the list follows the change feed.</p>
      <EventTable events={data.events} caption={`Newest ${data.events.length} events`} />
    </section>
  );
}
