"""Fixtures of the publish tests (``pytest_plugins = ["publish_fixtures"]``): the fixture
release converted once per module, a fresh copy of it per test, and Orthanc servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orthanc import OrthancFactory, orthanc_factory
from publishing import convert_sample, copy_release


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture release, converted once per test module."""
    return convert_sample(tmp_path_factory.mktemp("converted") / "rel")


@pytest.fixture
def release(converted: Path, tmp_path: Path) -> Path:
    """A fresh copy of the fixture release (so each test has its own journal folder)."""
    return copy_release(converted, tmp_path / "rel")


@pytest.fixture
def make(tmp_path: Path) -> Iterator[OrthancFactory]:
    """Start Orthancs for this test (``make(**options)``); all stopped at its end."""
    with orthanc_factory(lambda name: tmp_path / name) as factory:
        yield factory
