"""Printing `DataIssue` lists: grouped, capped per kind, errors first."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from dfseg.cli import render

if TYPE_CHECKING:
    from dfseg.structures import DataIssue

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}
_ORDER = {"error": 0, "warning": 1, "info": 2}


def print_issues(issues: list[DataIssue], per_kind: int = 20, show_info: bool = True) -> None:
    """Each issue as `severity file:line message (hint)`; at most `per_kind` per issue code."""
    by_code: dict[str, list[DataIssue]] = defaultdict(list)
    for issue in issues:
        if issue.severity == "info" and not show_info:
            continue
        by_code[issue.code].append(issue)
    ordered = sorted(by_code.items(), key=lambda kv: (_ORDER[kv[1][0].severity], kv[0]))
    out = render.console()
    for code, group in ordered:
        for issue in group[:per_kind]:
            style = _STYLE[issue.severity]
            hint = f"  [dim]({issue.hint})[/]" if issue.hint else ""
            out.print(
                f"[{style}]{issue.severity:7}[/] {issue.location()}: {issue.message}{hint}",
                highlight=False,
                soft_wrap=True,
            )
        if len(group) > per_kind:
            out.print(f"        ... and {len(group) - per_kind} more '{code}' (see --json)")
