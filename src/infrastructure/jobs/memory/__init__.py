"""The in-memory job store: a real adapter for tests and development, lost on restart."""
