"""benchmarks/bench_ui.py runs end to end on a small history (figures: benchmarks/README.md)."""

from __future__ import annotations


def test_bench_ui_small(tmp_path, capsys):
    from benchmarks import bench_ui

    assert bench_ui.main(["--scale", "1000", "--iterations", "2", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| run list, newest page" in out and "| task page" in out and "| compare 2 runs" in out
    assert "1,000 runs: median / p95 / CPU median ms" in out
