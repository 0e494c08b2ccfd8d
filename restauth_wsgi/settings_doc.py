"""The settings tables of the docs, written from the settings' declarations.

    python -m restauth_wsgi.settings_doc            # rewrite the tables
    python -m restauth_wsgi.settings_doc --check    # change nothing; exit 1 if one differs

docs/settings.md has a table for each group of
:class:`~restauth_wsgi.settings.Settings` (``TokenSettings``...), and
docs/providers.md one for
:class:`~restauth_wsgi.providers.settings.ProviderSettings`, each between
``<!-- settings: NAME ... -->`` and ``<!-- end settings -->``. Only what is
between those lines is written: the prose around the tables is the docs'
own. tests/test_settings_declaration.py fails when a table differs from
what this writes, so a row is changed where its setting is declared.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from restauth_wsgi.config.declaration import declared, default_of
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.settings import Settings, env_name

#: The docs that have settings tables, relative to the checkout.
DOCS = ("docs/settings.md", "docs/providers.md")

_TABLE = re.compile(r"(<!-- settings: (\w+)\b[^\n]*-->\n)(.*?)(<!-- end settings -->)", re.DOTALL)


def tabulated() -> dict[str, type]:
    """The classes whose settings the docs tabulate, by name: each group of
    :class:`Settings`, and :class:`ProviderSettings`."""
    return {group.__name__: group for group in (*Settings.__bases__, ProviderSettings)}


def table(of: type) -> str:
    """The Markdown table of the settings ``of`` declares, in declaration order."""
    if of is ProviderSettings:
        return _provider_table()
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, declaration in declared(of):
        default = declaration.default_doc
        if default is None:
            # As `restauth config` shows it when the variable is not set.
            shown = declaration.kind.show(default_of(of, name))
            default = f"`{shown}`" if shown else "(none)"
        rows.append(f"| `{env_name(name)}` | {default} | {declaration.doc} |")
    return "\n".join(rows) + "\n\n"


def _provider_table() -> str:
    # A provider's defaults depend on its preset, so the docs say them in
    # words; settings declared with the same doc share its row.
    shared: list[tuple[list[str], str]] = []
    for name, declaration in declared(ProviderSettings):
        if shared and shared[-1][1] == declaration.doc:
            shared[-1][0].append(name)
        else:
            shared.append(([name], declaration.doc))
    rows = ["| setting | meaning |", "|---|---|"]
    rows += [f"| {', '.join(f'`{n.upper()}`' for n in names)} | {doc} |" for names, doc in shared]
    return "\n".join(rows) + "\n\n"


def rewrite(text: str) -> str:
    """``text`` with every marked table written afresh from the declarations.

    :raises ValueError: for a marker that names no group of settings.
    """
    known = tabulated()

    def fresh(marked: re.Match[str]) -> str:
        name = marked.group(2)
        if name not in known:
            raise ValueError(f"<!-- settings: {name} -->: no such group ({', '.join(known)})")
        return marked.group(1) + table(known[name]) + marked.group(4)

    return _TABLE.sub(fresh, text)


def tables_in(text: str) -> list[str]:
    """The names of the tables marked in ``text``, in order."""
    return [marked.group(2) for marked in _TABLE.finditer(text)]


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or, with ``--check``, compare) the tables of :data:`DOCS`."""
    parser = argparse.ArgumentParser(
        prog="python -m restauth_wsgi.settings_doc",
        description="Write the settings tables of the docs from the settings' declarations.",
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a table differs"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the checkout the docs are in (default: this package's)",
    )
    args = parser.parse_args(argv)
    stale = 0
    for doc in DOCS:
        path = args.root / doc
        text = path.read_text(encoding="utf-8")
        fresh = rewrite(text)
        if fresh != text:
            stale += 1
            if args.check:
                print(f"{doc}: a settings table differs from the declarations")
            else:
                path.write_text(fresh, encoding="utf-8")
                print(f"{doc}: rewritten")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
