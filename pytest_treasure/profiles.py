"""Hypothesis profiles for Treasure, and which one a pytest session loads.

Three profiles, under names hypothesis does not own (hypothesis has ``default`` and, in CI,
``ci``; Treasure never re-registers those):

``treasure-ci``
    fast and reproducible: 25 examples, derandomized, no example database (nothing written),
    no deadline (shared CI machines are slow and noisy), ``print_blob`` for reproduction.
``treasure-dev``
    the everyday default: hypothesis' own defaults, with a 2 s deadline since a test that runs
    the engine takes tens of milliseconds, not hypothesis' assumed few.
``treasure-hunt``
    long searches: 2000 examples, 60 s deadline, 200 stateful steps, and the example database
    under ``<rootdir>/.hypothesis/examples`` so failures found once are replayed first next time.

They are registered only in a session that uses Treasure (gates selected, a Treasure option or
ini value; see :func:`pytest_treasure.plugin.uses_treasure`) or that names one of them with
``--hypothesis-profile`` or ``HYPOTHESIS_PROFILE``; any other session keeps hypothesis' own
choice (in CI: hypothesis' ``ci`` profile). Which profile a Treasure session loads, first match wins:

1. ``--treasure-profile NAME``
2. ``--hypothesis-profile NAME`` (hypothesis' own option; left to hypothesis)
3. ``treasure-ci`` when gates are selected (``-m gate``, or any ``--gate NAME``): gates stay fast
   and reproducible whatever the shell says
4. ``HYPOTHESIS_PROFILE=NAME``
5. the ``treasure_profile`` ini value
6. a profile the project's conftest already loaded (not ``default`` nor hypothesis' ``ci``): left as it is
7. ``treasure-ci`` in CI (the ``CI`` variable or another CI marker hypothesis detects), else ``treasure-dev``

An unknown name is a usage error listing the valid ones (the names were ``ci``, ``dev`` and
``hunt`` before 0.2; the message says so). The choice and why it was made show in the pytest
header. A plain local session (rule 7, ``treasure-dev``) does not import hypothesis just for
this: the profile is loaded after collection, if a test module imported hypothesis at all.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

import pytest


PROFILES = ("treasure-ci", "treasure-dev", "treasure-hunt")
CI, DEV, HUNT = PROFILES
#: The names before 0.2, refused with a hint naming their replacement.
RENAMED = {"ci": CI, "dev": DEV, "hunt": HUNT}
ENV = "HYPOTHESIS_PROFILE"
_CHOICE_KEY = pytest.StashKey["Choice"]()
_DEFERRED_KEY = pytest.StashKey[bool]()
#: Environment variables hypothesis reads as "running in CI" (hypothesis._settings._CI_VARS).
_CI_HINTS = ("CI", "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", "TF_BUILD", "bamboo.buildKey", "BUILDKITE", "CIRCLECI",
             "CIRRUS_CI", "CODEBUILD_BUILD_ID", "GITHUB_ACTIONS", "GITLAB_CI", "HEROKU_TEST_RUN_ID",
             "TEAMCITY_VERSION")


def register_profiles(root: Path | None = None) -> None:
    """(Re-)register ``treasure-ci``, ``treasure-dev`` and ``treasure-hunt``; ``root`` anchors
    the hunt profile's example database."""
    from datetime import timedelta

    from hypothesis import HealthCheck, settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    base = settings.get_profile("default")
    settings.register_profile(CI, base, max_examples=25, derandomize=True, database=None, deadline=None,
                              print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile(DEV, base, deadline=timedelta(seconds=2))
    where = (root or Path.cwd()) / ".hypothesis" / "examples"
    settings.register_profile(HUNT, base, max_examples=2000, deadline=timedelta(seconds=60),
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


def choose_profile(*, option: str | None, hypothesis_option: str | None, gates: bool, env: str | None,
                   ini: str | None, current: str, in_ci: bool) -> Choice:
    """The rule in the module docstring, as a pure function."""
    if option:
        return Choice(option, "--treasure-profile")
    if hypothesis_option:
        return Choice(None, "--hypothesis-profile")
    if gates:
        return Choice(CI, "gates selected")
    if env:
        return Choice(env, f"{ENV}={env}")
    if ini:
        return Choice(ini, "treasure_profile ini")
    if current not in ("default", "ci"):  # hypothesis' own: not a project's choice
        return Choice(None, f"already loaded by the project ({current})")
    if in_ci:
        return Choice(CI, "running in CI")
    return Choice(DEV, "default")


def configure(config: pytest.Config) -> None:
    """Choose the profile (called by the plugin's ``pytest_configure``, first, in a session that
    uses Treasure). Registering and loading it needs hypothesis imported; a plain local session
    that never imports hypothesis does not pay for that: the ``treasure-dev`` default is then
    loaded after collection (:func:`collection_finish`), and only if a test module imported
    hypothesis. Runs before hypothesis' own ``pytest_configure``, so ``--hypothesis-profile
    treasure-hunt`` finds the profile registered."""
    from pytest_treasure.plugin import gate_session

    hypothesis_option = config.getoption("--hypothesis-profile", default=None)
    option = config.getoption("treasure_profile", default=None)
    ini = str(config.getini("treasure_profile") or "") or None
    for name, where in ((option, "--treasure-profile"), (ini, "treasure_profile ini")):
        if name and name not in PROFILES:
            raise pytest.UsageError(_unknown(name, where))
    loaded = "hypothesis" in sys.modules
    current = "default"
    if loaded:
        from hypothesis import settings

        current = settings.get_current_profile_name()
    choice = choose_profile(
        option=option,
        hypothesis_option=hypothesis_option,
        gates=gate_session(config.getoption("markexpr", default="") or "",
                           config.getoption("treasure_gates", default=None)),
        env=os.environ.get(ENV) or None,
        ini=ini,
        current=current,
        in_ci=_in_ci(),
    )
    config.stash[_CHOICE_KEY] = choice
    lazy = not loaded and choice == Choice(DEV, "default")
    config.stash[_DEFERRED_KEY] = lazy
    if not lazy:
        register_profiles(config.rootpath)
        _load(choice)


def _unknown(name: str, where: str) -> str:
    renamed = f" (renamed: use {RENAMED[name]!r})" if name in RENAMED else ""
    return (f"unknown Treasure hypothesis profile {name!r} ({where}){renamed}; valid: {', '.join(PROFILES)}. "
            "Treasure's profiles were renamed in 0.2 (ci -> treasure-ci, dev -> treasure-dev, hunt -> "
            "treasure-hunt) so that hypothesis' own 'ci' and 'default' stay hypothesis'")


def _load(choice: Choice) -> None:
    if choice.name is None:
        return
    from hypothesis import settings

    try:
        settings.get_profile(choice.name)  # before load_profile, which would keep a bad name as current
    except Exception:  # hypothesis' InvalidArgument for an unregistered name
        raise pytest.UsageError(_unknown(choice.name, choice.reason) + "; or a profile registered with "
                                "hypothesis (default, ci)") from None
    settings.load_profile(choice.name)


def collection_finish(config: pytest.Config) -> None:
    """Load the deferred ``treasure-dev`` default, if a test module imported hypothesis."""
    if config.stash.get(_DEFERRED_KEY, False) and "hypothesis" in sys.modules:
        from hypothesis import settings

        register_profiles(config.rootpath)
        if settings.get_current_profile_name() == "default":  # a test module may have chosen its own
            _load(config.stash[_CHOICE_KEY])
        config.stash[_DEFERRED_KEY] = False


def header(config: pytest.Config) -> str | None:
    """The pytest header line: which profile, and why."""
    choice = config.stash.get(_CHOICE_KEY, None)
    if choice is None:
        return None
    name = choice.name or "(hypothesis' choice)"
    return f"treasure: hypothesis profile {name!r} ({choice.reason})"


def gate_session(markexpr: str, gates: list[str] | None) -> bool:
    """See :func:`pytest_treasure.plugin.gate_session` (kept here for existing imports)."""
    from pytest_treasure.plugin import gate_session as _gate_session

    return _gate_session(markexpr, gates)
