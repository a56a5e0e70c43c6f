"""What runs of Temporal's samples (``../shared/reference/samples-python``) on the engine,
and why the rest does not: the one table ``test_samples.py`` checks and README.md shows.

- ``SKIPPED``: out of scope, with the reason (a service outside the engine, several
  processes sharing work the way the sample needs, trio, nexus); never run.
- ``MISSING``: what the engine lacks for a sample test or starter that fails today, as the
  precise API (the other parts of issue 11 add them): run as ``xfail(strict=True)``, so the
  suite stays green and the change that makes one pass must move it out of this table.
- Everything else must pass.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------- the samples' own tests
# (node ids under samples-python/, as pytest names them)
TESTS: tuple[str, ...] = (
    "tests/context_propagation/workflow_test.py",
    "tests/custom_converter/workflow_test.py",
    "tests/eager_wf_start/workflow_test.py::test_eager_wf_start",
    "tests/hello/hello_activity_choice_test.py",
    "tests/hello/hello_activity_test.py::test_execute_workflow",
    "tests/hello/hello_activity_test.py::test_mock_activity",
    "tests/hello/hello_cancellation_test.py::test_cancel_workflow",
    "tests/hello/hello_change_log_level_test.py::test_workflow_with_log_capture",
    "tests/hello/hello_child_test.py::test_child_workflow",
    "tests/hello/hello_child_test.py::test_mock_child_workflow",
    "tests/hello/hello_query_test.py::test_query_workflow",
    "tests/hello/hello_signal_test.py::test_signal_workflow",
    "tests/hello/hello_standalone_activity_test.py",
    "tests/hello/hello_update_test.py::test_update_workflow",
    "tests/message_passing/introduction/test_introduction_sample.py::test_queries",
    "tests/message_passing/introduction/test_introduction_sample.py::test_set_invalid_language",
    "tests/message_passing/introduction/test_introduction_sample.py::test_set_language",
    "tests/message_passing/introduction/test_introduction_sample.py::test_set_language_that_is_only_available_via_remote_service",
    "tests/message_passing/lazy_initialization/test_lazy_initialization.py",
    "tests/message_passing/safe_message_handlers/workflow_test.py",
    "tests/message_passing/waiting_for_handlers/waiting_for_handlers_test.py::test_waiting_for_handlers[CANCELLATION-UpdateExpect.SUCCESS-WorkflowExpect.FAILURE]",
    "tests/message_passing/waiting_for_handlers/waiting_for_handlers_test.py::test_waiting_for_handlers[FAILURE-UpdateExpect.SUCCESS-WorkflowExpect.FAILURE]",
    "tests/message_passing/waiting_for_handlers/waiting_for_handlers_test.py::test_waiting_for_handlers[SUCCESS-UpdateExpect.SUCCESS-WorkflowExpect.SUCCESS]",
    "tests/message_passing/waiting_for_handlers_and_compensation/waiting_for_handlers_and_compensation_test.py::test_waiting_for_handlers_and_compensation[CANCELLATION-UpdateExpect.FAILURE-WorkflowExpect.FAILURE]",
    "tests/message_passing/waiting_for_handlers_and_compensation/waiting_for_handlers_and_compensation_test.py::test_waiting_for_handlers_and_compensation[FAILURE-UpdateExpect.FAILURE-WorkflowExpect.FAILURE]",
    "tests/message_passing/waiting_for_handlers_and_compensation/waiting_for_handlers_and_compensation_test.py::test_waiting_for_handlers_and_compensation[SUCCESS-UpdateExpect.SUCCESS-WorkflowExpect.SUCCESS]",
    "tests/polling/infrequent/workflow_test.py",
    "tests/pydantic_converter/workflow_test.py",
    "tests/sleep_for_days/workflow_test.py::test_sleep_for_days_workflow",
    "tests/updatable_timer/updatable_timer_test.py",
)


# ---------------------------------------------------------------- the samples' starters
@dataclass(frozen=True)
class Starter:
    """A sample's programme: ``main`` (a module run as ``python -m``) against the engine, with
    ``worker`` (a module) running beside it for the samples whose worker is its own process."""

    main: str
    worker: str | None = None
    args: tuple[str, ...] = ()
    worker_args: tuple[str, ...] = ()
    until: str | None = None  # a programme that runs until stopped passes once its output has this regex
    time_limit: float | None = None  # seconds, for a programme that takes long by design (default: the runner's)


STARTERS: dict[str, Starter] = {
    **{name: Starter(f"hello.{name}") for name in (
        "hello_activity", "hello_activity_async", "hello_activity_choice", "hello_activity_heartbeat",
        "hello_activity_method", "hello_activity_multiprocess", "hello_activity_retry", "hello_async_activity_completion",
        "hello_cancellation", "hello_child_workflow", "hello_continue_as_new", "hello_cron",
        "hello_exception", "hello_local_activity", "hello_mtls", "hello_parallel_activity", "hello_patch", "hello_query",
        "hello_search_attributes", "hello_signal", "hello_update",
    )},
    # Its workflow task fails for ever by design: it shows the failure logged at ERROR (the
    # record's message names the run; the error follows in its traceback, as in temporalio).
    "hello_change_log_level": Starter(
        "hello.hello_change_log_level", until=r"ERROR .*Failed[^\n]*workflow[\s\S]*RuntimeError: This error is an experiment"
    ),
    "activity_worker": Starter("activity_worker.activity_worker"),
    # 90 child workflows, each sleeping 1-10 s of real time, ten at a time: about 50 s by design.
    "batch_sliding_window": Starter("batch_sliding_window.starter", worker="batch_sliding_window.worker", time_limit=150),
    "context_propagation": Starter("context_propagation.starter", worker="context_propagation.worker"),
    "custom_converter": Starter("custom_converter.starter", worker="custom_converter.worker"),
    "dsl": Starter("dsl.starter", worker="dsl.worker", args=("dsl/workflow1.yaml",)),
    "eager_wf_start": Starter("eager_wf_start.run"),
    "encryption": Starter("encryption.starter", worker="encryption.worker"),
    "message_passing/introduction": Starter("message_passing.introduction.starter", worker="message_passing.introduction.worker"),
    "message_passing/safe_message_handlers": Starter(
        "message_passing.safe_message_handlers.starter", worker="message_passing.safe_message_handlers.worker"
    ),
    "message_passing/update_with_start": Starter(
        "message_passing.update_with_start.lazy_initialization.starter",
        worker="message_passing.update_with_start.lazy_initialization.worker",
    ),
    "message_passing/waiting_for_handlers": Starter(
        "message_passing.waiting_for_handlers.starter", worker="message_passing.waiting_for_handlers.worker"
    ),
    "message_passing/waiting_for_handlers_and_compensation": Starter(
        "message_passing.waiting_for_handlers_and_compensation.starter",
        worker="message_passing.waiting_for_handlers_and_compensation.worker",
    ),
    "patching": Starter(
        "patching.starter", worker="patching.worker", args=("--start-workflow", "patching-1"), worker_args=("--workflow", "initial")
    ),
    "polling/frequent": Starter("polling.frequent.run_frequent", worker="polling.frequent.run_worker"),
    "polling/infrequent": Starter("polling.infrequent.run_infrequent", worker="polling.infrequent.run_worker"),
    # Its activity always fails by design: the child workflow catches it, logs, sleeps and
    # tries again, continuing as new every 10 tries, for ever.
    "polling/periodic_sequence": Starter(
        "polling.periodic_sequence.run_periodic", worker="polling.periodic_sequence.run_worker",
        until=r"Activity failed, retrying in 1 seconds[\s\S]*Activity failed, retrying in 1 seconds",
    ),
    "pydantic_converter": Starter("pydantic_converter.starter", worker="pydantic_converter.worker"),
    "replay": Starter("replay.starter", worker="replay.worker"),
    "sleep_for_days": Starter("sleep_for_days.starter", worker="sleep_for_days.worker"),
    "updatable_timer": Starter("updatable_timer.starter", worker="updatable_timer.worker"),
    "worker_specific_task_queues": Starter("worker_specific_task_queues.starter", worker="worker_specific_task_queues.worker"),
}

# ---------------------------------------------------------------- out of scope (never run)
SKIPPED: dict[str, str] = {
    "tests/hello/hello_standalone_activity_test.py": (
        "imports hello_standalone_activity, which the snapshot does not hold; on a dev server the test skips "
        "itself (standalone activities are a server feature start-dev lacks)"
    ),
    "hello_mtls": "external service: connects to a Temporal server with mTLS client certificates (temporalio.service.TLSConfig)",
    "hello_activity_multiprocess": "multiprocess: runs activities in a process pool (temporalio.worker.SharedStateManager)",
    "activity_worker": "external service: serves activities for a workflow written in Go and started by a Go program",
    "dsl": "needs dacite and pyyaml, which are no dependencies of the project",
    "sleep_for_days": "runs for days of real time by design (30-day sleeps); its test covers it with time skipping",
    "polling/infrequent": "polls once a minute of real time by design (retry interval 60 s)",
    "tests/polling/infrequent/workflow_test.py": (
        "skips itself without time skipping ('Too slow to test with time-skipping disabled'), as on a dev server: the "
        "samples' env is WorkflowEnvironment.start_local()"
    ),
    "hello_cron": (
        "runs for ever by design: a cron run at each minute of real time, then `await asyncio.Future()`, printing only "
        "its first line (its workflow logs at INFO with no logging configured); tests/engine/test_cron.py covers cron"
    ),
}

# ---------------------------------------------------------------- failing today: xfail(strict=True)
# Each reason is the first thing that fails today.
MISSING: dict[str, str] = {}
