"""The AST nondeterminism scan: what it flags, what it lets through, and the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from treasure.determinism_scan import default_targets, package_dir, scan_paths, scan_source


def codes(source: str) -> list[tuple[int, str]]:
    findings, _ = scan_source(textwrap.dedent(source), "m.py")
    return [(f.line, f.code) for f in findings]


@pytest.mark.parametrize("source, expected", [
    # wall clock, through every kind of import
    ("import time\nt = time.time()", [(2, "TD101")]),
    ("from time import time as now\nt = now()", [(2, "TD101")]),
    ("import time as t\nx = t.perf_counter_ns()", [(2, "TD101")]),
    ("import datetime as dt\nx = dt.datetime.now()", [(2, "TD101")]),
    ("from datetime import datetime, date\nx = datetime.utcnow()\ny = date.today()", [(2, "TD101"), (3, "TD101")]),
    ("import time\nclock = time.monotonic", [(2, "TD101")]),  # a reference, called later
    ("import time\nx = time.localtime()", [(2, "TD101")]),
    ("import time\nx = time.localtime(0)", []),
    ("import datetime\nx = datetime.date(1970, 1, 1)", []),
    # global and OS randomness
    ("import random\nx = random.random()", [(2, "TD201")]),
    ("from random import shuffle\nshuffle([1])", [(2, "TD201")]),
    ("import random\nr = random.Random()", [(2, "TD201")]),
    ("import random\nr = random.Random(7)", []),
    ("import numpy as np\nx = np.random.rand(3)", [(2, "TD201")]),
    ("import numpy as np\nnp.random.seed(1)", [(2, "TD201")]),
    ("import numpy as np\ng = np.random.default_rng()", [(2, "TD201")]),
    ("import numpy as np\ng = np.random.default_rng(None)", [(2, "TD201")]),
    ("import numpy as np\ng = np.random.default_rng(seed=5)", []),
    ("from numpy.random import default_rng\ng = default_rng()", [(2, "TD201")]),
    ("from numpy import random as npr\nx = npr.normal()", [(2, "TD201")]),
    ("import numpy as np\ng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([1, 2])))", []),
    ("import numpy as np\ns = np.random.SeedSequence()", [(2, "TD201")]),
    ("import uuid\nx = uuid.uuid4()", [(2, "TD201")]),
    ("import uuid\nx = uuid.uuid5(uuid.NAMESPACE_DNS, 'a')", []),
    ("import os\nx = os.urandom(4)", [(2, "TD201")]),
    ("import secrets\nx = secrets.token_hex()", [(2, "TD201")]),
    ("def f(ctx):\n    return ctx.rng.random()", []),
    ("random = 4\nx = random", []),  # not the module
    # set order
    ("for x in {1, 2}:\n    print(x)", [(1, "TD301")]),
    ("s = set(names)\nfor x in s:\n    print(x)", [(2, "TD301")]),
    ("s = set(names)\nfor x in sorted(s):\n    print(x)", []),
    ("s = set(names)\ns = list(s)\nfor x in s:\n    print(x)", []),  # s is not only a set
    ("out = [f(x) for x in frozenset(a)]", [(1, "TD301")]),
    ("out = sorted(f(x) for x in set(a))", []),
    ("out = {f(x) for x in set(a)}", []),
    ("n = len({x for x in a})", []),
    ("out = ','.join({'a', 'b'})", [(1, "TD301")]),
    ("out = list(set(a) | set(b))", [(1, "TD301")]),
    ("total = sum(set(a))", [(1, "TD301")]),
    ("ok = 'a' in set(a)", []),
    ("s = set(a)\nfirst = s.pop()", [(2, "TD301")]),
    ("def f(tags: set[str]):\n    return [t for t in tags]", [(2, "TD301")]),
    ("def f(tags: set[str]):\n    return max(tags)", []),
    ("d = {'a': 1}\nfor k in d:\n    print(k)", []),  # dicts keep insertion order
    # hash and id
    ("x = hash('abc')", [(1, "TD401")]),
    ("xs.sort(key=id)", [(1, "TD402")]),
    ("ys = sorted(xs, key=lambda o: id(o))", [(1, "TD402")]),
    ("y = id(x)", []),
    # directory listings
    ("import os\nfor f in os.listdir('.'):\n    print(f)", [(2, "TD501")]),
    ("import os\nfor f in sorted(os.listdir('.')):\n    print(f)", []),
    ("import glob\nfiles = glob.glob('*.csv')", [(2, "TD501")]),
    ("from pathlib import Path\nfiles = list(Path('.').rglob('*.py'))", [(2, "TD501")]),
    ("from pathlib import Path\nnames = sorted(p.name for p in Path('.').glob('*.py'))", []),
    ("from pathlib import Path\nany_py = any(Path('.').iterdir())", []),
    ("import os\nfor root, dirs, files in os.walk('.'):\n    print(root)", [(2, "TD501")]),
    ("def f(d):\n    found = []\n    for p in d.glob('*'):\n        found.append(p)\n    return sorted(found)", []),
    ("def f(d):\n    found = []\n    for p in d.glob('*'):\n        found.append(p)\n    return found", [(3, "TD501")]),
])
def test_rules(source, expected):
    assert codes(source) == expected


def test_strings_and_comments_never_match():
    assert codes('''
        """time.time() and random.random() in a docstring"""
        x = "datetime.now()"  # time.time() in a comment
    ''') == []


def test_allow_comment_needs_a_reason_and_covers_its_expression_lines():
    findings, allowed = scan_source(textwrap.dedent('''
        import time
        a = time.time()  # treasure: allow-nondeterminism goes to a volatile field
        b = time.time()  # treasure: allow-nondeterminism
        c = max(
            time.time(),  # treasure: allow-nondeterminism spans lines
            0,
        )
    '''), "m.py")
    assert allowed == 2
    assert [(f.line, f.code) for f in findings] == [(4, "TD101"), (4, "TD900")]
    assert "needs a reason" in findings[1].message


def test_unparsable_source_is_a_finding():
    findings, _ = scan_source("def broken(:\n", "bad.py")
    assert [(f.code, f.line) for f in findings] == [("TD000", 1)]
    assert findings[0].render().startswith("bad.py:1:")


def test_the_treasure_package_itself_scans_clean():
    result = scan_paths([package_dir()], relative_to=package_dir().parent)
    assert result.files and len(result.files) > 20
    assert not any(f.startswith("treasure/_bundle") for f in result.files)
    assert result.clean, "\n".join(f.render() for f in result.findings)


def test_default_targets_add_a_user_strategy_file(tmp_path):
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "mine.py").write_text("import time\nT = time.time()\n")
    ssot = {"strategy": {"name": "strategies/mine.py:Mine"}}
    assert default_targets(tmp_path, ssot) == [package_dir(), tmp_path / "strategies" / "mine.py"]
    assert default_targets(tmp_path, {"strategy": {"name": "sma_crossover"}}) == [package_dir()]
    assert default_targets(tmp_path, {"strategy": {"name": "json:JSONDecoder"}})[1].name == "__init__.py"
    result = scan_paths([tmp_path], relative_to=tmp_path)
    assert [f.render() for f in result.findings] == [
        "strategies/mine.py:2:4: TD101 time.time reads the wall clock: use the sim clock (ctx.now_ms); a duration "
        "may only go to a field marked x-treasure-volatile"]


def test_cli_scan(cli, tmp_path, workspace):
    bad = tmp_path / "bad.py"
    bad.write_text("import random\nx = random.choice([1, 2])\n")
    code, out, _ = cli("scan", bad)
    assert code == 2
    assert "bad.py:2:4: TD201 random.choice uses the process-global random generator" in out
    assert "1 finding(s) in 1 file(s)" in out
    code, out, _ = cli("scan", "--json", bad)
    document = json.loads(out)
    assert code == 2 and document["clean"] is False and document["findings"][0]["code"] == "TD201"
    code, out, _ = cli("scan", "--workspace", workspace.root)
    assert code == 0 and "clean" in out
    code, _, err = cli("scan", tmp_path / "missing.py")
    assert code == 2 and "error[SCAN_PATH]" in err


def test_scan_of_a_folder_skips_caches_and_virtualenvs(tmp_path):
    for folder in ("pkg", "pkg/__pycache__", ".venv/lib", "pkg/.hidden"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    for name in ("pkg/a.py", "pkg/__pycache__/b.py", ".venv/lib/c.py", "pkg/.hidden/d.py"):
        Path(tmp_path / name).write_text("import time\nx = time.time()\n")
    result = scan_paths([tmp_path], relative_to=tmp_path)
    assert result.files == ["pkg/a.py"]
