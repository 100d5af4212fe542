"""`freight schema`: print the manifest's JSON Schema for editors and CI linters."""

from __future__ import annotations

import argparse
import json

from freight.schema import MANIFEST_SCHEMA


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "schema",
        parents=[common],
        help="print the manifest JSON Schema",
        description="Print the JSON Schema of the manifest format, for editors and linters.",
    )
    p.set_defaults(func=_schema)


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(MANIFEST_SCHEMA, indent=2))
    return 0
