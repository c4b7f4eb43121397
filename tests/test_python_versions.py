"""zfkeras installs and parses on every Python TensorFlow 2.21 supports (3.10-3.13)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import REPO

SUPPORTED = [(3, 10), (3, 11), (3, 12), (3, 13)]


def test_requires_python_admits_every_supported_version():
    text = (REPO / "pyproject.toml").read_text()
    spec = re.search(r'requires-python\s*=\s*"([^"]+)"', text).group(1)
    from packaging.specifiers import SpecifierSet

    specifier = SpecifierSet(spec)
    for major, minor in SUPPORTED:
        assert specifier.contains(f"{major}.{minor}.0"), f"{spec} refuses Python {major}.{minor}"
        assert f"Python :: {major}.{minor}\"" in text
    assert not specifier.contains("3.9.0") and not specifier.contains("3.14.0")


# Names that exist only from Python 3.11 on, or are gone in 3.12/3.13.
NEWER_OR_REMOVED = [
    r"^\s*import tomllib", r"from typing import[^\n]*\bSelf\b", r"datetime\.UTC\b", r"\bStrEnum\b",
    r"asyncio\.TaskGroup", r"^\s*import (distutils|imp|asynchat|asyncore|smtpd|cgi|crypt|pipes)\b",
    r"from (distutils|imp)\b", r"\bpkg_resources\b",
]


@pytest.mark.parametrize("folder", ["zfkeras", "benchmarks", "tests"])
def test_code_parses_and_imports_nothing_newer_than_python_3_10(folder):
    files = sorted((REPO / folder).rglob("*.py"))
    assert files
    for path in files:
        source = path.read_text()
        ast.parse(source, filename=str(path), feature_version=(3, 10))  # no except*, no PEP 695
        if path.name == Path(__file__).name:
            continue  # the patterns themselves
        for pattern in NEWER_OR_REMOVED:
            match = re.search(pattern, source, flags=re.M)
            assert match is None, f"{path.relative_to(REPO)} uses {match.group(0)!r} (not on every Python 3.10-3.13)"
