import { type FormEvent, useEffect, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { describeError, download, request } from "../api";
import { formatDate, timeAgo } from "../format";
import { hasRole, useSession } from "../session";
import { Alert, Badge, Button, Card, type Column, Dialog, EmptyState, Input, Select, Show, Table, type Tone, useLoad } from "../ui";

export interface License {
  id: string;
  key_string: string;
  tier: string;
  seats: number;
  seats_in_use?: number | null;
  is_active: boolean;
  status: string;
  expiry_date: string | null;
  livemode: boolean;
  created_at: string;
  organization?: unknown;
}

export interface LiveSession {
  session_id: string;
  hardware_id: string;
  acquired_at: string | null;
  last_heartbeat_at: string | null;
  heartbeats: number;
  expires_at: string;
  ip_address?: string | null;
  client_version?: string | null;
}

const LIVE_POLL_MS = 2000;

/** The license tiers, as a select's options (the test-license form here, the staff console's issue form). */
export const TIER_OPTIONS: Array<[string, string]> = [
  ["free", "Free"],
  ["pro", "Pro"],
  ["enterprise", "Enterprise"],
];

/** What every table of live sessions shows of each (the license page adds its actions after them). */
export const SESSION_COLUMNS: Array<Column<LiveSession>> = [
  { header: "Hardware id", cell: (row) => <code>{row.hardware_id}</code> },
  { header: "IP", cell: (row) => row.ip_address ?? "—" },
  { header: "Client version", cell: (row) => row.client_version ?? "—" },
  { header: "Acquired", cell: (row) => formatDate(row.acquired_at) },
  { header: "Last heartbeat", cell: (row) => timeAgo(row.last_heartbeat_at ?? row.acquired_at) },
  { header: "Expires", cell: (row) => formatDate(row.expires_at) },
];

export function licenseTone(status: string): Tone {
  return status === "active" ? "success" : status === "suspended" ? "warning" : "danger";
}

export function LicensesPage() {
  const session = useSession();
  const [params, setParams] = useSearchParams();
  const active = params.get("is_active") ?? "";
  const tier = params.get("tier") ?? "";
  const licenses = useLoad(
    (signal) =>
      request<{ count: number; licenses: License[] }>("GET", "/api/v1/licenses/", {
        query: { is_active: active, tier, page_size: 100 },
        signal,
      }),
    [active, tier, session.me?.organization?.id],
  );
  // Seats in use change while the page is open: poll quietly.
  useEffect(() => {
    const timer = window.setInterval(licenses.reload, LIVE_POLL_MS * 2);
    return () => window.clearInterval(timer);
  }, [licenses.reload]);
  const setFilter = (name: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next);
  };
  return (
    <>
      <div className="page-head">
        <h1>Licenses</h1>
      </div>
      {session.mode === "test" && hasRole(session.me, "admin") ? <NewTestLicense onCreated={licenses.reload} /> : null}
      <div className="row" role="search">
        <Select
          label="State"
          value={active}
          onChange={(event) => setFilter("is_active", event.target.value)}
          options={[
            ["", "Any"],
            ["true", "Active"],
            ["false", "Inactive"],
          ]}
        />
        <Select
          label="Tier"
          value={tier}
          onChange={(event) => setFilter("tier", event.target.value)}
          options={[
            ["", "Any tier"],
            ["free", "Free"],
            ["pro", "Pro"],
            ["enterprise", "Enterprise"],
          ]}
        />
      </div>
      <div className="stack">
        <span />
        <Show loaded={licenses} what="licenses">
          {(answer) => {
            const rows = answer.licenses.filter((license) => license.livemode === (session.mode === "live"));
            return rows.length === 0 ? (
              <EmptyState title="No licenses match">
                <p>Licenses come with your plan; buy or change one on the Billing page.</p>
              </EmptyState>
            ) : (
              <Table
                caption="Licenses"
                rows={rows}
                rowKey={(license) => license.id}
                columns={[
                  {
                    header: "Key",
                    cell: (license) => (
                      <Link to={`/licenses/${license.id}`}>
                        <code>{license.key_string}</code>
                      </Link>
                    ),
                  },
                  { header: "Tier", cell: (license) => license.tier },
                  {
                    header: "Seats in use",
                    cell: (license) => (
                      <span data-testid={`seats-${license.id}`}>
                        {license.seats_in_use ?? "?"} / {license.seats}
                      </span>
                    ),
                  },
                  { header: "Status", cell: (license) => <Badge tone={licenseTone(license.status)}>{license.status}</Badge> },
                  { header: "Expires", cell: (license) => (license.expiry_date ? formatDate(license.expiry_date, false) : "never") },
                  { header: "Mode", cell: (license) => (license.livemode ? "live" : <Badge tone="test">test</Badge>) },
                ]}
              />
            );
          }}
        </Show>
      </div>
    </>
  );
}

/** Test mode: an admin issues the organization test licenses (at most 5 seats, 30 days) for integration tests. */
function NewTestLicense({ onCreated }: { onCreated: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const create = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setError(null);
    setBusy(true);
    try {
      const license = await request<License>("POST", "/api/v1/licenses/", {
        json: { tier: String(form.get("tier")), seats: Number(form.get("seats")) },
      });
      setCreated(license.key_string);
      onCreated();
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title="New test license">
      {error ? <Alert>{error}</Alert> : null}
      {created ? <Alert tone="success">Created test license {created}.</Alert> : null}
      <form className="row" onSubmit={(event) => void create(event)} aria-label="New test license">
        <Select
          label="Tier"
          name="tier"
          defaultValue="pro"
          options={TIER_OPTIONS}
        />
        <Input label="Seats" name="seats" type="number" min={1} max={5} defaultValue="2" required hint="At most 5; lasts 30 days." />
        <Button type="submit" variant="primary" busy={busy}>
          Create test license
        </Button>
      </form>
    </Card>
  );
}

export function LicenseDetailPage() {
  const { licenseId = "" } = useParams();
  const session = useSession();
  const admin = hasRole(session.me, "admin");
  const license = useLoad((signal) => request<License>("GET", `/api/v1/licenses/${licenseId}/`, { signal }), [licenseId]);
  const sessions = useLoad(
    (signal) =>
      admin
        ? request<{ count: number; seats: number; sessions: LiveSession[] }>(
            "GET",
            `/api/v1/licenses/${licenseId}/sessions/`,
            { signal },
          )
        : Promise.resolve(null),
    [licenseId, admin],
  );
  useEffect(() => {
    const timer = window.setInterval(sessions.reload, LIVE_POLL_MS);
    return () => window.clearInterval(timer);
  }, [sessions.reload]);
  const [error, setError] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<{ keep?: LiveSession; one?: LiveSession } | null>(null);
  const revoke = async (ids: string[]) => {
    setError(null);
    try {
      for (const id of ids) await request("DELETE", `/api/v1/licenses/${licenseId}/sessions/${id}/`);
    } catch (caught) {
      setError(describeError(caught));
    }
    sessions.reload();
    license.reload();
  };
  const setSuspended = async (suspended: boolean) => {
    setError(null);
    try {
      await request("PATCH", `/api/v1/licenses/${licenseId}/`, { json: { suspended } });
      license.reload();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  return (
    <>
      <p>
        <Link to="/licenses">← Licenses</Link>
      </p>
      <Show loaded={license} what="the license">
        {(data) => (
          <>
            <div className="page-head">
              <h1>
                <code>{data.key_string}</code>
              </h1>
              <div className="row">
                <Badge tone={licenseTone(data.status)}>{data.status}</Badge>
                <Button
                  onClick={() =>
                    void download(`/api/v1/licenses/${data.id}/download/`, `${data.key_string}.lic.json`).catch((e) =>
                      setError(describeError(e)),
                    )
                  }
                >
                  Download license file
                </Button>
                {admin && data.status === "active" ? (
                  <Button variant="danger" onClick={() => void setSuspended(true)}>
                    Suspend
                  </Button>
                ) : null}
                {admin && data.status === "suspended" ? <Button onClick={() => void setSuspended(false)}>Reactivate</Button> : null}
              </div>
            </div>
            {error ? <Alert>{error}</Alert> : null}
            <div className="grid">
              <Card title="Seats">
                <p className="stat" data-testid="live-seats">
                  {sessions.data ? sessions.data.count : (data.seats_in_use ?? "?")} / {data.seats}
                </p>
                <p className="muted">live sessions, updated every {LIVE_POLL_MS / 1000} s</p>
              </Card>
              <Card title="License">
                <dl>
                  <dt>Tier</dt>
                  <dd>{data.tier}</dd>
                  <dt>Expires</dt>
                  <dd>{data.expiry_date ? formatDate(data.expiry_date) : "never"}</dd>
                  <dt>Created</dt>
                  <dd>{formatDate(data.created_at)}</dd>
                </dl>
              </Card>
            </div>
            <Card title="Live sessions">
              {!admin ? (
                <p className="muted">Admins see and revoke sessions.</p>
              ) : (
                <Show loaded={sessions} what="sessions">
                  {(answer) =>
                    !answer || answer.sessions.length === 0 ? (
                      <EmptyState title="No live sessions">
                        <p>Seats appear here as your software acquires them.</p>
                      </EmptyState>
                    ) : (
                      <Table
                        caption="Live sessions"
                        rows={answer.sessions}
                        rowKey={(row) => row.session_id}
                        columns={[
                          ...SESSION_COLUMNS,
                          {
                            header: "Actions",
                            cell: (row) => (
                              <div className="row">
                                <Button small variant="danger" onClick={() => setConfirm({ one: row })} aria-label={`Revoke session ${row.hardware_id}`}>
                                  Revoke
                                </Button>
                                {answer.sessions.length > 1 ? (
                                  <Button small onClick={() => setConfirm({ keep: row })}>
                                    Revoke all others
                                  </Button>
                                ) : null}
                              </div>
                            ),
                          },
                        ]}
                      />
                    )
                  }
                </Show>
              )}
            </Card>
            {confirm ? (
              <Dialog title={confirm.one ? "Revoke this session?" : "Revoke every other session?"} onClose={() => setConfirm(null)}>
                <p>
                  {confirm.one
                    ? `The seat held by ${confirm.one.hardware_id} is freed at once.`
                    : `Every session but ${confirm.keep?.hardware_id}'s is ended, and their seats freed.`}
                </p>
                <div className="row">
                  <Button
                    variant="danger"
                    onClick={() => {
                      const ids = confirm.one
                        ? [confirm.one.session_id]
                        : (sessions.data?.sessions ?? [])
                            .filter((row) => row.session_id !== confirm.keep?.session_id)
                            .map((row) => row.session_id);
                      setConfirm(null);
                      void revoke(ids);
                    }}
                  >
                    Revoke
                  </Button>
                  <Button onClick={() => setConfirm(null)}>Cancel</Button>
                </div>
              </Dialog>
            ) : null}
          </>
        )}
      </Show>
    </>
  );
}
