"""Matching: task queues, eager dispatch, queries handed to workers, and which workers are polling."""
