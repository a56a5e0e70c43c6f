"""The load lab's machinery (engine.loadtest is its public face): the bench and target
workflows, the bench's activities, the system under load, the worker processes and their
meters, the report and its plots."""
