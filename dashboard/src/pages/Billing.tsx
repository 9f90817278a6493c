import { MODE_HEADER } from "@coexai/sdk";
import { useEffect, useState } from "react";
import { useSearchParams } from "react-router";
import { authFetch, describeError, errorFrom, request } from "../api";
import { formatBytes, formatDate, formatMoney, formatNumber } from "../format";
import { hasRole, useSession } from "../session";
import { Alert, Badge, BarChart, Button, Card, Dialog, Input, Progress, Show, useLoad } from "../ui";

/** Plans and subscriptions exist in live mode only, and the quota is shared by both modes: billing acts live. */
const LIVE = "live" as const;

interface Plan {
  id: string;
  name: string;
  price_id: string | null;
  monthly_price_cents: number;
  currency: string;
  limits: { requests_per_minute: number; concurrent_jobs: number; jobs_per_month: number | null; max_upload_bytes: number };
}

interface Subscription {
  plan: string;
  status: string;
  seats: number;
  current_period_end: string | null;
  cancel_at_period_end: boolean;
  livemode: boolean;
}

interface Usage {
  period: string;
  period_start: string;
  period_end: string;
  plan: string;
  jobs: { used: number; quota: number | null; remaining: number | null; percent_used: number | null; by_agent: Record<string, number>; by_day: Array<{ date: string; jobs: number }> };
  concurrency: { running: number | null; limit: number };
  seats: Array<{ license_id: string; tier: string; seats: number; live: number | null }>;
  storage: { files: number; used_bytes: number; max_file_bytes: number };
}

export function BillingPage() {
  const session = useSession();
  const owner = hasRole(session.me, "owner");
  const [params, setParams] = useSearchParams();
  const organization = session.me?.organization?.id;
  const plans = useLoad((signal) => request<{ plans: Plan[] }>("GET", "/api/v1/subscriptions/plans/", { signal, mode: LIVE }), []);
  const current = useLoad(
    (signal) => request<Subscription | null>("GET", "/api/v1/subscriptions/current/", { signal, mode: LIVE }).catch(() => null),
    [organization],
  );
  const usage = useLoad((signal) => request<Usage>("GET", "/v1/usage", { signal, mode: LIVE }), [organization]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [localCheckout, setLocalCheckout] = useState<{ sessionId: string; plan: Plan; seats: number } | null>(null);
  const [confirmCancel, setConfirmCancel] = useState(false);
  useEffect(() => {
    if (params.get("checkout") === "success") {
      setNotice("Thank you: your plan is active.");
      setParams({}, { replace: true });
    }
  }, [params, setParams]);
  const reload = () => {
    current.reload();
    usage.reload();
  };
  const checkout = async (plan: Plan, seats: number) => {
    setError(null);
    try {
      const here = `${window.location.origin}/dashboard/billing`;
      const answer = await request<{ checkout_url: string; session_id: string }>("POST", "/api/v1/subscriptions/checkout/", {
        json: { price_id: plan.price_id, seats, success_url: `${here}?checkout=success`, cancel_url: here },
        mode: LIVE,
      });
      if (answer.session_id.startsWith("cs_local_")) setLocalCheckout({ sessionId: answer.session_id, plan, seats });
      else window.location.assign(answer.checkout_url);
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  const completeLocal = async () => {
    if (!localCheckout) return;
    setError(null);
    try {
      // The API answers 303 to the success URL; the dashboard stays where it is instead of following it.
      const response = await authFetch(`/api/v1/subscriptions/local-checkout/${localCheckout.sessionId}/`, {
        method: "POST",
        redirect: "manual",
        headers: { Accept: "application/json", [MODE_HEADER]: LIVE },
      });
      if (response.type !== "opaqueredirect" && !response.ok) throw await errorFrom(response);
      setLocalCheckout(null);
      setNotice(`You are on the ${localCheckout.plan.name} plan.`);
      reload();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  const changeSeats = async (seats: number) => {
    setError(null);
    try {
      await request("POST", "/api/v1/subscriptions/update/", { json: { seats }, mode: LIVE });
      setNotice(`Seats changed to ${seats}.`);
      reload();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  const cancel = async () => {
    setConfirmCancel(false);
    try {
      await request("POST", "/api/v1/subscriptions/cancel/", { json: { immediately: false }, mode: LIVE });
      setNotice("Your subscription ends at the end of the period.");
      reload();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  const paid = current.data && current.data.plan !== "free" && current.data.status !== "canceled";
  return (
    <>
      <h1>Billing</h1>
      {session.mode === "test" ? (
        <Alert tone="info">
          Billing is the organization&apos;s real plan: this page shows and changes it in live mode, whatever the test
          toggle says.
        </Alert>
      ) : null}
      {error ? <Alert>{error}</Alert> : null}
      {notice ? <Alert tone="success">{notice}</Alert> : null}
      <div className="grid">
        <Card title="Plan">
          <Show loaded={current} what="your subscription">
            {(sub) =>
              sub ? (
                <div className="stack">
                  <p className="stat" data-testid="current-plan">
                    {sub.plan}
                  </p>
                  <p>
                    <Badge tone={sub.status === "active" ? "success" : "warning"}>{sub.status}</Badge> · {sub.seats} seat(s)
                  </p>
                  {sub.current_period_end ? (
                    <p className="muted">
                      {sub.cancel_at_period_end ? "Ends" : "Renews"} {formatDate(sub.current_period_end, false)}
                    </p>
                  ) : null}
                  {owner && paid ? (
                    <SeatsForm seats={sub.seats} onChange={(seats) => void changeSeats(seats)} onCancel={() => setConfirmCancel(true)} />
                  ) : null}
                </div>
              ) : (
                <p className="stat" data-testid="current-plan">
                  free
                </p>
              )
            }
          </Show>
        </Card>
        <Card title="Usage this month">
          <Show loaded={usage} what="usage">
            {(data) => (
              <div className="stack">
                <p>
                  <strong>{formatNumber(data.jobs.used)}</strong> of {formatNumber(data.jobs.quota)} jobs
                </p>
                {data.jobs.quota ? <Progress value={data.jobs.used / data.jobs.quota} label="Jobs used this month" /> : null}
                <p className="muted">
                  {data.concurrency.running ?? 0} of {data.concurrency.limit} concurrent jobs running · storage{" "}
                  {formatBytes(data.storage.used_bytes)} in {data.storage.files} files
                </p>
                <p className="muted">
                  {formatDate(data.period_start, false)} – {formatDate(data.period_end, false)}
                </p>
              </div>
            )}
          </Show>
        </Card>
      </div>
      <Show loaded={usage} what="usage">
        {(data) => (
          <Card title="Jobs this month, by day">
            <BarChart
              title="Jobs this month by day (UTC)"
              bars={data.jobs.by_day.map((day) => ({ label: day.date.slice(8), value: day.jobs }))}
            />
          </Card>
        )}
      </Show>
      <Show loaded={usage} what="usage">
        {(data) => (
          <Card title="Jobs this month, by agent">
            <BarChart
              title="Jobs this month by agent"
              bars={["maya", "jordan", "sam", "taylor", ...Object.keys(data.jobs.by_agent).filter((a) => !["maya", "jordan", "sam", "taylor"].includes(a))].map(
                (agent) => ({ label: agent, value: data.jobs.by_agent[agent] ?? 0 }),
              )}
            />
          </Card>
        )}
      </Show>
      <Card title="Plans">
        <Show loaded={plans} what="plans">
          {(list) => (
            <div className="grid">
              {list.plans.map((plan) => (
                <section key={plan.id} className="card" aria-label={`${plan.name} plan`}>
                  <h3>{plan.name}</h3>
                  <p className="stat">{formatMoney(plan.monthly_price_cents, plan.currency)}</p>
                  <ul>
                    <li>{formatNumber(plan.limits.jobs_per_month)} jobs a month</li>
                    <li>{plan.limits.concurrent_jobs} concurrent jobs</li>
                    <li>{plan.limits.requests_per_minute} requests a minute</li>
                    <li>uploads up to {formatBytes(plan.limits.max_upload_bytes)}</li>
                  </ul>
                  {owner && plan.price_id && current.data?.plan !== plan.id ? (
                    <Button variant="primary" onClick={() => void checkout(plan, current.data?.seats ?? 1)}>
                      Upgrade to {plan.name}
                    </Button>
                  ) : null}
                  {current.data?.plan === plan.id ? <Badge tone="success">current plan</Badge> : null}
                </section>
              ))}
            </div>
          )}
        </Show>
        {!owner ? <p className="muted">Only the organization's owner changes the plan.</p> : null}
      </Card>
      {localCheckout ? (
        <Dialog title="Confirm the purchase" onClose={() => setLocalCheckout(null)}>
          <p>
            {localCheckout.plan.name} plan, {localCheckout.seats} seat(s). Local billing mode: no payment is taken.
          </p>
          <div className="row">
            <Button variant="primary" onClick={() => void completeLocal()}>
              Confirm purchase
            </Button>
            <Button onClick={() => setLocalCheckout(null)}>Cancel</Button>
          </div>
        </Dialog>
      ) : null}
      {confirmCancel ? (
        <Dialog title="Cancel your subscription?" onClose={() => setConfirmCancel(false)}>
          <p>It stays active until the end of the current period, then you are back on the free plan.</p>
          <div className="row">
            <Button variant="danger" onClick={() => void cancel()}>
              Cancel subscription
            </Button>
            <Button onClick={() => setConfirmCancel(false)}>Keep it</Button>
          </div>
        </Dialog>
      ) : null}
    </>
  );
}

function SeatsForm({ seats, onChange, onCancel }: { seats: number; onChange: (seats: number) => void; onCancel: () => void }) {
  const [value, setValue] = useState(String(seats));
  return (
    <div className="stack">
      <Input label="Seats" type="number" min={1} value={value} onChange={(event) => setValue(event.target.value)} />
      <div className="row">
        <Button disabled={Number(value) === seats || Number(value) < 1} onClick={() => onChange(Number(value))}>
          Change seats
        </Button>
        <Button variant="danger" onClick={onCancel}>
          Cancel subscription
        </Button>
      </div>
    </div>
  );
}
