import { type FormEvent, useEffect, useState } from "react";
import { Link, useLocation, useNavigate, useSearchParams } from "react-router";
import { ApiError, describeError, request } from "../api";
import { useSession } from "../session";
import { Alert, Button, Card, Input, Loading } from "../ui";

function AuthCard({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <main className="auth-page" id="main">
      <Card>
        <p className="brand">CoExAI</p>
        <h1>{title}</h1>
        {children}
      </Card>
    </main>
  );
}

/** The sign-in providers this server has configured (GET /v1/auth/oauth/providers starts no sign-in). */
function useConfiguredProviders(): Array<{ id: string; name: string }> {
  const [configured, setConfigured] = useState<Array<{ id: string; name: string }>>([]);
  useEffect(() => {
    const controller = new AbortController();
    fetch("/v1/auth/oauth/providers", { headers: { Accept: "application/json" }, signal: controller.signal })
      .then((response) => (response.ok ? response.json() : { providers: [] }))
      .then((answer: { providers: Array<{ id: string; name: string }> }) => setConfigured(answer.providers))
      .catch(() => undefined);
    return () => controller.abort();
  }, []);
  return configured;
}

function oauthUrl(provider: string): string {
  return `/v1/auth/oauth/${provider}?redirect_uri=${encodeURIComponent("/dashboard/")}`;
}

export function SignInPage() {
  const session = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const [params] = useSearchParams();
  const providers = useConfiguredProviders();
  const [error, setError] = useState<string | null>(params.get("error_description") ?? params.get("error"));
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setBusy(true);
    setError(null);
    try {
      await session.signIn(String(form.get("email")), String(form.get("password")));
      const from = (location.state as { from?: string } | null)?.from;
      navigate(from && from !== "/signin" ? from : "/", { replace: true });
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <AuthCard title="Sign in">
      <form className="stack" onSubmit={(event) => void submit(event)}>
        {error ? <Alert>{error}</Alert> : null}
        <Input label="Email" name="email" type="email" autoComplete="email" required />
        <Input label="Password" name="password" type="password" autoComplete="current-password" required />
        <Button type="submit" variant="primary" busy={busy}>
          Sign in
        </Button>
        {providers.length ? (
          <div className="row" role="group" aria-label="Other ways to sign in">
            {providers.map((provider) => (
              <a key={provider.id} className="btn" href={oauthUrl(provider.id)}>
                Sign in with {provider.name}
              </a>
            ))}
          </div>
        ) : null}
        <p className="row">
          <Link to="/forgot-password">Forgot your password?</Link>
          <span className="spacer" />
          <Link to="/signup">Create an account</Link>
        </p>
      </form>
    </AuthCard>
  );
}

export function SignUpPage() {
  const session = useSession();
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Record<string, string[]>>({});
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const email = String(form.get("email"));
    const password = String(form.get("password"));
    setBusy(true);
    setError(null);
    setFields({});
    try {
      await request("POST", "/api/v1/auth/register/", {
        json: {
          email,
          password,
          full_name: String(form.get("full_name")),
          company_name: String(form.get("company_name")),
        },
      });
      await session.signIn(email, password);
      navigate("/", { replace: true });
    } catch (caught) {
      if (caught instanceof ApiError) setFields(caught.fields);
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  const fieldError = (name: string) => fields[name]?.join(" ") ?? null;
  return (
    <AuthCard title="Create your account">
      <form className="stack" onSubmit={(event) => void submit(event)}>
        {error ? <Alert>{error}</Alert> : null}
        <Input label="Full name" name="full_name" autoComplete="name" required error={fieldError("full_name")} />
        <Input label="Company" name="company_name" autoComplete="organization" required error={fieldError("company_name")} />
        <Input label="Email" name="email" type="email" autoComplete="email" required error={fieldError("email")} />
        <Input
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          minLength={8}
          required
          hint="At least 8 characters."
          error={fieldError("password")}
        />
        <Button type="submit" variant="primary" busy={busy}>
          Create account
        </Button>
        <p>
          Already have an account? <Link to="/signin">Sign in</Link>
        </p>
      </form>
    </AuthCard>
  );
}

export function ForgotPasswordPage() {
  const [sent, setSent] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await request<{ message: string }>("POST", "/api/v1/auth/forgot-password/", {
        json: { email: String(new FormData(event.currentTarget).get("email")) },
      });
      setSent(answer.message);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <AuthCard title="Reset your password">
      {sent ? (
        <Alert tone="success">{sent}</Alert>
      ) : (
        <form className="stack" onSubmit={(event) => void submit(event)}>
          {error ? <Alert>{error}</Alert> : null}
          <Input label="Email" name="email" type="email" autoComplete="email" required />
          <Button type="submit" variant="primary" busy={busy}>
            Email me a reset link
          </Button>
        </form>
      )}
      <p>
        <Link to="/signin">Back to sign in</Link>
      </p>
    </AuthCard>
  );
}

export function ResetPasswordPage() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const [done, setDone] = useState(false);
  const [error, setError] = useState<string | null>(token ? null : "This link has no reset token.");
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await request("POST", "/api/v1/auth/reset-password/", {
        json: { token, new_password: String(new FormData(event.currentTarget).get("new_password")) },
      });
      setDone(true);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <AuthCard title="Choose a new password">
      {done ? (
        <Alert tone="success">Your password is changed; every other session was signed out.</Alert>
      ) : (
        <form className="stack" onSubmit={(event) => void submit(event)}>
          {error ? <Alert>{error}</Alert> : null}
          <Input label="New password" name="new_password" type="password" autoComplete="new-password" minLength={8} required />
          <Button type="submit" variant="primary" busy={busy} disabled={!token}>
            Set password
          </Button>
        </form>
      )}
      <p>
        <Link to="/signin">Sign in</Link>
      </p>
    </AuthCard>
  );
}

export function VerifyEmailPage() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const [state, setState] = useState<{ ok?: string; error?: string }>({});
  useEffect(() => {
    if (!token) {
      setState({ error: "This link has no verification token." });
      return;
    }
    request<{ message: string }>("GET", "/api/v1/auth/verify-email/", { query: { token } }).then(
      (answer) => setState({ ok: answer.message }),
      (caught: unknown) => setState({ error: describeError(caught) }),
    );
  }, [token]);
  return (
    <AuthCard title="Verify your email">
      {state.ok ? <Alert tone="success">{state.ok}</Alert> : null}
      {state.error ? <Alert>{state.error}</Alert> : null}
      {!state.ok && !state.error ? <Loading what="the verification" /> : null}
      <p>
        <Link to="/">Go to the dashboard</Link>
      </p>
    </AuthCard>
  );
}
