"""The hypothesis profiles the plugin registers in a session that uses Treasure: which one a
session loads, what each means, and that hypothesis' own names stay hypothesis'."""

from __future__ import annotations

import pytest
from hypothesis import settings

from pytest_treasure.plugin import gate_session
from pytest_treasure.profiles import PROFILES, choose_profile, register_profiles

pytest_plugins = ["pytester"]

PROFILE_PROBE = '''
from hypothesis import settings

def test_probe():
    s = settings()
    db = getattr(s.database, "path", None)
    print("PROFILE", settings.get_current_profile_name(), s.max_examples, s.derandomize, s.deadline,
          "db=" + (str(db) if db is not None else repr(s.database)))
'''


@pytest.fixture
def probe(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """Run the probe test in-process with a clean environment; restore this session's profile."""
    from hypothesis._settings import _CI_VARS

    for var in [*_CI_VARS, "HYPOTHESIS_PROFILE"]:
        monkeypatch.delenv(var, raising=False)
    pytester.makepyfile(test_probe=PROFILE_PROBE)
    current = settings.get_current_profile_name()

    def run(*args: str) -> tuple[pytest.RunResult, list[str]]:
        settings.load_profile("default")  # as in a fresh process (in-process runs share hypothesis' state)
        result = pytester.runpytest("-p", "no:cacheprovider", "-s", *args)
        line = next((x[x.index("PROFILE "):] for x in result.outlines if "PROFILE " in x), "")
        return result, line.split()[1:]

    yield run
    register_profiles(request.config.rootpath)
    settings.load_profile(current)


def test_a_session_that_uses_treasure_defaults_to_treasure_dev(probe) -> None:
    result, (name, examples, derandomize, *_rest) = probe("--treasure-workspace", ".")
    assert (name, examples, derandomize) == ("treasure-dev", "100", "False")
    result.stdout.fnmatch_lines(["treasure: hypothesis profile 'treasure-dev' (default)"])


def test_a_session_that_does_not_use_treasure_keeps_hypothesis_default(probe) -> None:
    result, (name, *_rest) = probe()
    assert name == "default"
    assert "treasure: hypothesis profile" not in result.stdout.str()


def test_gates_use_treasure_ci_even_when_the_shell_asks_for_another(probe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "treasure-hunt")
    result, (name, examples, derandomize, deadline, db) = probe("-m", "gate or not gate")
    assert (name, examples, derandomize, deadline, db) == ("treasure-ci", "25", "True", "None", "db=None")
    result.stdout.fnmatch_lines(["treasure: hypothesis profile 'treasure-ci' (gates selected)"])


def test_the_environment_can_name_a_treasure_profile(probe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "treasure-hunt")
    result, (name, examples, *_rest, db) = probe()
    assert (name, examples) == ("treasure-hunt", "2000")
    assert db.startswith("db=") and db.endswith(".hypothesis/examples")
    result.stdout.fnmatch_lines(["treasure: hypothesis profile 'treasure-hunt' (HYPOTHESIS_PROFILE=treasure-hunt)"])


def test_hypothesis_profile_option_can_name_a_treasure_profile(probe) -> None:
    _, (name, examples, *_rest) = probe("--hypothesis-profile", "treasure-hunt")
    assert (name, examples) == ("treasure-hunt", "2000")


def test_the_option_beats_gates_and_ci(probe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    _, (name, *_rest) = probe("--treasure-profile", "treasure-dev", "-m", "gate or not gate")
    assert name == "treasure-dev"
    _, (name, *_rest) = probe("--treasure-workspace", ".")
    assert name == "treasure-ci"


def test_an_unknown_profile_is_a_usage_error_listing_the_valid_ones(probe) -> None:
    result, _ = probe("--treasure-profile", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown Treasure hypothesis profile 'fast' (--treasure-profile); valid: "
                                 "treasure-ci, treasure-dev, treasure-hunt*"])


@pytest.mark.parametrize("old", ["ci", "dev", "hunt"])
def test_the_old_names_are_refused_with_the_rename_in_the_hint(probe, old: str) -> None:
    result, _ = probe("--treasure-profile", old)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*unknown Treasure hypothesis profile '{old}' (--treasure-profile) "
                                 f"(renamed: use 'treasure-{old}')*ci -> treasure-ci*"])


def test_an_old_name_in_the_ini_is_refused_too(probe, pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntreasure_profile = ci\n")
    result, _ = probe()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'ci' (treasure_profile ini) (renamed: use 'treasure-ci')*"])


@pytest.mark.parametrize("kwargs, expected", [
    (dict(option="treasure-hunt", hypothesis_option=None, gates=True, env="treasure-dev", ini="treasure-ci",
          current="default", in_ci=True), ("treasure-hunt", "--treasure-profile")),
    (dict(option=None, hypothesis_option="treasure-dev", gates=True, env=None, ini=None, current="default",
          in_ci=True), (None, "--hypothesis-profile")),
    (dict(option=None, hypothesis_option=None, gates=True, env="treasure-hunt", ini=None, current="default",
          in_ci=False), ("treasure-ci", "gates selected")),
    (dict(option=None, hypothesis_option=None, gates=False, env=None, ini="treasure-hunt", current="default",
          in_ci=True), ("treasure-hunt", "treasure_profile ini")),
    (dict(option=None, hypothesis_option=None, gates=False, env=None, ini=None, current="mine", in_ci=True),
     (None, "already loaded by the project (mine)")),
    (dict(option=None, hypothesis_option=None, gates=False, env=None, ini=None, current="ci", in_ci=True),
     ("treasure-ci", "running in CI")),
])
def test_choose_profile_follows_the_documented_order(kwargs: dict, expected: tuple) -> None:
    assert tuple(choose_profile(**kwargs)) == expected


@pytest.mark.parametrize("markexpr, gates, selected", [
    ("gate", None, True), ("not gate", None, False), ("gate and not slow", None, True), ("slow", None, False),
    ("", ["e2"], True), ("gateway", None, False),
])
def test_gate_sessions_are_recognised(markexpr: str, gates, selected: bool) -> None:
    assert gate_session(markexpr, gates) is selected


def test_the_profiles_are_registered_with_their_meaning_under_names_hypothesis_does_not_own() -> None:
    assert PROFILES == ("treasure-ci", "treasure-dev", "treasure-hunt")
    hypothesis_ci = settings.get_profile("ci")
    register_profiles()
    assert settings.get_profile("ci") is hypothesis_ci  # never re-registered
    ci, hunt = settings.get_profile("treasure-ci"), settings.get_profile("treasure-hunt")
    assert ci.derandomize and ci.database is None and ci.deadline is None and ci.max_examples < 100
    assert hunt.max_examples >= 1000 and hunt.stateful_step_count >= 100
    assert settings.get_profile("treasure-dev").max_examples == 100
