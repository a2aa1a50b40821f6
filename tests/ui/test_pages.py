"""Every page of ``mfstore ui`` through Starlette's TestClient, on real runs."""

from __future__ import annotations

import functools
import html
import operator
import re

import pytest

from .conftest import (
    BASE_MS,
    EVIL_TAG,
    HOUR_MS,
    MANY,
    many_run_id,
    many_status,
    many_tags,
    many_user,
)

RUN_LINK = re.compile(r'class="run-link" href="/ManyFlow/(\d+)"')


def run_ids(text: str) -> list[str]:
    return RUN_LINK.findall(text)


def older_link(text: str) -> str | None:
    m = re.search(r'<a href="([^"]+)" id="older">', text)
    return html.unescape(m.group(1)) if m else None


def walk(client, url: str) -> list[list[str]]:
    """Every page of a run list, following the 'older' links."""
    pages = []
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text[-500:]
        pages.append(run_ids(r.text))
        url = older_link(r.text)
        assert len(pages) < 10
    return pages


def expected(pred) -> list[str]:
    """ManyFlow run ids matching pred, newest first (the reference filter)."""
    return [many_run_id(i) for i in reversed(range(MANY)) if pred(i)]


def test_flows_page(client, ui_file):
    r = client.get("/")
    assert r.status_code == 200
    assert 'href="/UiFlow"' in r.text and 'href="/ManyFlow"' in r.text
    row = r.text[r.text.index('href="/ManyFlow"') :].split("</tr>")[0]
    assert f'<td class="num">{MANY}</td>' in row
    assert "st-running" in row  # the newest ManyFlow run is still running
    assert "user0, user1, user2" in row
    assert "Content-Security-Policy" in r.headers


def test_run_list_pagination_boundaries(client):
    pages = walk(client, "/ManyFlow")
    assert [len(p) for p in pages] == [50, 50, 1]
    assert functools.reduce(operator.iadd, pages, []) == expected(lambda i: True)
    # a filter matching exactly one page's worth: no 'older' link
    r = client.get("/ManyFlow?tag=even")
    assert len(run_ids(r.text)) == 50 and older_link(r.text) is not None
    tail = walk(client, "/ManyFlow?tag=even")
    assert functools.reduce(operator.iadd, tail, []) == expected(lambda i: i % 2 == 0) and [
        len(p) for p in tail
    ] == [50, 1]


@pytest.mark.parametrize(
    "query, pred",
    [
        ("tag=odd", lambda i: i % 2 == 1),
        ("tag=odd&tag=t3", lambda i: i % 2 == 1 and i % 5 == 3),
        ("tag=even&tag=odd", lambda i: False),
        ("tag=nosuchtag", lambda i: False),
        ("namespace=user:user1", lambda i: many_user(i) == "user1"),
        ("namespace=user:user1&tag=t0", lambda i: many_user(i) == "user1" and i % 5 == 0),
        ("user=user2", lambda i: many_user(i) == "user2"),
        ("status=failed", lambda i: many_status(i) == "failed"),
        ("status=running", lambda i: many_status(i) == "running"),
        ("status=successful&tag=t1", lambda i: many_status(i) == "successful" and i % 5 == 1),
        ("since=2024-01-03", lambda i: BASE_MS + i * HOUR_MS >= BASE_MS + 2 * 24 * HOUR_MS),
        ("until=2024-01-01", lambda i: BASE_MS + i * HOUR_MS < BASE_MS + 24 * HOUR_MS),
        (
            "since=2024-01-02&until=2024-01-03&tag=even&status=failed",
            lambda i: 24 <= i < 72 and i % 2 == 0 and many_status(i) == "failed",
        ),
    ],
)
def test_run_list_filters(client, query, pred):
    got = functools.reduce(operator.iadd, walk(client, "/ManyFlow?" + query), [])
    assert got == expected(pred)


def test_run_list_shows_status_tags_and_parameters(client, ui_file):
    r = client.get("/UiFlow")
    assert r.status_code == 200
    assert run_ids(r.text) == [] and ui_file.ok_run in r.text
    row = r.text[r.text.index(f'data-run="{ui_file.ok_run}"') :].split("</tr>")[0]
    assert "st-successful" in row and "alpha=0.5" in row and "label=&#34;base&#34;" in row
    assert html.escape(EVIL_TAG) in row.replace("&#34;", "&quot;").replace("&#39;", "&#x27;")
    row = r.text[r.text.index(f'data-run="{ui_file.resumed_run}"') :].split("</tr>")[0]
    assert f"resumed {ui_file.failed_run}" in row


def test_bad_filter_input_is_one_line_error(client):
    r = client.get("/ManyFlow?status=weird")
    assert r.status_code == 400 and "bad status" in r.text
    r = client.get("/ManyFlow?since=yesterday")
    assert r.status_code == 400 and "YYYY-MM-DD" in r.text
    r = client.get("/ManyFlow?before_ts=abc")
    assert r.status_code == 400
    assert client.get("/NoSuchFlow").status_code == 404
    assert client.get("/UiFlow/999").status_code == 404
    assert client.get("/UiFlow/999/start").status_code == 404


def test_run_page_dag_timeline_tasks(client, ui_file):
    r = client.get(f"/UiFlow/{ui_file.ok_run}")
    assert r.status_code == 200
    dag = r.text[r.text.index('<svg class="dag"') : r.text.index("</svg>")]
    steps = re.findall(r'data-step="([^"]+)"', dag)
    assert set(steps) == {"start", "a", "b", "join", "fan", "work", "collect", "end"}
    assert '<g class="node st-successful" data-step="work">' in dag and "3 tasks · " not in dag
    assert ">3 tasks<" in dag  # foreach fan-out count
    assert "1 task · split" in dag and "1 task · foreach" in dag and "1 task · join" in dag
    assert f'href="/UiFlow/{ui_file.ok_run}/work"' in dag
    assert 'class="edge foreach"' in dag
    timeline = r.text[r.text.index('<svg class="timeline"') :]
    assert "bar st-failed" in timeline  # the first try of work 'y'
    assert re.search(r'class="bar st-successful retry"', timeline)  # its retry
    assert "#1</text>" in timeline
    assert 'id="tasks"' in r.text and r.text.count('class="task-link"') == 11  # incl. _parameters


def test_failed_and_resumed_run_pages(client, ui_file):
    r = client.get(f"/UiFlow/{ui_file.failed_run}")
    assert '<g class="node st-failed" data-step="end">' in r.text
    r = client.get(f"/UiFlow/{ui_file.resumed_run}")
    assert 'id="origin"' in r.text and f'href="/UiFlow/{ui_file.failed_run}"' in r.text
    assert "cloned from" in r.text and f"UiFlow/{ui_file.failed_run}/start/1" in r.text


def test_step_page(client, ui_file):
    r = client.get(f"/UiFlow/{ui_file.ok_run}/work")
    assert r.status_code == 200
    assert r.text.count('class="task-link"') == 4  # three tasks, one of them tried twice
    assert r.text.count('<tr class="retry">') == 1


def _task_url(client, run, step, nth=0):
    r = client.get(f"/UiFlow/{run}/{step}")
    links = re.findall(r'class="task-link" href="([^"]+)"', r.text)
    return html.unescape(links[nth]).split("?")[0]


def test_task_page_logs_artifacts_metadata(client, ui_file):
    r = client.get(_task_url(client, ui_file.ok_run, "start"))
    assert r.status_code == 200
    log = r.text[r.text.index('id="log-stdout"') :]
    # markup shown literally, the escape character shown as \x1b
    assert "starting &lt;b&gt;bold&lt;/b&gt; \\x1b[31mred\\x1b[0m" in log
    assert "\x1b" not in r.text
    assert re.search(r'<td class="ts">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}Z</td>', log)
    arts = r.text[r.text.index('id="artifacts"') :].split("</table>")[0]
    assert "html" in arts and "&#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in arts
    assert "<script>alert(1)" not in r.text
    assert '["x", "y", "z"]' in html.unescape(arts)
    assert re.search(r'<code title="[0-9a-f]{40}">[0-9a-f]{12}</code>', arts)
    assert 'id="metadata"' in r.text


def test_task_page_attempts_and_exception(client, ui_file):
    # the failed 'end' of the failed run: exception type (never unpickled) and stderr tail
    r = client.get(_task_url(client, ui_file.failed_run, "end"))
    exc = r.text[r.text.index('id="exception"') :].split("</div>")[0]
    assert "asked to fail &lt;i&gt;now&lt;/i&gt;" in exc and "ValueError" in exc
    assert "not unpickled" in exc or "The attempt failed" in exc
    # the retried 'work' task: two attempts, attempt 0 failed
    links = re.findall(
        r'class="task-link" href="([^"]+)"', client.get(f"/UiFlow/{ui_file.ok_run}/work").text
    )
    retried = next(html.unescape(u) for u in links if "attempt=1" in u)
    r = client.get(retried.replace("attempt=1", "attempt=0"))
    assert r.status_code == 200
    assert r.text.count("<tr") and 'id="exception"' in r.text and "first try of y fails" in r.text
    r = client.get(retried)
    assert 'id="exception"' not in r.text and "working on y" in r.text
    assert client.get(retried.replace("attempt=1", "attempt=7")).status_code == 404


def test_non_plain_artifact_shows_type_and_size_only(client, ui_file):
    r = client.get(_task_url(client, ui_file.failed_run, "end"))
    arts = r.text[r.text.index('id="artifacts"') :].split("</table>")[0]
    row = arts[arts.index("<td>_exception</td>") :].split("</tr>")[0]
    assert "not plain data: not shown" in row and "bytes" in row


def test_log_paging(client, ui_file, monkeypatch):
    from mfstore.ui import pages

    url = _task_url(client, ui_file.ok_run, "start")
    monkeypatch.setattr(pages.Reader.log_page, "__defaults__", (1,))
    r = client.get(url)
    lines = re.findall(r'<td class="line">(.*?)</td>', r.text.split('id="log-stderr"')[0])
    assert len(lines) == 1
    more = re.search(r'<a href="([^"]+)" class="more" id="more-stdout">', r.text)
    assert more is not None
    seen = [lines[0]]
    nxt = html.unescape(more.group(1))
    while nxt:
        r = client.get(nxt)
        part = r.text.split('id="log-stdout-lines">')[1].split("</tbody>")[0]
        seen += re.findall(r'<td class="line">(.*?)</td>', part)
        m = re.search(r'<a href="([^"]+)" class="more" id="more-stdout">', r.text)
        nxt = html.unescape(m.group(1)) if m else None
        assert len(seen) < 50
    total = int(
        re.search(r"stdout <span class=\"muted\">attempt \d+, (\d+) lines", r.text).group(1)
    )
    assert len(seen) == total and len(seen) >= 2


def test_compare(client, ui_file):
    r = client.get(f"/compare?runs=UiFlow/{ui_file.ok_run},UiFlow/{ui_file.failed_run}")
    assert r.status_code == 200
    params = r.text[r.text.index('id="compare-params"') :].split("</table>")[0]
    assert re.search(r'<tr class="differ"><th>alpha</th><td>0.5</td><td>0.9</td>', params)
    assert re.search(r'<tr class="same"><th>label</th>', params)
    arts = r.text[r.text.index('id="compare-artifacts"') :].split("</table>")[0]
    assert re.search(r'<tr class="same"><th>results</th>.*?equal</td>', arts, re.S)
    assert re.search(r'<tr class="differ"><th>alpha</th>', arts)
    scal = r.text[r.text.index('id="compare-scalars"') :].split("</table>")[0]
    assert re.search(r"<th>accuracy</th><td class=\"num\">0.85", scal)
    assert 'id="compare-durations"' in r.text and "<th>work</th>" in r.text
    assert "&lt;script&gt;alert(" in r.text
    # repeated run= parameters (the run list's compare form) work too
    r2 = client.get(f"/compare?run=UiFlow/{ui_file.ok_run}&run=UiFlow/{ui_file.failed_run}")
    assert r2.status_code == 200
    assert client.get(f"/compare?runs=UiFlow/{ui_file.ok_run}").status_code == 400
    assert client.get("/compare?runs=UiFlow/1,UiFlow/2").status_code == 404


def test_search(client, ui_file):
    r = client.get("/search")
    assert r.status_code == 200 and 'id="search-form"' in r.text
    r = client.get("/search?flow=ManyFlow&artifact=metric&value=42")
    hits = re.findall(r'href="/ManyFlow/(\d+)/end/', r.text)
    assert hits == [many_run_id(42)]
    r = client.get("/search?flow=ManyFlow&artifact=metric&min=10&max=12")
    assert re.findall(r'href="/ManyFlow/(\d+)/end/', r.text) == [
        many_run_id(i) for i in (12, 11, 10)
    ]
    r = client.get("/search?flow=UiFlow&artifact=label&value=base")
    assert f'href="/UiFlow/{ui_file.ok_run}/end/' in r.text
    r = client.get('/search?flow=UiFlow&artifact=items&value=["x","y","z"]')
    assert f'href="/UiFlow/{ui_file.ok_run}/start/' in r.text
    assert client.get("/search?flow=ManyFlow&artifact=metric&min=abc").status_code == 400


def test_search_is_bounded_and_continues(client, monkeypatch):
    from mfstore.ui import reader

    monkeypatch.setattr(reader, "SEARCH_SCAN", 30)
    r = client.get("/search?flow=ManyFlow&artifact=half&value=10")  # runs 20 and 21
    assert re.findall(r'href="/ManyFlow/(\d+)/end/', r.text) == []
    found = []
    url = older_link(r.text)
    while url:
        r = client.get(url)
        found += re.findall(r'href="/ManyFlow/(\d+)/end/', r.text)
        url = older_link(r.text)
    assert found == [many_run_id(21), many_run_id(20)]


def test_static_files_are_shipped(client):
    for name in ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css", "app.css", "app.js"):
        r = client.get("/_static/" + name)
        assert r.status_code == 200 and len(r.content) > 100


def test_escaping_everywhere(client, ui_file):
    """No page carries the hostile tag's markup unescaped."""
    urls = ["/", "/UiFlow", f"/UiFlow/{ui_file.ok_run}", f"/UiFlow?tag={EVIL_TAG}",
            f"/compare?runs=UiFlow/{ui_file.ok_run},UiFlow/{ui_file.failed_run}",
            f"/search?flow=UiFlow&artifact=html&value={EVIL_TAG}", f"/{EVIL_TAG}"]  # fmt: skip
    for url in urls:
        r = client.get(url)
        assert EVIL_TAG not in r.text, url
        assert "<script>alert" not in r.text, url
    r = client.get(f"/UiFlow?tag={EVIL_TAG}")
    assert run_ids(r.text) == [] and f'data-run="{ui_file.ok_run}"' in r.text
    assert r.text.count('class="run-row"') == 1


def test_many_flow_tags_shown(client):
    r = client.get("/ManyFlow")
    row = r.text[r.text.index(f'data-run="{many_run_id(MANY - 1)}"') :].split("</tr>")[0]
    for t in many_tags(MANY - 1):
        assert f'<span class="tag">{t}</span>' in row
