"""Write the settings reference table (docs/reference/settings.md) from the settings model, or check it.

    .venv/bin/python scripts/settings-table.py          # rewrite the table between the markers of the page
    .venv/bin/python scripts/settings-table.py --check  # exit 1 when the page and the settings model differ

The table lives between ``<!-- settings-table:start … -->`` and ``<!-- settings-table:end -->``; each row comes from
a field of ``src/learnagg/settings.py`` and its ``Field(description=...)``. ``learnagg settings`` prints the same table;
``scripts/reference-pages.py`` rewrites it together with the other generated reference pages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from learnagg.entrypoints.cli.settings_table import markdown_table, replace_table
from learnagg.errors import LearnaggError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when the table is out of date")
    parser.add_argument(
        "page", nargs="?", default=str(Path(__file__).resolve().parent.parent / "docs" / "reference" / "settings.md")
    )
    args = parser.parse_args()
    readme = Path(args.page)
    try:
        text = readme.read_text(encoding="utf-8")
        updated = replace_table(text, markdown_table())
    except (OSError, LearnaggError) as exc:
        print(f"settings-table: error: {exc}", file=sys.stderr)
        return 1
    if updated == text:
        print(f"{readme}: the settings table is up to date")
        return 0
    if args.check:
        print(f"{readme}: the settings table is out of date: run python scripts/settings-table.py", file=sys.stderr)
        return 1
    readme.write_text(updated, encoding="utf-8")
    print(f"{readme}: settings table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
