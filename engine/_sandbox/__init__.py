"""The workflow sandbox: a run's private copies of modules, and what workflow code may not touch."""
