"""The page end to end in a real browser: Debian's Chromium driven by Playwright against a served checkpoint.

Also the script that takes the README's screenshots of a running page:
``python -m tests.app.test_browser --url http://127.0.0.1:7860 --out docs/images`` (it clicks, paints and runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary: apt-get install chromium (Debian package)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(args: list[str], cwd: Path, timeout: float = 180) -> tuple[subprocess.Popen, str]:
    """Start ``python -m tinymaskgit.app <args>`` on a free port; returns the process and its URL once it answers."""
    port = free_port()
    log = (cwd / f"app_{port}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinymaskgit.app", f"port={port}", f"hydra.run.dir={cwd / 'run'}", *args],
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"the app exited with {proc.returncode}:\n{(cwd / f'app_{port}.log').read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    stop(proc)
    raise AssertionError(f"the app did not answer on {url} within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def natural_size(page, selector: str) -> list[int]:
    return page.eval_on_selector(selector, "e => [e.naturalWidth, e.naturalHeight]")


def drive(
    url: str, shots: Path, junk: Path | None = None, run_sweep: bool = False, class_name: str | None = None
) -> dict[str, object]:
    """Click through the three tabs as a user would; screenshots of each into ``shots``; returns what was seen."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, object] = {}
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(url)
        # Generate: the default settings, the first class unless one is named
        if class_name:
            box = page.get_by_label("class", exact=True).first
            box.click()
            box.fill(class_name)
            page.keyboard.press("Enter")
        page.click("#generate-btn")
        page.wait_for_selector("#gen-grid img")
        page.wait_for_function("document.querySelector('#gen-info').innerText.includes('samples of')")
        seen["grid"] = natural_size(page, "#gen-grid img")
        seen["gen_info"] = page.inner_text("#gen-info")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(shots / "app_generate.png"), full_page=True)
        # Inpaint: pick a test image, paint a stroke across its middle, run
        page.get_by_role("tab", name="Inpaint").click()
        page.locator("#inp-gallery img").nth(1).click()
        page.wait_for_function("document.querySelector('#inp-note').innerText.includes('test image')")
        page.locator("#inp-editor").scroll_into_view_if_needed()  # the mouse paints only inside the viewport
        box = page.locator("#inp-editor canvas").first.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx - 50, cy)
        page.mouse.down()
        for i in range(21):
            page.mouse.move(cx - 50 + 5 * i, cy + (i % 4) * 6)
        page.mouse.up()
        page.click("#inpaint-btn")
        page.wait_for_selector("#inp-result img, .toast-body")
        if page.locator(".toast-body").count():  # an error message instead of a result
            raise AssertionError(f"inpaint showed an error: {page.locator('.toast-body').first.inner_text()}")
        page.wait_for_function("document.querySelector('#inp-info').innerText.includes('tokens generated')")
        seen["result"] = natural_size(page, "#inp-result img")
        seen["inp_info"] = page.inner_text("#inp-info")
        page.locator("#inp-result").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "app_inpaint.png"), full_page=True)
        if junk is not None:  # a file that is not a picture: a message, not a traceback
            page.set_input_files("#inp-upload input[type=file]", str(junk))
            page.get_by_text("is not an image this page can read").first.wait_for()
            seen["junk_message"] = True
        # Compare: run the small sweep (its progress bar, then the table), or open the newest sweep
        page.get_by_role("tab", name="Compare").click()
        if run_sweep:
            page.get_by_text("Run a small sweep on this checkpoint").click()
            page.locator("#sweep-backend").get_by_text("classifier", exact=True).click()  # the quick features
            page.click("#run-sweep-btn")
        else:
            page.click("#open-sweep-btn")
        page.wait_for_function("(document.querySelector('#sweep-info')?.innerText ?? '').includes('settings from')")
        seen["sweep_info"] = page.inner_text("#sweep-info")
        page.screenshot(path=str(shots / "app_compare.png"), full_page=True)
        # error toasts other than the expected one (which may already have timed out on a slow machine)
        toasts = page.locator(".toast-body").all_inner_texts()
        seen["errors"] = sum("is not an image this page can read" not in t for t in toasts)
        browser.close()
    return seen


@pytest.fixture
def app_dir(tmp_path: Path, make_cfg) -> Path:
    """A folder whose logs/ hold a reference classifier (for the in-page sweep)."""
    from tinymaskgit.train import train

    train(
        make_cfg(
            "stage=classifier", "debug=limit", "trainer.max_epochs=1", f"paths.output_dir={tmp_path / 'logs' / 'clf'}"
        )
    )
    return tmp_path


def test_page_generates_inpaints_and_sweeps_in_chromium(app_dir: Path, maskgit_ckpt: Path) -> None:
    pytest.importorskip("playwright", reason='needs Playwright: pip install -e ".[dev]"')
    junk = app_dir / "notes.txt"
    junk.write_text("this is not a picture")
    proc, url = serve([f"ckpt={maskgit_ckpt}", "limits.sweep_max_per_class=4"], app_dir)
    try:
        seen = drive(url, app_dir / "shots", junk, run_sweep=True)
    finally:
        stop(proc)
    assert seen["grid"] == [2 * (8 * 66 + 2), 2 * (2 * 66 + 2)]  # 16 samples, 8 a row, shown at 2x
    assert "16 samples of" in str(seen["gen_info"])
    assert seen["result"] == [256, 256]  # the 64-px result at the canvas's 4x
    assert "tokens generated" in str(seen["inp_info"]) and seen["junk_message"]
    assert str(seen["sweep_info"]).startswith("4 settings from")  # 2 schedules x 1 T x 2 CFG weights
    assert seen["errors"] == 0
    assert sorted(p.name for p in (app_dir / "shots").iterdir()) == [
        "app_compare.png",
        "app_generate.png",
        "app_inpaint.png",
    ]
    assert proc.poll() is not None


def test_page_without_a_model_says_how_to_make_one(tmp_path: Path) -> None:
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    proc, url = serve([f"log_dir={tmp_path / 'empty'}"], tmp_path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url)
            text = page.locator("#no-model").inner_text(timeout=60_000)
            browser.close()
    finally:
        stop(proc)
    assert "No stage-2 (MaskGIT) checkpoint was found" in text and "make demo" in text


def main() -> None:
    p = argparse.ArgumentParser(description="screenshots of a running page (README)")
    p.add_argument("--url", default="http://127.0.0.1:7860/")
    p.add_argument("--out", type=Path, default=Path("docs/images"))
    p.add_argument("--run-sweep", action="store_true")
    p.add_argument("--class-name", default=None, help="the class to generate (default: the first)")
    a = p.parse_args()
    print(drive(a.url, a.out, run_sweep=a.run_sweep, class_name=a.class_name))


if __name__ == "__main__":
    main()
