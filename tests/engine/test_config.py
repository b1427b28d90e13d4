"""SSOT loading: every way to get it wrong is a coded error naming the field."""

from __future__ import annotations

import json

import pytest

from treasure.config import load_config
from treasure.errors import ConfigError


def _load(workspace):
    return load_config(workspace.ssot_path, workspace.config_schema_path)


def test_default_ssot_validates(workspace):
    config = _load(workspace)
    assert config.strategy_name == "sma_crossover" and config.seed == 42
    assert len(config.sha256) == 64 and config.canonical_sha256 != config.sha256


@pytest.mark.parametrize("change, field", [
    (lambda s: s.update(extra=1), "(root)"),
    (lambda s: s["risk"].update(max_position_size_usd="big"), "risk.max_position_size_usd"),
    (lambda s: s["risk"].pop("daily_loss_limit_usd"), "risk"),
    (lambda s: s["risk"].update(daily_loss_limit_usd=-5), "risk.daily_loss_limit_usd"),
    (lambda s: s["risk"].update(max_position_size_usd=1e15), "risk.max_position_size_usd"),
    (lambda s: s["dataset"].update(sha256="abc"), "dataset.sha256"),
    (lambda s: s["run"].update(seed=-1), "run.seed"),
    (lambda s: s["execution"]["fees"].update(maker_bps=1), "execution.fees"),
    (lambda s: s["execution"].update(adapter="telepathy"), "execution.adapter"),
])
def test_schema_errors_name_the_field(workspace, edit_ssot, change, field):
    edit_ssot(change)
    with pytest.raises(ConfigError) as info:
        _load(workspace)
    assert info.value.code == "SSOT_SCHEMA"
    assert info.value.field == field
    assert info.value.hint


def test_torn_json_names_the_line(workspace):
    text = workspace.ssot_path.read_text()
    workspace.ssot_path.write_text(text[: len(text) // 2])
    with pytest.raises(ConfigError) as info:
        _load(workspace)
    assert info.value.code == "SSOT_JSON" and info.value.line and info.value.line > 1


@pytest.mark.parametrize("document", [[], "ssot", 3, None])
def test_non_object_ssot_is_refused(workspace, document):
    workspace.ssot_path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as info:
        _load(workspace)
    assert info.value.code == "SSOT_SCHEMA" and info.value.field == "(root)"


def test_missing_ssot_and_broken_schema(workspace):
    with pytest.raises(ConfigError) as info:
        load_config(workspace.root / "nope.json", workspace.config_schema_path)
    assert info.value.code == "SSOT_MISSING"
    workspace.config_schema_path.write_text('{"type": 12}')
    with pytest.raises(ConfigError) as info:
        _load(workspace)
    assert info.value.code == "SCHEMA_INVALID"


def test_config_is_read_only(workspace):
    config = _load(workspace)
    with pytest.raises(TypeError):
        config.raw["risk"]["max_position_size_usd"] = 1  # type: ignore[index]


def test_duplicate_keys_are_refused(workspace):
    text = workspace.ssot_path.read_text()
    workspace.ssot_path.write_text(text.replace('"risk": {', '"risk": {"daily_loss_limit_usd": 1, ', 1))
    with pytest.raises(ConfigError) as info:
        _load(workspace)
    assert info.value.code == "SSOT_DUPLICATE_KEY" and info.value.field == "daily_loss_limit_usd"
