from __future__ import annotations

from pathlib import Path

import pytest

from donjon.core.errors import ConfigError
from donjon.core.runtime import build_runtime
from tests.conftest import make_settings, sqlite_database


def test_a_customization_of_an_unknown_projection_fails_naming_it(tmp_path: Path) -> None:
    settings = make_settings(
        sqlite_database(tmp_path / "x.db"),
        Projections={"Customizations": {"instancez": {"BulkLimit": 5}}},
    )
    with pytest.raises(ConfigError, match=r"Projections\.Customizations\.instancez: no projection"):
        build_runtime(settings)
    ok = make_settings(
        sqlite_database(tmp_path / "x.db"),
        Projections={"Customizations": {"Instances": {"BulkLimit": 5}}},
    )
    build_runtime(ok)
