"""Metaflow 2.19.39's own tutorials (``metaflow/tutorials``, shipped with Metaflow) run on
mfstore's runtime with the import changed, and their notebooks' Client API code runs
against the result (cells extracted and run as one script, plots drawn with matplotlib's
Agg backend).

Covered: 00-helloworld, 01-playlist (+ notebook), 02-statistics (+ notebook),
03-playlist-redux (reads 02's run through the Client API inside a step),
06-statistics-redux's and 07-worldview's notebooks (all but 07's last cell).
Not run: 04-playlist-plus (``@conda``), 05-hello-cloud (``@kubernetes``) and 08-autopilot
(AWS Step Functions) need a cloud or a conda environment; 07's last cell reads
HelloCloudFlow, the run 05 makes on Kubernetes."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import metaflow
import pytest

from tests.flowfiles import rewrite_source

from .differential import Workdir

TUTORIALS = Path(metaflow.__file__).resolve().parent / "tutorials"
#: (directory, flow file) in the order the tutorials are meant to run.
FLOWS = [
    ("00-helloworld", "helloworld.py"),
    ("01-playlist", "playlist.py"),
    ("02-statistics", "stats.py"),
    ("03-playlist-redux", "playlist.py"),
]


def _cells(notebook: Path, skip: int = 0) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "\n\n".join(code[: len(code) - skip] if skip else code)


@pytest.fixture(scope="module")
def tutorials(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    pytest.importorskip("matplotlib")  # the test extra installs it
    wd = Workdir(tmp_path_factory.mktemp("tutorials"), "mfstore")
    for directory, flow in FLOWS:
        dest = wd.path / directory
        shutil.copytree(TUTORIALS / directory, dest, ignore=shutil.ignore_patterns("__pycache__"))
        (dest / flow).write_text(rewrite_source((dest / flow).read_text(), "mfstore"))
        wd.python(f"{directory}/{flow}", "run")
    return wd


def notebook(wd: Workdir, path: str, skip: int = 0) -> str:
    script = rewrite_source(_cells(TUTORIALS / path, skip), "mfstore")
    return wd.python("-c", script, MPLBACKEND="Agg").stdout


def _medians(movies_csv: Path) -> dict[str, int]:
    """02's statistic computed here from the CSV: each genre's median gross, as the flow's
    compute_statistics step defines it (a movie is in a genre when the genre's name is in
    its genres string, so "Music" also takes "Musical" movies)."""
    with open(movies_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    genres = {g for row in rows for g in row["genres"].split("|")}
    out = {}
    for genre in genres:
        gross = sorted(int(r["gross"]) for r in rows if genre in r["genres"])
        out[genre.lower()] = gross[0 if len(gross) < 2 else round(len(gross) * 0.5)]
    return out


def test_tutorial_runs(tutorials: Workdir) -> None:
    from mfstore import Flow, namespace

    namespace(None)
    db = tutorials.path / "t.mfdb"
    from mfstore.client import metadata

    metadata(str(db))
    hello = Flow("HelloFlow").latest_run
    assert hello.successful
    assert "Metaflow says: Hi!" in hello["hello"].task.stdout
    stats = Flow("MovieStatsFlow").latest_run
    medians = {g: s["quartiles"][1] for g, s in stats.data.genre_stats.items()}
    assert medians == _medians(TUTORIALS / "02-statistics" / "movies.csv")
    redux = Flow("PlayListFlow").latest_run  # 03 (the newest PlayListFlow run)
    assert "Using analysis from 'Run('MovieStatsFlow/" in redux["start"].task.stdout
    assert redux.data.playlist and len(redux.data.bonus) == 2


def test_tutorial_notebooks(tutorials: Workdir) -> None:
    out = notebook(tutorials, "01-playlist/playlist.ipynb")
    assert "Playlist for movies in genre 'Sci-Fi'" in out and "Pick 1: '" in out
    assert "Bonus Pick: '" in out and "Top Pick: '" in out
    out = notebook(tutorials, "02-statistics/stats.ipynb")
    assert "Using run: Run('MovieStatsFlow/" in out
    last = (TUTORIALS / "02-statistics" / "movies.csv").read_text().strip().splitlines()[-1]
    out = notebook(tutorials, "06-statistics-redux/stats.ipynb")
    assert f"The best movie ever made:\n{last}\n" in out
    out = notebook(tutorials, "07-worldview/worldview.ipynb", skip=1)
    for flow in ("HelloFlow", "MovieStatsFlow", "PlayListFlow"):
        assert f"{flow:<15} Last run: " in out
    assert out.count("Successful: True") == 3
