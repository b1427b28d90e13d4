"""The plugin is a good citizen: installed, it is loaded into every pytest session of the
environment, and a session that does not use Treasure must not notice it.

Each test runs a real pytest session in a subprocess (``pytester.runpytest_subprocess``) in an
unrelated project (a temporary folder with no Treasure workspace, no ini), the way a new user's
project would meet the plugin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

MODULES_PROBE = '''
import json, sys

def test_modules():
    mine = sorted(m for m in sys.modules if m == "treasure" or m.startswith(("treasure.", "pytest_treasure")))
    heavy = sorted(m for m in ("numpy", "jsonschema", "fastjsonschema", "hypothesis", "orjson", "pluggy")
                   if m in sys.modules)
    print("PROBE " + json.dumps({"mine": mine, "heavy": heavy}))
'''


def _probe(result: pytest.RunResult) -> dict:
    return json.loads(_line(result, "PROBE ")[len("PROBE "):])


def _line(result: pytest.RunResult, tag: str) -> str:
    """The line a probe test printed (with -s it follows the test file's name)."""
    return next(x[x.index(tag):] for x in result.outlines if tag in x)


def _files(root: Path) -> list[str]:
    """Files under ``root``, but for pytest's own (byte code, the subprocess' --basetemp)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if "__pycache__" not in p.parts and not p.relative_to(root).parts[0].startswith("runpytest-")
                  and p.relative_to(root).parts[0] not in ("stdout", "stderr"))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CI markers and no profile from the environment of the session running this suite."""
    from hypothesis._settings import _CI_VARS

    for var in [*_CI_VARS, "HYPOTHESIS_PROFILE", "TREASURE_GATE_RUN_BY"]:
        monkeypatch.delenv(var, raising=False)


def test_a_session_that_does_not_use_treasure_imports_only_the_plugin_module(pytester: pytest.Pytester,
                                                                              clean_env: None) -> None:
    pytester.makepyfile(test_probe=MODULES_PROBE)
    before = _files(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    probe = _probe(result)
    assert probe["mine"] == ["pytest_treasure", "pytest_treasure.plugin"]
    assert [m for m in probe["heavy"] if m != "pluggy"] == []  # pluggy is pytest's own
    assert not [x for x in result.outlines if x.startswith("treasure:")]  # no profile header line
    assert "treasure gates" not in result.stdout.str()
    assert _files(pytester.path) == before  # nothing written


def test_ci_keeps_hypothesis_own_ci_profile_outside_treasure(pytester: pytest.Pytester, clean_env: None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    pytester.makepyfile(test_ci='''
        from hypothesis import settings

        def test_profile():
            try:
                settings.get_profile("treasure-ci")
                registered = True
            except Exception:
                registered = False
            current = settings()
            print("PROFILE", settings.get_current_profile_name(), current.max_examples,
                  settings.get_profile("ci").max_examples, registered)
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    line = _line(result, "PROFILE ")
    name, seen, hypothesis_ci, registered = line.split()[1:]
    assert name == "ci" and seen == hypothesis_ci and seen != "25"
    assert registered == "False"  # Treasure registered nothing in a session that does not use it


def test_a_plain_session_loads_no_profile_but_a_treasure_session_does(pytester: pytest.Pytester,
                                                                      clean_env: None) -> None:
    pytester.makepyfile(test_p='''
        from hypothesis import settings

        def test_profile():
            print("PROFILE", settings.get_current_profile_name(), settings().max_examples)
    ''')
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    assert _line(plain, "PROFILE ").startswith("PROFILE default ")
    used = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--treasure-profile", "treasure-ci")
    assert _line(used, "PROFILE ") == "PROFILE treasure-ci 25"
    used.stdout.fnmatch_lines(["treasure: hypothesis profile 'treasure-ci' (--treasure-profile)"])


def test_gates_outside_a_workspace_write_no_file(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(test_g='''
        import pytest

        @pytest.mark.gate("e2")
        def test_mine():
            pass
    ''')
    before = _files(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*= treasure gates =*", "e2 * passed*",
                                 "gate results not recorded: * is not a Treasure workspace (no spec/ssot.json)*"])
    assert _files(pytester.path) == before
    assert not (pytester.path / "evidence").exists()


def test_canonical_and_schema_validator_work_without_a_workspace(pytester: pytest.Pytester,
                                                                 clean_env: None) -> None:
    pytester.makepyfile(test_c='''
        import pytest

        def test_equal(canonical, schema_validator):
            canonical.assert_equal({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1})
            assert "court_report" in schema_validator.names() if hasattr(schema_validator, "names") else True

        def test_differs(canonical):
            canonical.assert_equal({"a": 1}, {"a": 2})

        def test_golden_needs_a_workspace(canonical):
            canonical.assert_golden("x", {"a": 1})
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert "WORKSPACE_MISSING" not in out
    result.stdout.fnmatch_lines(["*documents differ:*", "*full diff: *treasure-diffs*"], consecutive=False)
    result.stdout.fnmatch_lines(["*goldens live in a Treasure workspace's fixtures/golden/*"], consecutive=False)
    assert not (pytester.path / "evidence").exists()


def test_importing_the_plugin_pulls_in_no_numpy() -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pytest_treasure.plugin"],
                          capture_output=True, text=True, check=True)
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "pytest_treasure.plugin" in imported
    assert not [m for m in imported if m.split(".")[0] in ("numpy", "jsonschema", "fastjsonschema", "hypothesis",
                                                           "treasure")]
    assert [m for m in imported if m.startswith("pytest_treasure")] == ["pytest_treasure", "pytest_treasure.plugin"]


def test_import_treasure_is_lazy() -> None:
    code = ("import sys, treasure; before = sorted(m for m in sys.modules if m.startswith('treasure.')); "
            "treasure.TreasureError; print(before, 'numpy' in sys.modules, 'treasure.errors' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] False True"
