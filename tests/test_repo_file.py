"""`freight repo-file`: the .repo file hosts install."""

from __future__ import annotations

import configparser

import pytest
from conftest import freight


def test_repo_file_turns_every_check_on() -> None:
    result = freight("repo-file", "--name", "acme", "--baseurl", "https://repo.example.com/containers/")
    assert result.returncode == 0, result.stderr
    parser = configparser.ConfigParser()
    parser.read_string(result.stdout)
    assert dict(parser["acme"]) == {
        "name": "acme (freight containers)",
        "baseurl": "https://repo.example.com/containers",
        "enabled": "1",
        "gpgcheck": "1",
        "repo_gpgcheck": "1",
        "pkg_gpgcheck": "1",
        "gpgkey": "https://repo.example.com/containers/RPM-GPG-KEY-freight",
    }


def test_repo_file_with_an_explicit_key_url() -> None:
    result = freight("repo-file", "--name", "acme", "--baseurl", "file:///srv/repo", "--gpgkey", "https://keys.example.com/acme.asc")
    assert "gpgkey=https://keys.example.com/acme.asc\n" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name", "bad name", "--baseurl", "https://x"], "--name 'bad name'"),
        (["--name", "[x]", "--baseurl", "https://x"], "--name '[x]'"),
        (["--name", "ok", "--baseurl", "repo/"], "--baseurl 'repo/': expected an absolute"),
        (["--name", "ok", "--baseurl", "https://x", "--gpgkey", "key.asc"], "--gpgkey 'key.asc'"),
        (["--name", "ok", "--baseurl", "https://x", "--description", "a\nb"], "--description: one line"),
    ],
)
def test_repo_file_refuses_bad_input(args: list[str], message: str) -> None:
    result = freight("repo-file", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
