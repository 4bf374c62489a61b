"""Importing eoslab leaves nothing half-imported: the modules torch loads on the first double backward come in
with eoslab, all or nothing."""
import subprocess
import sys
import textwrap

from eoslab.curvature.operators import import_whole


def test_the_first_curvature_call_imports_nothing_new():
    code = textwrap.dedent("""
        import sys, torch, eoslab
        from eoslab.problems import quadratic
        before = set(sys.modules)
        q = quadratic([2.0, 1.0])
        eoslab.hvp(q, q.theta0, torch.ones(2))
        eoslab.top_eigenpairs(q, q.theta0)
        new = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("sympy", "mpmath", "torch"))
        print(new)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_interrupted_import_leaves_nothing_behind(tmp_path, monkeypatch):
    package = tmp_path / "halfway"
    package.mkdir()
    (package / "done.py").write_text("VALUE = 1\n")
    (package / "__init__.py").write_text("from . import done\nraise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import_whole("halfway")
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt must propagate")
    assert "halfway" not in sys.modules and "halfway.done" not in sys.modules
    import_whole("no_such_module_anywhere")  # missing: skipped
