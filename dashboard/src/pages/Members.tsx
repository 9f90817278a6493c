import { type FormEvent, useState } from "react";
import { useNavigate } from "react-router";
import { describeError, request } from "../api";
import { formatDate } from "../format";
import { hasRole, useSession } from "../session";
import { Alert, Badge, Button, Card, Dialog, EmptyState, Input, Select, Show, Table, useLoad } from "../ui";

interface Member {
  user_id: string;
  email: string;
  full_name: string;
  role: string;
  joined_at: string;
}

interface Invitation {
  id: string;
  email: string;
  role: string;
  status: string;
  expires_at: string;
  created_at: string;
}

const ROLES: Array<[string, string]> = [
  ["viewer", "Viewer"],
  ["member", "Member"],
  ["admin", "Admin"],
  ["owner", "Owner"],
];

export function MembersPage() {
  const session = useSession();
  const navigate = useNavigate();
  const organizationId = session.me?.organization?.id ?? "";
  const base = `/v1/organizations/${organizationId}`;
  const members = useLoad((signal) => request<{ data: Member[] }>("GET", `${base}/members`, { query: { limit: 100 }, signal }), [base]);
  const admin = hasRole(session.me, "admin");
  const invitations = useLoad(
    (signal) =>
      admin
        ? request<{ data: Invitation[] }>("GET", `${base}/invitations`, { query: { limit: 100 }, signal })
        : Promise.resolve({ data: [] as Invitation[] }),
    [base, admin],
  );
  const [error, setError] = useState<string | null>(null);
  const [inviting, setInviting] = useState(false);
  const [leaving, setLeaving] = useState(false);
  const run = async (what: () => Promise<unknown>) => {
    setError(null);
    try {
      await what();
      members.reload();
      invitations.reload();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  const me = session.me?.user?.id;
  return (
    <>
      <div className="page-head">
        <h1>Members</h1>
        <div className="row">
          {admin ? (
            <Button variant="primary" onClick={() => setInviting(true)}>
              Invite someone
            </Button>
          ) : null}
          <Button variant="danger" onClick={() => setLeaving(true)}>
            Leave organization
          </Button>
        </div>
      </div>
      {error ? <Alert>{error}</Alert> : null}
      <Card title="Members">
        <Show loaded={members} what="members">
          {(page) => (
            <Table
              caption="Members"
              rows={page.data}
              rowKey={(row) => row.user_id}
              columns={[
                { header: "Name", cell: (row) => `${row.full_name}${row.user_id === me ? " (you)" : ""}` },
                { header: "Email", cell: (row) => row.email },
                {
                  header: "Role",
                  cell: (row) =>
                    admin && row.user_id !== me ? (
                      <select
                        className="input"
                        aria-label={`Role of ${row.email}`}
                        value={row.role}
                        onChange={(event) =>
                          void run(() => request("PATCH", `${base}/members/${row.user_id}`, { json: { role: event.target.value } }))
                        }
                      >
                        {ROLES.map(([value, label]) => (
                          <option key={value} value={value}>
                            {label}
                          </option>
                        ))}
                      </select>
                    ) : (
                      <Badge>{row.role}</Badge>
                    ),
                },
                { header: "Joined", cell: (row) => formatDate(row.joined_at) },
                {
                  header: "Actions",
                  cell: (row) =>
                    admin && row.user_id !== me ? (
                      <Button small variant="danger" onClick={() => void run(() => request("DELETE", `${base}/members/${row.user_id}`))}>
                        Remove
                      </Button>
                    ) : null,
                },
              ]}
            />
          )}
        </Show>
      </Card>
      {admin ? (
        <Card title="Invitations">
          <Show loaded={invitations} what="invitations">
            {(page) =>
              page.data.length === 0 ? (
                <EmptyState title="No pending invitations" />
              ) : (
                <Table
                  caption="Invitations"
                  rows={page.data}
                  rowKey={(row) => row.id}
                  columns={[
                    { header: "Email", cell: (row) => row.email },
                    { header: "Role", cell: (row) => row.role },
                    { header: "Status", cell: (row) => <Badge>{row.status}</Badge> },
                    { header: "Expires", cell: (row) => formatDate(row.expires_at) },
                    {
                      header: "Actions",
                      cell: (row) =>
                        row.status === "pending" ? (
                          <Button small variant="danger" onClick={() => void run(() => request("DELETE", `${base}/invitations/${row.id}`))}>
                            Revoke
                          </Button>
                        ) : null,
                    },
                  ]}
                />
              )
            }
          </Show>
        </Card>
      ) : null}
      {inviting ? (
        <InviteDialog
          base={base}
          onClose={() => setInviting(false)}
          onInvited={() => {
            setInviting(false);
            invitations.reload();
          }}
        />
      ) : null}
      {leaving ? (
        <Dialog title="Leave this organization?" onClose={() => setLeaving(false)}>
          <p>You lose access to its resources, and the API keys you created stop working.</p>
          <div className="row">
            <Button
              variant="danger"
              onClick={() =>
                void run(async () => {
                  await request("DELETE", `${base}/members/${me}`);
                  setLeaving(false);
                  await session.reload();
                  navigate("/");
                })
              }
            >
              Leave
            </Button>
            <Button onClick={() => setLeaving(false)}>Cancel</Button>
          </div>
        </Dialog>
      ) : null}
    </>
  );
}

function InviteDialog({ base, onClose, onInvited }: { base: string; onClose: () => void; onInvited: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    try {
      await request("POST", `${base}/members`, { json: { email: String(form.get("email")), role: String(form.get("role")) } });
      onInvited();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  return (
    <Dialog title="Invite someone" onClose={onClose}>
      <form className="stack" onSubmit={(event) => void submit(event)}>
        {error ? <Alert>{error}</Alert> : null}
        <Input label="Email" name="email" type="email" required />
        <Select label="Role" name="role" defaultValue="member" options={ROLES} />
        <div className="row">
          <Button type="submit" variant="primary">
            Send invitation
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </div>
      </form>
    </Dialog>
  );
}
