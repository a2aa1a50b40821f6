"""The UI in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
driven by selenium; no browser is downloaded). Screenshots go to the test's tmp dir."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def server(ui_file):
    import uvicorn

    from mfstore.ui import create_app

    app = create_app(ui_file.path)
    sock = socket.socket()  # bound here and handed over: no other process can take the port
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # a safety net only
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=60)
    sock.close()
    app.state.reader.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "Debian's chromium and chromium-driver are test requirements (.ci/run installs them)"
    )
    profile = tempfile.mkdtemp(prefix="mfstore-ui-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1300,1000",
    ):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _shot(driver, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 5000


def test_browse_filter_run_dag_task_log_compare(server, browser, ui_file, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    errors: list[str] = []

    # the flow list
    browser.get(server + "/")
    assert browser.find_element(By.ID, "flows").is_displayed()
    _shot(browser, tmp_path, "1-flows")
    errors += _console_errors(browser)
    browser.find_element(By.LINK_TEXT, "ManyFlow").click()
    wait.until(ec.presence_of_element_located((By.ID, "runs")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.run-row")) == 50
    chart = browser.find_elements(By.CSS_SELECTOR, "#duration-chart canvas")
    assert chart and chart[0].is_displayed()  # uPlot drew the run durations
    errors += _console_errors(browser)

    # filter by a tag through the form
    box = browser.find_element(By.ID, "tag-input")
    box.send_keys("t3")
    browser.find_element(By.ID, "apply").click()
    wait.until(ec.url_contains("tag=t3"))
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.run-row")
    assert len(rows) == 20  # runs 3, 8, ..., 98 of ManyFlow
    assert all("t3" in r.text for r in rows)
    _shot(browser, tmp_path, "2-filtered")
    errors += _console_errors(browser)

    # a real run: the DAG is drawn and visible
    browser.get(server + "/UiFlow")
    browser.find_element(By.LINK_TEXT, ui_file.ok_run).click()
    dag = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "svg.dag")))
    assert dag.size["height"] > 200 and dag.size["width"] > 150
    nodes = browser.find_elements(By.CSS_SELECTOR, "svg.dag g.node")
    assert {n.get_attribute("data-step") for n in nodes} >= {"start", "work", "end"}
    assert browser.find_element(By.CSS_SELECTOR, "svg.timeline").is_displayed()
    # the tag <script> shows as text, and ran nothing
    assert "<script>alert('tag')</script>" in browser.find_element(By.ID, "run-summary").text
    _shot(browser, tmp_path, "3-run")
    errors += _console_errors(browser)

    # open a task from the DAG (step 'start', then its task): the log is visible
    browser.find_element(By.CSS_SELECTOR, 'svg.dag a g.node[data-step="start"]').click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "a.task-link"))).click()
    log = wait.until(ec.visibility_of_element_located((By.ID, "log-stdout")))
    assert "starting <b>bold</b> \\x1b[31mred\\x1b[0m" in log.text and "progress 3" in log.text
    _shot(browser, tmp_path, "4-task")
    errors += _console_errors(browser)

    # compare two runs from the run list's checkboxes
    browser.get(server + "/UiFlow")
    boxes = browser.find_elements(By.CSS_SELECTOR, 'input[name="run"]')
    for box in (boxes[0], boxes[-1]):  # the newest (alpha 0.9) and the oldest (alpha 0.5)
        box.click()
    browser.find_element(By.ID, "compare-button").click()
    table = wait.until(ec.visibility_of_element_located((By.ID, "compare-params")))
    assert "alpha" in table.text
    assert browser.find_elements(By.CSS_SELECTOR, "#compare-params tr.differ")
    _shot(browser, tmp_path, "5-compare")
    errors += _console_errors(browser)
    assert errors == []


def test_static_export_works_from_file_urls(ui_file, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from mfstore.ui import export_site

    out = tmp_path / "site"
    export_site(ui_file.path, out, runs=3)
    browser.get((out / "index.html").as_uri())
    browser.find_element(By.LINK_TEXT, "UiFlow").click()
    browser.find_element(By.LINK_TEXT, ui_file.ok_run).click()
    assert browser.find_element(By.CSS_SELECTOR, "svg.dag").is_displayed()
    browser.find_element(By.CSS_SELECTOR, 'svg.dag a g.node[data-step="end"]').click()
    browser.find_element(By.CSS_SELECTOR, "a.task-link").click()
    assert "done 0.85" in browser.find_element(By.ID, "log-stdout").text
    _shot(browser, tmp_path, "export-task")
    assert _console_errors(browser) == []
