"""The page in a real browser: Playwright driving the system's Chromium (never a downloaded one).

Skipped only when no Chromium is installed *and* ``GTX_REQUIRE_BROWSER`` is unset; CI sets it
(``.ci/run`` installs Debian's chromium first), so there a missing browser fails the suite.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from _serve_helpers import decode, named, noise_image, running

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium() -> str | None:
    for candidate in (os.environ.get("GTX_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


CHROMIUM = _chromium()
if CHROMIUM is None and not os.environ.get("GTX_REQUIRE_BROWSER"):
    pytest.skip("no Chromium here (apt-get install chromium); GTX_REQUIRE_BROWSER=1 makes "
                "this a failure", allow_module_level=True)


@pytest.fixture(scope="module")
def toy():
    from _export_toy import make

    return make().eval()


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM is not None, ("GTX_REQUIRE_BROWSER is set but no Chromium was found: "
                                  "apt-get install chromium (or set GTX_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, timeout=120_000)
        yield browser
        browser.close()


def test_the_page_translates_a_photo_like_the_python_api(browser, toy, tmp_path):
    from gantransfer.inference import translator

    photo = tmp_path / "photo.png"
    image = noise_image(45, 33, seed=7)
    image.save(photo)
    expected = np.asarray(toy.translate(image, direction="b2a"))
    models = (named(translator(toy, target="a2b"), "toy-a2b")
              + named(translator(toy, target="b2a"), "toy-b2a"))
    with running(models) as (client, _):
        url = str(client.base_url)
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(60_000)
        requested: list[str] = []
        problems: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("#model:not([disabled])")
        assert page.locator("#model option").all_inner_texts()[0].startswith("toy-a2b")
        assert page.locator("#style-row").is_hidden()  # no model offers styles yet

        # Keyboard: Tab walks model, format, photo, in that order (the token row is hidden).
        page.locator("body").focus()
        focused = []
        for _ in range(3):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.id"))
        assert focused == ["model", "format", "file"]

        page.select_option("#model", "toy-b2a")
        page.set_input_files("#file", str(photo))
        page.wait_for_selector("#result[data-state=done]")
        assert page.locator("#original").is_visible()
        assert page.locator("#timing").inner_text().startswith("took ")
        assert "Done in" in page.locator("#status").inner_text()
        assert page.locator("#error").is_hidden()

        with page.expect_download() as info:
            page.click("#download")
        download = info.value
        assert download.suggested_filename == "photo-toy-b2a.png"
        np.testing.assert_array_equal(decode(Path(download.path()).read_bytes()), expected)
        # the image shown is the one downloaded, at the photo's size
        shown = page.evaluate("""() => {
            const img = document.getElementById('result');
            return [img.src, img.naturalWidth, img.naturalHeight,
                    document.getElementById('download').href];
        }""")
        assert shown[0] == shown[3] and shown[0].startswith("blob:")
        assert shown[1:3] == [45, 33]

        # A file that is not an image: the server's message is shown, no result
        text = tmp_path / "notes.txt"
        text.write_text("not a photo")
        page.set_input_files("#file", str(text))
        page.wait_for_selector("#error:not([hidden])")
        assert "not an image in an allowed format" in page.locator("#error").inner_text()
        assert page.locator("#result").is_hidden()
        assert page.locator("#download").is_hidden()

        # everything came from this server: no CDN, nothing from elsewhere
        foreign = [u for u in requested if not u.startswith((url, "blob:", "data:"))]
        assert foreign == []
        assert [p for p in problems if "415" not in p] == []  # only the refused upload
        context.close()


def test_the_page_asks_for_the_token_when_the_server_has_one(browser, toy):
    from _serve_helpers import TOKEN

    from gantransfer.inference import translator

    with running(named(translator(toy, target="a2b"), "toy"), token=TOKEN) as (client, _):
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(str(client.base_url) + "/")
        page.wait_for_selector("#token-row:not([hidden])")
        page.fill("#token", "wrong-token-of-enough-length")
        page.keyboard.press("Enter")
        page.wait_for_selector("#error:not([hidden])")
        assert "not accepted" in page.locator("#error").inner_text()
        page.fill("#token", TOKEN)
        page.keyboard.press("Enter")
        page.wait_for_selector("#model:not([disabled])")
        assert page.locator("#token-row").is_hidden()
        page.close()
