"""What ``engine.faults`` runs behind its public functions: crash exploration (run a workflow
once per crash point and check that it recovers)."""
