"""A completed job's output rendered for people: Markdown, plain text, HTML, PDF and CSV.

Each module renders one agent's JSON output (`maya.py`, `jordan.py`, `sam.py`, `taylor.py`); `html.py`
builds HTML with lxml, so that every value from the job's input is a text node or an attribute value,
escaped when serialized, and never markup.
"""
