"""Extension points go through one pluggy manager (treasure.hookspecs / treasure.plugins):
a third party's execution adapter, strategy provider and event check are found through the hooks,
whether registered in code or through a ``treasure`` entry point, and an SSOT ``module:Class``
that no plugin vouches for is refused before anything is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from treasure import plugins
from treasure.engine import RunRequest, run
from treasure.errors import RunError, TreasureError
from treasure.execution import ExecReport, ExecutionAdapter, Order, adapter_names, create_adapter
from treasure.hookspecs import hookimpl
from treasure.strategy import Strategy, load_strategy
from treasure.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]


class NeverFills(ExecutionAdapter):
    """A third party's venue: accepts orders and never executes them."""

    name = "never"

    def __init__(self, **kwargs: Any) -> None:
        self.open: list[str] = []

    def submit(self, order: Order) -> list[ExecReport]:
        self.open.append(order.order_id)
        return []

    def cancel(self, order_id: str) -> list[ExecReport]:
        return []

    def on_bar(self, bar: Any) -> list[ExecReport]:
        return []


class Patient(Strategy):
    name = "patient"
    params_schema = {"type": "object", "properties": {"wait": {"type": "integer"}}, "additionalProperties": False}

    def __init__(self, wait: int = 3) -> None:
        super().__init__(wait=wait)

    def on_bar(self, ctx: Any, bar: Any) -> None:
        return None


class ThirdParty:
    @hookimpl
    def treasure_execution_adapters(self) -> dict[str, Any]:
        return {"never-fills": NeverFills}

    @hookimpl
    def treasure_strategies(self) -> dict[str, Any]:
        return {"patient": Patient, "lazy_patient": "tests.plugin.test_plugins:Patient"}


def test_builtins_are_a_plugin_like_any_other() -> None:
    pm = plugins.manager()
    assert isinstance(pm.get_plugin("treasure-builtin"), plugins.Builtin)
    assert {"sim", "dryrun", "replay-live"} <= set(adapter_names())
    assert {"sma_crossover", "mean_reversion", "buy_and_hold"} <= set(plugins.strategies())


def test_a_third_party_adapter_registered_through_the_hook_runs(workspace: Workspace) -> None:
    assert "never-fills" not in adapter_names()
    with plugins.registered(ThirdParty()):
        assert "never-fills" in adapter_names()
        result = run(RunRequest(workspace=workspace, adapter="never-fills", run_id="third-party"))
    assert "never-fills" not in adapter_names()
    assert result.status == "complete" and result.court["metrics"]["fills"] == 0
    assert result.court["metrics"]["orders"] > 0
    with pytest.raises(RunError) as info:
        create_adapter("never-fills")
    assert info.value.code == "ADAPTER_UNKNOWN" and "sim" in info.value.hint


def test_a_strategy_provider_names_strategies_through_the_hook(workspace: Workspace) -> None:
    with pytest.raises(RunError) as info:
        load_strategy("patient")
    assert info.value.code == "STRATEGY_UNKNOWN"
    with plugins.registered(ThirdParty()):
        assert type(load_strategy("patient", {"wait": 5}).strategy) is Patient
        assert load_strategy("lazy_patient").strategy.params == {"wait": 3}
        # the provider's "module:Class" vouches for its module: other classes of it may be named
        assert type(load_strategy("tests.plugin.test_plugins:Patient").strategy).__name__ == "Patient"
        result = run(RunRequest(workspace=workspace, strategy="patient", run_id="provided"))
        assert result.status == "complete" and result.court["metrics"]["orders"] == 0


def test_two_plugins_declaring_one_name_differently_conflict() -> None:
    class Rival:
        @hookimpl
        def treasure_execution_adapters(self) -> dict[str, Any]:
            return {"never-fills": ExecutionAdapter}

    with plugins.registered(ThirdParty()), plugins.registered(Rival()):
        with pytest.raises(TreasureError) as info:
            adapter_names()
    assert info.value.code == "PLUGIN_CONFLICT" and "never-fills" in info.value.message


def test_a_plugins_event_check_is_an_event_log_violation(workspace: Workspace) -> None:
    from treasure.hunt.runner import Evidence
    from treasure.invariants import InvariantViolation, check_event_log

    result = run(RunRequest(workspace=workspace, run_id="checked"))
    evidence = Evidence.load(workspace, result.run_id)
    check_event_log(evidence)  # nothing registered: passes

    class NoFills:
        @hookimpl
        def treasure_check_event(self, event: dict[str, Any], workspace: Workspace) -> list[str]:
            return ["fills are forbidden here"] if event["event_type"] == "order_filled" else []

    with plugins.registered(NoFills()):
        with pytest.raises(InvariantViolation) as info:
            check_event_log(evidence)
    assert info.value.invariant == "event_log" and info.value.details == ["fills are forbidden here"]


@pytest.mark.parametrize("ref", ["this:X", "antigravity:Fly", "json:JSONDecoder", "os.path:join"])
def test_an_unvouched_module_is_refused_before_it_is_imported(ref: str) -> None:
    """``this`` prints the Zen of Python when imported: nothing may be printed, nothing imported."""
    code = textwrap.dedent(f"""
        import json, sys
        from treasure.errors import TreasureError
        from treasure.strategy import load_strategy
        module = {ref.split(':')[0]!r}
        before = module in sys.modules
        try:
            load_strategy({ref!r})
        except TreasureError as exc:
            sys.stderr.write(json.dumps([exc.code, exc.field, exc.hint, before, module in sys.modules]))
    """)
    env = {k: v for k, v in os.environ.items() if k != plugins.ALLOW_ENV}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=60)
    assert done.stdout == ""  # no Zen of Python
    code_, field, hint, before, after = json.loads(done.stderr)
    assert (code_, field) == ("STRATEGY_UNKNOWN", "strategy.name")
    assert after == before  # not imported by the attempt
    assert plugins.ALLOW_ENV in hint and "entry point" in hint


@pytest.mark.parametrize("ref", ["", ":", "x:y:z", "a..b:C", "1abc:C", "mod:1C", "mod:C.D", "mod :C", "__import__('os'):C"])
def test_malformed_references_are_refused(ref: str) -> None:
    with pytest.raises(RunError) as info:
        load_strategy(ref)
    assert info.value.code == "STRATEGY_UNKNOWN"


def test_the_allow_list_admits_a_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.ALLOW_ENV, "tests.*")
    assert type(load_strategy("tests.plugin.test_plugins:Patient").strategy).__name__ == "Patient"
    monkeypatch.setenv(plugins.ALLOW_ENV, "tests")  # exact names do not cover submodules
    with pytest.raises(RunError):
        load_strategy("tests.plugin.test_plugins:Patient")


def test_an_entry_point_plugin_is_loaded_lazily(tmp_path: Path) -> None:
    """A package exposing a ``treasure`` entry point adds an adapter and a strategy; nothing of it
    is imported until Treasure first looks one up."""
    site = tmp_path / "site"
    (site / "acme_treasure").mkdir(parents=True)
    (site / "acme_treasure" / "__init__.py").write_text(textwrap.dedent("""
        from treasure.hookspecs import hookimpl
        from treasure.strategy import Strategy

        class Quiet(Strategy):
            name = "quiet"

            def on_bar(self, ctx, bar):
                return None

        @hookimpl
        def treasure_execution_adapters():
            from treasure.execution.sim import SimAdapter
            return {"acme": SimAdapter}

        @hookimpl
        def treasure_strategies():
            return {"acme_quiet": "acme_treasure:Quiet"}
    """))
    info = site / "acme_treasure-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-treasure\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[treasure]\nacme = acme_treasure\n")
    code = textwrap.dedent("""
        import json, sys
        import treasure.plugins, treasure.execution, treasure.strategy
        before = "acme_treasure" in sys.modules
        names = treasure.execution.adapter_names()
        loaded = treasure.strategy.load_strategy("acme_quiet")
        print(json.dumps([before, "acme" in names, loaded.name, "acme_treasure" in sys.modules]))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, True, "quiet", True]


def test_register_adapter_still_works_through_the_same_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    from treasure.execution import base, register_adapter

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    register_adapter("legacy", NeverFills)
    assert "legacy" in adapter_names()
    assert isinstance(create_adapter("legacy"), NeverFills)
