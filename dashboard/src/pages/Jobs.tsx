import type { AgentConfig, Job, JobTransition } from "@coexai/sdk";
import { JOB_STATUSES } from "@coexai/sdk";
import { createParser } from "eventsource-parser";
import { type FormEvent, useEffect, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { authFetch, describeError, download, sdk } from "../api";
import { formatDate } from "../format";
import { hasRole, useSession } from "../session";
import {
  Alert,
  Badge,
  Button,
  Card,
  EmptyState,
  Field,
  Input,
  Progress,
  Select,
  Show,
  Table,
  type Tone,
  useLoad,
} from "../ui";

export function statusTone(status: string): Tone {
  if (status === "completed") return "success";
  if (status === "failed" || status === "dead_letter") return "danger";
  if (status === "cancelled") return "neutral";
  if (status === "processing") return "info";
  return "warning";
}

export function JobsPage() {
  const session = useSession();
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const agent = params.get("agent") ?? "";
  const agents = useLoad(() => sdk.agents.list(), []);
  const jobs = useLoad(
    () =>
      sdk.jobs
        .list({ status: (status || undefined) as Job["status"] | undefined, agentId: agent || undefined, limit: 50 })
        .firstPage(),
    [status, agent, session.me?.organization?.id],
  );
  const setFilter = (name: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next);
  };
  return (
    <>
      <div className="page-head">
        <h1>Jobs</h1>
        {hasRole(session.me, "member") ? (
          <Link className="btn primary" to="/jobs/new">
            New job
          </Link>
        ) : null}
      </div>
      <div className="row" role="search">
        <Select
          label="Status"
          value={status}
          onChange={(event) => setFilter("status", event.target.value)}
          options={[["", "Any status"], ...JOB_STATUSES.map((s): [string, string] => [s, s])]}
        />
        <Select
          label="Agent"
          value={agent}
          onChange={(event) => setFilter("agent", event.target.value)}
          options={[["", "Any agent"], ...(agents.data ?? []).map((a): [string, string] => [a.id, a.name])]}
        />
        <Button onClick={jobs.reload}>Refresh</Button>
      </div>
      <div className="stack">
        <span />
        <Show loaded={jobs} what="jobs">
          {(page) => {
            const rows = page.data.filter((job) => job.livemode === (session.mode === "live"));
            return rows.length === 0 ? (
              <EmptyState title="No jobs match">
                <p>Create a job to run an agent on your input or files.</p>
              </EmptyState>
            ) : (
              <Table
                caption="Jobs"
                rows={rows}
                rowKey={(job) => job.id}
                columns={[
                  { header: "Job", cell: (job) => <Link to={`/jobs/${job.id}`}>{job.id}</Link> },
                  { header: "Agent", cell: (job) => job.agentId },
                  { header: "Status", cell: (job) => <Badge tone={statusTone(job.status)}>{job.status}</Badge> },
                  { header: "Attempts", cell: (job) => job.attempts },
                  { header: "Created", cell: (job) => formatDate(job.createdAt) },
                  { header: "Finished", cell: (job) => formatDate(job.finishedAt) },
                ]}
              />
            );
          }}
        </Show>
      </div>
    </>
  );
}

interface LiveState {
  progress: number | null;
  message: string | null;
  connected: boolean;
}

/** Follow GET /v1/jobs/{id}/events (fetch streaming: EventSource cannot send the bearer token). */
function useJobEvents(jobId: string, onChange: () => void): LiveState {
  const [state, setState] = useState<LiveState>({ progress: null, message: null, connected: false });
  useEffect(() => {
    const controller = new AbortController();
    let lastEventId = "";
    const follow = async () => {
      for (let attempt = 0; attempt < 5 && !controller.signal.aborted; attempt++) {
        try {
          const headers: Record<string, string> = { Accept: "text/event-stream" };
          if (lastEventId) headers["Last-Event-ID"] = lastEventId;
          const response = await authFetch(`/v1/jobs/${encodeURIComponent(jobId)}/events`, {
            headers,
            signal: controller.signal,
          });
          if (!response.ok || !response.body) return;
          setState((previous) => ({ ...previous, connected: true }));
          let finished = false;
          const parser = createParser({
            onEvent(event) {
              if (event.id) lastEventId = event.id;
              const data = JSON.parse(event.data) as { progress?: number; message?: string };
              if (event.event === "progress") {
                setState({ progress: data.progress ?? null, message: data.message ?? null, connected: true });
              } else if (event.event === "status") {
                onChange();
              } else if (event.event === "done") {
                finished = true;
                onChange();
              }
            },
          });
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            parser.feed(value);
          }
          if (finished) break;
        } catch {
          if (controller.signal.aborted) return;
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }
      setState((previous) => ({ ...previous, connected: false }));
    };
    void follow();
    return () => controller.abort();
    // onChange is a reload function whose identity is stable.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [jobId]);
  return state;
}

const FINAL = ["completed", "failed", "dead_letter", "cancelled"];

export function JobDetailPage() {
  const { jobId = "" } = useParams();
  const session = useSession();
  const job = useLoad(() => sdk.jobs.get(jobId), [jobId]);
  const history = useLoad(() => sdk.jobs.history(jobId), [jobId]);
  const reload = () => {
    job.reload();
    history.reload();
  };
  const live = useJobEvents(jobId, reload);
  const [error, setError] = useState<string | null>(null);
  const act = async (action: "cancel" | "retry") => {
    setError(null);
    try {
      await (action === "cancel" ? sdk.jobs.cancel(jobId) : sdk.jobs.retry(jobId));
      reload();
    } catch (caught) {
      setError(describeError(caught));
    }
  };
  const member = hasRole(session.me, "member");
  return (
    <>
      <p>
        <Link to="/jobs">← Jobs</Link>
      </p>
      <Show loaded={job} what="the job">
        {(data) => (
          <>
            <div className="page-head">
              <h1>
                Job <code>{data.id}</code>
              </h1>
              <div className="row">
                <Badge tone={statusTone(data.status)}>{data.status}</Badge>
                {member && !FINAL.includes(data.status) ? (
                  <Button variant="danger" onClick={() => void act("cancel")}>
                    Cancel job
                  </Button>
                ) : null}
                {member && (data.status === "failed" || data.status === "dead_letter") ? (
                  <Button onClick={() => void act("retry")}>Retry</Button>
                ) : null}
              </div>
            </div>
            {error ? <Alert>{error}</Alert> : null}
            <div className="grid">
              <Card title="Details">
                <dl>
                  <dt>Agent</dt>
                  <dd>{data.agentId}</dd>
                  <dt>Created</dt>
                  <dd>{formatDate(data.createdAt)}</dd>
                  <dt>Started</dt>
                  <dd>{formatDate(data.startedAt)}</dd>
                  <dt>Finished</dt>
                  <dd>{formatDate(data.finishedAt)}</dd>
                  <dt>Attempts</dt>
                  <dd>{data.attempts}</dd>
                  <dt>Files</dt>
                  <dd>{data.fileIds.length ? data.fileIds.join(", ") : "none"}</dd>
                </dl>
                {data.error ? (
                  <Alert>
                    {data.error.code}: {data.error.message}
                  </Alert>
                ) : null}
              </Card>
              <Card title="Progress">
                {FINAL.includes(data.status) ? (
                  <p>The job is {data.status}.</p>
                ) : (
                  <div className="stack">
                    <Progress value={live.progress ?? 0} label="Job progress" />
                    <p className="muted" aria-live="polite">
                      {live.message ?? (live.connected ? "Waiting for the agent…" : "Connecting…")}
                    </p>
                  </div>
                )}
              </Card>
              <Card title="History">
                <Show loaded={history} what="history">
                  {(rows) => <Timeline rows={rows} />}
                </Show>
              </Card>
            </div>
            {data.status === "completed" ? <JobOutputCard jobId={data.id} agentId={data.agentId} /> : null}
          </>
        )}
      </Show>
    </>
  );
}

function Timeline({ rows }: { rows: JobTransition[] }) {
  if (rows.length === 0) return <EmptyState title="No status changes yet" />;
  return (
    <ol className="timeline" aria-label="Status history">
      {rows.map((row, index) => (
        <li key={index}>
          <strong>{row.toStatus}</strong>{" "}
          <span className="muted">
            {formatDate((row.at as string | undefined) ?? row.createdAt)}
            {row.reason ? ` — ${row.reason}` : ""}
          </span>
        </li>
      ))}
    </ol>
  );
}

const TEXT_FORMATS = ["markdown", "text", "csv", "report"];

function JobOutputCard({ jobId, agentId }: { jobId: string; agentId: string }) {
  const agent = useLoad(() => sdk.agents.getConfig(agentId), [agentId]);
  const [format, setFormat] = useState("json");
  const output = useLoad(async () => {
    if (format === "json") return JSON.stringify((await sdk.jobs.getOutput(jobId)).content, null, 2);
    if (!TEXT_FORMATS.includes(format)) return null;
    const response = await authFetch(`/v1/jobs/${encodeURIComponent(jobId)}/output?format=${format}`, {
      headers: { Accept: "*/*" },
    });
    if (!response.ok) throw new Error(`The ${format} output is not available (${response.status}).`);
    return response.text();
  }, [jobId, format]);
  const formats = agent.data?.outputFormats ?? ["json"];
  return (
    <Card title="Output">
      <div className="tabs" role="tablist" aria-label="Output format">
        {["json", ...formats.filter((f) => f !== "json")].map((name) => (
          <button
            key={name}
            role="tab"
            type="button"
            aria-selected={format === name}
            onClick={() => setFormat(name)}
          >
            {name}
          </button>
        ))}
      </div>
      <Show loaded={output} what="the output">
        {(text) =>
          text === null ? (
            <Button onClick={() => void download(`/v1/jobs/${jobId}/output?format=${format}`, `${jobId}.${format}`)}>
              Download {format}
            </Button>
          ) : (
            <pre className="output" data-testid="job-output" tabIndex={0}>
              {text}
            </pre>
          )
        }
      </Show>
    </Card>
  );
}

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  description?: string;
  title?: string;
  default?: unknown;
  maxLength?: number;
  anyOf?: Schema[];
};

function kindOf(schema: Schema): string {
  const type = schema.type;
  return Array.isArray(type) ? (type.find((t) => t !== "null") ?? "string") : (type ?? "string");
}

/** A nullable property (`anyOf: [X, {type: null}]`, as pydantic writes `X | None`) read as X, optional. */
function flatten(schema: Schema): Schema & { nullable?: boolean } {
  const options = schema.anyOf?.filter((option) => option.type !== "null");
  if (!options || options.length !== 1) return schema;
  const { anyOf: _anyOf, ...rest } = schema;
  return { ...options[0], ...rest, nullable: options.length < (schema.anyOf?.length ?? 0) };
}

function defaultOf(schema: Schema): string | undefined {
  return schema.default === undefined || schema.default === null ? undefined : String(schema.default);
}

/** One form field per top-level property of the agent's input JSON schema. */
function SchemaFields({ schema, prefix }: { schema: Schema; prefix: string }) {
  const properties = Object.entries(schema.properties ?? {});
  if (properties.length === 0) return <p className="muted">Nothing to fill in here.</p>;
  return (
    <>
      {properties.map(([name, raw]) => {
        const property = flatten(raw);
        const kind = kindOf(property);
        const label = `${property.title ?? name}${schema.required?.includes(name) ? " (required)" : ""}`;
        const fieldName = `${prefix}.${name}`;
        const hint = property.description;
        const required = schema.required?.includes(name);
        if (property.enum) {
          const choices = property.enum.map((value): [string, string] => [String(value), String(value)]);
          return (
            <Select
              key={name}
              label={label}
              name={fieldName}
              defaultValue={defaultOf(property) ?? (required ? choices[0]?.[0] : "")}
              options={required ? choices : [["", "(default)"], ...choices]}
            />
          );
        }
        if (kind === "boolean") {
          return (
            <label key={name} className="checkbox">
              <input type="checkbox" name={fieldName} defaultChecked={property.default === true} /> {label}
            </label>
          );
        }
        if (kind === "number" || kind === "integer") {
          return (
            <Input
              key={name}
              label={label}
              hint={hint}
              name={fieldName}
              type="number"
              step={kind === "integer" ? 1 : "any"}
              required={required}
              defaultValue={defaultOf(property)}
            />
          );
        }
        if (kind === "object" || kind === "array") {
          return (
            <Field key={name} label={`${label} (JSON)`} hint={hint}>
              {(props) => (
                <textarea
                  className="input"
                  {...props}
                  name={`${fieldName}:json`}
                  defaultValue={property.default === undefined || property.default === null ? "" : JSON.stringify(property.default)}
                />
              )}
            </Field>
          );
        }
        return (
          <Input
            key={name}
            label={label}
            hint={hint}
            name={fieldName}
            required={required}
            maxLength={property.maxLength}
            defaultValue={defaultOf(property)}
          />
        );
      })}
    </>
  );
}

function collect(form: FormData, prefix: string, schema: Schema): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  for (const [name, declared] of Object.entries(schema.properties ?? {})) {
    const property = flatten(declared);
    const kind = kindOf(property);
    if (kind === "boolean" && !property.enum) {
      value[name] = form.get(`${prefix}.${name}`) === "on";
      continue;
    }
    const json = form.get(`${prefix}.${name}:json`);
    if (json !== null) {
      if (String(json).trim()) value[name] = JSON.parse(String(json));
      continue;
    }
    const raw = form.get(`${prefix}.${name}`);
    if (raw === null || raw === "") continue;
    value[name] = kind === "number" || kind === "integer" ? Number(raw) : String(raw);
  }
  return value;
}

export function NewJobPage() {
  const navigate = useNavigate();
  const agents = useLoad(() => sdk.agents.list(), []);
  const [agentId, setAgentId] = useState("");
  const config = useLoad(
    async (): Promise<AgentConfig | null> => (agentId ? sdk.agents.getConfig(agentId) : null),
    [agentId],
  );
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!agentId && agents.data?.[0]) setAgentId(agents.data[0].id);
  }, [agents.data, agentId]);
  const submit = async (event: FormEvent<HTMLFormElement>, agent: AgentConfig) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setError(null);
    setBusy(true);
    try {
      const input = collect(form, "input", agent.inputSchema as Schema);
      const config = collect(form, "config", agent.configSchema as Schema);
      const files = form.getAll("files").filter((file): file is File => file instanceof File && file.size > 0);
      const job = await sdk.jobs.create({ agentId: agent.id, input, config, files });
      navigate(`/jobs/${job.id}`);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <p>
        <Link to="/jobs">← Jobs</Link>
      </p>
      <h1>New job</h1>
      <Show loaded={agents} what="agents">
        {(list) => (
          <div className="stack">
            <Select
              label="Agent"
              value={agentId}
              onChange={(event) => setAgentId(event.target.value)}
              options={list.map((agent): [string, string] => [
                agent.id,
                `${agent.name}${agent.status === "maintenance" ? " (maintenance)" : ""}`,
              ])}
            />
            <Show loaded={config} what="the agent's form">
              {(agent) =>
                agent === null ? null : (
                  <Card title={agent.name}>
                    <p className="muted">{agent.description}</p>
                    <form className="stack" onSubmit={(event) => void submit(event, agent)}>
                      {error ? <Alert>{error}</Alert> : null}
                      <fieldset className="stack">
                        <legend>Input</legend>
                        <SchemaFields schema={agent.inputSchema as Schema} prefix="input" />
                      </fieldset>
                      <fieldset className="stack">
                        <legend>Settings</legend>
                        <SchemaFields schema={agent.configSchema as Schema} prefix="config" />
                      </fieldset>
                      <Input
                        label="Files"
                        name="files"
                        type="file"
                        multiple={agent.maxFiles > 1}
                        accept={agent.acceptedFileTypes.join(",")}
                        hint={`Up to ${agent.maxFiles} file(s): ${agent.acceptedFileTypes.join(", ")}.`}
                      />
                      <div>
                        <Button type="submit" variant="primary" busy={busy}>
                          Create job
                        </Button>
                      </div>
                    </form>
                  </Card>
                )
              }
            </Show>
          </div>
        )}
      </Show>
    </>
  );
}
