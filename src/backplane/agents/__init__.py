"""The AI agents that jobs run: one small interface (base.py) and a registry (registry.py)."""
