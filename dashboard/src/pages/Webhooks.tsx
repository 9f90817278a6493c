import type { Webhook } from "@coexai/sdk";
import { type FormEvent, useState } from "react";
import { Link, useParams } from "react-router";
import { describeError, request, sdk } from "../api";
import { formatDate } from "../format";
import { hasRole, useSession } from "../session";
import { Alert, Badge, BarChart, Button, Card, Dialog, EmptyState, Input, Secret, Select, Show, Table, useLoad } from "../ui";

interface Delivery {
  id: string;
  event_id: string | null;
  event_type: string;
  kind: string;
  status: "pending" | "succeeded" | "failed";
  attempt_count: number;
  max_attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  last_status_code: number | null;
  created_at: string;
}

interface Attempt {
  number: number;
  attempted_at: string;
  succeeded: boolean;
  status_code: number | null;
  response_body: string | null;
  error: string | null;
  duration_ms: number;
}

const deliveryTone = (status: string) => (status === "succeeded" ? "success" : status === "failed" ? "danger" : "warning");

export function WebhooksPage() {
  const session = useSession();
  const webhooks = useLoad(() => sdk.webhooks.list({ limit: 100 }).firstPage(), [session.me?.organization?.id]);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const admin = hasRole(session.me, "admin");
  return (
    <>
      <div className="page-head">
        <h1>Webhooks</h1>
        {admin ? (
          <Button variant="primary" onClick={() => setCreating(true)}>
            Add endpoint
          </Button>
        ) : null}
      </div>
      <Show loaded={webhooks} what="webhooks">
        {(page) => {
          const rows = page.data.filter((webhook) => webhook.livemode === (session.mode === "live"));
          return rows.length === 0 ? (
            <EmptyState title="No webhook endpoints">
              <p>Add an endpoint to be told when jobs finish, payments happen and licenses change.</p>
            </EmptyState>
          ) : (
            <Table
              caption="Webhook endpoints"
              rows={rows}
              rowKey={(webhook) => webhook.id}
              columns={[
                { header: "URL", cell: (webhook) => <Link to={`/webhooks/${webhook.id}`}>{webhook.url}</Link> },
                { header: "Events", cell: (webhook) => webhook.events.join(", ") },
                {
                  header: "State",
                  cell: (webhook) =>
                    webhook.enabled ? <Badge tone="success">enabled</Badge> : <Badge tone="neutral">disabled</Badge>,
                },
                { header: "Created", cell: (webhook) => formatDate(webhook.createdAt) },
              ]}
            />
          );
        }}
      </Show>
      {creating ? (
        <CreateWebhookDialog
          onClose={() => setCreating(false)}
          onCreated={(value) => {
            setCreating(false);
            setSecret(value);
            webhooks.reload();
          }}
        />
      ) : null}
      {secret ? (
        <Dialog title="The endpoint's signing secret" onClose={() => setSecret(null)}>
          <div className="stack">
            <Secret value={secret} />
            <Button variant="primary" onClick={() => setSecret(null)}>
              Done
            </Button>
          </div>
        </Dialog>
      ) : null}
    </>
  );
}

function CreateWebhookDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (secret: string) => void }) {
  const types = useLoad(() => request<Array<{ type: string; description?: string }>>("GET", "/v1/event-types"), []);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setBusy(true);
    setError(null);
    try {
      const created = await sdk.webhooks.create({
        url: String(form.get("url")),
        events: form.getAll("events").map(String) as Webhook["events"] as never,
        description: String(form.get("description") ?? "") || null,
      });
      onCreated(created.secret);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title="Add a webhook endpoint" onClose={onClose}>
      <form className="stack" onSubmit={(event) => void submit(event)}>
        {error ? <Alert>{error}</Alert> : null}
        <Input label="URL" name="url" type="url" required placeholder="https://example.com/webhooks/coexai" />
        <Input label="Description" name="description" />
        <fieldset>
          <legend>Events</legend>
          <Show loaded={types} what="event types">
            {(list) => (
              <div className="grid">
                {list.map((item) => (
                  <label key={item.type} className="checkbox">
                    <input type="checkbox" name="events" value={item.type} defaultChecked={item.type.startsWith("job.")} />
                    {item.type}
                  </label>
                ))}
              </div>
            )}
          </Show>
        </fieldset>
        <div className="row">
          <Button type="submit" variant="primary" busy={busy}>
            Add endpoint
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </div>
      </form>
    </Dialog>
  );
}

export function WebhookDetailPage() {
  const { webhookId = "" } = useParams();
  const session = useSession();
  const admin = hasRole(session.me, "admin");
  const webhook = useLoad(() => sdk.webhooks.get(webhookId), [webhookId]);
  const [status, setStatus] = useState("");
  const deliveries = useLoad(
    (signal) =>
      request<{ data: Delivery[] }>("GET", `/v1/webhooks/${webhookId}/deliveries`, {
        query: { status, limit: 100 },
        signal,
      }),
    [webhookId, status],
  );
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<Delivery | null>(null);
  const run = async (what: () => Promise<unknown>, done?: string) => {
    setError(null);
    setNotice(null);
    try {
      await what();
      if (done) setNotice(done);
      webhook.reload();
      deliveries.reload();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  return (
    <>
      <p>
        <Link to="/webhooks">← Webhooks</Link>
      </p>
      <Show loaded={webhook} what="the webhook">
        {(data) => (
          <>
            <div className="page-head">
              <h1 className="mono">{data.url}</h1>
              {admin ? (
                <div className="row">
                  <Button onClick={() => void run(() => sdk.webhooks.test(data.id), "Test event sent.")}>Send test</Button>
                  <Button
                    onClick={() =>
                      void run(async () => {
                        const answer = await sdk.webhooks.rotateSecret(data.id);
                        setSecret(String(answer.secret ?? ""));
                      })
                    }
                  >
                    Rotate secret
                  </Button>
                  <Button onClick={() => void run(() => sdk.webhooks.update(data.id, { enabled: !data.enabled }))}>
                    {data.enabled ? "Disable" : "Enable"}
                  </Button>
                </div>
              ) : null}
            </div>
            {data.disabledReason ? <Alert>Disabled: {data.disabledReason}</Alert> : null}
          </>
        )}
      </Show>
      {error ? <Alert>{error}</Alert> : null}
      {notice ? <Alert tone="success">{notice}</Alert> : null}
      <Card
        title="Delivery log"
        actions={
          <div className="row">
            <Select
              label="Outcome"
              value={status}
              onChange={(event) => setStatus(event.target.value)}
              options={[
                ["", "Any"],
                ["succeeded", "Succeeded"],
                ["failed", "Failed"],
                ["pending", "Pending"],
              ]}
            />
            <Button onClick={deliveries.reload}>Refresh</Button>
          </div>
        }
      >
        <Show loaded={deliveries} what="deliveries">
          {(page) =>
            page.data.length === 0 ? (
              <EmptyState title="No deliveries yet" />
            ) : (
              <>
                <BarChart
                  title="Deliveries by outcome"
                  bars={(["succeeded", "failed", "pending"] as const).map((outcome) => ({
                    label: outcome,
                    value: page.data.filter((row) => row.status === outcome).length,
                    tone: outcome === "failed" ? "bad" : undefined,
                  }))}
                  height={120}
                />
                <Table
                  caption="Deliveries"
                  rows={page.data}
                  rowKey={(row) => row.id}
                  columns={[
                    { header: "Event", cell: (row) => row.event_type },
                    { header: "Status", cell: (row) => <Badge tone={deliveryTone(row.status)}>{row.status}</Badge> },
                    { header: "HTTP", cell: (row) => row.last_status_code ?? "—" },
                    { header: "Attempts", cell: (row) => `${row.attempt_count} / ${row.max_attempts}` },
                    { header: "Last attempt", cell: (row) => formatDate(row.last_attempt_at) },
                    { header: "Next attempt", cell: (row) => formatDate(row.next_attempt_at) },
                    {
                      header: "Actions",
                      cell: (row) => (
                        <div className="row">
                          <Button small onClick={() => setOpen(row)} aria-label={`Attempts of delivery ${row.id}`}>
                            Attempts
                          </Button>
                          {admin && row.event_id ? (
                            <Button
                              small
                              onClick={() =>
                                void run(
                                  () => request("POST", `/v1/webhooks/${webhookId}/deliveries/${row.id}/redeliver`),
                                  "Redelivery queued.",
                                )
                              }
                            >
                              Redeliver
                            </Button>
                          ) : null}
                        </div>
                      ),
                    },
                  ]}
                />
              </>
            )
          }
        </Show>
      </Card>
      {open ? <AttemptsDialog webhookId={webhookId} delivery={open} onClose={() => setOpen(null)} /> : null}
      {secret ? (
        <Dialog title="The new signing secret" onClose={() => setSecret(null)}>
          <div className="stack">
            <Secret value={secret} />
            <p className="muted">The old secret keeps signing alongside for 24 hours.</p>
            <Button variant="primary" onClick={() => setSecret(null)}>
              Done
            </Button>
          </div>
        </Dialog>
      ) : null}
    </>
  );
}

function AttemptsDialog({ webhookId, delivery, onClose }: { webhookId: string; delivery: Delivery; onClose: () => void }) {
  const detail = useLoad(
    (signal) =>
      request<Delivery & { attempts: Attempt[]; payload: unknown }>(
        "GET",
        `/v1/webhooks/${webhookId}/deliveries/${delivery.id}`,
        { signal },
      ),
    [delivery.id],
  );
  return (
    <Dialog title={`${delivery.event_type}: attempts`} onClose={onClose}>
      <Show loaded={detail} what="attempts">
        {(data) =>
          data.attempts.length === 0 ? (
            <EmptyState title="Not attempted yet" />
          ) : (
            <ol className="timeline">
              {data.attempts.map((attempt) => (
                <li key={attempt.number}>
                  <strong>
                    #{attempt.number} {attempt.succeeded ? "succeeded" : "failed"}
                  </strong>{" "}
                  <span className="muted">
                    {formatDate(attempt.attempted_at)} · HTTP {attempt.status_code ?? "—"} · {attempt.duration_ms} ms
                  </span>
                  {attempt.error ? <div className="muted">{attempt.error}</div> : null}
                  {attempt.response_body ? <pre className="output">{attempt.response_body.slice(0, 500)}</pre> : null}
                </li>
              ))}
            </ol>
          )
        }
      </Show>
      <Button onClick={onClose}>Close</Button>
    </Dialog>
  );
}
