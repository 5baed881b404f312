"""The `dfseg` command: registers one module per subcommand, in workflow order."""

from __future__ import annotations

import typer

from dfseg import __version__
from dfseg.cli import (
    batching,
    bench,
    check,
    compare,
    convert,
    demo,
    errors,
    export,
    infer,
    info,
    init,
    profile,
    quantize,
    serve,
    split,
    train,
    val,
    webapp,
)
from dfseg.cli.common import flag, user_errors

app = typer.Typer(
    name="dfseg",
    help="Train, export and deploy D-FINE detectors and instance segmenters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"dfseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = flag(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Train, export and deploy D-FINE detectors and instance segmenters."""


for command in (
    init.init,
    check.check,
    split.split,
    convert.convert,
    train.train,
    val.val,
    export.export,
    infer.infer,
    bench.bench,
    errors.errors,
    compare.compare,
    batching.batching,
    quantize.quantize,
    info.info,
    profile.profile,
    serve.serve,
    webapp.app,
    demo.demo,
):
    app.command()(user_errors(command))


def main() -> None:
    """Console-script entry point."""
    from dfseg.cli import native_stderr

    native_stderr.install()  # decoder warnings to the log, not the console
    _show_library_warnings()
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C outside a command (while it starts): no traceback
        import sys

        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None


def _show_library_warnings() -> None:
    """The library logs (it never prints). The data layer's warnings (an image that broke during
    a run) are shown on stderr too; everything else the library logs goes only to train.log
    (training reports what matters on screen through its progress events)."""
    import logging
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logging.getLogger("dfseg.data").addHandler(handler)
