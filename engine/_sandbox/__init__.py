"""The SDK's workflow sandbox: each run gets private copies of the workflow's modules, and
workflow code that reaches for what breaks determinism fails with a message saying so.

``runner`` makes sandboxed instances, ``loader`` imports modules inside a sandbox, ``rules``
says what is restricted, ``translation`` reads code written with temporalio's decorators.
"""
