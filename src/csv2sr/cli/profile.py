"""``csv2sr profile list|show|check``, and the ``--profile`` option every command shares.

A profile is a built-in name (``csv2sr profile list``) or a TOML file.  A broken one is a
usage error (exit 2) printed on one line: the file, the key and what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from csv2sr.cli.app import app
from csv2sr.cli.common import EXIT_OK, EXIT_USAGE, err, out

__all__ = ["ProfileOption", "load_or_exit"]

ProfileOption = Annotated[
    str,
    typer.Option(
        "--profile", "-p", metavar="NAME|PATH.toml",
        help="The table's profile: a built-in name (csv2sr profile list) or a TOML file "
        "(docs/profiles.md).",
    ),
]

profile_app = typer.Typer(
    name="profile", no_args_is_help=True, add_completion=False,
    help="List, show and check profiles (what each column of a table means).",
)
app.add_typer(profile_app)


def load_or_exit(name: str):  # type: ignore[no-untyped-def]
    """The loaded profile, or exit 2 with the profile error on one line."""
    from csv2sr.mapping.load import ProfileError, load_profile  # noqa: PLC0415

    try:
        return load_profile(name)
    except ProfileError as exc:
        err.print(f"[red]profile error:[/red] {escape(str(exc))}", highlight=False,
                  soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None


@profile_app.command("list")
def list_command() -> None:
    """List the built-in profiles with their titles."""
    from csv2sr.mapping.load import builtin_profiles  # noqa: PLC0415

    for name in builtin_profiles():
        spec = load_or_exit(name)
        out.print(f"{name}\t{escape(spec.title)}", highlight=False)
    raise typer.Exit(EXIT_OK)


@profile_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(metavar="NAME|PATH.toml", help="The profile.")],
) -> None:
    """Print a profile's TOML text (a built-in one is a starting point for your own)."""
    spec = load_or_exit(name)
    out.print(escape(spec.text), end="", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_OK)


@profile_app.command("check")
def check_command(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="The profile (TOML).")],
) -> None:
    """Check a profile: TOML, the schema, and its meaning (columns, codes, geometry).

    Exit status: 0 the profile can be used; 2 it cannot (one line names the file, the
    key and what is wrong).
    """
    spec = load_or_exit(str(path) if path.suffix == ".toml" or path.parent != Path()
                        else f"./{path}")
    out.print(f"{escape(str(path))}: profile {spec.name!r} is valid: {len(spec.columns)} "
              f"columns, {len(spec.groups)} group(s) per row, one SR per "
              f"{spec.document.per}"
              + ("; each row's image is resolved through the source images (convert "
                 "--images DIR or --images-url URL)" if spec.identity.resolved else ""),
              highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_OK)
