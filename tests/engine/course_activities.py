"""Activities written as in Temporal's Python courses: methods of a class holding a session."""

from __future__ import annotations

from dataclasses import dataclass

from engine import activity


@dataclass
class TranslationInput:
    term: str
    language_code: str


@dataclass
class TranslationOutput:
    translation: str


class FakeSession:
    """Stands in for the course's aiohttp.ClientSession: answers from a table, counts calls."""

    def __init__(self, table: dict[tuple[str, str], str]) -> None:
        self.table = table
        self.calls: list[tuple[str, str]] = []

    async def get(self, term: str, lang: str) -> str:
        self.calls.append((term, lang))
        if (term, lang) not in self.table:
            raise ValueError(f"no translation of {term!r} into {lang!r}")
        return self.table[(term, lang)]


class TranslationActivities:
    def __init__(self, session: FakeSession) -> None:
        self.session = session

    @activity.defn
    async def translate_term(self, input: TranslationInput) -> TranslationOutput:
        activity.logger.info(f"Translating {input.term!r}")
        content = await self.session.get(input.term, input.language_code)
        activity.logger.debug("Translation successful")
        return TranslationOutput(content)

    @activity.defn(name="shout")
    def shout(self, text: str) -> str:
        return text.upper() + "!" * len(self.session.calls)
