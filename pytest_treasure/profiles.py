"""Hypothesis profiles for Treasure, and which one a pytest session loads.

Three profiles, registered when pytest configures (before hypothesis' own plugin reads
``--hypothesis-profile``, so ``--hypothesis-profile hunt`` works too):

``ci``
    fast and reproducible: 25 examples, derandomized, no example database (nothing written),
    no deadline (shared CI machines are slow and noisy), ``print_blob`` for reproduction.
``dev``
    the everyday default: hypothesis' own defaults, with a 2 s deadline since a test that runs
    the engine takes tens of milliseconds, not hypothesis' assumed few.
``hunt``
    long searches: 2000 examples, 60 s deadline, 200 stateful steps, and the example database
    under ``<rootdir>/.hypothesis/examples`` so failures found once are replayed first next time.

Which profile a session loads, first match wins:

1. ``--treasure-profile NAME``
2. ``--hypothesis-profile NAME`` (hypothesis' own option; left to hypothesis)
3. ``ci`` when gates are selected (``-m gate``, or any ``--gate NAME``): gates stay fast and
   reproducible whatever the shell says
4. ``HYPOTHESIS_PROFILE=NAME``
5. the ``treasure_profile`` ini value
6. a profile the project's conftest already loaded (not ``default``): left as it is
7. ``ci`` in CI (the ``CI`` variable or another CI marker hypothesis detects), else ``dev``

An unknown name is a usage error listing the registered profiles. The choice and why it was made
show in the pytest header. A plain local session (rule 7, ``dev``) does not import hypothesis just
for this: the profile is loaded after collection, if a test module imported hypothesis at all.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import NamedTuple

import pytest


PROFILES = ("ci", "dev", "hunt")
ENV = "HYPOTHESIS_PROFILE"
_CHOICE_KEY = pytest.StashKey["Choice"]()
_DEFERRED_KEY = pytest.StashKey[bool]()
#: Environment variables hypothesis reads as "running in CI" (hypothesis._settings._CI_VARS).
_CI_HINTS = ("CI", "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", "TF_BUILD", "bamboo.buildKey", "BUILDKITE", "CIRCLECI",
             "CIRRUS_CI", "CODEBUILD_BUILD_ID", "GITHUB_ACTIONS", "GITLAB_CI", "HEROKU_TEST_RUN_ID",
             "TEAMCITY_VERSION")


def register_profiles(root: Path | None = None) -> None:
    """(Re-)register ``ci``, ``dev`` and ``hunt``; ``root`` anchors hunt's example database."""
    from datetime import timedelta

    from hypothesis import HealthCheck, settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    base = settings.get_profile("default")
    settings.register_profile("ci", base, max_examples=25, derandomize=True, database=None, deadline=None,
                              print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("dev", base, deadline=timedelta(seconds=2))
    where = (root or Path.cwd()) / ".hypothesis" / "examples"
    settings.register_profile("hunt", base, max_examples=2000, deadline=timedelta(seconds=60),
                              stateful_step_count=200, database=DirectoryBasedExampleDatabase(str(where)),
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _in_ci() -> bool:
    """Hypothesis' own CI detection, asked only when one of its variables is set at all."""
    if not any(name in os.environ for name in _CI_HINTS):
        return False
    try:
        from hypothesis._settings import is_in_ci
    except ImportError:  # pragma: no cover - a hypothesis without it
        return "CI" in os.environ
    return bool(is_in_ci())


class Choice(NamedTuple):
    name: str | None  # None: leave hypothesis' choice alone
    reason: str


def gate_session(markexpr: str, gates: list[str] | None) -> bool:
    """True when the session selects gates: ``--gate`` given, or ``-m`` naming ``gate``
    other than as ``not gate``."""
    if gates:
        return True
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", markexpr or "")
    return any(w == "gate" and (i == 0 or words[i - 1] != "not") for i, w in enumerate(words))


def choose_profile(*, option: str | None, hypothesis_option: str | None, gates: bool, env: str | None,
                   ini: str | None, current: str, in_ci: bool) -> Choice:
    """The rule in the module docstring, as a pure function."""
    if option:
        return Choice(option, "--treasure-profile")
    if hypothesis_option:
        return Choice(None, "--hypothesis-profile")
    if gates:
        return Choice("ci", "gates selected")
    if env:
        return Choice(env, f"{ENV}={env}")
    if ini:
        return Choice(ini, "treasure_profile ini")
    if current not in ("default", "ci"):
        return Choice(None, f"already loaded by the project ({current})")
    if in_ci:
        return Choice("ci", "running in CI")
    return Choice("dev", "default")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("treasure")
    group.addoption("--treasure-profile", default=None, metavar="NAME", dest="treasure_profile",
                    help="hypothesis profile: ci (fast, derandomized, no database), dev (default) or hunt "
                    "(2000 examples, example database under .hypothesis/); gates use ci unless this is given")
    parser.addini("treasure_profile", "hypothesis profile for the session when neither --treasure-profile, "
                  f"gate selection nor {ENV} chooses one", default="")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Choose the profile. Registering and loading it needs hypothesis imported; a plain local
    session that never imports hypothesis does not pay for that: the ``dev`` default is then
    loaded after collection, and only if a test module imported hypothesis. Runs first so that
    ``--hypothesis-profile hunt`` finds the profile registered."""
    hypothesis_option = config.getoption("--hypothesis-profile", default=None)
    loaded = "hypothesis" in sys.modules
    current = "default"
    if loaded:
        from hypothesis import settings

        current = settings.get_current_profile_name()
    choice = choose_profile(
        option=config.getoption("treasure_profile", default=None),
        hypothesis_option=hypothesis_option,
        gates=gate_session(config.getoption("markexpr", default="") or "",
                           config.getoption("treasure_gates", default=None)),
        env=os.environ.get(ENV) or None,
        ini=str(config.getini("treasure_profile") or "") or None,
        current=current,
        in_ci=_in_ci(),
    )
    config.stash[_CHOICE_KEY] = choice
    lazy = not loaded and choice == Choice("dev", "default")
    config.stash[_DEFERRED_KEY] = lazy
    if not lazy:
        register_profiles(config.rootpath)
        _load(choice)


def _load(choice: Choice) -> None:
    if choice.name is None:
        return
    from hypothesis import settings

    try:
        settings.get_profile(choice.name)  # before load_profile, which would keep a bad name as current
    except Exception:  # hypothesis' InvalidArgument for an unregistered name
        raise pytest.UsageError(f"unknown hypothesis profile {choice.name!r} ({choice.reason}); Treasure "
                                f"registers {', '.join(PROFILES)} (hypothesis: default)") from None
    settings.load_profile(choice.name)


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.stash.get(_DEFERRED_KEY, False) and "hypothesis" in sys.modules:
        from hypothesis import settings

        register_profiles(config.rootpath)
        if settings.get_current_profile_name() == "default":  # a test module may have chosen its own
            _load(config.stash[_CHOICE_KEY])
        config.stash[_DEFERRED_KEY] = False


def pytest_report_header(config: pytest.Config) -> str | None:
    choice = config.stash.get(_CHOICE_KEY, None)
    if choice is None:
        return None
    name = choice.name or "(hypothesis' choice)"
    return f"treasure: hypothesis profile {name!r} ({choice.reason})"
