"""Nothing half-imported: the modules torch loads on the first double backward come in whole, and a Ctrl-C in the
middle of that first curvature call leaves the session working."""
import subprocess
import sys
import textwrap

from eoslab.curvature.operators import import_whole


def test_a_ctrl_c_during_the_first_curvature_call_leaves_the_session_working():
    code = textwrap.dedent("""
        import sys, torch, eoslab
        from eoslab.problems import quadratic
        assert "sympy" not in sys.modules  # importing eoslab does not pay for it

        class Interrupt:  # a Ctrl-C while sympy is being imported, the first time only
            fired = False
            def find_spec(self, name, path=None, target=None):
                if name == "sympy.core.numbers" and not Interrupt.fired:
                    Interrupt.fired = True
                    raise KeyboardInterrupt
                return None

        sys.meta_path.insert(0, Interrupt())
        q = quadratic([2.0, 1.0])
        try:
            eoslab.hvp(q, q.theta0, torch.ones(2))
        except KeyboardInterrupt:
            pass
        assert Interrupt.fired and "sympy" not in sys.modules and "sympy.core" not in sys.modules
        print(eoslab.hvp(q, q.theta0, torch.ones(2)).tolist(), round(float(eoslab.sharpness(q, q.theta0)), 5))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[2.0, 1.0] 2.0"


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
