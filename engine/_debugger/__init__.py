"""The replay debugger's machinery (public names in ``engine.replay``).

``trace`` records a replay step by step (the runtime's event hook and a ``sys.settrace``
function scoped to the workflow's files); ``snapshot`` turns values into bounded text;
``navigation`` is a position in a recorded trace, with moves and breakpoints.
"""
