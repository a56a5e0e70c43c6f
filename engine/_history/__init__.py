"""The history service: each run's state machine, one function per state change.

Every function here takes a ``Tx`` and runs inside one transaction of the store: the events it
appends and the tasks and timers it creates commit together or not at all. Read it bottom up:
``mutable_state`` (a run's row and ``append``), ``workflow_tasks``, ``updates``, ``signals``,
``closing``, ``starts``, ``activities``, ``children``, ``timers``, ``schedules``, then
``commands`` (a completed workflow task's commands, each applied by one function) and
``timer_queue`` (the loop that fires what is due). docs/architecture.md draws the whole engine.
"""
