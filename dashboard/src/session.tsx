/** Who is signed in, in which organization, and in which mode (live or test) the dashboard works. */
import { createContext, type ReactNode, useCallback, useContext, useEffect, useState } from "react";
import * as api from "./api";

export interface Me {
  user: { id: string; email: string; full_name: string; email_verified?: boolean; is_staff?: boolean } | null;
  organization: { id: string; name: string } | null;
  role: string | null;
  auth: { type: string; scopes: string[]; livemode: boolean };
  identities: Array<{ id: string; provider: string; email?: string | null; created_at?: string }>;
}

export interface Organization {
  id: string;
  name: string;
  slug: string;
  role: string;
}

export type Mode = "live" | "test";

interface SessionState {
  status: "loading" | "signed-out" | "signed-in";
  me: Me | null;
  organizations: Organization[];
  mode: Mode;
  setMode: (mode: Mode) => void;
  signIn: (email: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
  switchOrganization: (id: string) => Promise<void>;
  reload: () => Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

export function useSession(): SessionState {
  const value = useContext(SessionContext);
  if (!value) throw new Error("useSession outside SessionProvider");
  return value;
}

export function hasRole(me: Me | null, needed: "viewer" | "member" | "admin" | "owner"): boolean {
  const order = ["viewer", "member", "admin", "owner"];
  return me?.role ? order.indexOf(me.role) >= order.indexOf(needed) : false;
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<SessionState["status"]>("loading");
  const [me, setMe] = useState<Me | null>(null);
  const [organizations, setOrganizations] = useState<Organization[]>([]);
  const [mode, setModeState] = useState<Mode>(api.currentMode());

  const load = useCallback(async () => {
    const page = await api.request<{ data: Organization[] }>("GET", "/v1/organizations", {
      query: { limit: 100 },
      organization: false,
    });
    const current = api.currentOrganization();
    if (!current || !page.data.some((organization) => organization.id === current)) {
      api.setOrganization(page.data[0]?.id ?? null);
    }
    const who = await api.request<Me>("GET", "/v1/users/me");
    setOrganizations(page.data);
    setMe(who);
    setStatus("signed-in");
  }, []);

  useEffect(() => {
    const off = api.onSignedOut(() => {
      setMe(null);
      setStatus("signed-out");
    });
    void (async () => {
      if (await api.refreshSession()) {
        try {
          await load();
          return;
        } catch {
          // fall through: signed out
        }
      }
      setStatus("signed-out");
    })();
    return () => {
      off();
    };
  }, [load]);

  const value: SessionState = {
    status,
    me,
    organizations,
    mode,
    setMode: (next) => {
      api.setMode(next); // every call from now on acts in this mode (X-Backplane-Mode)
      setModeState(next);
    },
    signIn: async (email, password) => {
      await api.signIn(email, password);
      await load();
    },
    signOut: async () => {
      await api.signOut();
      setMe(null);
      setStatus("signed-out");
    },
    switchOrganization: async (id) => {
      api.setOrganization(id);
      await load();
    },
    reload: load,
  };
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
