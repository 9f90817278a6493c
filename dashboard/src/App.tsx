import { useEffect, useState } from "react";
import { Navigate, NavLink, Route, Routes, useLocation } from "react-router";
import { ApiKeysPage } from "./pages/ApiKeys";
import { ForgotPasswordPage, ResetPasswordPage, SignInPage, SignUpPage, VerifyEmailPage } from "./pages/Auth";
import { BillingPage } from "./pages/Billing";
import { EventsPage } from "./pages/Events";
import { FilesPage } from "./pages/Files";
import { JobDetailPage, JobsPage, NewJobPage } from "./pages/Jobs";
import { LicenseDetailPage, LicensesPage } from "./pages/Licenses";
import { MembersPage } from "./pages/Members";
import { ProfilePage } from "./pages/Profile";
import { StaffPage } from "./pages/Staff";
import { WebhookDetailPage, WebhooksPage } from "./pages/Webhooks";
import { useSession } from "./session";
import { Button, Loading } from "./ui";

const PUBLIC_PATHS = ["/signin", "/signup", "/forgot-password", "/reset-password", "/verify-email"];

export function App() {
  const session = useSession();
  const location = useLocation();
  if (session.status === "loading") return <Loading what="your session" />;
  const isPublic = PUBLIC_PATHS.includes(location.pathname);
  if (session.status === "signed-out" && !isPublic) {
    return <Navigate to="/signin" replace state={{ from: location.pathname }} />;
  }
  if (isPublic) {
    return (
      <Routes>
        <Route path="/signin" element={session.status === "signed-in" ? <Navigate to="/" replace /> : <SignInPage />} />
        <Route path="/signup" element={<SignUpPage />} />
        <Route path="/forgot-password" element={<ForgotPasswordPage />} />
        <Route path="/reset-password" element={<ResetPasswordPage />} />
        <Route path="/verify-email" element={<VerifyEmailPage />} />
      </Routes>
    );
  }
  return <Shell />;
}

const NAV: Array<[string, string]> = [
  ["/jobs", "Jobs"],
  ["/files", "Files"],
  ["/api-keys", "API keys"],
  ["/licenses", "Licenses"],
  ["/webhooks", "Webhooks"],
  ["/events", "Events"],
  ["/members", "Members"],
  ["/billing", "Billing"],
  ["/profile", "Profile"],
];

function Shell() {
  const session = useSession();
  const location = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [location.pathname]);
  const me = session.me;
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      {session.mode === "test" ? (
        <div className="banner test" role="status">
          Test mode: everything you see and create here is test data (test licenses, jobs, files, webhooks, events
          and keys).
        </div>
      ) : null}
      {me?.user && !me.user.email_verified ? (
        <div className="banner warning" role="status" data-testid="verify-banner">
          Please verify your email address: we sent a link to <strong>{me.user.email}</strong>. Invitations and some
          actions need a verified address.
        </div>
      ) : null}
      <div className="shell">
        <nav className={`sidebar ${menuOpen ? "open" : ""}`} aria-label="Main" id="main-nav">
          <div className="brand">CoExAI</div>
          <div className="nav">
            {NAV.map(([to, label]) => (
              <NavLink key={to} to={to}>
                {label}
              </NavLink>
            ))}
            {me?.user?.is_staff ? <NavLink to="/staff">Staff console</NavLink> : null}
          </div>
        </nav>
        <div className="content">
          <header className="topbar">
            <Button
              className="menu-toggle"
              aria-expanded={menuOpen}
              aria-controls="main-nav"
              onClick={() => setMenuOpen((open) => !open)}
            >
              Menu
            </Button>
            <span className="spacer" />
            <OrganizationSwitcher />
            <ModeToggle />
            <ThemeToggle />
            <Button onClick={() => void session.signOut()}>Sign out</Button>
          </header>
          <main className="main" id="main" tabIndex={-1}>
            <Routes key={session.mode /* a page loads again in the other mode */}>
              <Route path="/" element={<Navigate to="/jobs" replace />} />
              <Route path="/jobs" element={<JobsPage />} />
              <Route path="/jobs/new" element={<NewJobPage />} />
              <Route path="/jobs/:jobId" element={<JobDetailPage />} />
              <Route path="/files" element={<FilesPage />} />
              <Route path="/api-keys" element={<ApiKeysPage />} />
              <Route path="/licenses" element={<LicensesPage />} />
              <Route path="/licenses/:licenseId" element={<LicenseDetailPage />} />
              <Route path="/webhooks" element={<WebhooksPage />} />
              <Route path="/webhooks/:webhookId" element={<WebhookDetailPage />} />
              <Route path="/events" element={<EventsPage />} />
              <Route path="/members" element={<MembersPage />} />
              <Route path="/billing" element={<BillingPage />} />
              <Route path="/profile" element={<ProfilePage />} />
              <Route path="/staff" element={<StaffPage />} />
              <Route path="*" element={<p>There is no such page. <NavLink to="/jobs">Go to jobs</NavLink></p>} />
            </Routes>
          </main>
        </div>
      </div>
    </>
  );
}

function OrganizationSwitcher() {
  const session = useSession();
  if (session.organizations.length === 0) return null;
  return (
    <label className="row">
      <span className="sr-only">Organization</span>
      <select
        className="input"
        aria-label="Organization"
        value={session.me?.organization?.id ?? ""}
        onChange={(event) => void session.switchOrganization(event.target.value)}
      >
        {session.organizations.map((organization) => (
          <option key={organization.id} value={organization.id}>
            {organization.name} ({organization.role})
          </option>
        ))}
      </select>
    </label>
  );
}

function ModeToggle() {
  const session = useSession();
  const test = session.mode === "test";
  return (
    <Button aria-pressed={test} onClick={() => session.setMode(test ? "live" : "test")} title="Live or test mode">
      {test ? "Test mode" : "Live mode"}
    </Button>
  );
}

function ThemeToggle() {
  const [theme, setTheme] = useState(localStorage.getItem("bp_theme") ?? "system");
  const next = theme === "system" ? "dark" : theme === "dark" ? "light" : "system";
  const apply = () => {
    localStorage.setItem("bp_theme", next);
    if (next === "system") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = next;
    setTheme(next);
  };
  return (
    <Button onClick={apply} aria-label={`Theme: ${theme}. Switch to ${next}`}>
      Theme: {theme}
    </Button>
  );
}
