"""The rating app in a real browser (headless Chromium via selenium and the Debian chromedriver; tests/browser.py):
sign in, rate pairs by clicking and by keys, find the ratings in the results, and see that an answer holding
<script> is shown as text and runs nothing."""

from __future__ import annotations

from collections import Counter

import pytest
from browser import chromium, images_loaded
from test_rate import SCRIPT_ANSWER, running, write_run


def page_text(driver) -> str:
    """The progress line of the page now shown, else its whole text (read in one script call)."""
    return driver.execute_script(
        "var p = document.getElementById('progress');"
        "return p ? p.textContent : (document.body ? document.body.textContent : '');") or ""


@pytest.mark.browser
def test_rate_by_mouse_and_keys_then_find_the_ratings_in_the_results(tmp_path):
    run = write_run(tmp_path / "run")
    with running(run) as (app, server), chromium(tmp_path) as driver:
        from selenium.common.exceptions import (JavascriptException, NoAlertPresentException,
                                                StaleElementReferenceException)
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import WebDriverWait

        base = f"http://127.0.0.1:{server.port}"
        driver.get(base + "/")
        driver.find_element(By.ID, "name").send_keys("Browser Rater")
        driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "progress"))
        rater = app.store.rater("Browser Rater")
        order = app.order(rater)
        assert len(order) == 4

        # One rating per way of choosing: click, key 2, Down arrow, Left arrow.
        actions = [("click", "left"), ("2", "right"), (Keys.ARROW_DOWN, "tie"), (Keys.ARROW_LEFT, "left")]
        saw_script_answer = False
        expected_winners = []
        for step, (how, choice) in enumerate(actions):
            progress = driver.find_element(By.ID, "progress").text
            assert f"pair {step + 1} of 4" in progress
            pair = order[step]
            left, right = app.sides(rater, pair)
            shown = {"left": driver.find_element(By.CSS_SELECTOR, "#left .answer").text,
                     "right": driver.find_element(By.CSS_SELECTOR, "#right .answer").text}
            expected_text = {side: app.answers[(model, pair.prompt_id)] or "(empty answer)"
                             for side, model in (("left", left), ("right", right))}
            assert shown == expected_text  # the page shows the server's side assignment
            if SCRIPT_ANSWER in shown.values():
                saw_script_answer = True
                # Shown as text: the script tag is in the visible text, no <script> or <b> element came from it.
                scripts = driver.execute_script("return Array.from(document.scripts).map(s => s.src);")
                assert scripts == [base + "/static/app.js"]
                assert driver.execute_script("return document.querySelectorAll('.answer b').length;") == 0
            if how == "click":
                driver.find_element(By.ID, f"choose-{choice}").click()
            else:
                driver.find_element(By.TAG_NAME, "body").send_keys(how)
            # The choice posts a form and the next page replaces this one: read the page in one script call
            # (an element found a moment earlier may belong to the page being replaced), and retry while the
            # old page is being torn down.
            WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException, JavascriptException)).until(
                lambda d, step=step: (f"pair {step + 2} of 4" in page_text(d) if step + 1 < len(actions)
                                      else "All done" in page_text(d)))
            expected_winners.append({"left": left, "right": right, "tie": None}[choice])
        assert saw_script_answer
        assert "All done" in driver.page_source
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert  # noqa: B018 - the answer's alert() never ran

        stored = app.store.ratings()
        assert [r["choice"] for r in stored] == [c for _, c in actions]
        assert [r["winner"] for r in stored] == expected_winners

        driver.get(base + "/results")
        rows = driver.find_elements(By.CSS_SELECTOR, "#summary tbody tr")
        cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
        overall = next(c for c in cells if c[2] == "all")
        wins = Counter(expected_winners)
        assert overall[0].startswith("model-x") and overall[1].startswith("model-y (UNTRAINED)")
        assert [int(x) for x in overall[3:7]] == [4, wins["model-x"], wins[None], wins["model-y"]]
        assert sum(int(c[3]) for c in cells if c[2] != "all") == 4
        images = images_loaded(driver)
        assert len(images) == 1 and images[0]["complete"] and images[0]["width"] > 100
