"""Optional integrations, as ``temporalio.contrib`` (each needs its own third-party package)."""
