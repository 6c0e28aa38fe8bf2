"""The local web app for blind pairwise rating (`flanlab rate DIR`), on the standard library's HTTP server.

A rater signs in with a name; each screen shows one prompt and the answers of two different models, left and
right, and the rater picks the better one or a tie (mouse, or keys 1/2/3 or arrows left/right/down). Which
model is on which side, and the order of the pairs, are decided on the server per rater and pair (HMACs keyed
by the database's secret, see store.py) and never appear in the page: the form carries only an opaque item
token. Every rating is committed at once; after a crash or restart a rater continues with their next unrated
pair. /results shows win/tie/loss per model pair and category with Wilson intervals, a PNG plot and exports.

Security
  - binds 127.0.0.1 by default (the CLI warns loudly for any other host); while bound to a loopback address,
    requests whose Host header is not that loopback address are refused (DNS rebinding);
  - all model and user text is HTML-escaped, and the Content-Security-Policy allows only our own script and
    style files, so an answer containing <script> renders as text and could not run even if it got through;
  - GET never changes server state; every POST needs a CSRF token: the session's token for /rate and /logout, a
    double-submit cookie for /login (there is no session yet); a cross-origin Origin header is refused;
  - routes are two literal dicts (GET and POST, exact paths); nothing from the request reaches the file
    system: the page assets are Python strings served from memory.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import secrets
import sys
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from flanlab.log import get_logger
from flanlab.rate import stats
from flanlab.rate.opengen import read_answers, load_settings
from flanlab.rate.store import CHOICES, Store

log = get_logger(__name__)

MAX_BODY = 16 * 1024
MAX_NAME = 64
DB_FILE = "ratings.sqlite"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Pair:
    """One rating item: a prompt and two models, model_a < model_b."""

    prompt_id: str
    model_a: str
    model_b: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.prompt_id, self.model_a, self.model_b)


# ----------------------------------------------------------------------------------------------------------
# the application: answers, pairs, per-rater order and sides


class RateApp:
    """The answers of one open-gen folder, the pairs to rate, and the ratings store."""

    def __init__(self, run_dir: str | Path, db_path: str | Path | None = None):
        self.run_dir = Path(run_dir)
        rows = read_answers(self.run_dir)
        if not rows:
            raise FileNotFoundError(f"no answers in {self.run_dir} (expected answers.jsonl from `flanlab open-gen`)")
        self.answers: dict[tuple[str, str], str] = {}  # (model, prompt_id) -> answer
        self.prompts: dict[str, dict] = {}  # prompt_id -> {"prompt", "category", "variant"}
        self.untrained: dict[str, bool] = {}
        for row in rows:
            self.answers[(row["model"], row["prompt_id"])] = row["answer"]
            self.prompts.setdefault(row["prompt_id"], {k: row[k] for k in ("prompt", "category", "variant")})
            self.untrained[row["model"]] = bool(row.get("untrained", False)) or self.untrained.get(row["model"], False)
        settings = load_settings(self.run_dir) or {}
        for model, info in settings.get("models", {}).items():
            self.untrained[model] = bool(info.get("untrained", False)) or self.untrained.get(model, False)
        self.models = sorted({m for m, _ in self.answers})
        if len(self.models) < 2:
            raise ValueError(f"{self.run_dir}: answers from only one model ({self.models[0]}); rating needs two or more")
        self.pairs: list[Pair] = []
        for prompt_id in self.prompts:
            have = [m for m in self.models if (m, prompt_id) in self.answers]
            for i, a in enumerate(have):
                for b in have[i + 1:]:
                    self.pairs.append(Pair(prompt_id, a, b))
        self.store = Store(Path(db_path) if db_path else self.run_dir / DB_FILE)
        self._secret = self.store.secret()
        self._tokens: dict[int, dict[str, Pair]] = {}  # rater_id -> item token -> pair

    def close(self) -> None:
        self.store.close()

    def _mac(self, purpose: str, rater_id: int, pair: Pair) -> bytes:
        message = "\x1f".join((purpose, str(rater_id), *pair.key)).encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def order(self, rater_id: int) -> list[Pair]:
        """This rater's order of the pairs: a random permutation, fixed per rater by the server secret."""
        return sorted(self.pairs, key=lambda p: self._mac("order", rater_id, p))

    def sides(self, rater_id: int, pair: Pair) -> tuple[str, str]:
        """(left model, right model) for this rater and pair: a coin flip fixed by the server secret."""
        swap = self._mac("side", rater_id, pair)[0] & 1
        return (pair.model_b, pair.model_a) if swap else (pair.model_a, pair.model_b)

    def item_token(self, rater_id: int, pair: Pair) -> str:
        return self._mac("item", rater_id, pair).hex()[:32]

    def pair_for_token(self, rater_id: int, token: str) -> Pair | None:
        table = self._tokens.get(rater_id)
        if table is None:
            table = {self.item_token(rater_id, p): p for p in self.pairs}
            self._tokens[rater_id] = table
        return table.get(token)

    def next_pair(self, rater_id: int) -> tuple[Pair | None, int]:
        """(the rater's next unrated pair or None when all are done, how many of the pairs they have rated)."""
        rated = self.store.rated_pairs(rater_id)
        done = sum(1 for p in self.pairs if p.key in rated)
        for pair in self.order(rater_id):
            if pair.key not in rated:
                return pair, done
        return None, done

    def rate(self, rater_id: int, pair: Pair, choice: str) -> bool:
        left, right = self.sides(rater_id, pair)
        info = self.prompts[pair.prompt_id]
        return self.store.add_rating(rater_id, pair.prompt_id, info["category"], info["variant"], left, right, choice)


# ----------------------------------------------------------------------------------------------------------
# requests and responses


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    cookies: dict
    form: dict = field(default_factory=dict)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list = field(default_factory=list)  # extra (name, value) pairs


def redirect(location: str, headers: list | None = None) -> Response:
    return Response(status=303, body=b"", headers=[("Location", location)] + (headers or []))


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, body: str, status: int = 200, headers: list | None = None) -> Response:
    doc = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           f"<title>{esc(title)} · flanlab rate</title><link rel=\"stylesheet\" href=\"/static/style.css\">"
           "<script src=\"/static/app.js\" defer></script></head>\n"
           f"<body><header><a href=\"/\">flanlab rate</a> · <a href=\"/results\">results</a></header>\n"
           f"<main>\n{body}\n</main></body></html>\n")
    return Response(status=status, body=doc.encode("utf-8"), headers=headers or [])


def error_page(status: int, message: str) -> Response:
    phrase = HTTPStatus(status).phrase
    return page(f"{status} {phrase}", f"<h1>{status} {esc(phrase)}</h1><p>{esc(message)}</p>", status=status)


def answer_html(text: str) -> str:
    if not text.strip():
        return "<div class=\"answer empty\">(empty answer)</div>"
    return f"<div class=\"answer\">{esc(text)}</div>"


# ----------------------------------------------------------------------------------------------------------
# handlers: each takes (app, server, request) and returns a Response


def _session(app: RateApp, server, req: Request) -> tuple[str | None, dict | None]:
    token = req.cookies.get(server.session_cookie)
    return token, app.store.session(token)


def _csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def get_home(app: RateApp, server, req: Request) -> Response:
    _, session = _session(app, server, req)
    if session:
        _, done = app.next_pair(session["rater_id"])
        body = (f"<h1>Signed in as {esc(session['name'])}</h1>"
                f"<p>You have rated {done} of {len(app.pairs)} pairs.</p>"
                "<p><a class=\"button\" id=\"continue\" href=\"/rate\">Continue rating</a></p>"
                "<form method=\"post\" action=\"/logout\">"
                f"<input type=\"hidden\" name=\"csrf\" value=\"{esc(session['csrf'])}\">"
                "<button type=\"submit\" id=\"logout\">Sign out</button></form>")
        return page("rate", body)
    nonce = req.cookies.get(server.login_cookie) or ""
    headers = []
    if len(nonce) < 32:
        nonce = secrets.token_urlsafe(32)
        headers.append(("Set-Cookie", f"{server.login_cookie}={nonce}; HttpOnly; SameSite=Strict; Path=/"))
    body = ("<h1>Blind pairwise rating</h1>"
            f"<p>{len(app.pairs)} pairs of answers from {len(app.models)} models are waiting. Each screen shows a "
            "prompt and two answers in random order; pick the better answer, or a tie. Which model wrote which "
            "answer is hidden until the results.</p>"
            "<form method=\"post\" action=\"/login\" id=\"login\">"
            f"<input type=\"hidden\" name=\"csrf\" value=\"{esc(nonce)}\">"
            f"<label>Your name <input type=\"text\" name=\"name\" id=\"name\" maxlength=\"{MAX_NAME}\" required "
            "autofocus autocomplete=\"off\"></label> <button type=\"submit\">Start</button></form>"
            "<p class=\"hint\">Using the same name again continues where you left off.</p>")
    return page("sign in", body, headers=headers)


def get_rate(app: RateApp, server, req: Request) -> Response:
    _, session = _session(app, server, req)
    if not session:
        return redirect("/")
    rater_id = session["rater_id"]
    pair, done = app.next_pair(rater_id)
    if pair is None:
        body = (f"<h1>All done, {esc(session['name'])}</h1><p>You have rated all {len(app.pairs)} pairs. "
                "Thank you!</p><p><a href=\"/results\">See the results</a></p>")
        return page("all done", body)
    left, right = app.sides(rater_id, pair)
    info = app.prompts[pair.prompt_id]
    body = (f"<p class=\"progress\" id=\"progress\">{esc(session['name'])}: pair {done + 1} of {len(app.pairs)} "
            f"· {esc(info['category'])} · {esc(info['variant'])}</p>"
            f"<h2>Prompt</h2><div class=\"prompt\" id=\"prompt\">{esc(info['prompt'])}</div>"
            "<div class=\"pair\">"
            f"<section id=\"left\"><h2>Left</h2>{answer_html(app.answers[(left, pair.prompt_id)])}</section>"
            f"<section id=\"right\"><h2>Right</h2>{answer_html(app.answers[(right, pair.prompt_id)])}</section>"
            "</div>"
            "<form method=\"post\" action=\"/rate\" id=\"choose\" class=\"choices\">"
            f"<input type=\"hidden\" name=\"csrf\" value=\"{esc(session['csrf'])}\">"
            f"<input type=\"hidden\" name=\"item\" value=\"{esc(app.item_token(rater_id, pair))}\">"
            "<button type=\"submit\" name=\"choice\" value=\"left\" id=\"choose-left\">Left is better "
            "<kbd>1</kbd> <kbd>&larr;</kbd></button>"
            "<button type=\"submit\" name=\"choice\" value=\"tie\" id=\"choose-tie\">Tie "
            "<kbd>3</kbd> <kbd>&darr;</kbd></button>"
            "<button type=\"submit\" name=\"choice\" value=\"right\" id=\"choose-right\">Right is better "
            "<kbd>2</kbd> <kbd>&rarr;</kbd></button>"
            "</form>")
    return page("rate", body)


def _model_label(app: RateApp, model: str) -> str:
    return esc(model) + (" <span class=\"untrained\">(UNTRAINED)</span>" if app.untrained.get(model) else "")


def get_results(app: RateApp, server, req: Request) -> Response:
    ratings = app.store.ratings()
    rows = stats.summarize(ratings)
    raters = len({r["rater"] for r in ratings})
    lines = []
    for r in rows:
        lines.append(
            f"<tr class=\"{'all' if r['category'] == 'all' else 'cat'}\"><td>{_model_label(app, r['model_a'])}</td>"
            f"<td>{_model_label(app, r['model_b'])}</td><td>{esc(r['category'])}</td><td>{r['n']}</td>"
            f"<td>{r['wins_a']}</td><td>{r['ties']}</td><td>{r['wins_b']}</td>"
            f"<td>{r['win_rate_a']:.3f}</td><td>[{r['ci_low']:.3f}, {r['ci_high']:.3f}]</td></tr>")
    table = ("<table id=\"summary\"><thead><tr><th>model_a</th><th>model_b</th><th>category</th><th>n</th>"
             "<th>a wins</th><th>ties</th><th>b wins</th><th>a win rate</th><th>95% interval</th></tr></thead>"
             f"<tbody>{''.join(lines)}</tbody></table>") if rows else "<p id=\"summary\">No ratings yet.</p>"
    body = (f"<h1>Results</h1><p>{len(ratings)} ratings by {raters} raters over {len(app.pairs)} pairs.</p>"
            f"<p class=\"hint\">Method: {esc(stats.METHOD)}.</p>{table}"
            "<p><img src=\"/results.png\" alt=\"win/tie/loss plot\" id=\"plot\"></p>"
            "<p>Export: <a href=\"/export.csv\">summary CSV</a> · <a href=\"/export.json\">JSON (summary and "
            "ratings)</a> · <a href=\"/ratings.csv\">ratings CSV</a></p>")
    return page("results", body)


def get_results_png(app: RateApp, server, req: Request) -> Response:
    return Response(body=stats.plot_png(stats.summarize(app.store.ratings()), app.untrained), content_type="image/png")


def _download(body: str, content_type: str, filename: str) -> Response:
    return Response(body=body.encode("utf-8"), content_type=content_type,
                    headers=[("Content-Disposition", f"attachment; filename=\"{filename}\"")])


def get_export_csv(app: RateApp, server, req: Request) -> Response:
    return _download(stats.summary_csv(stats.summarize(app.store.ratings())), "text/csv; charset=utf-8", "summary.csv")


def get_export_json(app: RateApp, server, req: Request) -> Response:
    return _download(stats.results_json(app.store.ratings(), app.untrained), "application/json", "results.json")


def get_ratings_csv(app: RateApp, server, req: Request) -> Response:
    return _download(stats.ratings_csv(app.store.ratings()), "text/csv; charset=utf-8", "ratings.csv")


def get_app_js(app: RateApp, server, req: Request) -> Response:
    return Response(body=APP_JS.encode("utf-8"), content_type="text/javascript; charset=utf-8")


def get_style_css(app: RateApp, server, req: Request) -> Response:
    return Response(body=STYLE_CSS.encode("utf-8"), content_type="text/css; charset=utf-8")


def post_login(app: RateApp, server, req: Request) -> Response:
    if not _csrf_ok(req.cookies.get(server.login_cookie), req.form.get("csrf")):
        return error_page(403, "Missing or wrong CSRF token: reload the sign-in page and try again.")
    name = " ".join(req.form.get("name", "").split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        return error_page(400, f"A name must be 1 to {MAX_NAME} printable characters.")
    token, _ = app.store.new_session(app.store.rater(name))
    cookie = f"{server.session_cookie}={token}; HttpOnly; SameSite=Strict; Path=/"
    return redirect("/rate", headers=[("Set-Cookie", cookie)])


def post_rate(app: RateApp, server, req: Request) -> Response:
    _, session = _session(app, server, req)
    if not session or not _csrf_ok(session["csrf"], req.form.get("csrf")):
        return error_page(403, "Missing or wrong CSRF token or session: sign in again.")
    choice = req.form.get("choice")
    if choice not in CHOICES:
        return error_page(400, f"choice must be one of {', '.join(CHOICES)}")
    pair = app.pair_for_token(session["rater_id"], req.form.get("item", ""))
    if pair is None:
        return error_page(400, "Unknown item: reload the rating page.")
    app.rate(session["rater_id"], pair, choice)
    return redirect("/rate")


def post_logout(app: RateApp, server, req: Request) -> Response:
    token, session = _session(app, server, req)
    if not session or not _csrf_ok(session["csrf"], req.form.get("csrf")):
        return error_page(403, "Missing or wrong CSRF token or session.")
    app.store.end_session(token)
    return redirect("/", headers=[("Set-Cookie", f"{server.session_cookie}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/")])


GET_ROUTES = {
    "/": get_home,
    "/rate": get_rate,
    "/results": get_results,
    "/results.png": get_results_png,
    "/export.csv": get_export_csv,
    "/export.json": get_export_json,
    "/ratings.csv": get_ratings_csv,
    "/static/app.js": get_app_js,
    "/static/style.css": get_style_css,
}
POST_ROUTES = {
    "/login": post_login,
    "/rate": post_rate,
    "/logout": post_logout,
}


# ----------------------------------------------------------------------------------------------------------
# the HTTP server


class Handler(BaseHTTPRequestHandler):
    server_version = "flanlab-rate"

    def version_string(self) -> str:  # no Python version in the Server header
        return self.server_version

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        if self.server.verbose:
            log.info("rate: %s %s", self.address_string(), format % args)

    def _send(self, resp: Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "same-origin")  # no-referrer would make Chromium send "Origin: null"
        self.send_header("Content-Security-Policy", CSP)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def _host_ok(self) -> bool:
        if not self.server.loopback_only:
            return True
        return self.headers.get("Host", "") in self.server.allowed_hosts

    def _request(self) -> Request:
        cookies = {}
        try:
            jar = SimpleCookie(self.headers.get("Cookie", ""))
            cookies = {k: m.value for k, m in jar.items()}
        except CookieError:
            pass
        return Request(method=self.command, path=urlsplit(self.path).path, headers=dict(self.headers.items()),
                       cookies=cookies)

    def _dispatch(self, routes: dict, req: Request) -> None:
        handler = routes.get(req.path)
        if handler is None:
            other = GET_ROUTES if routes is POST_ROUTES else POST_ROUTES
            if req.path in other:
                self._send(error_page(405, f"{req.method} is not allowed here"))
            else:
                self._send(error_page(404, "No such page."))
            return
        try:
            resp = handler(self.server.app, self.server, req)
        except Exception:  # noqa: BLE001 - a broken handler must not show internals to the browser
            traceback.print_exc(file=sys.stderr)
            resp = error_page(500, "Internal error (details are in the server's terminal).")
        self._send(resp)

    def do_GET(self):  # noqa: N802 - http.server's naming
        if not self._host_ok():
            return self._send(error_page(403, "Unexpected Host header."))
        self._dispatch(GET_ROUTES, self._request())

    def do_HEAD(self):  # noqa: N802
        self.do_GET()

    def do_POST(self):  # noqa: N802
        if not self._host_ok():
            return self._send(error_page(403, "Unexpected Host header."))
        req = self._request()
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{self.headers.get('Host', '')}":
            return self._send(error_page(403, "Cross-origin request refused."))
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return self._send(error_page(400, "Bad Content-Length."))
        if length > MAX_BODY or length < 0:
            return self._send(error_page(413, "Request body too large."))
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        body = self.rfile.read(length) if length else b""
        if body and content_type != "application/x-www-form-urlencoded":
            return self._send(error_page(415, "Expected a form (application/x-www-form-urlencoded)."))
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
        except (UnicodeDecodeError, ValueError):
            return self._send(error_page(400, "Malformed form."))
        req.form = {k: v[0] for k, v in parsed.items()}
        self._dispatch(POST_ROUTES, req)

    def do_PUT(self):  # noqa: N802
        self._send(error_page(405, "Method not allowed."))

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT


class RateServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: RateApp, host: str, port: int, verbose: bool = False):
        self.app = app
        self.verbose = verbose
        super().__init__((host, port), Handler)
        self.port = self.server_address[1]
        self.loopback_only = is_loopback(host)
        self.allowed_hosts = {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]", host)}
        # Cookie names carry the port: two rating servers on one machine keep separate sign-ins.
        self.session_cookie = f"flanlab_session_{self.port}"
        self.login_cookie = f"flanlab_login_{self.port}"

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}/"


def make_server(app: RateApp, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False) -> RateServer:
    """A RateServer bound to (host, port) (port 0 picks a free one; see .port); call serve_forever()."""
    return RateServer(app, host, port, verbose=verbose)


# ----------------------------------------------------------------------------------------------------------
# page assets (served from memory)

APP_JS = r"""// flanlab rate: keyboard shortcuts on the rating page (1 or Left arrow, 2 or Right arrow, 3 or Down arrow).
(function () {
  "use strict";
  var KEYS = {"1": "left", "ArrowLeft": "left", "2": "right", "ArrowRight": "right", "3": "tie", "ArrowDown": "tie"};
  var sent = false;
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
    var choice = KEYS[event.key];
    if (!choice) return;
    var button = document.getElementById("choose-" + choice);
    if (!button) return;
    event.preventDefault();
    if (sent) return;
    sent = true;
    button.classList.add("pressed");
    button.click();
  });
  document.addEventListener("submit", function (event) {
    if (event.target && event.target.id === "choose") sent = true;
  });
})();
"""

STYLE_CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 0.6em 1.2em; background: #2d3e50; }
header a { color: #fff; text-decoration: none; margin-right: 0.4em; }
main { max-width: 72em; margin: 0 auto; padding: 1em 1.2em 3em; }
.prompt, .answer { white-space: pre-wrap; overflow-wrap: anywhere; background: #fff; border: 1px solid #ccc;
  border-radius: 4px; padding: 0.8em; font-family: ui-monospace, monospace; font-size: 0.92em; }
.answer { min-height: 6em; }
.answer.empty { color: #888; font-style: italic; }
.pair { display: flex; gap: 1em; margin-top: 1em; }
.pair section { flex: 1 1 0; min-width: 0; }
.choices { display: flex; gap: 1em; justify-content: center; margin: 1.5em 0; }
.choices button, a.button { font-size: 1.05em; padding: 0.6em 1.2em; cursor: pointer; }
button.pressed { outline: 3px solid #4c72b0; }
kbd { border: 1px solid #999; border-radius: 3px; padding: 0 0.3em; font-size: 0.85em; background: #eee; }
.progress, .hint { color: #555; }
.untrained { color: #b00; font-weight: bold; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
tr.all td { font-weight: bold; background: #f0f0f0; }
img { max-width: 100%; }
"""


# ----------------------------------------------------------------------------------------------------------
# entry point for `flanlab rate DIR`


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8765, db_path: str | Path | None = None,
          verbose: bool = True) -> None:
    """Serve the rating app until Ctrl-C. Any host other than a loopback address is warned about loudly."""
    app = RateApp(run_dir, db_path)
    if not is_loopback(host):
        bar = "!" * 100
        print(f"{bar}\nWARNING: binding to {host!r} makes the rating app reachable from other machines. It has no "
              "passwords:\nanyone who can reach this port can read every prompt and answer, sign in under any "
              "name and add ratings.\nUse the default --host 127.0.0.1 unless this network is trusted.\n"
              f"{bar}", file=sys.stderr, flush=True)
    server = make_server(app, host, port, verbose=verbose)
    untrained = [m for m in app.models if app.untrained.get(m)]
    log.info("rate: %d pairs from %d models: %s", len(app.pairs), len(app.models), ", ".join(app.models))
    if untrained:  # a warning: --quiet keeps it
        log.warning("rate: UNTRAINED (random weights, answers are meaningless): %s", ", ".join(untrained))
    log.info("rate: ratings database %s", app.store.path)
    print(f"[rate] open {server.url} in a browser (Ctrl-C stops the server; ratings are saved as they are made)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("rate: stopped")
    finally:
        server.server_close()
        app.close()
