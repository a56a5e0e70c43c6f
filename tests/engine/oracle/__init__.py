"""The Temporal oracle: the same workflows written for our engine (``ours``) and for
temporalio (``theirs``), so histories recorded by the engine can be replayed by
temporalio's own ``Replayer`` (``replay_check``)."""
