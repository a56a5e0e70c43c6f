"""What engine.testing and engine.faults run behind their public classes."""
