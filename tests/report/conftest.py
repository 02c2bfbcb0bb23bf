"""A real headless Chromium for the report tests: the distribution's package (``apt-get install
chromium chromium-driver``, done by .ci/run), driven by selenium. Never a downloaded browser:
the binary and driver paths are given explicitly, and selenium's manager is told to stay
offline. Tests skip, saying why, where no browser is installed."""

from __future__ import annotations

import os
import shutil

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
DRIVERS = ("chromedriver",)


def _find(names: tuple[str, ...], extra: tuple[str, ...] = ()) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in extra if os.path.exists(p)), None)


@pytest.fixture(scope="session")
def browser():
    """A selenium WebDriver on headless Chromium with browser console logging on."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary = _find(BROWSERS, ("/usr/lib/chromium/chromium",))
    driver_path = _find(DRIVERS, ("/usr/lib/chromium/chromedriver",))
    if binary is None or driver_path is None:
        pytest.skip("no Chromium + chromedriver (apt-get install chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # selenium manager must never download anything
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--allow-file-access-from-files"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except Exception as exc:  # e.g. a driver that does not match the browser's version
        pytest.skip(f"cannot start headless Chromium: {type(exc).__name__}: {exc}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
