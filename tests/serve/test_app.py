"""`dfseg app` in a real browser: Debian's chromium driven by Playwright, headless, against the
app started on a free loopback port on a fake run (random N model with spread-out scores) that
also holds what training, `dfseg bench` and `dfseg errors` leave in a run folder."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from serve_fixtures import free_port, plant_run_files

pytest.importorskip("gradio", reason="the app extra is not installed")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def app_run(serve_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("app-run") / "exp"
    shutil.copytree(serve_run, run)
    plant_run_files(run)
    return run


@pytest.fixture(scope="module")
def app_url(app_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import os
    import subprocess
    import time

    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("app-log") / "app.log"
    command = [sys.executable, "-m", "dfseg", "app", str(app_run), "--port", str(port)]
    env = {**os.environ, "DFSEG_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with log.open("w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def browser(app_url: str) -> Iterator[object]:
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object, app_url: str) -> Iterator[object]:
    """A fresh page of the app for each test."""
    tab = browser.new_page(viewport={"width": 1280, "height": 1400})  # type: ignore[attr-defined]
    tab.goto(app_url)
    tab.wait_for_selector("#predict", timeout=TIMEOUT_MS)
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def shapes_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    image = np.full((240, 320, 3), 30, np.uint8)
    cv2.circle(image, (90, 120), 45, (60, 200, 240), -1)
    cv2.rectangle(image, (180, 60), (290, 170), (240, 80, 40), -1)
    path = tmp_path_factory.mktemp("app-image") / "shapes.png"
    cv2.imwrite(str(path), image)
    return path


def _counts(run: Path, image: Path, thresholds: list[float]) -> dict[float, int]:
    """Detections of the run's model on the image at each threshold (as the app must show)."""
    from dfseg.runtime.predictor import load_predictor

    predictor = load_predictor(run, threads=1)
    bgr = cv2.imread(str(image))
    return {conf: len(predictor(bgr, conf=conf)) for conf in thresholds}


def _set_conf(page: object, conf: float, expected: int) -> None:
    box = page.locator("#conf input[type=number]")  # type: ignore[attr-defined]
    box.fill(str(conf))
    box.press("Enter")
    page.wait_for_function(  # type: ignore[attr-defined]
        "n => document.querySelector('#summary').innerText.startsWith(n + ' detections')",
        arg=expected, timeout=TIMEOUT_MS,
    )  # fmt: skip


def _table_rows(page: object) -> int:
    """Data rows the detections table shows (its header row is not one)."""
    rows = page.locator("#detections [role=row]")  # type: ignore[attr-defined]
    return sum(
        1 for i in range(rows.count()) if rows.nth(i).locator("[role=columnheader]").count() == 0
    )


def _conf_pair(run: Path, image: Path) -> tuple[tuple[float, int], tuple[float, int]]:
    """Two thresholds (on the slider's 0.001 grid, between the model's own top scores) whose
    detection counts differ and stay small, so the table shows every row."""
    from dfseg.runtime.predictor import load_predictor

    scores = load_predictor(run, threads=1)(cv2.imread(str(image)), conf=0.0).scores
    top = np.sort(scores)[::-1]
    candidates = sorted({float(np.floor(top[i] * 1000) / 1000) for i in (1, 4, 8)}, reverse=True)
    counts = _counts(run, image, candidates)
    usable = [(conf, n) for conf, n in counts.items() if 0 < n <= 15]
    assert len({n for _, n in usable}) >= 2, f"no two small, different counts: {counts}"
    return usable[0], usable[-1]


def test_predict_shows_the_result_and_the_table_follows_the_threshold(
    page: object, app_run: Path, shapes_image: Path
) -> None:
    (first_conf, first), (second_conf, second) = _conf_pair(app_run, shapes_image)
    page.locator("#input-image input[type=file]").set_input_files(str(shapes_image))  # type: ignore[attr-defined]
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    _set_conf(page, first_conf, first)
    page.wait_for_selector("#result-image img", state="visible", timeout=TIMEOUT_MS)  # type: ignore[attr-defined]
    assert _table_rows(page) == first
    _set_conf(page, second_conf, second)
    assert _table_rows(page) == second != first
    page.click("#predict")  # type: ignore[attr-defined]
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    assert page.inner_text("#summary").startswith(f"{second} detections")  # type: ignore[attr-defined]


def test_run_tab_shows_curves_plots_bench_and_errors(page: object) -> None:
    page.get_by_role("tab", name="Run").click()  # type: ignore[attr-defined]
    page.get_by_text("Training curves (results.csv)").first.wait_for(timeout=TIMEOUT_MS)  # type: ignore[attr-defined]
    assert page.locator("img[src*='PR_curve']").count() >= 1  # type: ignore[attr-defined]
    assert page.get_by_text("passed").count() >= 1  # type: ignore[attr-defined]  # bench row
    assert page.locator("img[src*='background-00000_a']").count() >= 1  # type: ignore[attr-defined]
    assert page.get_by_text("best.pt (checkpoint fp32) - bench: passed").count() == 0  # type: ignore[attr-defined]


def test_a_file_that_is_not_an_image_is_a_message_and_the_app_keeps_working(
    page: object, tmp_path: Path, shapes_image: Path
) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    page.locator("#input-image input[type=file]").set_input_files(str(fake))  # type: ignore[attr-defined]
    page.wait_for_timeout(1000)  # type: ignore[attr-defined]
    page.click("#predict")  # type: ignore[attr-defined]
    message = page.get_by_text("Error").first  # type: ignore[attr-defined]
    message.wait_for(timeout=TIMEOUT_MS)  # raises when no message appears
    assert message.is_visible()
    assert page.locator("#result-image img").count() == 0  # nothing was predicted  # type: ignore[attr-defined]
    page.locator("#input-image input[type=file]").set_input_files(str(shapes_image))  # type: ignore[attr-defined]
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    page.click("#predict")  # type: ignore[attr-defined]
    result = page.wait_for_selector("#result-image img", timeout=TIMEOUT_MS)  # type: ignore[attr-defined]
    assert result is not None and result.is_visible()
