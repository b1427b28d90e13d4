"""fixtures/live/ is exactly what the generator derives from today's engine, and says what it must."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from treasure.recon import CODES, Tolerances, fixturegen
from treasure.workspace import bundle_dir

LIVE = bundle_dir() / "fixtures" / "live"


@pytest.fixture(scope="module")
def generated() -> tuple[dict[str, bytes], tuple]:
    run = fixturegen.default_run()
    return fixturegen.generate(run=run), run


def test_regenerating_gives_identical_bytes(generated) -> None:
    files, _ = generated
    stale = fixturegen.stale_files(LIVE, files)
    assert not stale, (f"fixtures/live is stale for today's engine: {', '.join(stale)} differ. The default run's "
                       "orders or fills changed: regenerate with `python -m treasure.recon.fixturegen` and review "
                       "the diff")
    extra = sorted(p.name for p in LIVE.iterdir() if p.name not in files)
    assert not extra, f"files in fixtures/live the generator does not make: {extra}"


def test_manifest_covers_every_code_and_both_sides_of_the_threshold(generated) -> None:
    files, (_, tolerances) = generated
    manifest = json.loads(files["manifest.json"])
    sessions = {s["file"]: s for s in manifest["sessions"]}
    assert sessions["clean.jsonl"]["mismatches"] == []
    single = {s["mismatches"][0]["code"] for s in sessions.values()
              if s["mismatches"] and len({m["code"] for m in s["mismatches"]}) == 1}
    assert single == set(CODES), "one session per code, triggering only that code"
    orders = {name: len({m["order_id"] for m in s["mismatches"]}) for name, s in sessions.items()}
    limit = tolerances.max_mismatches
    assert orders["threshold_at.jsonl"] == limit and not sessions["threshold_at.jsonl"]["halt"]
    assert orders["threshold_over.jsonl"] == limit + 1 and sessions["threshold_over.jsonl"]["halt"]
    assert manifest["tolerances"] == Tolerances.from_config(json.loads(
        (bundle_dir() / "spec" / "ssot.json").read_text())["recon"]).as_dict()


def test_the_generator_refuses_a_session_that_does_not_produce_its_codes(generated, monkeypatch) -> None:
    _, run = generated
    monkeypatch.setitem(fixturegen._EFFECT, "change_fee", ("PRICE_MISMATCH", False))
    with pytest.raises(RuntimeError, match="session fee_mismatch: recon gives"):
        fixturegen.generate(run=run)


def test_check_mode(generated, monkeypatch, tmp_path: Path, capsys) -> None:
    files, run = generated
    monkeypatch.setattr(fixturegen, "default_run", lambda source=None: run)
    assert fixturegen.main(["--check", "--out", str(tmp_path)]) == 1
    assert "stale:" in capsys.readouterr().out
    assert fixturegen.main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
    assert fixturegen.main(["--check", "--out", str(tmp_path)]) == 0
