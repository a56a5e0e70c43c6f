"""The SDK's workflow runtime: a run's code driven by its history, deterministically.

``instance.WorkflowInstance`` is an asyncio event loop (``event_loop``) whose clock is history
time; it replays a run's events, runs the code of the current workflow task, and returns the
commands the code issued (``commands``, which also checks them against what history recorded).
What workflow code calls is in ``activities``, ``workflow_calls``, ``children``, ``updates``,
``local_activities``, through the interceptors (``interceptors``, ``outbound``).
"""
