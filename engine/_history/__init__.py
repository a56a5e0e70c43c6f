"""The history service: each run's state machine, one function per state change, in one transaction."""
