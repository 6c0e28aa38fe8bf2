"""The rating web app (flanlab/rate/app.py, store.py, stats.py): endpoints, CSRF, GET-is-safe, path traversal,
escaping, restart-and-continue, exports, statistics against hand-computed values, and (slow) the real
SmolLM2 preset against the tiny model end to end."""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import json
import math
import re
import threading
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from flanlab.cli import main as cli_main
from flanlab.rate.app import RateApp, make_server
from flanlab.rate.stats import summarize, wilson_interval
from flanlab.rate.store import Store

SCRIPT_ANSWER = "<script>alert('pwned')</script> & <b>bold</b>"
PROMPT_WITH_HTML = "Describe <img src=x onerror=alert(1)> in one line."


def write_run(folder: Path, models=("model-x", "model-y"), untrained=("model-y",)) -> Path:
    """An open-gen folder written by hand: 4 prompts x len(models) answers; one answer is a script tag, one
    prompt contains HTML, and one answer is empty."""
    prompts = [
        ("creativity-01", "creativity", "zero_shot", "Write a haiku about tea."),
        ("planning-01", "planning", "zero_shot", "Plan a picnic."),
        ("planning-01-cot", "planning", "cot", "Plan a picnic. Let's think step by step."),
        ("explanation-01", "explanation", "zero_shot", PROMPT_WITH_HTML),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for m_index, model in enumerate(models):
        for p_index, (pid, cat, variant, text) in enumerate(prompts):
            answer = f"answer {p_index}.{m_index}"
            if model == models[0] and pid == "creativity-01":
                answer = SCRIPT_ANSWER
            if model == models[-1] and pid == "planning-01":
                answer = ""
            rows.append({"model": model, "prompt_id": pid, "category": cat, "variant": variant, "prompt": text,
                         "answer": answer, "untrained": model in untrained, "new_tokens": 5, "stopped": "eos"})
    (folder / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = {"format": "flanlab-open-gen/1", "generation": {"decoding": "greedy", "max_new_tokens": 8,
                "chat_template": True}, "models": {m: {"untrained": m in untrained} for m in models}}
    (folder / "settings.json").write_text(json.dumps(settings))
    return folder


@contextlib.contextmanager
def running(run_dir: Path, port: int = 0, db=None):
    """The rating app served on 127.0.0.1 in a thread; yields (app, server)."""
    app = RateApp(run_dir, db)
    server = make_server(app, "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield app, server
    finally:
        server.shutdown()
        server.server_close()
        app.close()


class Client:
    """A minimal HTTP client with a cookie jar that does not follow redirects (so statuses can be checked)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        hdrs = {"Host": f"127.0.0.1:{self.port}"}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            hdrs["Content-Length"] = str(len(body.encode()))
        hdrs.update(headers or {})
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body.encode() if body is not None else None)
        resp = conn.getresponse()
        data = resp.read()
        for value in resp.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        conn.close()
        return resp.status, resp.headers, data

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, form=None, **kw):
        return self.request("POST", path, form=form if form is not None else {}, **kw)


def hidden(html: bytes, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"'.encode(), html)
    assert match, f"no hidden field {name!r} in the page"
    return match.group(1).decode()


def login(client: Client, name: str) -> None:
    status, _, body = client.get("/")
    assert status == 200
    status, headers, _ = client.post("/login", {"name": name, "csrf": hidden(body, "csrf")})
    assert status == 303 and headers["Location"] == "/rate"


def rate_next(client: Client, choice: str) -> bytes:
    """Rate the pair currently shown; returns that rating page."""
    status, _, page = client.get("/rate")
    assert status == 200
    status, headers, _ = client.post("/rate", {"csrf": hidden(page, "csrf"), "item": hidden(page, "item"),
                                               "choice": choice})
    assert status == 303 and headers["Location"] == "/rate"
    return page


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path / "run")


# ----------------------------------------------------------------------------------------------------------
# endpoints


def test_sign_in_rate_and_the_stored_side_decides_the_winner(run_dir):
    with running(run_dir) as (app, server):
        client = Client(server.port)
        login(client, "Alice")
        rater = app.store.rater("Alice")
        expected = app.order(rater)
        page = rate_next(client, "left")
        info = app.prompts[expected[0].prompt_id]
        import html as html_mod

        assert html_mod.escape(info["prompt"]).encode() in page
        assert b"pair 1 of 4" in page
        for model in app.models:  # blind: no model name anywhere in the page
            assert model.encode() not in page
        ratings = app.store.ratings()
        assert len(ratings) == 1
        left, right = app.sides(rater, expected[0])
        assert ratings[0]["left_model"] == left and ratings[0]["right_model"] == right
        assert ratings[0]["winner"] == left and ratings[0]["rater"] == "Alice"
        page2 = rate_next(client, "tie")
        assert b"pair 2 of 4" in page2
        assert app.store.ratings()[1]["winner"] is None


def test_post_without_or_with_wrong_csrf_token_is_403(run_dir):
    with running(run_dir) as (app, server):
        client = Client(server.port)
        status, _, _ = client.post("/login", {"name": "Mallory"})  # no token, no login cookie
        assert status == 403
        client.get("/")
        status, _, _ = client.post("/login", {"name": "Mallory", "csrf": "forged"})
        assert status == 403
        login(client, "Bob")
        _, _, page = client.get("/rate")
        item = hidden(page, "item")
        for form in ({"item": item, "choice": "left"}, {"item": item, "choice": "left", "csrf": "forged"},
                     {"item": item, "choice": "left", "csrf": ""}):
            status, _, _ = client.post("/rate", form)
            assert status == 403
        status, _, _ = client.post("/logout", {})
        assert status == 403
        stranger = Client(server.port)  # no session at all, even with Bob's token
        status, _, _ = stranger.post("/rate", {"item": item, "choice": "left", "csrf": hidden(page, "csrf")})
        assert status == 403
        status, _, _ = client.post("/rate", {"item": item, "choice": "left", "csrf": hidden(page, "csrf")},
                                   headers={"Origin": "http://evil.example"})
        assert status == 403
        assert app.store.ratings() == []
        status, _, _ = client.post("/rate", {"item": item, "choice": "sideways", "csrf": hidden(page, "csrf")})
        assert status == 400
        status, _, _ = client.post("/rate", {"item": "0" * 32, "choice": "left", "csrf": hidden(page, "csrf")})
        assert status == 400
        assert app.store.ratings() == []
        status, _, _ = client.post("/logout", {"csrf": hidden(page, "csrf")})
        assert status == 303
        status, headers, _ = client.get("/rate")  # signed out: back to the sign-in page
        assert status == 303 and headers["Location"] == "/"


def test_get_never_changes_state(run_dir):
    with running(run_dir) as (app, server):
        client = Client(server.port)
        login(client, "Carol")
        _, _, page = client.get("/rate")
        query = urlencode({"csrf": hidden(page, "csrf"), "item": hidden(page, "item"), "choice": "left"})
        for path in (f"/rate?{query}", f"/?{query}", f"/results?{query}"):
            status, _, _ = client.get(path)
            assert status == 200
        status, _, _ = client.get("/login")
        assert status == 405
        status, _, _ = client.get("/logout")
        assert status == 405
        status, _, _ = client.request("PUT", "/rate", form={"choice": "left"})
        assert status == 405
        assert app.store.ratings() == []
        _, _, again = client.get("/rate")
        assert hidden(again, "item") == hidden(page, "item")  # still the same, unrated pair


@pytest.mark.parametrize("path", [
    "/../../etc/passwd", "/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd",
    "/static/app.js/../../answers.jsonl", "/answers.jsonl", "/ratings.sqlite", "/settings.json", "//etc/passwd",
    "/static/", "/static/style.css%00.py", "/static/../flanlab/rate/app.py", "/%2e%2e/ratings.sqlite", "/rate/",
])
def test_paths_outside_the_route_table_are_404(run_dir, path):
    with running(run_dir) as (app, server):
        status, _, body = Client(server.port).get(path)
        assert status == 404
        assert b"root:" not in body and b"model-x" not in body and b"SQLite" not in body


def test_wrong_host_header_is_refused(run_dir):
    with running(run_dir) as (app, server):
        status, _, _ = Client(server.port).get("/", headers={"Host": "attacker.example"})
        assert status == 403
        status, _, _ = Client(server.port).get("/", headers={"Host": f"localhost:{server.port}"})
        assert status == 200


def test_model_text_is_escaped_and_scripts_are_limited_to_our_file(run_dir):
    with running(run_dir) as (app, server):
        client = Client(server.port)
        login(client, "Dana")
        pages = []
        for _ in range(len(app.pairs)):
            pages.append(rate_next(client, "right"))
        joined = b"\n".join(pages)
        assert b"&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in joined
        assert b"Describe &lt;img src=x onerror=alert(1)&gt; in one line." in joined
        assert b"(empty answer)" in joined
        for page in pages:
            assert b"<script>alert" not in page and b"<img src=x" not in page and b"<b>bold" not in page
            assert re.findall(rb"<script[^>]*>", page) == [b'<script src="/static/app.js" defer>']
        status, headers, _ = client.get("/rate")
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert b"All done" in _


def test_restart_on_the_same_database_continues_where_the_rater_left_off(run_dir):
    with running(run_dir) as (app, server):
        port = server.port
        client = Client(port)
        login(client, "Erin")
        rater = app.store.rater("Erin")
        order = app.order(rater)
        sides = {p: app.sides(rater, p) for p in order}
        rate_next(client, "left")
        rate_next(client, "right")
        # Committed at once: a second connection sees both ratings while the server still runs.
        other = Store(run_dir / "ratings.sqlite", readonly=True)
        assert len(other.ratings()) == 2
        other.close()
    with running(run_dir, port=port) as (app2, server2):
        assert app2.order(rater) == order and all(app2.sides(rater, p) == s for p, s in sides.items())
        status, _, page = client.get("/rate")  # the same session cookie still works
        assert status == 200 and b"pair 3 of 4" in page
        assert app2.next_pair(rater) == (order[2], 2)
        again = Client(server2.port)
        login(again, "erin")  # names are case-insensitive: the same rater
        _, _, page2 = again.get("/rate")
        assert b"pair 3 of 4" in page2 and hidden(page2, "item") == hidden(page, "item")
        assert [r["winner"] for r in app2.store.ratings()] == [sides[order[0]][0], sides[order[1]][1]]


def test_double_submit_keeps_the_first_rating(run_dir):
    with running(run_dir) as (app, server):
        client = Client(server.port)
        login(client, "Finn")
        _, _, page = client.get("/rate")
        form = {"csrf": hidden(page, "csrf"), "item": hidden(page, "item")}
        assert client.post("/rate", {**form, "choice": "left"})[0] == 303
        assert client.post("/rate", {**form, "choice": "right"})[0] == 303
        ratings = app.store.ratings()
        assert len(ratings) == 1 and ratings[0]["choice"] == "left"


def test_results_page_plot_and_exports(run_dir, tmp_path):
    with running(run_dir) as (app, server):
        client = Client(server.port)
        login(client, "Gus")
        for choice in ("left", "right", "tie"):
            rate_next(client, choice)
        status, _, page = client.get("/results")
        assert status == 200
        assert b"3 ratings by 1 raters" in page and b"Wilson" in page
        assert b"model-y <span class=\"untrained\">(UNTRAINED)</span>" in page
        status, headers, png = client.get("/results.png")
        assert status == 200 and headers["Content-Type"] == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
        status, headers, data = client.get("/export.csv")
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert rows[0]["category"] == "all" and int(rows[0]["n"]) == 3
        assert sum(int(r["n"]) for r in rows if r["category"] != "all") == 3
        status, _, data = client.get("/export.json")
        doc = json.loads(data)
        assert doc["untrained_models"] == ["model-y"] and len(doc["ratings"]) == 3
        assert doc["summary"][0]["wins_a"] + doc["summary"][0]["ties"] + doc["summary"][0]["wins_b"] == 3
        assert "Wilson" in doc["method"]
        status, _, data = client.get("/ratings.csv")
        assert [r["rater"] for r in csv.DictReader(io.StringIO(data.decode()))] == ["Gus"] * 3
        web_csv = client.get("/export.csv")[2].decode()
    # The CLI export reads the same database without a server.
    assert cli_main(["rate", str(run_dir), "--export", str(tmp_path / "out.csv")]) == 0
    assert (tmp_path / "out.csv").read_text() == web_csv
    assert cli_main(["rate", str(run_dir), "--export", str(tmp_path / "out.json"),
                     "--export-ratings", str(tmp_path / "ratings.csv")]) == 0
    assert json.loads((tmp_path / "out.json").read_text())["summary"] == doc["summary"]
    assert len((tmp_path / "ratings.csv").read_text().splitlines()) == 4
    assert cli_main(["rate", str(run_dir), "--export", str(tmp_path / "out.txt")]) == 1


def test_export_without_a_database_names_it(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    assert cli_main(["rate", str(run), "--export", str(tmp_path / "x.csv")]) == 1
    assert "no ratings database at" in capsys.readouterr().err and not (run / "ratings.sqlite").exists()


def test_app_refuses_folders_without_two_models(tmp_path):
    with pytest.raises(FileNotFoundError, match="no answers"):
        RateApp(tmp_path)
    one = write_run(tmp_path / "one", models=("solo",), untrained=())
    with pytest.raises(ValueError, match="only one model"):
        RateApp(one)


def test_pairs_cover_every_model_pair_and_orders_differ_per_rater(tmp_path):
    run = write_run(tmp_path / "run", models=("m1", "m2", "m3"), untrained=())
    app = RateApp(run)
    try:
        assert len(app.pairs) == 4 * 3
        orders = [app.order(app.store.rater(name)) for name in ("r1", "r2", "r3", "r4")]
        assert all(sorted(o, key=lambda p: p.key) == sorted(app.pairs, key=lambda p: p.key) for o in orders)
        assert len({tuple(o) for o in orders}) > 1
        lefts = [app.sides(app.store.rater("r1"), p)[0] == p.model_a for p in app.pairs]
        assert 0 < sum(lefts) < len(lefts)  # both sides occur
    finally:
        app.close()


def test_cli_serves_on_loopback_and_stops_on_ctrl_c(run_dir):
    import os
    import signal
    import subprocess
    import sys

    # Ctrl-C as a terminal sends it: SIGINT with its default action, even where this test runs in a background
    # job (a non-interactive shell starts those with SIGINT ignored, and Python then keeps ignoring it)
    proc = subprocess.Popen([sys.executable, "-m", "flanlab.cli", "rate", str(run_dir), "--port", "0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        url = None
        for line in proc.stdout:
            match = re.search(r"open (http://127\.0\.0\.1:(\d+)/)", line)
            if match:
                url, port = match.group(1), int(match.group(2))
                break
        assert url, proc.stderr.read()
        status, _, body = Client(port).get("/")
        assert status == 200 and b"Blind pairwise rating" in body
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "WARNING" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_warns_loudly_for_a_non_loopback_host(run_dir, monkeypatch, capsys):
    import flanlab.rate.app as app_module

    class Stub:  # stands in for the server: nothing is bound to a public address in this test
        url = "http://0.0.0.0:1/"

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    monkeypatch.setattr(app_module, "make_server", lambda *a, **k: Stub())
    app_module.serve(run_dir, host="0.0.0.0", port=1)
    err = capsys.readouterr().err
    assert "WARNING: binding to '0.0.0.0'" in err and "no passwords" in err
    app_module.serve(run_dir, host="127.0.0.1", port=1)
    assert "WARNING" not in capsys.readouterr().err


def test_quiet_keeps_the_untrained_note(run_dir, monkeypatch, capsys):
    """--quiet drops the start-up info lines but not the note that a model is UNTRAINED (random weights)."""
    import flanlab.rate.app as app_module
    from flanlab import log

    class Stub:  # stands in for the server
        url = "http://127.0.0.1:1/"

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    monkeypatch.setattr(app_module, "make_server", lambda *a, **k: Stub())
    log.setup("quiet")
    try:
        app_module.serve(run_dir, host="127.0.0.1", port=1)
    finally:
        log.setup("normal")
    err = capsys.readouterr().err
    assert "[flanlab] warning: rate: UNTRAINED (random weights, answers are meaningless): model-y" in err
    assert "pairs from" not in err and "ratings database" not in err  # the info lines: dropped by --quiet


# ----------------------------------------------------------------------------------------------------------
# statistics


def _ratings(pair, category, wins_a, ties, wins_b):
    a, b = pair
    return ([{"model_a": a, "model_b": b, "category": category, "winner": a}] * wins_a
            + [{"model_a": a, "model_b": b, "category": category, "winner": None}] * ties
            + [{"model_a": a, "model_b": b, "category": category, "winner": b}] * wins_b)


def test_stats_match_hand_computed_wilson_intervals():
    # Hand computation, z = 1.96 (z^2 = 3.8415):
    #  creativity: 6 wins, 2 ties, 2 losses -> p = (6 + 1)/10 = 0.7; 1 + z^2/n = 1.38415;
    #    centre = (0.7 + 0.19207)/1.38415 = 0.64449; half = 1.96*sqrt(0.021 + 0.0096037)/1.38415 = 0.24771
    #    -> [0.3968, 0.8922]
    #  planning: 0 wins, 0 ties, 4 losses -> p = 0; upper = z^2/(n + z^2) = 3.8415/7.8415 = 0.4899 -> [0, 0.4899]
    #  all: 6 wins, 2 ties, 6 losses -> p = 0.5; half = 1.96*sqrt(0.25/14 + 3.8415/784)/1.27439 = 0.2320
    #    -> [0.2680, 0.7320]
    ratings = _ratings(("A", "B"), "creativity", 6, 2, 2) + _ratings(("A", "B"), "planning", 0, 0, 4)
    rows = {r["category"]: r for r in summarize(ratings)}
    assert list(rows) == ["all", "creativity", "planning"]
    assert (rows["creativity"]["wins_a"], rows["creativity"]["ties"], rows["creativity"]["wins_b"]) == (6, 2, 2)
    assert rows["creativity"]["win_rate_a"] == pytest.approx(0.7)
    assert rows["creativity"]["ci_low"] == pytest.approx(0.3968, abs=1e-4)
    assert rows["creativity"]["ci_high"] == pytest.approx(0.8922, abs=1e-4)
    assert rows["planning"]["win_rate_a"] == 0.0
    assert rows["planning"]["ci_low"] == pytest.approx(0.0, abs=1e-12)
    assert rows["planning"]["ci_high"] == pytest.approx(0.4899, abs=1e-4)
    assert (rows["all"]["n"], rows["all"]["win_rate_a"]) == (14, 0.5)
    assert rows["all"]["ci_low"] == pytest.approx(0.2680, abs=1e-4)
    assert rows["all"]["ci_high"] == pytest.approx(0.7320, abs=1e-4)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))  # no ratings, no interval


def test_stats_keep_pairs_apart_and_reject_foreign_winners():
    ratings = _ratings(("A", "B"), "creativity", 1, 0, 0) + _ratings(("A", "C"), "creativity", 0, 1, 0)
    pairs = {(r["model_a"], r["model_b"], r["category"]): r["n"] for r in summarize(ratings)}
    assert pairs == {("A", "B", "all"): 1, ("A", "B", "creativity"): 1, ("A", "C", "all"): 1,
                     ("A", "C", "creativity"): 1}
    with pytest.raises(ValueError, match="neither"):
        summarize([{"model_a": "A", "model_b": "B", "category": "x", "winner": "Z"}])


# ----------------------------------------------------------------------------------------------------------
# the real model against the tiny one, end to end


@pytest.mark.slow
def test_smollm2_against_tiny_llama_end_to_end(tmp_path):
    from flanlab.models import PRESETS, preset_available

    ok, why = preset_available(PRESETS["smollm2-135m-instruct"])
    if not ok:  # checked here rather than with the smollm2 fixture, so the model is loaded once, by open-gen
        pytest.skip(f"SmolLM2 preset not available: {why}")
    import torch

    out = tmp_path / "og"
    threads = torch.get_num_threads()
    try:  # one thread: on a machine shared with other jobs, two threads ran ~10x slower here
        assert cli_main(["open-gen", "--model", "smollm2-135m-instruct", "--model", "tiny-llama", "--limit", "3",
                         "--max-new-tokens", "24", "--device", "cpu", "--threads", "1", "-o", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    rows = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    settings = json.loads((out / "settings.json").read_text())
    assert settings["models"]["smollm2-135m-instruct"]["prompt_format"] == "chat template"
    assert settings["models"]["tiny-llama"]["untrained"] is True
    smol = [r for r in rows if r["model"] == "smollm2-135m-instruct"]
    assert all(r["answer"].strip() for r in smol), smol  # the real model writes something for every prompt
    with running(out) as (app, server):
        assert len(app.pairs) == 3
        client = Client(server.port)
        login(client, "Real")
        for choice in ("left", "right", "tie"):
            rate_next(client, choice)
        assert b"All done" in client.get("/rate")[2]
        doc = json.loads(client.get("/export.json")[2])
        assert doc["summary"][0]["n"] == 3 and doc["untrained_models"] == ["tiny-llama"]


def test_csv_cells_with_line_breaks_commas_and_quotes_read_back_whole():
    """A cell holding "\\r" (left unquoted by csv's minimal quoting with "\\n" line ends: the row split in two),
    "\\n", "," or '"' reads back as written through csv.reader, in both exports."""
    from flanlab.rate.stats import RATING_FIELDS, SUMMARY_FIELDS, ratings_csv, summary_csv

    odd = ["a\rb", "a\nb", 'a,"b"', "a\r\nb"]
    ratings = [{**{k: f"{k}-{i}" for k in RATING_FIELDS}, "rater": text, "category": text, "id": i}
               for i, text in enumerate(odd)]
    rows = list(csv.reader(io.StringIO(ratings_csv(ratings), newline="")))
    assert rows[0] == list(RATING_FIELDS) and len(rows) == 1 + len(odd)
    for row, text in zip(rows[1:], odd):
        cell = dict(zip(RATING_FIELDS, row))
        assert cell["rater"] == text and cell["category"] == text and cell["model_b"].startswith("model_b-")
    summary = [{**{k: k for k in SUMMARY_FIELDS}, "model_a": text, "n": 3, "win_rate_a": 0.5} for text in odd]
    rows = list(csv.reader(io.StringIO(summary_csv(summary), newline="")))
    assert [r[0] for r in rows[1:]] == odd and all(r[SUMMARY_FIELDS.index("win_rate_a")] == "0.500000" for r in rows[1:])
