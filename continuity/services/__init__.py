"""Long-running services that join core logic and adapters; app.py wires them together."""
