import { useState } from "react";
import { request, sdk } from "../api";
import { formatDate } from "../format";
import { useSession } from "../session";
import { Badge, Button, Dialog, EmptyState, Select, Show, Table, useLoad } from "../ui";
import type { Event } from "@coexai/sdk";

export function EventsPage() {
  const session = useSession();
  const [type, setType] = useState("");
  const [undelivered, setUndelivered] = useState(false);
  const types = useLoad(() => request<Array<{ type: string }>>("GET", "/v1/event-types"), []);
  const events = useLoad(
    () =>
      sdk.events.list({ type: type || undefined, deliverySuccess: undelivered ? false : undefined, limit: 100 }).firstPage(),
    [type, undelivered, session.me?.organization?.id],
  );
  const [open, setOpen] = useState<Event | null>(null);
  return (
    <>
      <h1>Events</h1>
      <div className="row" role="search">
        <Select
          label="Type"
          value={type}
          onChange={(event) => setType(event.target.value)}
          options={[["", "Any type"], ...(types.data ?? []).map((item): [string, string] => [item.type, item.type])]}
        />
        <label className="checkbox">
          <input type="checkbox" checked={undelivered} onChange={(event) => setUndelivered(event.target.checked)} />
          Only events some endpoint never received
        </label>
      </div>
      <div className="stack">
        <span />
        <Show loaded={events} what="events">
          {(page) => {
            const rows = page.data.filter((event) => event.livemode === (session.mode === "live"));
            return rows.length === 0 ? (
              <EmptyState title="No events match" />
            ) : (
              <Table
                caption="Events"
                rows={rows}
                rowKey={(event) => event.id}
                columns={[
                  { header: "Event", cell: (event) => <code>{event.id}</code> },
                  { header: "Type", cell: (event) => <Badge tone="info">{event.type}</Badge> },
                  { header: "Created", cell: (event) => formatDate(event.createdAt) },
                  {
                    header: "Data",
                    cell: (event) => (
                      <Button small onClick={() => setOpen(event)} aria-label={`Show the data of ${event.id}`}>
                        Show
                      </Button>
                    ),
                  },
                ]}
              />
            );
          }}
        </Show>
      </div>
      {open ? (
        <Dialog title={open.type} onClose={() => setOpen(null)}>
          <pre className="output">{JSON.stringify(open.data, null, 2)}</pre>
          <Button onClick={() => setOpen(null)}>Close</Button>
        </Dialog>
      ) : null}
    </>
  );
}
