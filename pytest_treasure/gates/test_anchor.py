"""Gate anchor: every committed run's evidence agrees with its anchored manifest.

At its commit point a run writes ``reports/runs/<id>/manifest.json`` (its log's head hash and
event count, the SHA-256 of its report files, the dataset and SSOT hashes), signs it with the
operator's key when one is configured (``manifest.sig``) and appends the manifest's hash to the
anchor ledger ``evidence/anchors.jsonl`` (see :mod:`treasure.anchor`). This gate recomputes the
manifest of every committed run in ``reports/runs/`` (one with a court report) from the files on
disk and checks it against the stored manifest, the run's log head, the signature (with
:func:`treasure.keys.load_verify_key`: ``TREASURE_VERIFY_KEY`` or the public half of the signing
key) and the ledger. A log re-chained after an edit verifies on its own; it does not end at the
head hash its manifest anchors, and without the key a forger cannot re-sign a new manifest.

A workspace with no runs yet (a fresh clone) has a fresh run's anchors verified instead, so the
gate never passes on nothing. A run made before anchoring existed fails with ANCHOR_MISSING:
anchor it once with ``treasure keys anchor RUN``.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gate("anchor")


def test_every_committed_run_verifies_against_its_anchors(treasure_workspace, request, gate_note):
    from treasure import anchor, keys
    from treasure.errors import TreasureError

    ws = treasure_workspace
    runs = anchor.anchored_runs(ws.root)
    run_ws = ws
    if not runs:
        from pytest_treasure import workspace_of

        run = request.getfixturevalue("treasure_run")
        run_ws = workspace_of(run)
        runs = anchor.anchored_runs(run_ws.root)
        message = (f"no committed runs in {ws.relative(ws.reports_dir)}/runs/ yet (fresh workspace): verified the "
                   f"anchors of a fresh run ({run.run_id}) instead")
        print(message)
        gate_note(message)
    if not runs:
        pytest.fail("anchor: no committed run to verify", pytrace=False)
    try:
        vkey = keys.load_verify_key(workspace=ws.root)
    except TreasureError as exc:
        pytest.fail(f"anchor: [{exc.code}] {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""),
                    pytrace=False)
    findings = []
    for run_id in runs:
        try:
            findings.extend(anchor.verify_run(run_ws.root, run_id, vkey))
        except TreasureError as exc:
            findings.append(anchor.AnchorFinding(exc.code, run_id, exc.message))
    key_text = f"key {vkey.key_id}" if vkey is not None else "no key configured (ledger only)"
    if findings:
        listing = "\n  ".join(str(finding) for finding in findings[:20])
        more = f"\n  ... and {len(findings) - 20} more" if len(findings) > 20 else ""
        bad = sorted({finding.run_id for finding in findings})
        pytest.fail(f"anchor: {len(bad)} of {len(runs)} run(s) disagree with their anchors ({key_text}):\n"
                    f"  {listing}{more}\n  hint: restore the run's evidence from backup; a run made before "
                    "anchoring existed is anchored once with `treasure keys anchor RUN`", pytrace=False)
    print(f"anchor: {len(runs)} run(s) verified against their manifests and {anchor.LEDGER} ({key_text})")
