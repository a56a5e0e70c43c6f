"""A workflow written as in Temporal's Python courses (temporalio-style imports of our engine)."""

from __future__ import annotations

from datetime import timedelta

from engine import workflow

with workflow.unsafe.imports_passed_through():
    from tests.engine.course_activities import TranslationActivities, TranslationInput


@workflow.defn
class TranslationWorkflow:
    @workflow.run
    async def run(self, name: str, language_code: str) -> str:
        workflow.logger.info("translating")
        hello = await workflow.execute_activity_method(
            TranslationActivities.translate_term,
            TranslationInput("hello", language_code),
            start_to_close_timeout=timedelta(seconds=5),
        )
        handle = workflow.start_activity_method(
            TranslationActivities.shout, hello.translation, start_to_close_timeout=timedelta(seconds=5)
        )
        return f"{await handle}, {name}"
