"""The review page in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``).

Checks what only a browser can: the page loads with no console message at all (a violation of its
Content-Security-Policy would be one) and requests nothing but itself and its own ``data:``
thumbnails (Chrome DevTools ``Network`` events from the performance log); clicking a header sorts
the table (compared with numpy's sort of the same values); typing filters it (compared with a
count made here); thumbnails render at a non-zero size from 8x8 PNGs; and ``<script>`` and
``<img onerror>`` payloads in column names and cells neither run (``window.__pwned`` stays unset)
nor disappear (they show as text).

Install: ``apt-get install -y chromium chromium-driver`` and ``pip install selenium``; the module is
skipped, with the reason, when any of them is missing.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.datasets import load_digits

from dataworth.data import Dataset
from dataworth.report.html import write_report

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="needs selenium (pip install selenium)"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "needs headless Chromium and its driver: apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
CLOSE = "</script><script>window.__pwned=3</script>"
N = 80


@pytest.fixture(scope="module")
def driver():
    options = webdriver.ChromeOptions()
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """Digits rows (thumbnails) with payloads in the target name, a column name and cells."""
    d = load_digits()
    rng = np.random.default_rng(0)
    y = NAMES[d.target[:N]].astype(object)
    y[[3, 10]] = SCRIPT
    y[[5, 11]] = IMG
    y[7] = CLOSE
    data = Dataset.from_arrays(d.data[:N], y.astype(str), target_name=SCRIPT)
    values = rng.normal(size=N)
    values[4] = np.nan
    pred = NAMES[(d.target[:N] + 1) % 10]
    path = tmp_path_factory.mktemp("browser") / "report.html"
    write_report(
        path,
        data,
        {IMG: values},
        predictions=pred,
        extra_columns={SCRIPT: np.where(np.arange(N) % 2 == 0, IMG, "plain")},
        settings={IMG: CLOSE},
        title=SCRIPT,
    )
    return {"url": path.as_uri(), "values": values, "y": data.y, "pred": pred}


@pytest.fixture
def loaded(driver, page):
    driver.get_log("browser")  # drop anything left by an earlier test
    driver.get_log("performance")
    driver.get(page["url"])
    return driver


def value_column(driver) -> int:
    heads = driver.find_elements(By.CSS_SELECTOR, "#rows thead th")
    return next(i for i, h in enumerate(heads) if h.text.startswith("value"))


def shown_keys(driver, col: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#rows tbody tr'))"
        ".filter(r => !r.hidden).map(r => r.cells[arguments[0]].getAttribute('data-v'));",
        col,
    )


def test_loads_without_console_messages_or_network_requests(loaded, page):
    assert loaded.title == SCRIPT
    assert loaded.get_log("browser") == []
    events = [json.loads(e["message"])["message"] for e in loaded.get_log("performance")]
    urls = [
        e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"
    ]
    assert page["url"] in urls
    assert all(u == page["url"] or u.startswith("data:image/png;base64,") for u in urls), urls
    assert loaded.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_clicking_a_header_sorts(loaded, page):
    col = value_column(loaded)
    finite = np.sort(page["values"][np.isfinite(page["values"])])
    keys = shown_keys(loaded, col)  # as written: lowest first, NaN last
    assert [float(k) for k in keys[:-1]] == finite.tolist() and keys[-1] == ""
    button = loaded.find_elements(By.CSS_SELECTOR, "#rows thead th")[col]
    button.find_element(By.TAG_NAME, "button").click()
    keys = shown_keys(loaded, col)
    assert [float(k) for k in keys[:-1]] == finite[::-1].tolist() and keys[-1] == ""
    assert button.get_attribute("aria-sort") == "descending"
    heads = loaded.find_elements(By.CSS_SELECTOR, "#rows thead th")
    label_col = next(i for i, h in enumerate(heads) if h.text.startswith("label"))
    heads[label_col].find_element(By.TAG_NAME, "button").click()
    labels = loaded.execute_script(
        "return Array.from(document.querySelectorAll('#rows tbody tr'))"
        ".map(r => r.cells[arguments[0]].textContent);",
        label_col,
    )
    collate = loaded.execute_script(
        "const c = new Intl.Collator(undefined, {numeric: true, sensitivity: 'base'});"
        "return arguments[0].slice().sort(c.compare);",
        list(page["y"]),
    )
    assert labels == collate and heads[col].get_attribute("aria-sort") is None


def test_typing_filters(loaded, page):
    box = loaded.find_element(By.CSS_SELECTOR, 'input.filter[data-table="rows"]')
    box.send_keys("SEVEN")
    expected = int(np.sum((page["y"] == "seven") | (page["pred"] == "seven")))
    assert 0 < expected < N
    assert len(shown_keys(loaded, value_column(loaded))) == expected
    count = loaded.find_element(By.CSS_SELECTOR, '[data-count-for="rows"]').text
    assert count == f"{expected} of {N} rows"
    box.clear()
    box.send_keys(" ")  # blank after trimming: everything again
    assert len(shown_keys(loaded, value_column(loaded))) == N


def test_thumbnails_render(loaded):
    sizes = loaded.execute_script(
        "return Array.from(document.querySelectorAll('img.thumb')).map(i => "
        "[i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width, "
        "i.getBoundingClientRect().height]);"
    )
    assert len(sizes) >= N
    assert all(c and w == 8 and h == 8 and rw > 0 and rh > 0 for c, w, h, rw, rh in sizes)


def test_injected_markup_shows_as_text_and_never_runs(loaded):
    assert loaded.execute_script("return window.__pwned === undefined")
    text = loaded.find_element(By.TAG_NAME, "body").text
    for payload in (SCRIPT, IMG, CLOSE):
        assert payload in text
    assert loaded.find_element(By.TAG_NAME, "h1").text == SCRIPT
    assert loaded.execute_script("return document.querySelectorAll('img:not(.thumb)').length") == 0
    assert loaded.execute_script("return document.scripts.length") == 2
    info = json.loads(loaded.find_element(By.ID, "dataworth-data").get_attribute("textContent"))
    assert info["settings"][IMG] == CLOSE
