"""`freight schema`: print the manifest's JSON Schema for editors and CI linters."""

from __future__ import annotations

import argparse
import json

from freight.commands import add


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "schema",
        common,
        description="Print the JSON Schema of the manifest format, for editors and linters.",
    )
    p.set_defaults(func=_schema)


def _schema(args: argparse.Namespace) -> int:
    from freight.manifest.schema import MANIFEST_SCHEMA

    print(json.dumps(MANIFEST_SCHEMA, indent=2))
    return 0
