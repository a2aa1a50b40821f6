from mfstore import Flow, Run, Task, namespace


def test_smoke(history):
    r1 = history.run(tags=["a"])
    r2 = history.run(tags=["a", "b"])
    f = Flow("HelloFlow")
    assert f.latest_run.id == r2.run_number
    assert [r.id for r in f.runs("a")] == [r2.run_number, r1.run_number]
    run = Run(r1.pathspec)
    assert run.data.step_no == 1
    assert run.successful and run.finished
    assert [s.id for s in run] == ["end", "start"]
    t = run["start"].task
    assert t.stdout == "hello from start\n"
    assert isinstance(t, Task)
