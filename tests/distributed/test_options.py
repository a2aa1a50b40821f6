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


def test_a_worker_loads_a_flow_file_not_named_py(tmp_path, monkeypatch) -> None:
    """A worker imports the run's script from its code package whatever its name (a flow
    file need not end in ``.py``), as a private module, never ``__main__``."""
    import io
    import tarfile
    import tempfile

    from mfstore.runtime.executors.worker import load_flow

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    src = (
        b"from mfstore import FlowSpec, step\n\n\nclass NoSuffixFlow(FlowSpec):\n"
        b"    @step\n    def start(self):\n        self.next(self.end)\n\n"
        b"    @step\n    def end(self):\n        pass\n"
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("noflowsuffix")
        info.size = len(src)
        tar.addfile(info, io.BytesIO(src))
    flow_cls, graph = load_flow("ab12cd34", "noflowsuffix", "NoSuffixFlow", buf.getvalue())
    assert flow_cls.__name__ == "NoSuffixFlow" and flow_cls.__module__ != "__main__"
    assert [n for n in graph.sorted_nodes] == ["start", "end"]
