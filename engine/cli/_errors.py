"""How ``dlab`` fails: its exit codes, and the error a user can fix (one line on stderr)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the workflow failed, a run was not found, the engine refused
EXIT_USAGE = 2  # wrong flags (argparse)
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A problem the user fixes: printed as one ``Error: ...`` line on stderr, exit code 1."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code
