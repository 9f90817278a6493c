"""The output formats a job's output can be downloaded in, and their media types."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OutputFormat:
    name: str
    media_type: str  # without parameters: what `Accept` names
    extension: str
    charset: str | None = "utf-8"

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset={self.charset}" if self.charset else self.media_type


FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        OutputFormat("json", "application/json", "json", charset=None),
        OutputFormat("markdown", "text/markdown", "md"),
        OutputFormat("text", "text/plain", "txt"),
        OutputFormat("report", "text/html", "html"),  # jordan's analytics report
        OutputFormat("html", "text/html", "html"),
        OutputFormat("pdf", "application/pdf", "pdf", charset=None),
        OutputFormat("csv", "text/csv", "csv"),
    )
}
