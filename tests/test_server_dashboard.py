"""The dashboard in a real browser: Debian's chromium driven by Selenium (headless).

It logs in with an admin token, sees a sweep with a running trial (agent, heartbeat, learning
curve), and sees it update without a reload as reports and results arrive; for a sweep of
``method: ace`` it draws ACE's predictions of untried combinations and the effect heatmap.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hypergraph.server import TokenStore, create_app

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
_MISSING = not (Path(CHROMIUM).exists() and Path(DRIVER).exists())
pytestmark = pytest.mark.skipif(
    _MISSING and not os.environ.get("CI"),
    reason="chromium and chromium-driver are not installed (make setup installs them; "
    "the test runs in CI)")

SPEC: dict[str, Any] = {
    "method": "random", "metric": {"name": "val.accuracy", "goal": "maximize"}, "run_cap": 3,
    "parameters": {"dataset": {"value": "iris"}, "model": {"value": "mlp"},
                   "trainer.epochs": {"value": 3},
                   "model.lr": {"distribution": "log_uniform_values", "min": 0.001,
                                "max": 0.1}}}


def _serve(app: Any) -> tuple[Any, str]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _browser(tmp: Path, size: str = "1400,1000") -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                f"--window-size={size}", f"--user-data-dir={tmp / 'chromium'}"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def test_dashboard_login_and_live_updates(tmp_path: Path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    app = create_app(url, heartbeat_interval=1, grace_period=30, maintain_every=0)
    tokens = TokenStore(url)
    admin, agent = tokens.create("admin", "boss")[0], tokens.create("agent", "gpu-7")[0]
    app.state.service.create(SPEC, "live")
    server, base = _serve(app)
    hdr = {"Authorization": f"Bearer {agent}"}
    browser = _browser(tmp_path)
    try:
        wait = WebDriverWait(browser, 30, poll_frequency=0.1,
                             ignored_exceptions=[StaleElementReferenceException])
        browser.get(base + "/")
        browser.find_element(By.ID, "token").send_keys("hg_wrong")
        browser.find_element(By.ID, "login-button").click()
        wait.until(lambda b: "Invalid" in b.find_element(By.ID, "login-error").text)
        browser.find_element(By.ID, "token").send_keys(admin)
        browser.find_element(By.ID, "login-button").click()
        section = '[data-sweep="live"]'

        def shown(b: Any) -> str:  # read in one script: the page redraws every 1.5 s
            return str(b.execute_script(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
                section))

        wait.until(lambda b: "0 / 3 finished" in shown(b))
        assert not browser.find_element(By.ID, "login").is_displayed()
        browser.execute_script("window.__noReload = true;")
        # an agent takes a trial and reports two epochs: the running table and curve update
        trial = httpx.post(f"{base}/api/trials/claim", json={"agent": "node7:42"},
                           headers=hdr).json()
        tid, lease = trial["trial_id"], trial["lease"]
        for step, value in ((1, 0.55), (2, 0.71)):
            assert httpx.post(f"{base}/api/trials/{tid}/report", headers=hdr, json={
                "lease": lease, "step": step, "value": value}).status_code == 200
        httpx.post(f"{base}/api/trials/{tid}/heartbeat", headers=hdr, json={"lease": lease})
        wait.until(lambda b: "gpu-7/node7:42" in shown(b))
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f'{section} path[data-trial]'))
        text = shown(browser)
        assert "s ago" in text and "0.71" in text
        browser.save_screenshot(str(tmp_path / "dashboard-running.png"))
        # the result arrives: progress and leaderboard update, still without a reload
        assert httpx.post(f"{base}/api/trials/{tid}/finish", headers=hdr, json={
            "lease": lease, "state": "complete", "value": 0.71}).status_code == 200
        wait.until(lambda b: "1 / 3 finished" in shown(b))
        assert "complete" in shown(browser)
        assert browser.execute_script("return window.__noReload === true;")
        browser.save_screenshot(str(tmp_path / "dashboard.png"))
        assert (tmp_path / "dashboard.png").stat().st_size > 10_000
        docs = os.environ.get("HYPERGRAPH_DOCS_SCREENSHOT")
        if docs:  # refresh the docs' picture: HYPERGRAPH_DOCS_SCREENSHOT=docs/guides/...png
            shutil.copy(tmp_path / "dashboard-running.png", docs)
    finally:
        browser.quit()
        server.should_exit = True


ACE_SPEC: dict[str, Any] = {
    "method": "ace", "metric": {"name": "val.accuracy", "goal": "maximize"}, "run_cap": 8,
    "parameters": {"dataset": {"value": "iris"}, "model": {"values": ["mlp", "logreg"]},
                   "traversal": {"values": ["comprehensive", "random_walk", "uniform",
                                            "loss_topk"]},
                   "manager": {"values": ["static", "reweight"]},
                   "trainer.epochs": {"value": 3}}}
_EFFECT = {"mlp": 0.06, "logreg": -0.06, "comprehensive": 0.03, "random_walk": -0.01,
           "uniform": -0.02, "loss_topk": 0.0, "static": 0.01, "reweight": -0.01}


def test_dashboard_shows_ace_predictions_and_effects(tmp_path: Path) -> None:
    """An ACE sweep with 5 results and one running trial: the dashboard draws the predicted
    score +- std of untried combinations and the slot x choice heatmap (values on hover), and
    redraws them when a result arrives, without a reload."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    app = create_app(url, heartbeat_interval=1, grace_period=30, maintain_every=0)
    tokens = TokenStore(url)
    admin, agent = tokens.create("admin", "boss")[0], tokens.create("agent", "gpu-3")[0]
    app.state.service.create(ACE_SPEC, "ace-demo")
    server, base = _serve(app)
    hdr = {"Authorization": f"Bearer {agent}"}

    def claim() -> dict[str, Any]:
        got: dict[str, Any] = httpx.post(f"{base}/api/trials/claim", headers=hdr, timeout=60,
                                         json={"agent": "node3:7"}).json()
        score = 0.85 + sum(_EFFECT[got["params"][k]] for k in ("model", "traversal", "manager"))
        for step in (1, 2):  # a learning curve rising to the score
            httpx.post(f"{base}/api/trials/{got['trial_id']}/report", headers=hdr, timeout=30,
                       json={"lease": got["lease"], "step": step,
                             "value": score - 0.1 / step}).raise_for_status()
        got["score"] = score
        return got

    def finish(got: dict[str, Any]) -> None:
        httpx.post(f"{base}/api/trials/{got['trial_id']}/finish", headers=hdr, timeout=30,
                   json={"lease": got["lease"], "state": "complete",
                         "value": got["score"]}).raise_for_status()

    for _ in range(5):
        finish(claim())
    running = claim()
    browser = _browser(tmp_path, "1400,1500")
    try:
        wait = WebDriverWait(browser, 40, poll_frequency=0.1,
                             ignored_exceptions=[StaleElementReferenceException])
        browser.get(base + "/")
        browser.find_element(By.ID, "token").send_keys(admin)
        browser.find_element(By.ID, "login-button").click()
        panel = '[data-ace="ace-demo"]'

        def read(b: Any) -> dict[str, Any]:  # one script: the page redraws every 1.5 s
            return dict(b.execute_script("""
                const p = document.querySelector(arguments[0]);
                if (!p) return {text: "", rows: [], cells: []};
                const t = (e) => {
                  const x = e.querySelector("title");
                  return x ? x.textContent : "";
                };
                return {text: p.innerText,
                        rows: [...p.querySelectorAll("g.ace-pred")].map(t),
                        cells: [...p.querySelectorAll("g.ace-cell")].map(
                            (e) => [e.dataset.slot, e.dataset.choice, t(e),
                                    e.querySelector("rect").getAttribute("fill")])};""", panel))

        shown = wait.until(lambda b: (r := read(b))["rows"] and r)
        assert "fitted on 5 complete trials" in shown["text"]
        assert len(shown["rows"]) == 10 and all(" ± " in row for row in shown["rows"])
        assert "predicted" in shown["rows"][0]
        # the heatmap: one cell per slot choice, values on hover, mlp better (bluer) than logreg
        cells = {(slot, choice): (title, fill) for slot, choice, title, fill in shown["cells"]}
        assert len(cells) == 2 + 4 + 2
        assert cells[("model", "mlp")][0].startswith("model = mlp: effect +")
        assert cells[("model", "logreg")][0].startswith("model = logreg: effect -")
        browser.execute_script("window.__noReload = true;")
        finish(running)  # a result arrives: ACE is fitted again and the panels redrawn
        wait.until(lambda b: "fitted on 6 complete trials" in read(b)["text"])
        assert browser.execute_script("return window.__noReload === true;")
        running = claim()  # one trial running in the picture
        wait.until(lambda b: "Running (1)" in str(b.execute_script(
            "return document.querySelector('[data-sweep=\"ace-demo\"]').innerText")))
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-sweep] path[data-trial]"))
        section = browser.find_element(By.CSS_SELECTOR, '[data-sweep="ace-demo"]')
        section.screenshot(str(tmp_path / "dashboard-ace.png"))
        assert (tmp_path / "dashboard-ace.png").stat().st_size > 10_000
        docs = os.environ.get("HYPERGRAPH_DOCS_SCREENSHOT_ACE")
        if docs:  # refresh the docs' picture: =docs/guides/dashboard-ace.png
            shutil.copy(tmp_path / "dashboard-ace.png", docs)
    finally:
        browser.quit()
        server.should_exit = True
