"""The course's exercise checks, one module per lesson (see ``kernel_ext.exercises``).

A lesson's check cell imports its exercise and runs it: ``%check greet_everyone``. Each
check starts runs of the learner's code and looks at what happened (history, attempts,
replay, ``%explore``); none reads the learner's source.
"""
