"""The frontend: what engine.client does behind its public classes (reads, updates, schedules, interceptors)."""
