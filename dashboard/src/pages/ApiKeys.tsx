import { type FormEvent, useState } from "react";
import { describeError, request } from "../api";
import { formatDate, timeAgo } from "../format";
import { hasRole, useSession } from "../session";
import { Alert, Badge, Button, Card, Dialog, EmptyState, Input, Secret, Show, Table, useLoad } from "../ui";

interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  mode: "live" | "test";
  scopes: string[];
  allowed_ips: string[];
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  created_at: string;
  key?: string;
}

export function ApiKeysPage() {
  const session = useSession();
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<ApiKey | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [showRevoked, setShowRevoked] = useState(false);
  const keys = useLoad(
    (signal) =>
      request<{ data: ApiKey[] }>("GET", "/v1/api-keys", { query: { limit: 100, include_revoked: showRevoked }, signal }),
    [showRevoked, session.me?.organization?.id],
  );
  const admin = hasRole(session.me, "admin");
  return (
    <>
      <div className="page-head">
        <h1>API keys</h1>
        <div className="row">
          <label className="checkbox">
            <input type="checkbox" checked={showRevoked} onChange={(event) => setShowRevoked(event.target.checked)} />
            Show revoked
          </label>
          <Button variant="primary" onClick={() => setCreating(true)} disabled={!admin} title={admin ? "" : "Admins only"}>
            Create {session.mode} key
          </Button>
        </div>
      </div>
      <Show loaded={keys} what="API keys">
        {(page) => {
          const rows = page.data.filter((key) => key.mode === session.mode);
          if (rows.length === 0)
            return (
              <EmptyState title={`No ${session.mode} keys yet`}>
                <p>Create a key to call the API from your code; it is shown once.</p>
              </EmptyState>
            );
          return (
            <Table
              caption="API keys"
              rows={rows}
              rowKey={(key) => key.id}
              columns={[
                { header: "Name", cell: (key) => key.name },
                { header: "Prefix", cell: (key) => <code>{key.prefix}…</code> },
                { header: "Mode", cell: (key) => <Badge tone={key.mode === "test" ? "test" : "info"}>{key.mode}</Badge> },
                { header: "Scopes", cell: (key) => key.scopes.join(", ") },
                { header: "Allowed IPs", cell: (key) => (key.allowed_ips.length ? key.allowed_ips.join(", ") : "any") },
                { header: "Expires", cell: (key) => (key.expires_at ? formatDate(key.expires_at) : "never") },
                { header: "Last used", cell: (key) => timeAgo(key.last_used_at) },
                {
                  header: "Status",
                  cell: (key) =>
                    key.revoked_at ? (
                      <Badge tone="danger">revoked</Badge>
                    ) : key.expires_at && new Date(key.expires_at) < new Date() ? (
                      <Badge tone="warning">expired</Badge>
                    ) : (
                      <Badge tone="success">active</Badge>
                    ),
                },
                {
                  header: "Actions",
                  cell: (key) =>
                    key.revoked_at || !admin ? null : (
                      <Button small variant="danger" onClick={() => setRevoking(key)} aria-label={`Revoke ${key.name}`}>
                        Revoke
                      </Button>
                    ),
                },
              ]}
            />
          );
        }}
      </Show>
      {creating ? (
        <CreateKeyDialog
          mode={session.mode}
          onClose={() => setCreating(false)}
          onCreated={(key) => {
            setCreating(false);
            setCreated(key);
            keys.reload();
          }}
        />
      ) : null}
      {created?.key ? (
        <Dialog title="Your new API key" onClose={() => setCreated(null)}>
          <div className="stack">
            <Secret value={created.key} />
            <Button variant="primary" onClick={() => setCreated(null)}>
              Done
            </Button>
          </div>
        </Dialog>
      ) : null}
      {revoking ? (
        <ConfirmRevoke
          apiKey={revoking}
          onClose={() => setRevoking(null)}
          onRevoked={() => {
            setRevoking(null);
            keys.reload();
          }}
        />
      ) : null}
      <Card title="Using a key">
        <p className="muted">
          Send it as <code>Authorization: Bearer coexai_…</code>. Test keys (<code>coexai_test_…</code>) create test-mode
          resources that are never billed.
        </p>
      </Card>
    </>
  );
}

function CreateKeyDialog({
  mode,
  onClose,
  onCreated,
}: {
  mode: "live" | "test";
  onClose: () => void;
  onCreated: (key: ApiKey) => void;
}) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const scopes = form.getAll("scopes").map(String);
    const expires = String(form.get("expires_at") ?? "");
    const ips = String(form.get("allowed_ips") ?? "")
      .split(/[\s,]+/)
      .filter(Boolean);
    setBusy(true);
    setError(null);
    try {
      const key = await request<ApiKey>("POST", "/v1/api-keys", {
        json: {
          name: String(form.get("name")),
          mode,
          scopes,
          expires_at: expires ? new Date(`${expires}T23:59:59`).toISOString() : null,
          allowed_ips: ips,
        },
      });
      onCreated(key);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Create a ${mode} API key`} onClose={onClose}>
      <form className="stack" onSubmit={(event) => void submit(event)}>
        {error ? <Alert>{error}</Alert> : null}
        <Input label="Name" name="name" required maxLength={100} placeholder="CI pipeline" />
        <fieldset className="row">
          <legend>Scopes</legend>
          {["read", "write", "admin"].map((scope) => (
            <label key={scope} className="checkbox">
              <input type="checkbox" name="scopes" value={scope} defaultChecked={scope !== "admin"} /> {scope}
            </label>
          ))}
        </fieldset>
        <Input label="Expires on" name="expires_at" type="date" hint="Empty: never expires." />
        <Input label="Allowed IPs" name="allowed_ips" placeholder="203.0.113.0/24, 2001:db8::1" hint="CIDRs or addresses; empty allows any." />
        <div className="row">
          <Button type="submit" variant="primary" busy={busy}>
            Create key
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </div>
      </form>
    </Dialog>
  );
}

function ConfirmRevoke({ apiKey, onClose, onRevoked }: { apiKey: ApiKey; onClose: () => void; onRevoked: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const revoke = async () => {
    setBusy(true);
    try {
      await request("DELETE", `/v1/api-keys/${apiKey.id}`);
      onRevoked();
    } catch (caught) {
      setError(describeError(caught));
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Revoke “${apiKey.name}”?`} onClose={onClose}>
      <div className="stack">
        {error ? <Alert>{error}</Alert> : null}
        <p>Requests with this key will fail at once. This cannot be undone.</p>
        <div className="row">
          <Button variant="danger" busy={busy} onClick={() => void revoke()}>
            Revoke key
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </div>
      </div>
    </Dialog>
  );
}
