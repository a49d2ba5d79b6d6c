"""The `learnagg` command: Typer app assembly and one-line error handling."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.exc import SQLAlchemyError

from learnagg import __version__, logs
from learnagg.entrypoints.cli import (
    archive,
    bench,
    bus,
    demo,
    exhaust,
    imports,
    inspect,
    load,
    migrate,
    serve,
    settings_table,
    stream,
)
from learnagg.errors import LearnaggError, first_line
from learnagg.settings import Settings

app = typer.Typer(
    name="learnagg",
    help="Learner activity and score aggregation: stream jobs, store, reports.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
stream.register(app)
app.add_typer(load.app, name="load")
app.add_typer(inspect.app, name="inspect")
app.add_typer(bench.app, name="bench")
app.add_typer(bus.app, name="bus")
app.add_typer(archive.app, name="archive")
app.add_typer(migrate.app, name="migrate")
app.add_typer(exhaust.app, name="exhaust")
app.add_typer(exhaust.report_app, name="report")
imports.register(app)
demo.register(app)
serve.register(app)
settings_table.register(app)


def _print_version(value: bool) -> None:
    if value:
        print(f"learnagg {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Learner activity and score aggregation: stream jobs, store, reports."""


def _fail(message: str, code: int = 1) -> int:
    print(f"learnagg: error: {message}", file=sys.stderr)
    return code


def _typer_error(exc: typer.TyperException) -> int:
    """Print a Typer usage or parameter error as one line, or the help a group without arguments asks for.

    Typer (>= 0.29) raises its own copy of Click's exceptions, all derived from the public ``TyperException``; the
    ``click`` package's classes would not catch them. Usage errors carry the command's context (``ctx``).
    """
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # not exported: Typer's own rich_utils checks the name too
        help_text = exc.format_message()  # the help; empty when rich has printed it already
        if help_text:
            print(help_text)
        return 0
    hint = f" (see 'learnagg {ctx.command_path.partition(' ')[2]} --help')" if ctx else ""
    return _fail(exc.format_message().replace("\n", " ") + hint.replace("  ", " "), exc.exit_code)


def _internal_error(exc: Exception) -> int:
    """A bug: one line, or the traceback when LEARNAGG_DEBUG is set."""
    if os.environ.get("LEARNAGG_DEBUG"):
        raise exc
    return _fail(f"internal error: {type(exc).__name__}: {first_line(exc)} (set LEARNAGG_DEBUG=1 for details)")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors print one line on stderr and give a non-zero exit, never a traceback."""
    logs.configure_from_settings()  # once, for every command: log.format, log.level
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="learnagg", standalone_mode=False)
    except typer.TyperException as exc:
        return _typer_error(exc)
    except typer.Abort:
        return _fail("aborted", 130)
    except LearnaggError as exc:
        return _fail(str(exc))
    except SQLAlchemyError as exc:
        if os.environ.get("LEARNAGG_DEBUG"):
            raise
        return _fail(f"database error: {first_line(exc)}")
    except ValidationError as exc:
        if exc.title != Settings.__name__:  # another model: a bug, not a setting
            return _internal_error(exc)
        return _fail(settings_table.settings_error(exc))
    except SettingsError as exc:  # a value the settings source cannot parse, such as a list that is not JSON
        return _fail(f'invalid settings: {first_line(exc)} (list settings take JSON: ["a", "b"])')
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # a bug: still one line unless debugging
        if type(exc).__module__.startswith("redis.") and not os.environ.get("LEARNAGG_DEBUG"):
            return _fail(f"Redis unavailable: {first_line(exc)}")  # the bus (LEARNAGG_BUS_URL) did not answer
        return _internal_error(exc)
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
