"""Gate e2: the workspace's contracts and evidence are well formed.

* every file in spec/ and truth/ (recursively) is JSON (UTF-8, no duplicate keys); every
  ``*.schema.json`` is a valid draft 2020-12 schema; truth/ holds nothing else; a spec/ document
  validates against its schema (``spec/ssot.json`` against ``spec/config.schema.json``, ``X.json``
  against a sibling ``X.schema.json``, ``spec/X.Y`` against ``truth/X_Y.schema.json``; one with
  no schema is listed in the gate notes);
* the SSOT loads and validates;
* the latest reports in reports/ validate against their schemas in truth/, equal their run's copy
  and match their run's evidence (equity curve hash, event count and last hash); a fresh workspace
  with no reports yet has the reports of a fresh run checked instead (said so in the gate notes);
* the dataset's SHA-256 matches the SSOT's pin.

Every failure names the file and, where there is one, the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.gate("e2")

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_SCHEMA_SUFFIX = ".schema.json"


def _fail(title: str, problems: list[str]) -> None:
    """Fail with the first problem on the first line (the gate summary's reason), then all."""
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        listing = "".join(f"\n  {p}" for p in problems) if len(problems) > 1 or "\n" in problems[0] else ""
        pytest.fail(f"e2: {title}: {problems[0].splitlines()[0]}{more}{listing}", pytrace=False)


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _load(path: Path) -> tuple[Any, str | None]:
    """Parse strictly: UTF-8, one JSON value, no duplicate keys (ambiguous for validators)."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_no_duplicates), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 ({exc.reason} at byte {exc.start})"
    except json.JSONDecodeError as exc:
        return None, f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    except ValueError as exc:
        return None, str(exc)


def _path_of(error: Any) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(root)"


def _schema_problems(shown: str, schema: Any) -> list[str]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    if not isinstance(schema, dict):
        return [f"{shown}: not a JSON Schema (a schema file must hold an object, not {type(schema).__name__})"]
    if schema.get("$schema") != DRAFT_2020_12:
        return [f"{shown} field $schema: must be {DRAFT_2020_12!r} (got {schema.get('$schema')!r})"]
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    error = best_match(meta.iter_errors(schema))
    if error is not None:
        return [f"{shown} field {_path_of(error)}: not a valid draft 2020-12 schema: {error.message}"]
    return []


def _schema_for(path: Path, workspace: Any) -> Path | None:
    """The schema a spec/ document validates against: the SSOT's, a sibling ``X.schema.json``, or
    ``truth/<name with '.' as '_'>.schema.json`` (so spec/ssot.lock -> truth/ssot_lock.schema.json)."""
    if path == workspace.ssot_path:
        return workspace.config_schema_path
    sibling = path.with_name(path.name[: -len(".json")] + _SCHEMA_SUFFIX) if path.suffix == ".json" else None
    contract = workspace.truth_dir / (path.name.replace(".", "_") + _SCHEMA_SUFFIX)
    for candidate in (sibling, contract):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _document_problems(shown: str, document: Any, schema_path: Path, workspace: Any) -> list[str]:
    from jsonschema import Draft202012Validator

    schema, error = _load(schema_path)
    schema_shown = workspace.relative(schema_path)
    if error is not None or _schema_problems(schema_shown, schema):
        return []  # reported against the schema file itself
    errors = sorted(Draft202012Validator(schema).iter_errors(document), key=lambda e: (_path_of(e), e.message))
    return [f"{shown} field {_path_of(e)}: {e.message} (schema {schema_shown})" for e in errors[:20]]


def test_spec_and_truth_hold_valid_schemas_and_documents(treasure_workspace, gate_note):
    ws = treasure_workspace
    problems: list[str] = []
    unchecked: list[str] = []
    if not _files(ws.truth_dir):
        problems.append(f"{ws.relative(ws.truth_dir)}: no contracts (truth/ is missing or empty)")
    for path in _files(ws.spec_dir) + _files(ws.truth_dir):
        shown = ws.relative(path)
        document, error = _load(path)
        if error is not None:
            problems.append(f"{shown}: not valid JSON: {error}")
        elif path.name.endswith(_SCHEMA_SUFFIX):
            problems.extend(_schema_problems(shown, document))
        elif ws.truth_dir in path.parents:
            problems.append(f"{shown}: not a schema (truth/ holds only *{_SCHEMA_SUFFIX} contracts)")
        elif (schema := _schema_for(path, ws)) is not None:
            problems.extend(_document_problems(shown, document, schema, ws))
        else:
            unchecked.append(shown)
    if unchecked:
        gate_note(f"valid JSON, but no schema to validate against: {', '.join(unchecked)}")
    _fail("spec/ and truth/", problems)


def test_ssot_validates(treasure_workspace):
    from treasure.config import load_config
    from treasure.errors import TreasureError

    ws = treasure_workspace
    try:
        load_config(ws.ssot_path, ws.config_schema_path, display_path=ws.relative(ws.ssot_path))
    except TreasureError as exc:
        _fail("the SSOT", [exc.render()])


def _evidence_problems(ws: Any, path: Path, court: dict[str, Any]) -> list[str]:
    """Tie a court report to its run's evidence: the run's copy (for the latest report), the
    equity curve's hash, the event log's length and last hash."""
    from treasure.compare import compare_documents
    from treasure.contracts import Contracts

    problems: list[str] = []
    shown = ws.relative(path)
    if not isinstance(court.get("run_id"), str):
        return [f"{shown} field run_id: not a run id"]
    run_id = court.get("run_id", "")
    evidence = court.get("evidence", {})
    copy_path = ws.run_reports(run_id) / "court_report.json"
    if path == ws.reports_dir / "court_report.json" and copy_path.is_file():
        volatile = Contracts(ws.truth_dir).volatile_paths("court_report")
        same = compare_documents(json.loads(copy_path.read_bytes()), court, volatile=volatile)
        if not same:
            problems.append(f"{shown}: differs from its run's copy {ws.relative(copy_path)}: "
                            + same.summary.replace("\n", "; "))
    curve = ws.root / evidence.get("equity_curve", "")
    if curve.is_file():
        from treasure.digest import file_sha256

        digest = file_sha256(curve)
        if digest != evidence.get("equity_curve_sha256"):
            problems.append(f"{shown} field evidence.equity_curve_sha256: {evidence.get('equity_curve_sha256')} "
                            f"but {ws.relative(curve)} hashes to {digest}")
    else:
        problems.append(f"{shown} field evidence.equity_curve: {ws.relative(curve)} does not exist")
    # The log wherever it is (logs/events/, or an archive after `treasure archive`), verified and
    # tied to this report: run id, event total, head hash and counts (treasure.eventlog).
    from treasure.eventlog import check_against_court

    problems.extend(check_against_court(ws, run_id, court, shown=shown)[1])
    return problems


def test_latest_reports_validate(treasure_workspace, schema_validator, request, gate_note):
    ws = treasure_workspace
    reports = sorted(ws.reports_dir.glob("*.json")) if ws.reports_dir.is_dir() else []
    evidence_ws = ws
    if not reports:
        from pytest_treasure import workspace_of

        run = request.getfixturevalue("treasure_run")
        evidence_ws = workspace_of(run)
        reports = [run.report_dir / "court_report.json", run.report_dir / "eqs_report.json"]
        message = (f"no reports in {ws.relative(ws.reports_dir)}/ yet (fresh workspace): validated the reports "
                   f"of a fresh run ({run.run_id}) instead")
        print(message)
        gate_note(message)
    problems: list[str] = []
    unchecked: list[str] = []
    for path in reports:
        shown = evidence_ws.relative(path) if evidence_ws is ws else f"<fresh run>/{path.name}"
        name = path.name[: -len(".json")]
        if not schema_validator.schema_path(name).is_file():
            unchecked.append(shown)
            continue
        document, error = _load(path)
        if error is not None:
            problems.append(f"{shown}: not valid JSON: {error}")
            continue
        errors = schema_validator.errors(name, document)
        problems.extend(f"{shown} field {error}" for error in errors)
        if name == "court_report" and not errors:
            problems.extend(_evidence_problems(evidence_ws, path, document))
    if evidence_ws is ws:  # the two latest copies must be of one run (paired by run_id)
        from treasure.ops.run_catalog import latest_pair_problem

        pair, _named = latest_pair_problem(ws)
        if pair is not None:
            problems.append(pair)
    if unchecked:
        gate_note(f"not checked (no schema in truth/): {', '.join(unchecked)}")
    _fail("latest reports", problems)


def test_dataset_sha_matches_the_ssot_pin(treasure_workspace):
    ws = treasure_workspace
    shown_ssot = ws.relative(ws.ssot_path)
    ssot, error = _load(ws.ssot_path)
    if error is not None:
        _fail("dataset pin", [f"{shown_ssot}: cannot read the pin: {error}"])
    dataset = ssot.get("dataset") if isinstance(ssot, dict) else None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("path"), str) \
            or not isinstance(dataset.get("sha256"), str):
        _fail("dataset pin", [f"{shown_ssot} field dataset: needs a path and a sha256 pin"])
    from treasure.errors import TreasureError

    try:
        path = ws.resolve_inside(dataset["path"], field="dataset.path", source=shown_ssot)
    except TreasureError as exc:
        _fail("dataset pin", [exc.render()])
    if not path.is_file():
        _fail("dataset pin", [f"{ws.relative(path)}: the dataset named by {shown_ssot} field dataset.path "
                              "does not exist"])
    from treasure.digest import file_sha256

    digest = file_sha256(path)
    if digest != dataset["sha256"]:
        _fail("dataset pin", [f"{ws.relative(path)}: SHA-256 {digest} does not match {shown_ssot} "
                              f"field dataset.sha256 ({dataset['sha256']}); restore the dataset, or re-pin it "
                              "if the change is intended"])


def test_workspace_matches_its_approval_lock(treasure_workspace):
    """Tamper detection: spec/, truth/ and the pinned dataset are what `treasure ssot approve`
    last recorded in spec/ssot.lock (a changed SSOT, schema or dataset, or a new unapproved file)."""
    from treasure.approval import check_tamper

    findings = check_tamper(treasure_workspace)
    if findings:
        _fail("approval lock", [f"{f.path}: [{f.code}] {f.message}" for f in findings]
              + ["review the change (git diff), then `treasure ssot approve`, or restore the approved files"])
