import { type FormEvent, useState } from "react";
import { describeError, request as requestInMode, sdk } from "../api";
import { formatDate } from "../format";
import { useSession } from "../session";
import { Alert, Badge, Button, Card, EmptyState, Input, Select, Show, Table, useLoad } from "../ui";
import { licenseTone, SESSION_COLUMNS, TIER_OPTIONS, type License, type LiveSession } from "./Licenses";

type Row = Record<string, unknown> & { id: string };

/** The staff console acts on live data whatever the live/test toggle says (staff powers are live-mode). */
function request<T>(method: string, path: string, options: Parameters<typeof requestInMode>[2] = {}): Promise<T> {
  return requestInMode<T>(method, path, { ...options, mode: "live" });
}

/** The operator's console: find an organization or a user, see its plan, usage and licenses, issue or
 * change a license, and put an agent into maintenance. Every action is recorded by the API. */
export function StaffPage() {
  const session = useSession();
  const [query, setQuery] = useState("");
  const [submitted, setSubmitted] = useState("");
  const [selected, setSelected] = useState<string | null>(null);
  const organizations = useLoad(
    (signal) =>
      submitted
        ? request<{ data: Row[] } | Row[]>("GET", "/v1/staff/organizations", { query: { q: submitted }, signal })
        : Promise.resolve(null),
    [submitted],
  );
  const users = useLoad(
    (signal) =>
      submitted
        ? request<{ data: Row[] } | Row[]>("GET", "/v1/staff/users", { query: { q: submitted }, signal })
        : Promise.resolve(null),
    [submitted],
  );
  if (!session.me?.user?.is_staff) return <Alert>The staff console is for the operator's staff.</Alert>;
  const search = (event: FormEvent) => {
    event.preventDefault();
    setSubmitted(query.trim());
    setSelected(null);
  };
  return (
    <>
      <h1>Staff console</h1>
      <form className="row" role="search" onSubmit={search}>
        <Input label="Organization, user or email" value={query} onChange={(event) => setQuery(event.target.value)} />
        <Button type="submit" variant="primary">
          Search
        </Button>
      </form>
      {submitted ? (
        <div className="grid">
          <Card title="Organizations">
            <Show loaded={organizations} what="organizations">
              {(answer) => (
                <RowList
                  rows={asRows(answer)}
                  label={(row) => String(row.name ?? row.id)}
                  detail={(row) => String(row.slug ?? "")}
                  onPick={(row) => setSelected(row.id)}
                />
              )}
            </Show>
          </Card>
          <Card title="Users">
            <Show loaded={users} what="users">
              {(answer) => (
                <RowList
                  rows={asRows(answer)}
                  label={(row) => String(row.email ?? row.id)}
                  detail={(row) => String(row.full_name ?? "")}
                  onPick={(row) => {
                    const organizations = row.organizations as Row[] | undefined;
                    if (organizations?.[0]) setSelected(String(organizations[0].id ?? organizations[0].organization_id));
                  }}
                />
              )}
            </Show>
          </Card>
        </div>
      ) : null}
      {selected ? <OrganizationPanel organizationId={selected} /> : null}
      <MaintenancePanel />
    </>
  );
}

function asRows(answer: { data: Row[] } | Row[] | null): Row[] {
  if (!answer) return [];
  return Array.isArray(answer) ? answer : answer.data;
}

function RowList({
  rows,
  label,
  detail,
  onPick,
}: {
  rows: Row[];
  label: (row: Row) => string;
  detail: (row: Row) => string;
  onPick: (row: Row) => void;
}) {
  if (rows.length === 0) return <EmptyState title="Nothing found" />;
  return (
    <ul className="stack">
      {rows.map((row) => (
        <li key={row.id} className="row">
          <Button small onClick={() => onPick(row)}>
            {label(row)}
          </Button>
          <span className="muted">{detail(row)}</span>
        </li>
      ))}
    </ul>
  );
}

function OrganizationPanel({ organizationId }: { organizationId: string }) {
  const detail = useLoad(
    (signal) => request<Row & { licenses?: License[] }>("GET", `/v1/staff/organizations/${organizationId}`, { signal }),
    [organizationId],
  );
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [sessionsOf, setSessionsOf] = useState<License | null>(null);
  const issue = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const expiry = String(form.get("expiry_date") ?? "");
    setError(null);
    try {
      const license = await request<License>("POST", "/api/v1/licenses/", {
        json: {
          organization_id: organizationId,
          tier: String(form.get("tier")),
          seats: Number(form.get("seats")),
          expiry_date: expiry ? new Date(`${expiry}T23:59:59`).toISOString() : null,
        },
      });
      setNotice(`Issued ${license.key_string}.`);
      detail.reload();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  const changeSeats = async (license: License, seats: number) => {
    setError(null);
    try {
      await request("PATCH", `/api/v1/licenses/${license.id}/`, { json: { seats } });
      detail.reload();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  return (
    <Card title="Organization">
      {error ? <Alert>{error}</Alert> : null}
      {notice ? <Alert tone="success">{notice}</Alert> : null}
      <Show loaded={detail} what="the organization">
        {(data) => {
          const organization = (data.organization as Row | undefined) ?? data;
          const subscription = data.subscription as Row | null | undefined;
          const usage = data.usage as { jobs?: { used?: number; quota?: number | null } } | undefined;
          return (
            <div className="stack">
              <h3>{String(organization.name ?? organizationId)}</h3>
              <p>
                Plan: <strong>{String(subscription?.plan ?? data.plan ?? "free")}</strong>
                {usage?.jobs ? ` · ${usage.jobs.used ?? 0} of ${usage.jobs.quota ?? "∞"} jobs this month` : ""}
              </p>
              {data.licenses?.length ? (
                <Table
                  caption="Licenses"
                  rows={data.licenses}
                  rowKey={(row) => row.id}
                  columns={[
                    { header: "Key", cell: (row) => <code>{row.key_string}</code> },
                    { header: "Tier", cell: (row) => row.tier },
                    { header: "Seats", cell: (row) => `${row.seats_in_use ?? "?"} / ${row.seats}` },
                    { header: "Status", cell: (row) => <Badge tone={licenseTone(row.status)}>{row.status}</Badge> },
                    { header: "Expires", cell: (row) => (row.expiry_date ? formatDate(row.expiry_date, false) : "never") },
                    {
                      header: "Sessions",
                      cell: (row) => (
                        <Button
                          small
                          aria-pressed={sessionsOf?.id === row.id}
                          onClick={() => setSessionsOf(sessionsOf?.id === row.id ? null : row)}
                          aria-label={`Live sessions of ${row.key_string}`}
                        >
                          Sessions
                        </Button>
                      ),
                    },
                    {
                      header: "Change seats",
                      cell: (row) => (
                        <div className="row">
                          <Button small onClick={() => void changeSeats(row, row.seats + 1)} aria-label={`+1 seat for ${row.key_string}`}>
                            +1
                          </Button>
                          <Button
                            small
                            disabled={row.seats <= 1}
                            onClick={() => void changeSeats(row, row.seats - 1)}
                            aria-label={`-1 seat for ${row.key_string}`}
                          >
                            -1
                          </Button>
                        </div>
                      ),
                    },
                  ]}
                />
              ) : (
                <EmptyState title="No licenses" />
              )}
              {sessionsOf ? <LicenseSessions license={sessionsOf} /> : null}
              <form className="row" onSubmit={(event) => void issue(event)} aria-label="Issue a license">
                <Select
                  label="Tier"
                  name="tier"
                  defaultValue="pro"
                  options={TIER_OPTIONS}
                />
                <Input label="Seats" name="seats" type="number" min={1} defaultValue="5" required />
                <Input label="Expires on" name="expiry_date" type="date" />
                <Button type="submit" variant="primary">
                  Issue license
                </Button>
              </form>
            </div>
          );
        }}
      </Show>
    </Card>
  );
}

/** A license's live sessions, as the organization's admins see them (GET /v1/staff/licenses/{id}/sessions). */
function LicenseSessions({ license }: { license: License }) {
  const sessions = useLoad(
    (signal) =>
      request<{ count: number; seats: number; sessions: LiveSession[] }>("GET", `/v1/staff/licenses/${license.id}/sessions`, {
        signal,
      }),
    [license.id],
  );
  return (
    <section className="stack" aria-label={`Live sessions of ${license.key_string}`}>
      <h4>
        Live sessions of <code>{license.key_string}</code>
      </h4>
      <Show loaded={sessions} what="sessions">
        {(answer) =>
          answer.sessions.length === 0 ? (
            <EmptyState title="No live sessions" />
          ) : (
            <>
              <p className="muted">
                {answer.count} of {answer.seats} seats in use.
              </p>
              <Table
                caption={`Live sessions of ${license.key_string}`}
                rows={answer.sessions}
                rowKey={(row) => row.session_id}
                columns={SESSION_COLUMNS}
              />
            </>
          )
        }
      </Show>
    </section>
  );
}

function MaintenancePanel() {
  const agents = useLoad(() => sdk.agents.list(), []);
  const [error, setError] = useState<string | null>(null);
  const toggle = async (agentId: string, on: boolean) => {
    setError(null);
    try {
      if (on) await request("PUT", `/v1/staff/agents/${agentId}/maintenance`, { json: { reason: "maintenance from the staff console" } });
      else await request("DELETE", `/v1/staff/agents/${agentId}/maintenance`);
      agents.reload();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  return (
    <Card title="Agents">
      {error ? <Alert>{error}</Alert> : null}
      <Show loaded={agents} what="agents">
        {(list) => (
          <Table
            caption="Agents"
            rows={list}
            rowKey={(agent) => agent.id}
            columns={[
              { header: "Agent", cell: (agent) => agent.name },
              {
                header: "Status",
                cell: (agent) => <Badge tone={agent.status === "available" ? "success" : "warning"}>{agent.status}</Badge>,
              },
              {
                header: "Actions",
                cell: (agent) => (
                  <Button small onClick={() => void toggle(agent.id, agent.status === "available")}>
                    {agent.status === "available" ? "Start maintenance" : "End maintenance"}
                  </Button>
                ),
              },
            ]}
          />
        )}
      </Show>
    </Card>
  );
}
