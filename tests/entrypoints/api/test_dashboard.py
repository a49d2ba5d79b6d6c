"""The group dashboard: its routes over HTTP on both backends, then the page in headless Chromium (Selenium) against a
real `learnagg serve` on SQLite, and `learnagg demo --serve`."""

from __future__ import annotations

import colorsys
import csv
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.adapters.tokens import token_keys
from learnagg.domain.identity import PLATFORM_ADMIN
from learnagg.settings import Settings
from tests.entrypoints.api.dashboard_data import COURSE, FINAL, GROUP, NAMES, TITLES, hierarchy, load_known_group
from tests.entrypoints.api.support import Api, error, ok
from tests.entrypoints.cli.test_serve import free_port
from tests.support import load

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE = f"/dashboard/groups/{GROUP}"
CLI = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()"]


# --- the routes, on both backends ----------------------------------------------------------------------------------


def test_course_hierarchy_route_serves_any_signed_in_user(api: Api) -> None:
    load(api.app, hierarchy())
    response = api.as_user("u-anyone").get(f"/v1/course/hierarchy/{COURSE}")
    result = ok(response)
    assert response.json()["id"] == "api.course.hierarchy"
    assert (result["courseId"], result["name"], result["hierarchy"]) == (COURSE, "Data basics", hierarchy())
    error(api.get(f"/v1/course/hierarchy/{COURSE}"), 401, "UNAUTHORIZED_USER")
    error(api.as_user("u-anyone").get("/v1/course/hierarchy/do_missing"), 404, "COURSE_NOT_FOUND")


def test_page_and_assets_come_from_learnagg_itself(api: Api) -> None:
    page = api.get(PAGE)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "default-src 'none'" in policy
    assert f'data-group-id="{GROUP}"' in page.text and 'data-refresh-seconds="30"' in page.text
    # No external assets: every src and href is a path of this service.
    assert all(link.startswith("/dashboard/assets/") for link in re.findall(r'(?:src|href)="([^"]+)"', page.text))
    assets = ("dashboard.js", "dashboard-model.js", "dashboard.css")
    assert [link.rsplit("/", 1)[1] for link in re.findall(r'(?:src|href)="([^"]+)"', page.text)] == [
        "dashboard.css",
        "dashboard-model.js",
        "dashboard.js",
    ]
    for name in assets:
        media = "text/css" if name.endswith(".css") else "text/javascript"
        asset = api.get(f"/dashboard/assets/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(media) and asset.content
        assert "http://" not in asset.text and "https://" not in asset.text
    error(api.get("/dashboard/assets/secrets.txt"), 404, "RESOURCE_NOT_FOUND")
    error(api.get("/dashboard/assets/..%2fapp.py"), 404, "RESOURCE_NOT_FOUND")
    hostile = api.get('/dashboard/groups/a"b<script>')
    assert 'data-group-id="a&quot;b&lt;script&gt;"' in hostile.text and "<script>" not in hostile.text


# --- the page in a real browser --------------------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    tokens: dict[str, str]


@dataclass
class Browser:
    driver: Any
    downloads: Path


def wait_healthy(base: str, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`learnagg serve` on SQLite holding the known group (aggregated by the real job), refreshing every 5 s."""
    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder}/dashboard.db"
    store = Store(url)
    schema.upgrade(store)
    store.dispose()
    app = bootstrap.build(Settings(database_url=url))
    try:
        load_known_group(app)
        keys = token_keys(app.settings.auth, app.store, app.clock())
        tokens = {user: keys.mint(user, app.clock(), []) for user in NAMES}
        tokens["admin-1"] = keys.mint("admin-1", app.clock(), [PLATFORM_ADMIN])
    finally:
        app.close()
    port = free_port()
    env = {**os.environ, "LEARNAGG_DATABASE_URL": url, "LEARNAGG_DASHBOARD__REFRESH_SECONDS": "5"}
    with open(folder / "serve.log", "w") as out:
        cmd = [*CLI, "serve", "--port", str(port), "--no-jobs"]
        proc = subprocess.Popen(cmd, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield Server(base, tokens)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Headless Chromium of the Debian packages, downloads going to a temporary folder."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"{CHROMIUM} and {CHROMEDRIVER} are not installed: run `bash scripts/ensure-chromium.sh`")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield Browser(driver, downloads)
    finally:
        driver.quit()


def body_attr(browser: Browser, name: str) -> str | None:
    return browser.driver.execute_script(f"return document.body && document.body.getAttribute({name!r})")


def wait_until(browser: Browser, check: Any, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            page = browser.driver.execute_script("return document.body.innerText")
            raise AssertionError(f"timed out waiting for {what}; page state {body_attr(browser, 'data-state')}: {page}")
        time.sleep(0.1)


def open_page(browser: Browser, url: str, *, token: str | None = None, state: str = "ready") -> None:
    """Open ``url`` in a fresh tab state (sessionStorage cleared), optionally with a stored token."""
    driver = browser.driver
    # sessionStorage belongs to the origin: set it from a page of the service that runs no script.
    driver.get(url.split("/dashboard/")[0] + "/health")
    driver.execute_script("sessionStorage.clear()")
    if token is not None:
        driver.execute_script("sessionStorage.setItem('learnagg.dashboard.token', arguments[0])", token)
    driver.get(url)
    wait_until(browser, lambda: body_attr(browser, "data-state") == state, f"the page to be {state}")


def text_of(browser: Browser, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.driver.find_element(By.CSS_SELECTOR, selector).text)


def row_ids(browser: Browser) -> list[str]:
    return list(
        browser.driver.execute_script(
            "return [...document.querySelectorAll('table.members tbody tr')].map(r => r.dataset.userId)"
        )
    )


def click(browser: Browser, selector: str) -> None:
    from selenium.webdriver.common.by import By

    browser.driver.find_element(By.CSS_SELECTOR, selector).click()


def api_result(server: Server, path: str, request: dict[str, Any], user: str = "u-asha") -> Any:
    headers = {"x-authenticated-user-token": server.tokens[user]}
    response = httpx.post(f"{server.base}{path}", json={"request": request}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def best_scores(server: Server) -> tuple[dict[str, str], dict[tuple[str, str], tuple[float, float]]]:
    """Member names and each member's best (score, max) per content, from `/v1/group/activity/agg`."""
    query = {"groupId": GROUP, "activityId": COURSE, "activityType": "Course", "includeAllMembers": True}
    result = api_result(server, "/v1/group/activity/agg", query)
    names, best = {}, {}
    for row in result["members"]:
        names[row["userId"]] = row["name"]
        metrics = {m["metric"]: m["value"] for m in row["agg"]}
        for metric, value in metrics.items():
            if metric.startswith("score:"):
                key = (row["userId"], metric.removeprefix("score:"))
                if key not in best or value > best[key][0]:
                    best[key] = (value, metrics[f"max_score:{key[1]}"])
    return names, best


def expected_rgb(percent: float) -> tuple[int, int, int]:
    """The page's colour scale: hue 0 (red) at 0 % to 120 (green) at 100 %, saturation 75 %, lightness 82 %."""
    hue = round(min(100.0, max(0.0, percent)) * 1.2)
    r, g, b = colorsys.hls_to_rgb(hue / 360, 0.82, 0.75)
    return round(r * 255), round(g * 255), round(b * 255)


def rgb(css: str) -> tuple[int, int, int]:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return r, g, b


def test_signed_in_member_sees_scores_sorts_refreshes_and_downloads_csv(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser.driver
    open_page(browser, server.base + PAGE, state="signed-out")
    driver.find_element(By.ID, "token-input").send_keys(server.tokens["u-asha"])
    click(browser, "#sign-in-form button")
    wait_until(browser, lambda: body_attr(browser, "data-state") == "ready", "sign-in")

    assert text_of(browser, "#group-name") == "Thursday study group"
    names, best = best_scores(server)
    assert row_ids(browser) == ["u-asha", "u-lee", "u-ravi", "u-zoe"]  # by name
    for user_id, name in names.items():
        assert text_of(browser, f'tr[data-user-id="{user_id}"] .name') == name == NAMES[user_id]
    headers = driver.execute_script(
        "return [...document.querySelectorAll('table.members th')].map(t => t.dataset.sort)"
    )
    assert headers == ["name", "do_z_checkpoint", "do_a_final"]  # hierarchy order, not id order
    cells = 0
    for user_id in names:
        for content in TITLES:
            cell = driver.find_element(
                By.CSS_SELECTOR, f'tr[data-user-id="{user_id}"] td[data-metric="score:{content}"]'
            )
            if (user_id, content) not in best:
                assert cell.text == "—"
                continue
            score, max_score = best[(user_id, content)]
            percent = score * 100 / max_score
            assert cell.find_element(By.CSS_SELECTOR, ".value").text == f"{score!r}/{max_score!r}"
            assert cell.find_element(By.CSS_SELECTOR, ".pct").text == f"{float(f'{percent:.2f}'):g}%"
            actual = rgb(cell.value_of_css_property("background-color"))
            assert all(abs(a - e) <= 1 for a, e in zip(actual, expected_rgb(percent), strict=True)), (actual, percent)
            cells += 1
    assert cells == 5
    assert text_of(browser, 'tr[data-user-id="u-ravi"] td[data-metric="score:do_z_checkpoint"] .value') == "0.75/3.0"
    assert text_of(browser, 'tr[data-user-id="u-asha"] td[data-metric="score:do_a_final"] .pct') == "80%"
    # Activity figures and group statistics, as /v1/group/agg gives them.
    [summary] = api_result(server, "/v1/group/agg", {"groupId": GROUP})["activity"]
    stats = {m["metric"]: m["value"] for m in summary["agg"]}
    assert text_of(browser, '.figure[data-metric="enrolmentCount"] .value') == str(stats["enrolmentCount"]) == "3"
    assert text_of(browser, '.figure[data-metric="completedCount"] .value') == str(stats["completedCount"]) == "2"
    assert text_of(browser, '.figure[data-metric="completionPercentage"] .value') == "66.67%"
    for content in TITLES:
        for name in ("min", "max", "avg"):
            assert text_of(browser, f'table.stats td[data-metric="score:{content}:{name}"]') == repr(
                stats[f"score:{content}:{name}"]
            )

    # Sort by the final quiz: best first, members without a score last (by name); again: lowest first.
    click(browser, f'th[data-sort="{FINAL}"]')
    assert row_ids(browser) == ["u-zoe", "u-asha", "u-lee", "u-ravi"]
    click(browser, f'th[data-sort="{FINAL}"]')
    assert row_ids(browser) == ["u-asha", "u-zoe", "u-lee", "u-ravi"]
    click(browser, 'th[data-sort="name"]')
    click(browser, 'th[data-sort="name"]')
    assert row_ids(browser) == ["u-zoe", "u-ravi", "u-lee", "u-asha"]  # by name, descending
    click(browser, f'th[data-sort="{FINAL}"]')
    # The automatic refresh (every 5 s here) keeps the sort.
    loads = int(body_attr(browser, "data-loads") or 0)
    wait_until(browser, lambda: int(body_attr(browser, "data-loads") or 0) > loads, "an automatic refresh", 20)
    assert row_ids(browser) == ["u-zoe", "u-asha", "u-lee", "u-ravi"]
    assert driver.find_element(By.CSS_SELECTOR, f'th[data-sort="{FINAL}"]').get_attribute("aria-sort") == "descending"

    # The CSV: UTF-8, one row per member in the table's order, columns in hierarchy order, values as the API's.
    click(browser, f'section[data-activity-id="{COURSE}"] button.download')
    target = browser.downloads / f"{GROUP}-{COURSE}.csv"
    wait_until(browser, lambda: target.exists() and target.stat().st_size > 0, "the CSV download")
    with open(target, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "User id",
        "Name",
        "Checkpoint score",
        "Checkpoint max score",
        "Final quiz score",
        "Final quiz max score",
    ]
    expected = []
    for user_id in ["u-zoe", "u-asha", "u-lee", "u-ravi"]:
        row = [user_id, names[user_id]]
        for content in TITLES:
            score, max_score = best.get((user_id, content), (None, None))
            row += ["", ""] if score is None else [repr(score), repr(max_score)]
        expected.append(row)
    assert rows[1:] == expected
    assert "Zoë Müller" in target.read_text(encoding="utf-8")

    shot = tmp_path / "dashboard.png"
    assert driver.save_screenshot(str(shot))
    print(f"dashboard screenshot: {shot}")


def test_token_in_the_address_is_kept_for_the_tab_and_removed_from_the_address(
    server: Server, browser: Browser
) -> None:
    token = server.tokens["u-zoe"]
    open_page(browser, f"{server.base}{PAGE}#token={token}")
    assert browser.driver.execute_script("return location.hash") == ""
    assert "token" not in browser.driver.current_url
    assert browser.driver.execute_script("return sessionStorage.getItem('learnagg.dashboard.token')") == token
    assert row_ids(browser) == ["u-asha", "u-lee", "u-ravi", "u-zoe"]


def test_refused_and_missing_groups_are_readable_messages(server: Server, browser: Browser, tmp_path: Path) -> None:
    open_page(browser, server.base + PAGE, token=server.tokens["u-out"], state="error")
    message = text_of(browser, "#message")
    assert "You are not allowed to see this group." in message and "403" in message
    assert row_ids(browser) == []
    browser.driver.save_screenshot(str(tmp_path / "forbidden.png"))

    # A platform admin who is not a member sees the group.
    open_page(browser, server.base + PAGE, token=server.tokens["admin-1"])
    assert row_ids(browser) == ["u-asha", "u-lee", "u-ravi", "u-zoe"]

    open_page(browser, server.base + "/dashboard/groups/g-none", token=server.tokens["u-asha"], state="error")
    message = text_of(browser, "#message")
    assert "This group does not exist." in message and "g-none" in message and "404" in message

    open_page(browser, server.base + PAGE, token="not-a-token", state="signed-out")
    assert "Your token was not accepted." in text_of(browser, "#message")
    assert browser.driver.execute_script("return sessionStorage.getItem('learnagg.dashboard.token')") is None
    assert browser.driver.find_element("id", "sign-in").is_displayed()


def test_demo_serve_prints_a_dashboard_link_that_signs_in(browser: Browser, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "LEARNAGG_DATABASE_URL": f"sqlite:///{tmp_path}/demo.db"}
    cmd = [*CLI, "demo", "--serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        link = ""
        deadline = time.monotonic() + 90
        while not link.startswith("http"):
            link = lines.get(timeout=max(0.1, deadline - time.monotonic())).strip()
        assert link.startswith(f"http://127.0.0.1:{port}/dashboard/groups/grp_fod_study_circle#token=ey")
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        open_page(browser, link)
        assert row_ids(browser) == ["learner-01", "learner-02", "learner-03", "learner-04", "learner-05", "teacher-01"]
        assert text_of(browser, '.figure[data-metric="enrolmentCount"] .value') == "5"
        assert text_of(browser, '.figure[data-metric="completionPercentage"] .value') == "40%"
        shot = tmp_path / "demo-dashboard.png"
        browser.driver.save_screenshot(str(shot))
        print(f"demo dashboard screenshot: {shot}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_numbers_render_like_the_api_doubles(server: Server, browser: Browser) -> None:
    open_page(browser, server.base + PAGE, state="signed-out")
    values = [4.0, 0.75, 1.33, 2.0, -0.0, 1 / 3, 0.0001, 1e-05, 2.5e-07, 123456789.125, 1e15, 9999999999999998.0, 1e16]
    rendered = browser.driver.execute_script("return arguments[0].map(window.LearnaggDashboardModel.fmtDouble)", values)
    assert rendered == [repr(v) for v in values]
    percents = browser.driver.execute_script(
        "return arguments[0].map(window.LearnaggDashboardModel.fmtPercent)", [200 / 3, 80.0, 12.5, 0.0, 100.0]
    )
    assert percents == ["66.67%", "80%", "12.5%", "0%", "100%"]
