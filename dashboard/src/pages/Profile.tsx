import { type FormEvent, useState } from "react";
import { describeError, request } from "../api";
import { formatDate } from "../format";
import { useSession } from "../session";
import { Alert, Badge, Button, Card, EmptyState, Input, Table } from "../ui";

export function ProfilePage() {
  const session = useSession();
  const me = session.me;
  const [message, setMessage] = useState<{ tone: "error" | "success"; text: string } | null>(null);
  const save = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    try {
      await request("PATCH", "/v1/users/me", { json: { full_name: String(new FormData(event.currentTarget).get("full_name")) } });
      await session.reload();
      setMessage({ tone: "success", text: "Saved." });
    } catch (caught) {
      setMessage({ tone: "error", text: describeError(caught) });
    }
  };
  const unlink = async (id: string) => {
    try {
      await request("DELETE", `/v1/users/me/identities/${id}`);
      await session.reload();
    } catch (caught) {
      setMessage({ tone: "error", text: describeError(caught) });
    }
  };
  if (!me?.user) return null;
  return (
    <>
      <h1>Profile</h1>
      {message ? <Alert tone={message.tone}>{message.text}</Alert> : null}
      <Card title="You">
        <form className="stack" onSubmit={(event) => void save(event)}>
          <Input label="Full name" name="full_name" defaultValue={me.user.full_name} required />
          <p>
            {me.user.email}{" "}
            {me.user.email_verified ? <Badge tone="success">verified</Badge> : <Badge tone="warning">not verified</Badge>}
          </p>
          <p className="muted">
            Role in {me.organization?.name}: <strong>{me.role}</strong>
          </p>
          <div>
            <Button type="submit" variant="primary">
              Save
            </Button>
          </div>
        </form>
      </Card>
      <Card title="Linked sign-in providers">
        {me.identities.length === 0 ? (
          <EmptyState title="No linked providers">
            <p>You sign in with your password.</p>
          </EmptyState>
        ) : (
          <Table
            caption="Linked identities"
            rows={me.identities}
            rowKey={(row) => row.id}
            columns={[
              { header: "Provider", cell: (row) => row.provider },
              { header: "Email", cell: (row) => row.email ?? "—" },
              { header: "Linked", cell: (row) => formatDate(row.created_at) },
              {
                header: "Actions",
                cell: (row) => (
                  <Button small variant="danger" onClick={() => void unlink(row.id)}>
                    Unlink
                  </Button>
                ),
              },
            ]}
          />
        )}
      </Card>
    </>
  );
}
