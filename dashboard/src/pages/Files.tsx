import type { FileRecord } from "@coexai/sdk";
import { useRef, useState } from "react";
import { describeError, download, sdk, uploadWithProgress } from "../api";
import { formatBytes, formatDate } from "../format";
import { hasRole, useSession } from "../session";
import { Alert, Badge, Button, Dialog, EmptyState, Progress, Show, Table, useLoad } from "../ui";

export function FilesPage() {
  const session = useSession();
  const files = useLoad(() => sdk.files.list({ limit: 100 }).firstPage(), [session.me?.organization?.id]);
  const input = useRef<HTMLInputElement>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<FileRecord | null>(null);
  const upload = async (file: File) => {
    setError(null);
    setProgress(0);
    const form = new FormData();
    form.set("file", file, file.name);
    try {
      await uploadWithProgress("/v1/files", form, setProgress);
      files.reload();
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setProgress(null);
      if (input.current) input.current.value = "";
    }
  };
  const member = hasRole(session.me, "member");
  return (
    <>
      <div className="page-head">
        <h1>Files</h1>
        {member ? (
          <label className="btn primary">
            Upload a file
            <input
              ref={input}
              type="file"
              className="sr-only"
              onChange={(event) => {
                const file = event.target.files?.[0];
                if (file) void upload(file);
              }}
            />
          </label>
        ) : null}
      </div>
      {progress !== null ? (
        <div className="stack">
          <Progress value={progress} label="Upload progress" />
          <p className="muted">Uploading… {Math.round(progress * 100)}%</p>
        </div>
      ) : null}
      {error ? <Alert>{error}</Alert> : null}
      <Show loaded={files} what="files">
        {(page) => {
          const rows = page.data.filter((file) => file.livemode === (session.mode === "live"));
          return rows.length === 0 ? (
            <EmptyState title="No files yet">
              <p>Upload documents here, or attach them when you create a job.</p>
            </EmptyState>
          ) : (
            <Table
              caption="Files"
              rows={rows}
              rowKey={(file) => file.id}
              columns={[
                { header: "Name", cell: (file) => file.filename },
                { header: "Type", cell: (file) => file.contentType },
                { header: "Size", cell: (file) => formatBytes(file.sizeBytes) },
                {
                  header: "Status",
                  cell: (file) => <Badge tone={file.status === "ready" ? "success" : "warning"}>{file.status}</Badge>,
                },
                { header: "Uploaded", cell: (file) => formatDate(file.createdAt) },
                {
                  header: "Actions",
                  cell: (file) => (
                    <div className="row">
                      <Button
                        small
                        onClick={() => void download(`/v1/files/${file.id}/content`, file.filename).catch((e) => setError(describeError(e)))}
                        aria-label={`Download ${file.filename}`}
                      >
                        Download
                      </Button>
                      {member ? (
                        <Button small variant="danger" onClick={() => setDeleting(file)} aria-label={`Delete ${file.filename}`}>
                          Delete
                        </Button>
                      ) : null}
                    </div>
                  ),
                },
              ]}
            />
          );
        }}
      </Show>
      {deleting ? (
        <Dialog title={`Delete ${deleting.filename}?`} onClose={() => setDeleting(null)}>
          <p>The file's bytes are removed; jobs that used it keep their output.</p>
          <div className="row">
            <Button
              variant="danger"
              onClick={() => {
                const file = deleting;
                setDeleting(null);
                sdk.files.delete(file.id).then(files.reload, (e: unknown) => setError(describeError(e)));
              }}
            >
              Delete
            </Button>
            <Button onClick={() => setDeleting(null)}>Cancel</Button>
          </div>
        </Dialog>
      ) : null}
    </>
  );
}
