"""Deterministic fault plans: make a run fail *exactly here*, every time.

A :class:`FaultPlan` is the callable passed as ``RunRequest(faults=...)``. The engine calls it with
the name of the point it is about to pass (``"dataset_load"``, ``"bar"`` before every bar,
``"event_write"`` / ``"event_fsync"`` before the event log writes or syncs, ``"report_write"``
before the reports, and whatever later stages add, e.g. ``"db_commit"``). The plan counts the calls
per point and, when a rule matches the call number, acts: raises ``OSError(ENOSPC)`` as a full disk
would, kills the process with SIGKILL as an OOM killer or a power cut would, sleeps, or runs a
Python callback (e.g. rewrite the dataset file mid-run). Nothing depends on the clock or a global
RNG, so a fault lands on the same bar in every process; :func:`seeded_kill_points` picks crash
points from a seed.

Code that can fail calls :func:`fire` with its point's name; the active plans live in a
:class:`contextvars.ContextVar` (set by :func:`active` / :func:`injected` for a block, and by the
engine for a request's own ``faults``), so nothing is monkeypatched and a plan never leaks into
another thread or task. With no plan active, :func:`fire` is one ContextVar read.

Two more points exist only when :meth:`FaultPlan.io_hooks` is active: ``"replace"`` and ``"fsync"``
fire before each ``os.replace`` / ``os.fsync`` made by :mod:`treasure.jsonio` (the atomic report
writer), so a crash can be placed *between* two report writes, not just before the first.

Plans are written as a small spec, for the environment (``TREASURE_FAULTS``) and the hidden
``treasure faultrun`` command used by the crash harness::

    kill@bar:1234                 SIGKILL before bar 1234 (1-based call count of the point)
    enospc@event_write:2+         ENOSPC on the 2nd event-log write and every one after it
    eio@replace:3                 EIO instead of the 3rd atomic rename of a report
    sleep=0.5@report_write        pause 0.5 s before the reports are written
    kill@bar:10;eio@event_fsync   several rules, separated by ';'

Actions: ``kill``, ``enospc``, ``eio``, ``eacces`` (OSError with that errno), ``timeout``
(TimeoutError), ``crash`` (RuntimeError, i.e. a bug), ``sleep=SECONDS``.
"""

from __future__ import annotations

import contextvars
import errno
import hashlib
import os
import re
import signal
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from treasure.errors import ConfigError

#: Environment variable holding a fault spec for ``treasure faultrun``.
ENV_VAR = "TREASURE_FAULTS"

#: Points the engine calls today (``db_commit`` once persistence lands).
ENGINE_POINTS = ("dataset_load", "bar", "event_write", "event_fsync", "report_write", "db_commit")
#: Points that exist only inside :meth:`FaultPlan.io_hooks`.
IO_POINTS = ("replace", "fsync")
POINTS = ENGINE_POINTS + IO_POINTS

_ERRNOS = {"enospc": errno.ENOSPC, "eio": errno.EIO, "eacces": errno.EACCES}
ACTIONS = ("kill", "sleep", "timeout", "crash", *_ERRNOS)

_RULE = re.compile(r"(?P<action>[a-z]+)(?:=(?P<arg>[0-9.]+))?@(?P<point>[a-z_]+)(?::(?P<at>[0-9]+)(?P<repeat>\+)?)?")


def _spec_error(message: str) -> ConfigError:
    return ConfigError("FAULTS_SPEC", message, field=ENV_VAR)


@dataclass(frozen=True)
class Fault:
    """One rule: do ``action`` on call number ``at`` of ``point`` (and every later one if ``repeat``).

    ``action`` is one of :data:`ACTIONS` or a zero-argument callable (Python API only), e.g. a
    function that rewrites the dataset file while the run is reading bars.
    """

    action: str | Callable[[], None]
    point: str
    at: int = 1
    repeat: bool = False
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if not callable(self.action) and self.action not in ACTIONS:
            raise _spec_error(f"unknown fault action {self.action!r} (known: {', '.join(ACTIONS)})")
        if not isinstance(self.at, int) or self.at < 1:
            raise _spec_error(f"fault call number must be >= 1, got {self.at!r}")
        if not self.point or not re.fullmatch(r"[a-z_]+", self.point):
            raise _spec_error(f"invalid fault point {self.point!r}")

    def matches(self, point: str, count: int) -> bool:
        return point == self.point and (count == self.at or (self.repeat and count > self.at))

    @property
    def spec(self) -> str:
        if callable(self.action):
            name = getattr(self.action, "__name__", "callback")
            return f"{name}()@{self.point}:{self.at}{'+' if self.repeat else ''}"
        action = f"sleep={self.seconds:g}" if self.action == "sleep" else self.action
        return f"{action}@{self.point}:{self.at}{'+' if self.repeat else ''}"


def carry_out(fault: Fault, point: str, count: int) -> None:
    """Carry out one fault. ``kill`` does not return; error actions raise."""
    action = fault.action
    if callable(action):
        action()
        return
    where = f"injected fault at {point} #{count}"
    if action == "kill":
        kill = getattr(signal, "SIGKILL", None)
        if kill is not None:
            os.kill(os.getpid(), kill)
        os._exit(137)  # pragma: no cover  (platforms without SIGKILL)
    if action == "sleep":
        time.sleep(fault.seconds)  # treasure: allow-nondeterminism crash testing only
        return
    if action == "timeout":
        raise TimeoutError(where)
    if action == "crash":
        raise RuntimeError(where)
    code = _ERRNOS[action]
    raise OSError(code, f"{os.strerror(code)} ({where})")


@dataclass
class FaultPlan:
    """A callable fault plan: counts calls per point and fires the matching rules, in order.

    ``calls`` (how often each point was passed) and ``fired`` (what happened where) make a plan
    double as a probe: run once with an empty plan to learn how many bars, writes and renames a
    run makes, then place faults inside that range.
    """

    faults: Sequence[Fault] = ()
    calls: Counter[str] = field(default_factory=Counter)
    fired: list[str] = field(default_factory=list)
    #: ``(point, call number) -> file`` for the I/O points, recorded by :meth:`io_hooks`.
    targets: dict[tuple[str, int], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.faults = tuple(self.faults)

    def __call__(self, point: str, target: str | None = None) -> None:
        self.calls[point] += 1
        count = self.calls[point]
        if target is not None:
            self.targets[(point, count)] = target
        for fault in self.faults:
            if fault.matches(point, count):
                self.fired.append(f"{fault.spec} (call {count})")
                carry_out(fault, point, count)

    @property
    def spec(self) -> str:
        return ";".join(f.spec for f in self.faults)

    @property
    def needs_io_hooks(self) -> bool:
        return any(f.point in IO_POINTS for f in self.faults)

    @classmethod
    def parse(cls, spec: str) -> "FaultPlan":
        """Parse ``ACTION[=ARG]@POINT[:N[+]]`` rules separated by ``;`` (see the module docstring)."""
        faults = []
        for rule in (part.strip() for part in (spec or "").split(";")):
            if not rule:
                continue
            m = _RULE.fullmatch(rule)
            if m is None:
                raise _spec_error(f"cannot parse fault rule {rule!r}; expected ACTION@POINT[:N[+]], "
                                  "e.g. kill@bar:100 or enospc@event_write:1+")
            action, arg, point = m["action"], m["arg"], m["point"]
            if point not in POINTS:
                raise _spec_error(f"unknown fault point {point!r} (known: {', '.join(POINTS)})")
            if (arg is not None) != (action == "sleep"):
                raise _spec_error(f"only sleep takes an argument (sleep=SECONDS), got {rule!r}")
            try:
                seconds = float(arg) if arg is not None else 0.0
            except ValueError:
                raise _spec_error(f"sleep needs seconds, got {arg!r}") from None
            faults.append(Fault(action, point, int(m["at"] or 1), bool(m["repeat"]), seconds))
        return cls(faults)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "FaultPlan | None":
        """The plan in ``TREASURE_FAULTS``, or None when unset or empty."""
        spec = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
        return cls.parse(spec) if spec else None

    @contextmanager
    def io_hooks(self) -> Iterator["FaultPlan"]:
        """Within the block, fire ``replace`` / ``fsync`` before :mod:`treasure.jsonio` renames or
        syncs a file (that module calls :func:`fire` for them; outside this block those points are
        not passed to this plan, so a probe's counts of the engine points stay as they were)."""
        token = _IO_ACTIVE.set(_with(_IO_ACTIVE.get(), self))
        try:
            yield self
        finally:
            _IO_ACTIVE.reset(token)


Hook = Callable[..., None]
#: The plans every :func:`fire` of an engine point reaches, innermost last.
_ACTIVE: contextvars.ContextVar[tuple[Hook, ...]] = contextvars.ContextVar("treasure_faults", default=())
#: The plans that also see the I/O points (``replace``, ``fsync``).
_IO_ACTIVE: contextvars.ContextVar[tuple[Hook, ...]] = contextvars.ContextVar("treasure_io_faults",
                                                                             default=())


def _with(hooks: tuple[Hook, ...], hook: Hook) -> tuple[Hook, ...]:
    return hooks if any(h is hook for h in hooks) else (*hooks, hook)


def fire(point: str, target: str | None = None) -> None:
    """Pass fault point ``point``: every active plan counts it and acts if one of its rules matches.

    ``target`` names the file an I/O point is about to touch (recorded by :class:`FaultPlan`).
    The one way code in Treasure offers a fault point; nothing else is patched."""
    hooks = _IO_ACTIVE.get() if point in IO_POINTS else _ACTIVE.get()
    if not hooks:
        return
    for hook in hooks:
        if target is None:
            hook(point)
        else:
            hook(point, target)


def armed() -> bool:
    """Whether any plan is active here (the bar loop skips its per-bar point when none is)."""
    return bool(_ACTIVE.get())


@contextmanager
def active(hook: Hook | None) -> Iterator[None]:
    """Within the block, :func:`fire` reaches ``hook`` too (no-op for ``None``; a hook already
    active is not added twice, so nested activation of one plan counts each point once)."""
    if hook is None:
        yield
        return
    token = _ACTIVE.set(_with(_ACTIVE.get(), hook))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def bound(hook: Hook | None) -> Callable[[str], None]:
    """A one-argument hook for components that take one (e.g. the store writer): fires the active
    plans plus ``hook`` (counted once if it is also active)."""
    def call(point: str) -> None:
        with active(hook):
            fire(point)

    return call


def chain(*hooks: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """One fault callable calling each given one in order (``None`` entries skipped)."""
    live = [h for h in hooks if h is not None]
    if not live:
        return None
    if len(live) == 1:
        return live[0]

    def call(point: str) -> None:
        for hook in live:
            hook(point)

    return call


@contextmanager
def injected(plan: Callable[[str], None]) -> Iterator[None]:
    """Make every engine run in this context use ``plan`` (besides any plan the request carries).
    This is what ``treasure faultrun`` uses so any command that runs the engine can be
    crash-tested without a fault option on the command itself."""
    with active(plan):
        yield


def _pick(seed: int, items: Sequence[tuple[str, int]], k: int) -> list[tuple[str, int]]:
    """``k`` items chosen by the SHA-256 of (seed, item): the same on every Python and NumPy."""
    def rank(item: tuple[str, int]) -> bytes:
        return hashlib.sha256(f"{seed}:{item[0]}:{item[1]}".encode()).digest()

    return sorted(items, key=rank)[:k]


def seeded_kill_points(seed: int, calls: Mapping[str, int], n: int, *,
                       rare_share: float = 0.5) -> list[Fault]:
    """``n`` distinct SIGKILL points chosen from a probe's call counts, reproducibly from ``seed``.

    Points that are passed only a few times (dataset load, event-log writes and syncs, report
    renames and syncs, DB commits) are where crash bugs hide, so up to ``rare_share`` of the budget
    goes to them (all of them when they fit); the rest are bars spread over the whole run. The
    result is sorted by point and call number so a table of outcomes reads in run order.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    rare = [(p, i) for p in POINTS if p != "bar" for i in range(1, calls.get(p, 0) + 1)]
    budget = min(len(rare), max(1, int(n * rare_share)))
    chosen = _pick(seed, rare, budget)
    bars = [("bar", i) for i in range(1, calls.get("bar", 0) + 1)]
    chosen += _pick(seed, bars, min(n - len(chosen), len(bars)))
    order = {p: k for k, p in enumerate(POINTS)}
    return [Fault("kill", p, i) for p, i in sorted(chosen, key=lambda pi: (order[pi[0]], pi[1]))]
