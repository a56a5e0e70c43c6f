"""Later versions of ``PatchedWorkflow``, replayed against ``patched.json`` by
``record_fixtures.py`` to pin down what Temporal's replay accepts when patch calls change.

Every class registers as workflow type ``PatchedWorkflow``; ``EXPECTED`` says which must
replay cleanly and which must fail (with the error text observed from temporalio 1.35).
``patched.json`` holds: marker my-change (deprecated=false), activity greet, marker
other-change (deprecated=true), timer.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from fixture_workflows import FixtureActivities

SHORT = timedelta(seconds=10)


async def _greet(name: str) -> str:
    return await workflow.execute_activity_method(
        FixtureActivities.greet, f"{name} (new branch)", start_to_close_timeout=SHORT
    )


@workflow.defn(name="PatchedWorkflow")
class OldCode:
    """The code before the change: no patched() call, old branch."""

    @workflow.run
    async def run(self, name: str) -> str:
        r = await workflow.execute_activity_method(
            FixtureActivities.cleanup, name, start_to_close_timeout=SHORT
        )
        workflow.deprecate_patch("other-change")
        await workflow.sleep(0.1)
        return r


@workflow.defn(name="PatchedWorkflow")
class Deprecated:
    """Step 2 of the patching process: deprecate_patch("my-change"), new branch only."""

    @workflow.run
    async def run(self, name: str) -> str:
        workflow.deprecate_patch("my-change")
        r = await _greet(name)
        workflow.deprecate_patch("other-change")
        await workflow.sleep(0.1)
        return r


@workflow.defn(name="PatchedWorkflow")
class AllRemoved:
    """Step 3 done too early: no patch calls at all."""

    @workflow.run
    async def run(self, name: str) -> str:
        r = await _greet(name)
        await workflow.sleep(0.1)
        return r


@workflow.defn(name="PatchedWorkflow")
class MyChangeRemovedOnly:
    """patched("my-change") removed without deprecating it first."""

    @workflow.run
    async def run(self, name: str) -> str:
        r = await _greet(name)
        workflow.deprecate_patch("other-change")
        await workflow.sleep(0.1)
        return r


@workflow.defn(name="PatchedWorkflow")
class OtherRemovedOnly:
    """deprecate_patch("other-change") removed: its marker is deprecated, so skippable."""

    @workflow.run
    async def run(self, name: str) -> str:
        r = await _greet(name) if workflow.patched("my-change") else ""
        await workflow.sleep(0.1)
        return r


@workflow.defn(name="PatchedWorkflow")
class PatchedLater:
    """patched("my-change") asked only after the activity: the marker is out of place."""

    @workflow.run
    async def run(self, name: str) -> str:
        r = await _greet(name)
        workflow.patched("my-change")
        workflow.deprecate_patch("other-change")
        await workflow.sleep(0.1)
        return r


@workflow.defn(name="PatchedWorkflow")
class ThirdPatch:
    """A new patched("third") the history never saw: on replay it answers False, no error."""

    @workflow.run
    async def run(self, name: str) -> str:
        r = await _greet(name) if workflow.patched("my-change") else ""
        third = workflow.patched("third")
        workflow.deprecate_patch("other-change")
        await workflow.sleep(0.1)
        return f"{r} {third}"


# class name -> None if the replay must pass, else a substring of the nondeterminism error
_NO_COMMAND = (
    "Non-deprecated patch marker encountered for change my-change,"
    " but there is no corresponding change command"
)
EXPECTED: dict[str, str | None] = {
    "OldCode": _NO_COMMAND,
    "Deprecated": None,
    "AllRemoved": _NO_COMMAND,
    "MyChangeRemovedOnly": _NO_COMMAND,
    "OtherRemovedOnly": None,
    "PatchedLater": _NO_COMMAND,
    "ThirdPatch": None,
}
