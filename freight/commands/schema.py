"""`freight schema`: print the manifest's JSON Schema for editors and CI linters."""

from __future__ import annotations

import argparse
import json

from freight.commands import add


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    # No -q/-v: the schema is all this command prints, there is no progress to quiet or detail.
    p = add(
        sub,
        "schema",
        argparse.ArgumentParser(add_help=False),
        description=(
            "Print the JSON Schema of the manifest format, for editors and linters. freight reads "
            "version, release, releasever and files' mode as written (version: 1.10 stays 1.10); a "
            "standard YAML loader reads an unquoted 1.10 as the number 1.1, so the schema accepts numbers "
            "there: quote them if other tools read your manifests too."
        ),
    )
    p.set_defaults(func=_schema, verbosity=None)


def _schema(args: argparse.Namespace) -> int:
    from freight.manifest.schema import published_schema

    print(json.dumps(published_schema(), indent=2))
    return 0
