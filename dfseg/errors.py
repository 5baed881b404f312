"""The base of every error caused by user input or the environment (not by a bug).

The CLI shows a `DfsegError`'s message without a traceback and exits with code 2. Library layers
raise subclasses whose message names the file (and line), what is wrong and how to fix it.
"""

from __future__ import annotations


class DfsegError(Exception):
    """A problem the user can fix: bad input, a missing file or optional dependency.

    `exit_code` is what the CLI exits with after showing the message (2: bad input).
    """

    exit_code = 2


class MissingDependencyError(DfsegError, ImportError):
    """An optional backend is not installed; the message names the extra to install."""


def missing_dependency(package: str, extra: str, purpose: str) -> MissingDependencyError:
    """The error to raise when `import package` fails inside a lazily imported backend."""
    return MissingDependencyError(
        f"{purpose} needs the '{package}' package, which is not installed. "
        f'Install it with: pip install "dfseg[{extra}]"'
    )
