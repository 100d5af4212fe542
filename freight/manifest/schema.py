"""The manifest's JSON Schema (format version 1), published by `freight schema`.

The schema is the single statement of what a manifest may say: the loader
validates against it, editors can check manifests with it, and each property's
`description` doubles as the "expected …" half of an error message, so a
message and the documentation never drift apart.
"""

from __future__ import annotations

from typing import Any

from freight.model import ports

NAME_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"
# RPM's own rules for version and release: no '-', nothing a spec would expand.
EVR_PART_RE = r"^[A-Za-z0-9][A-Za-z0-9._+~^]{0,63}$"
REPO_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
# Package specs as dnf takes them: names, provides like python3dist(x), file paths.
PACKAGE_RE = r"^[A-Za-z0-9_/][A-Za-z0-9._+/:()-]{0,199}$"
PACKAGE_GLOB_RE = r"^[A-Za-z0-9_/*?\[][A-Za-z0-9._+/:()*?\[\]-]{0,199}$"
ABS_PATH_RE = r"^(?!.*/\.\.?(/|$))(?!.*//)/[A-Za-z0-9._+@=,:~/-]*$"
ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
USER_RE = r"^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})$"
MODE_RE = r"^0?[0-7]{3,4}$"
MEMORY_RE = r"^[0-9]+[KMGT]?$"
URL_RE = r"^(https?|ftp|file):[^\s%]*$|^[^\s%:]+$"

SINGLE_LINE = r"^[^\n\r%]*$"


def _str(description: str, pattern: str | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "description": description, **extra}
    if pattern:
        schema["pattern"] = pattern
    return schema


def _list(description: str, items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": items, **extra}


def _bool(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description}


RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "how the container runs on a host",
    "additionalProperties": False,
    "properties": {
        "command": _list(
            "the command to run as PID 1, as a list of arguments, e.g. ['httpd', '-f']",
            _str("one argument of the command, on a single line", r"^[^\n\r]*$"),
            minItems=1,
        ),
        "boot": _bool("true to boot an init system inside the container instead of running a command"),
        "idle": _bool(
            "true to run no command: a minimal init from the host (catatonit) only reaps, "
            "and processes are started in the machine later with 'freight exec'"
        ),
        "environment": {
            "type": "object",
            "description": "environment variables for the command, as NAME: value",
            "propertyNames": {
                "pattern": ENV_NAME_RE,
                "description": "an environment variable name: letters, digits and '_', not starting with a digit",
            },
            "additionalProperties": {
                "type": ["string", "integer"],
                "description": "a value on a single line",
                "pattern": r"^[^\n\r]*$",
            },
        },
        "working_directory": _str("an absolute path inside the container", ABS_PATH_RE),
        "user": _str("a user name or numeric uid known inside the container", USER_RE),
        "network": _str(
            "'bridge' (the host's default freight network; the default), 'bridge:NAME' (a network host.conf names), "
            "'host' (share the host's network), 'private' (no network), 'veth' or 'zone:NAME'",
            r"^(bridge|bridge:[a-z][a-z0-9-]{0,9}|host|private|veth|zone:[a-z0-9][a-z0-9-]{0,11})$",
        ),
        "ports": _list(
            "ports to publish from the host: 'tcp:8080:80' (nspawn's form), '8080:80' or '127.0.0.1:8443:443/tcp' (docker's)",
            {"type": ["string", "integer"], "description": "a port such as 8080, 'tcp:8080:80' or '127.0.0.1:8443:443/tcp'", "pattern": ports.PATTERN},
        ),
        "state": _list(
            "absolute paths inside the container whose contents persist across upgrades",
            _str("an absolute path inside the container", ABS_PATH_RE),
        ),
        "read_only": _bool("true to run with a read-only root filesystem"),
        "private_users": {
            "description": "user namespacing, as systemd-nspawn's PrivateUsers= takes it: true, 'yes' or 'pick' "
            "(the default), false or 'no', or 'identity'",
            "anyOf": [{"type": "boolean"}, {"enum": ["pick", "yes", "no", "identity"]}],
        },
        "limits": {
            "type": "object",
            "description": "resource limits",
            "additionalProperties": False,
            "properties": {
                "memory": _str("a size such as 512M or 2G", MEMORY_RE),
                "cpu_weight": {"type": "integer", "minimum": 1, "maximum": 10000, "description": "a CPU weight from 1 to 10000"},
                "tasks": {"type": "integer", "minimum": 1, "description": "the maximum number of tasks, at least 1"},
                "cpu_quota": _str("a share of one CPU such as 50% or 150%", r"^[1-9][0-9]*%$"),
                "io_weight": {"type": "integer", "minimum": 1, "maximum": 10000, "description": "an I/O weight from 1 to 10000"},
            },
        },
        "after": _list(
            "names of containers this one starts after",
            _str("a container name", NAME_RE),
        ),
        "autostart": _bool("true to enable and start the container when its package is installed"),
    },
}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://freight.invalid/schema/manifest-1.json",
    "title": "freight container manifest",
    "description": "A container built by `freight build` into the RPM container-NAME.",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "version", "summary", "license"],
    "allOf": [
        # A container needs packages from repositories; a derivative may consist of files only.
        {"if": {"not": {"required": ["base"]}}, "then": {"required": ["repos", "packages"]}},
        {"if": {"required": ["packages"]}, "then": {"required": ["repos"]}},
        {"if": {"required": ["base_version"]}, "then": {"required": ["base"]}},
    ],
    "properties": {
        "format": {"const": 1, "description": "the manifest format version, 1"},
        "name": _str(
            "a container name: lower-case letters, digits and '-', starting with a letter or digit, at most 63 characters",
            NAME_RE,
        ),
        "version": _str("an RPM version such as 1.0 or 2.4.1 (letters, digits and . _ + ~ ^; no '-')", EVR_PART_RE),
        "release": _str("an RPM release such as 1 or 3.beta (letters, digits and . _ + ~ ^; no '-')", EVR_PART_RE),
        "summary": _str("a one-line summary without '%'", SINGLE_LINE, minLength=1, maxLength=200),
        "description": _str("a description without '%'", r"^[^%]*$"),
        "license": _str("an SPDX license expression such as MIT or GPL-2.0-or-later", SINGLE_LINE, minLength=1),
        "url": _str("an http(s) URL", r"^https?://[^\s%]+$"),
        "vendor": _str("the organisation that distributes the container, on one line without '%'", SINGLE_LINE, minLength=1),
        "packager": _str("who builds the container, such as 'Jane Doe <jane@example.com>', on one line without '%'", SINGLE_LINE, minLength=1),
        "releasever": _str("the distribution release dnf substitutes for $releasever, such as 39", r"^[A-Za-z0-9._-]{1,32}$"),
        "arch": _str("an RPM architecture such as x86_64 or aarch64", r"^[a-z0-9_]{1,20}$"),
        "repos": _list(
            "the repositories dnf installs from, each with a name and a baseurl",
            {
                "type": "object",
                "description": "a repository",
                "additionalProperties": False,
                "required": ["name", "baseurl"],
                "properties": {
                    "name": _str("a repository id: letters, digits, '.', '_' and '-'", REPO_ID_RE),
                    "baseurl": _str(
                        "a URL (http, https, ftp, file) or a path relative to the manifest, e.g. file:repo", URL_RE
                    ),
                    "gpgkey": _str("a key URL or a path relative to the manifest", URL_RE),
                    "gpgcheck": _bool("whether packages from this repository must be signed (default: true when a gpgkey is given)"),
                },
            },
            minItems=1,
        ),
        "packages": _list(
            "the packages to install, by name or provide",
            _str("a package name such as httpd or python3dist(flask)", PACKAGE_RE),
            minItems=1,
        ),
        "exclude": _list(
            "packages dnf must not install (globs allowed)",
            _str("a package name or glob such as *-doc", PACKAGE_GLOB_RE),
        ),
        "exclude_paths": _list(
            "paths left out of the container once its packages are installed: globs matched against the whole "
            "path, '*' crossing '/'; a folder that matches goes with everything in it",
            _str("an absolute path or glob such as /usr/share/doc/*", r"^/[^\n\r]{0,4095}$"),
        ),
        "install_weak_deps": _bool("whether to install weak dependencies (Recommends), default false"),
        "files": _list(
            "extra files copied into the container",
            {
                "type": "object",
                "description": "a file to copy",
                "additionalProperties": False,
                "required": ["src", "dest"],
                "properties": {
                    "src": _str("a file or directory, relative to the manifest", r"^[^\n\r]+$"),
                    "dest": _str("an absolute path inside the container", ABS_PATH_RE),
                    "mode": _str("an octal mode such as 0644", MODE_RE),
                },
            },
        ),
        "run": RUN_SCHEMA,
        "base": _str(
            "the name of the container this one derives from: its files are laid over that container's root",
            NAME_RE,
        ),
        "base_version": _str(
            "a version constraint on the base container such as '>= 1.0' or '= 1.0-1'",
            r"^(<|<=|=|>=|>) ?[A-Za-z0-9][A-Za-z0-9._+~^:-]{0,127}$",
        ),
    },
}

# Keys whose YAML scalars are kept as the text written: `version: 1.10` must not
# become the float 1.1, nor `mode: 0644` the integer 420.
VERBATIM_KEYS = frozenset({"version", "release", "releasever", "mode"})


def published_schema() -> dict[str, Any]:
    """The schema `freight schema` prints: what editors and linters check a manifest with.

    freight reads VERBATIM_KEYS as written, so `version: 1.10` builds 1.10; a
    standard YAML loader hands a linter the number 1.1 there. The published schema
    accepts a number at those keys, so that a manifest freight builds is not
    refused by a linter (the internal schema sees only the verbatim strings)."""
    import copy

    schema = copy.deepcopy(MANIFEST_SCHEMA)
    files = schema["properties"]["files"]["items"]["properties"]
    for props in (schema["properties"], files):
        for key in VERBATIM_KEYS & props.keys():
            sub = props[key]
            number = "integer" if key == "mode" else "number"
            props[key] = {
                "description": sub["description"] + f"; freight reads an unquoted {number} as written",
                "anyOf": [{k: v for k, v in sub.items() if k != "description"}, {"type": number}],
            }
    return schema
