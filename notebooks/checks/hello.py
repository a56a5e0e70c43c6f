"""Lesson 01 (hello, workflow): greet everyone."""

from __future__ import annotations

from kernel_ext.exercises import Check, exercise

PEOPLE = [{"name": "Ada"}, {"name": "Grace", "greeting": "Bonjour"}, {"name": "Alan", "greeting": "Hi"}]
GREETINGS = ["Hello, Ada!", "Bonjour, Grace!", "Hi, Alan!"]


@exercise(
    "greet everyone",
    concept="a workflow runs one activity per step",
    hint="A workflow does not greet anyone itself: for each person, await "
    "workflow.execute_activity(compose_greeting, person, start_to_close_timeout=...) and keep its result.",
)
async def greet_everyone(c: Check) -> None:
    run = await c.run("GreetEveryone", PEOPLE, task_queue="hello", workflow_id="greet-everyone")
    c.require_completed(run)
    c.require(
        run.result != [],
        "it returned a list of greetings",
        "GreetEveryone returned []: the loop over people is still to write",
    )
    scheduled = run.activity_types()
    c.expect(
        run.result == GREETINGS,
        f"it returned the three greetings in order: {GREETINGS}",
        f"it returned {run.result!r}, expected {GREETINGS!r}",
        hint="Keep each activity's result, in the order of people, and return the list.",
    )
    c.expect(
        scheduled == ["compose_greeting"] * 3,
        "the history has one compose_greeting activity per person (3 ActivityTaskScheduled events)",
        f"the history has {len(scheduled)} ActivityTaskScheduled event(s), expected 3: one per person",
        hint="Calling compose_greeting(...) directly runs it inside the workflow, where nothing records or "
        "retries it: ask the engine with workflow.execute_activity, once per person.",
    )
