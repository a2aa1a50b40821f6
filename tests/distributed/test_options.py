"""``--with dask`` option errors: a short message, before any run is recorded."""

from __future__ import annotations

from .conftest import Runner


def test_bad_with_options_fail_before_the_run(flows: Runner) -> None:
    code, out = flows.run("run", "--with", "dask:nosuch=1", check=False)
    assert code == 1
    # Metaflow's error and words for an unknown attribute, --with or not
    assert "Unknown decorator attribute" in out
    assert "Decorator 'dask' does not support the attribute 'nosuch'" in out
    assert "Traceback" not in out and "Workflow starting" not in out
    code, out = flows.run("run", "--with", "dask:scheduler", check=False)
    assert code == 1 and "key=value" in out and "Traceback" not in out
    assert "Workflow starting" not in out


def test_unreachable_scheduler_is_one_clear_line(flows: Runner) -> None:
    code, out = flows.run(
        "run", "--n", "2", "--with", "dask:scheduler=tcp://127.0.0.1:9", check=False, timeout=120
    )
    assert code == 1
    assert "Cannot reach the Dask scheduler at tcp://127.0.0.1:9" in out
    assert "resume" in out and "Traceback" not in out
