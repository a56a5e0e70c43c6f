"""Persistence: the SQLite store, its schema and migrations, the writer lock, checkpoints and the list filter."""
