"""Loading and validating manifests, with errors that point at the line.

A manifest is YAML checked against `freight.manifest.schema`. Errors are collected
rather than raised one by one, so a user fixing a manifest sees every problem
at once, each as `FILE:LINE: KEY: what was expected`, like a compiler.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import yaml

from freight.common.errors import UsageError
from freight.manifest.schema import MANIFEST_SCHEMA, VERBATIM_KEYS
from freight.model import ports as port_specs
from freight.model.runsettings import BUILT_NETWORK

KeyPath = tuple[str | int, ...]


class ManifestError(UsageError):
    """One or more problems in a manifest; the message lists all of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Repo:
    name: str
    baseurl: str  # absolute URL, relative paths resolved against the manifest
    gpgkey: str | None
    gpgcheck: bool


@dataclass(frozen=True)
class FileCopy:
    src: Path
    dest: str
    mode: int | None


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: `data` is what was written, with defaults filled in."""

    path: Path
    data: dict[str, Any]
    repos: tuple[Repo, ...] = field(repr=False)
    files: tuple[FileCopy, ...] = field(repr=False)

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def package_name(self) -> str:
        return f"container-{self.name}"

    @property
    def version(self) -> str:
        return self.data["version"]

    @property
    def release(self) -> str:
        return self.data["release"]

    @property
    def packages(self) -> list[str]:
        return self.data.get("packages", [])

    @property
    def base(self) -> str | None:
        """The container this one derives from, for a derivative."""
        return self.data.get("base")

    @property
    def base_requirement(self) -> str | None:
        """The RPM dependency on the base container, e.g. `container-webapp >= 1.0`."""
        if self.base is None:
            return None
        constraint = self.data.get("base_version")
        return f"container-{self.base}" + (f" {constraint}" if constraint else "")

    @property
    def run(self) -> dict[str, Any]:
        return self.data.get("run", {})

    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(".lock")

    def resolution_inputs(self) -> dict[str, Any]:
        """What decides the resolved package set; a lock records it to notice drift.

        A layer's lock also depends on which base it is built on."""
        inputs = {
            "repos": [{"name": r["name"], "baseurl": r["baseurl"]} for r in self.data["repos"]],
            "packages": sorted(self.data["packages"]),
            "exclude": sorted(self.data.get("exclude", [])),
            "install_weak_deps": self.data["install_weak_deps"],
            "releasever": self.data.get("releasever"),
            "arch": self.data.get("arch"),
        }
        if self.data.get("exclude_paths"):  # only when given: older locks stay valid
            inputs["exclude_paths"] = sorted(self.data["exclude_paths"])
        if self.base is not None:
            inputs["base"] = self.base
            inputs["base_version"] = self.data.get("base_version")
        return inputs

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True) + "\n"


def load(path: str | Path, relative_to: Path | None = None) -> Manifest:
    """Read, validate and normalize a manifest; raise ManifestError listing every problem.

    Relative paths in it (files' sources, local repositories) are taken from the manifest's
    folder, or from RELATIVE_TO: a manifest a container carries is checked where its sources are."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read manifest: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ManifestError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None

    data, lines = _parse_yaml(path, text)
    base = (relative_to or path.resolve().parent).resolve()
    problems = _Checker(path, lines, base).check(data)
    if problems:
        raise ManifestError(problems)
    return _normalize(path.resolve(), data, base)


def _parse_yaml(path: Path, text: str) -> tuple[Any, dict[KeyPath, int]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ManifestError([f"{path}:1: the manifest is empty"])
        lines: dict[KeyPath, int] = {(): node.start_mark.line + 1}
        return _construct(path, loader, node, (), lines), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ManifestError([f"{path}:{line}: invalid YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ManifestError([f"{path}: invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()


def _construct(path: Path, loader: yaml.SafeLoader, node: yaml.Node, at: KeyPath, lines: dict[KeyPath, int]) -> Any:
    """Build Python values from YAML nodes, remembering the line of every key."""
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            key = knode.value if isinstance(knode, yaml.ScalarNode) else None
            if not isinstance(key, str) or knode.tag != "tag:yaml.org,2002:str":
                raise ManifestError([f"{path}:{knode.start_mark.line + 1}: {_dotted(at) or 'manifest'}: keys must be plain words"])
            if key in out:
                raise ManifestError([f"{path}:{knode.start_mark.line + 1}: {_dotted(at + (key,))}: key given twice"])
            lines[at + (key,)] = knode.start_mark.line + 1
            out[key] = _construct(path, loader, vnode, at + (key,), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[at + (i,)] = item.start_mark.line + 1
            items.append(_construct(path, loader, item, at + (i,), lines))
        return items
    if at and at[-1] in VERBATIM_KEYS and node.tag != "tag:yaml.org,2002:null":
        return node.value
    return loader.construct_object(node, deep=True)


def _dotted(at: KeyPath) -> str:
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _schema_at(at: KeyPath) -> dict[str, Any] | None:
    schema: dict[str, Any] | None = MANIFEST_SCHEMA
    for part in at:
        if schema is None:
            return None
        if isinstance(part, int):
            schema = schema.get("items")
        else:
            props = schema.get("properties")
            schema = props.get(part) if props else schema.get("additionalProperties") or None
    return schema


class _Checker:
    """Turns schema violations and semantic problems into `FILE:LINE: KEY: …` lines."""

    def __init__(self, path: Path, lines: dict[KeyPath, int], base: Path) -> None:
        self.path = path
        self.base = base  # where relative paths are taken from
        self.lines = lines
        self.problems: list[tuple[int, str]] = []
        self.suggested: set[tuple[KeyPath, str]] = set()

    def add(self, at: KeyPath, message: str) -> None:
        line = self._line(at)
        where = _dotted(at)
        self.problems.append((line, f"{self.path}:{line}: {where + ': ' if where else ''}{message}"))

    def _line(self, at: KeyPath) -> int:
        while at not in self.lines and at:
            at = at[:-1]
        return self.lines.get(at, 1)

    def check(self, data: Any) -> list[str]:
        if not isinstance(data, dict):
            self.add((), "a manifest is a mapping of keys such as name, version and packages")
            return self._sorted()
        self._unknown_keys(data, ())
        validator = jsonschema.Draft202012Validator(MANIFEST_SCHEMA)
        for error in validator.iter_errors(data):
            if error.validator == "additionalProperties":
                continue  # reported by _unknown_keys with a suggestion
            self._schema_error(error)
        if not self.problems:
            self._semantics(data)
        return self._sorted()

    def _sorted(self) -> list[str]:
        return [msg for _, msg in sorted(self.problems, key=lambda p: p[0])]

    def _unknown_keys(self, value: Any, at: KeyPath) -> None:
        schema = _schema_at(at)
        if schema is None:
            return
        if isinstance(value, dict):
            props = schema.get("properties")
            for key, sub in value.items():
                if props is not None and schema.get("additionalProperties") is False and key not in props:
                    close = difflib.get_close_matches(key, list(props), n=1, cutoff=0.6)
                    hint = f" (did you mean '{close[0]}'?)" if close else f"; expected one of: {', '.join(props)}"
                    if close:
                        self.suggested.add((at, close[0]))
                    self.add(at + (key,), f"unknown key '{key}'{hint}")
                else:
                    self._unknown_keys(sub, at + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._unknown_keys(item, at + (i,))

    def _schema_error(self, error: jsonschema.ValidationError) -> None:
        at: KeyPath = tuple(error.absolute_path)
        if "propertyNames" in error.schema_path and at + (error.instance,) in self.lines:
            at = at + (error.instance,)  # point at the offending key itself
        schema = error.schema if isinstance(error.schema, dict) else {}
        expected = schema.get("description", "")
        got = _show(error.instance)
        if error.validator == "required":
            missing = error.message.split("'")[1]
            if (at, missing) in self.suggested:
                return  # the misspelt key was already reported with this suggestion
            sub = ((_schema_at(at) or {}).get("properties") or {}).get(missing, {})
            what = sub.get("description")
            self.add(at, f"missing required key '{missing}'" + (f" ({what})" if what else ""))
        elif error.validator == "type":
            kind = " or ".join(_TYPE_WORDS.get(t, t) for t in _as_list(error.validator_value))
            self.add(at, f"expected {kind}" + (f" ({expected})" if expected else "") + f", got {got}")
        elif error.validator in ("pattern", "minLength", "maxLength", "enum", "const", "anyOf", "minimum", "maximum"):
            self.add(at, f"expected {expected or error.message}, got {got}")
        elif error.validator == "minItems":
            self.add(at, f"must not be empty ({expected})")
        else:
            self.add(at, error.message)

    def _semantics(self, data: dict[str, Any]) -> None:
        if data.get("base") == data["name"]:
            self.add(("base",), "a container cannot derive from itself")
        names = [r["name"] for r in data.get("repos", [])]
        for i, name in enumerate(names):
            if name in names[:i]:
                self.add(("repos", i, "name"), f"repository '{name}' is listed twice")
        for i, spec in enumerate(data.get("files", [])):
            src = _resolve_path(self.base, spec["src"])
            if not src.exists():
                self.add(("files", i, "src"), f"no such file: {src}")
        run = data.get("run", {})
        if run.get("boot") and run.get("command"):
            self.add(("run", "boot"), "'boot: true' and 'command' exclude each other: boot runs the container's init")
        if run.get("idle") and (run.get("command") or run.get("boot")):
            self.add(("run", "idle"), "'idle: true' runs no command and boots nothing: drop 'command' and 'boot'")
        network = run.get("network", None if data.get("base") else BUILT_NETWORK)
        if network in ("host", "private") and run.get("ports"):
            self.add(("run", "ports"), "publishing ports needs a network of its own: set network to 'bridge', 'veth' or 'zone:NAME'")
        try:
            published = port_specs.parse_all(run.get("ports", []))
        except UsageError as exc:
            self.add(("run", "ports"), str(exc))
        else:
            if network is not None and not network.startswith("bridge") and any(p.host_ip for p in published):
                self.add(("run", "ports"), "a host address in a port ('127.0.0.1:8080:80') needs network 'bridge': nspawn's Port= has none")


_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "number": "a number",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


def _resolve_path(base: Path, value: str) -> Path:
    return (base / value).resolve()


def _resolve_url(base: Path, value: str) -> str:
    """`file:repo`, `repo` and `/abs/repo` become file URLs; real URLs pass through."""
    if urlparse(value).scheme in ("http", "https", "ftp") or value.startswith("file://"):
        return value
    local = value.removeprefix("file:")
    return (base / local).resolve().as_uri()


def _normalize(path: Path, data: dict[str, Any], base: Path) -> Manifest:
    data = dict(data)
    data.setdefault("format", 1)
    data.setdefault("release", "1")
    data.setdefault("install_weak_deps", False)
    data["version"] = str(data["version"])
    data["release"] = str(data["release"])
    if "releasever" in data:
        data["releasever"] = str(data["releasever"])
    repos = tuple(
        Repo(
            name=r["name"],
            baseurl=_resolve_url(base, r["baseurl"]),
            gpgkey=_resolve_url(base, r["gpgkey"]) if r.get("gpgkey") else None,
            gpgcheck=r.get("gpgcheck", bool(r.get("gpgkey"))),
        )
        for r in data.get("repos", [])
    )
    files = tuple(
        FileCopy(
            src=_resolve_path(base, f["src"]),
            dest=f["dest"],
            mode=int(f["mode"], 8) if f.get("mode") else None,
        )
        for f in data.get("files", [])
    )
    if not data.get("base"):
        # The network the RPM was built with travels in it: a host runs a package built
        # before bridges were the default on what it had then (veth).
        data["run"] = {**data.get("run", {}), "network": data.get("run", {}).get("network", BUILT_NETWORK)}
    if "run" in data and "environment" in data["run"]:
        data["run"] = {**data["run"], "environment": {k: str(v) for k, v in data["run"]["environment"].items()}}
    return Manifest(path=path, data=data, repos=repos, files=files)

