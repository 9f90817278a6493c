"""Backplane: accounts, billing, licensing, files, agent jobs and webhooks behind one async API."""

__version__ = "0.1.0"
