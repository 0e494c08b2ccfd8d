"""One meaning of a request: every spelling of a path and of a method is
judged as the application will act on it.

Globs that add a check (protected paths, rules, what a restricted token is
refused) cover every spelling a router could resolve to a covered path;
globs that relax one (public and optional paths, what a token's --allow
grants) match only the canonical spelling. HEAD is judged as GET, a method in
any case as the upper-case method the frameworks run, and a method-override
header as the stricter of both methods. Checked through the WSGI interface,
under gunicorn and werkzeug's server (whose parsing is the point), with
Flask's HTTPMethodOverrideMiddleware and a Pyramid traversal app.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.tokens.restrictions import TokenRestrictions, parse_allow
from restauth_wsgi.tokens.store import TokenRecord

from .fake_provider import FakeProvider
from .helpers import (
    ROOT,
    claims_token,
    cli_env,
    echo_app,
    free_port,
    gunicorn_command,
    raw_request,
    serve_claims,
    server_process,
)

Issue = Callable[..., tuple[str, TokenRecord]]
BOB = claims_token(sub="bob", groups=["staff"])
ROOT_USER = claims_token(sub="root", groups=["admins"])
RITA = claims_token(sub="rita", groups=["auditors"])
RULES = """
[[rule]]
paths = ["/rest/admin/*"]
groups = ["admins"]

[[rule]]
paths = ["/api/secret"]
methods = ["GET"]
users = ["root"]

[[rule]]
paths = ["/api/items/*"]
methods = ["DELETE"]
users = ["root"]

[[rule]]
paths = ["/données/*"]
users = ["root"]
"""


def utf8(path: str) -> str:
    """A path as PEP 3333 puts it in PATH_INFO: its UTF-8 bytes as latin-1."""
    return path.encode("utf-8").decode("latin-1")


@pytest.fixture
def web(fake_provider: FakeProvider, store_url: str, tmp_path: Path) -> Callable[..., Client]:
    """The echo app behind the middleware: a claims-echoing provider and the rules above."""
    fake_provider.route("/me", serve_claims)
    provider = ProviderSettings(
        "idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me", cache_ttl=0
    )
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)

    def build(app: Any = echo_app, **changes: Any) -> Client:
        values: dict[str, Any] = {
            "token_store": store_url,
            "providers": (provider,),
            "rules_file": str(rules),
            "read_only_groups": ("auditors",),
            **changes,
        }
        return Client(RestAuthMiddleware(app, settings=Settings(**values)))

    return build


def status(
    client: Client,
    path_info: str,
    method: str = "GET",
    token: str | None = None,
    **headers: str,
) -> int:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    # PATH_INFO and REQUEST_METHOD set directly, as a server would hand them on.
    return client.open(
        "/",
        method="GET",
        headers=headers,
        environ_overrides={"PATH_INFO": path_info, "REQUEST_METHOD": method},
    ).status_code


# The spellings of /rest/ and /rest/admin/ that routers resolve to them.
PROTECTED_SPELLINGS = ["//rest/", "/x/../rest/", "/./rest/", "/rest", "/rest//x", "/x/%2e%2e/rest/"]
ADMIN_SPELLINGS = [
    "/rest/admin/",
    "//rest/admin/",
    "/rest/./admin/",
    "/rest//admin/",
    "/x/../rest/admin/",
    "/rest/admin",
    "/rest/admin/users/../",
    "/rest/%2e/admin/x",
    "\\rest\\admin\\x",
]


@pytest.mark.parametrize("path", PROTECTED_SPELLINGS)
def test_every_spelling_of_a_protected_path_needs_credentials(
    web: Callable[..., Client], path: str
) -> None:
    client = web(default_access="public", protected_paths=("/rest/*",))
    assert status(client, path) == 401
    assert status(client, "/elsewhere") == 200, "the rest stays public"


@pytest.mark.parametrize("path", ADMIN_SPELLINGS)
def test_every_spelling_of_a_ruled_path_is_ruled(web: Callable[..., Client], path: str) -> None:
    client = web()
    assert status(client, path, token=BOB) == 403
    assert status(client, path, token=ROOT_USER) == 200


@pytest.mark.parametrize(
    "path",
    ["/static/../admin", "/static//../admin", "//static/x", "/static/./x", "/static/%2e%2e/admin"],
)
def test_a_public_glob_matches_only_the_canonical_spelling(
    web: Callable[..., Client], path: str
) -> None:
    client = web(public_paths=("/static/*",))
    assert status(client, path) == 401
    assert status(client, "/static/app.js") == 200


def test_non_ascii_paths_are_matched_as_the_application_sees_them(
    web: Callable[..., Client],
) -> None:
    client = web(default_access="public", protected_paths=("/données/*",))
    assert status(client, utf8("/données/paie.csv")) == 401
    assert status(client, utf8("/données/paie.csv"), token=BOB) == 403, "the rule applies"
    assert status(client, utf8("/données/paie.csv"), token=ROOT_USER) == 200
    public = web(public_paths=("/données/*",))
    assert status(public, utf8("/données/x")) == 200
    assert status(public, "/donn\xe9es/x") == 401, "not UTF-8: not the canonical spelling"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/api/reports/q1", 200, id="granted"),
        pytest.param("/api/reports/../admin/users", 403, id="dot-dot"),
        pytest.param("/api/reports/%2e%2e/admin/users", 403, id="encoded-dot-dot"),
        pytest.param("//api/reports/q1", 403, id="double-slash"),
        pytest.param("/api/reports/./q1", 403, id="dot"),
        pytest.param("/api/admin/users", 403, id="outside"),
    ],
)
def test_a_tokens_allow_glob_grants_only_the_canonical_spelling(
    web: Callable[..., Client], issue: Issue, path: str, expected: int
) -> None:
    token, _ = issue("alice", restrictions=TokenRestrictions(allow=(("GET", "/api/reports/*"),)))
    assert status(web(), path, token=token) == expected


@pytest.mark.parametrize(
    ("method", "token", "path", "expected"),
    [
        pytest.param("HEAD", BOB, "/api/secret", 403, id="head-judged-as-get"),
        pytest.param("GET", BOB, "/api/secret", 403, id="get"),
        pytest.param("HEAD", ROOT_USER, "/api/secret", 200, id="head-for-root"),
        pytest.param("delete", BOB, "/api/items/9", 403, id="lower-case-delete"),
        pytest.param("Delete", BOB, "/api/items/9", 403, id="mixed-case-delete"),
        pytest.param("DELETE", ROOT_USER, "/api/items/9", 200, id="delete-for-root"),
        pytest.param("post", RITA, "/api/x", 403, id="read-only-group-lower-case"),
        pytest.param("HEAD", RITA, "/api/x", 200, id="read-only-group-head"),
        pytest.param("DEL\x1b[2KETE", BOB, "/api/x", 400, id="escape-in-method"),
        pytest.param("GET /x", BOB, "/api/x", 400, id="space-in-method"),
    ],
)
def test_methods_are_judged_as_the_application_runs_them(
    web: Callable[..., Client], method: str, token: str, path: str, expected: int
) -> None:
    assert status(web(), path, method=method, token=token) == expected


@pytest.mark.parametrize(
    ("method", "expected"),
    [("HEAD", 200), ("head", 200), ("GET", 200), ("delete", 403), ("POST", 403)],
)
def test_read_only_tokens_in_any_spelling(
    web: Callable[..., Client], issue: Issue, method: str, expected: int
) -> None:
    token, _ = issue("alice", restrictions=TokenRestrictions(read_only=True))
    assert status(web(), "/api/x", method=method, token=token) == expected


# A view that does not look at the method (a Django function view, a Pyramid
# view without a request_method predicate: the echo app here) runs its code
# for OPTIONS and for any method a client makes up.
@pytest.mark.parametrize("method", ["OPTIONS", "options", "FOO", "PROPFIND", "TRACE"])
def test_unrouted_methods_are_judged_as_every_method(
    web: Callable[..., Client], issue: Issue, method: str
) -> None:
    client = web()
    assert status(client, "/api/secret", method, BOB) == 403, "the GET rule covers it"
    assert status(client, "/api/items/9", method, BOB) == 403, "so does the DELETE rule"
    assert status(client, "/api/secret", method, ROOT_USER) == 200
    assert status(client, "/api/x", method, RITA) == 403, "a read-only group may not"
    read_only, _ = issue("alice", restrictions=TokenRestrictions(read_only=True))
    assert status(client, "/api/x", method, read_only) == 403
    reports, _ = issue("alice", restrictions=TokenRestrictions(allow=(("GET", "/api/r/*"),)))
    assert status(client, "/api/r/1", method, reports) == 403, "GET does not grant it"
    anything, _ = issue("alice", restrictions=TokenRestrictions(allow=(("*", "/api/r/*"),)))
    assert status(client, "/api/r/1", method, anything) == 200
    # Overridden to such a method, a GET is judged so too.
    assert status(client, "/api/secret", "GET", BOB, **{"X-HTTP-Method-Override": method}) == 403


@pytest.mark.parametrize("entry", ["OPTIONS /api/*", "foo /api/*", "TRACE /x"])
def test_allow_refuses_a_method_that_is_judged_as_every_method(entry: str) -> None:
    with pytest.raises(ValueError, match=r"judged as every method.*write '\*'"):
        parse_allow(entry)


OVERRIDES = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"]


@pytest.mark.parametrize("header", OVERRIDES)
def test_an_override_header_is_judged_as_the_stricter_method(
    web: Callable[..., Client], issue: Issue, header: str
) -> None:
    client = web()
    assert status(client, "/api/items/9", "POST", BOB, **{header: "DELETE"}) == 403
    assert status(client, "/api/items/9", "POST", BOB, **{header: "delete"}) == 403
    assert status(client, "/api/items/9", "POST", ROOT_USER, **{header: "DELETE"}) == 200
    read_only, _ = issue("alice", restrictions=TokenRestrictions(read_only=True))
    assert status(client, "/api/x", "GET", read_only, **{header: "DELETE"}) == 403
    assert status(client, "/api/x", "GET", RITA, **{header: "PUT"}) == 403
    assert status(client, "/api/x", "POST", BOB, **{header: "DEL\x1bETE"}) == 400


def http_method_override(app: Any) -> Any:
    """Flask's documented HTTPMethodOverrideMiddleware (patterns/methodoverrides)."""
    allowed = frozenset(["GET", "HEAD", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"])
    bodyless = frozenset(["GET", "HEAD", "OPTIONS", "DELETE"])

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper()
        if method in allowed:
            environ["REQUEST_METHOD"] = method
        if method in bodyless:
            environ["CONTENT_LENGTH"] = "0"
        return app(environ, start_response)

    return middleware


@pytest.fixture
def flask_items() -> tuple[Any, list[str]]:
    """A Flask app whose DELETE view records what it deleted, and for whom."""
    from flask import Flask, request

    deleted: list[str] = []
    app = Flask(__name__)

    @app.route("/api/items/<item>", methods=["GET", "POST", "DELETE"])
    def item(item: str) -> str:
        if request.method == "DELETE":
            deleted.append(f"{item} by {request.environ.get('REMOTE_USER')}")
        return "ok"

    return app, deleted


def test_flask_method_override_cannot_delete_past_a_rule(
    web: Callable[..., Client], issue: Issue, flask_items: tuple[Any, list[str]]
) -> None:
    app, deleted = flask_items
    client = web(app=http_method_override(app.wsgi_app))
    override = {"X-HTTP-Method-Override": "DELETE"}
    assert status(client, "/api/items/9", "POST", BOB, **override) == 403
    read_only, _ = issue("alice", restrictions=TokenRestrictions(read_only=True))
    assert status(client, "/api/items/9", "POST", read_only, **override) == 403
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "DELETE",
        **override,
    }
    assert status(client, "/api/items/9", "OPTIONS", **preflight) == 401, "not a preflight"
    assert deleted == []
    assert status(client, "/api/items/9", "POST", ROOT_USER, **override) == 200
    assert deleted == ["9 by root"]


def test_a_preflight_reaches_the_application_only_when_allowed(
    web: Callable[..., Client],
) -> None:
    # The echo app, like a Django function view, runs its code for OPTIONS:
    # a preflight let through anonymously would be served its data.
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"}
    assert status(web(), "/api/items/9", "OPTIONS", **preflight) == 401, "off by default"
    assert status(web(), "/api/items/9", "options", **preflight) == 401
    allowed = web(allow_preflight=True)
    assert status(allowed, "/api/items/9", "OPTIONS", **preflight) == 200
    assert status(allowed, "/api/items/9", "OPTIONS", BOB) == 403, "not a preflight: ruled"


def pyramid_traversal_app() -> Any:
    """A Pyramid app on traversal: each resource's view names its path."""
    from pyramid.config import Configurator
    from pyramid.response import Response

    class Resource(dict[str, Any]):
        def __init__(self, name: str, parent: Any = None, **children: Any) -> None:
            super().__init__(children)
            self.__name__, self.__parent__ = name, parent
            for key, child in children.items():
                child.__name__, child.__parent__ = key, self

    tree = Resource(
        "",
        api=Resource(
            "api",
            reports=Resource("reports", q1=Resource("q1")),
            admin=Resource("admin", users=Resource("users")),
        ),
    )

    def view(context: Any, request: Any) -> Response:
        names = []
        while context is not None and context.__name__:
            names.append(context.__name__)
            context = context.__parent__
        served = "/" + "/".join(reversed(names))
        return Response(json.dumps({"served": served, "view": request.view_name}))

    with Configurator(root_factory=lambda request: tree) as config:
        config.add_view(view, context=Resource)
        # A view by name, for any resource: /secrets, /@@secrets, /api/@@secrets.
        config.add_view(view, context=Resource, name="secrets")
        return config.make_wsgi_app()


def served(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, str] = json.loads(response.get_data())
    return answer


# WebOb, under Pyramid, still imports cgi.
@pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning")
def test_pyramid_traversal_cannot_take_an_allowed_token_elsewhere(
    web: Callable[..., Client], issue: Issue
) -> None:
    pyramid = pyramid_traversal_app()
    spelling = "/api/reports/../admin/users"
    bare = Client(pyramid).get("/", environ_overrides={"PATH_INFO": spelling})
    assert json.loads(bare.get_data())["served"] == "/api/admin/users", "the attack is real"
    token, _ = issue("alice", restrictions=TokenRestrictions(allow=(("GET", "/api/reports/*"),)))
    client = web(app=pyramid)
    assert status(client, "/api/reports/q1", token=token) == 200
    assert status(client, spelling, token=token) == 403


VHM = {"X-Vhm-Root": "/api/admin/users/@@"}


@pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning")
def test_pyramid_virtual_root_header_cannot_move_the_judged_path(
    web: Callable[..., Client], issue: Issue
) -> None:
    pyramid = pyramid_traversal_app()
    bare = Client(pyramid).get("/api/reports/q1", headers=VHM)
    assert served(bare)["served"] == "/api/admin/users", "the attack is real"
    # A token allowed only the reports, a public default with the admin
    # protected, a public /api/reports/*: each serves the path it judged.
    token, _ = issue("alice", restrictions=TokenRestrictions(allow=(("GET", "/api/reports/*"),)))
    client = web(app=pyramid)
    answer = served(
        client.get("/api/reports/q1", headers={"Authorization": f"Bearer {token}", **VHM})
    )
    assert answer["served"] == "/api/reports/q1"
    for changes in (
        {"default_access": "public", "protected_paths": ("/api/admin/*",)},
        {"public_paths": ("/api/reports/*",)},
    ):
        answer = served(web(app=pyramid, **changes).get("/api/reports/q1", headers=VHM))
        assert answer["served"] == "/api/reports/q1"
        for header in ("X-VHM-ROOT", "x-vhm-root"):
            answer = served(
                web(app=pyramid, **changes).get(
                    "/api/reports/q1", headers={header: VHM["X-Vhm-Root"]}
                )
            )
            assert answer["served"] == "/api/reports/q1"


# Pyramid's explicit view spellings: /@@name is the view `name` of the root,
# /a/@@name/x the view `name` of /a (with the subpath x).
VIEW_SPELLINGS = [
    "/@@secrets",
    "/@@secrets/",
    "/@@secrets/x",
    "/api/@@secrets",
    "/%40%40secrets",
    # With the spellings every path has: a doubled slash, a dot, a dot-dot.
    "//@@secrets",
    "/./@@secrets",
    "/api/../@@secrets",
    "/api/%2e%2e/@@secrets",
]


@pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning")
@pytest.mark.parametrize("path", VIEW_SPELLINGS)
def test_pyramid_view_spellings_are_covered_by_protected_paths(
    web: Callable[..., Client], path: str
) -> None:
    pyramid = pyramid_traversal_app()
    # A %-spelling is the view only to a router that decodes a second time.
    if "%" not in path:
        bare = Client(pyramid).get("/", environ_overrides={"PATH_INFO": path})
        assert served(bare)["view"] == "secrets", "the attack is real"
        assert status(web(app=pyramid, rules_file=None), path, token=BOB) == 200, "no rule: may"
    public = {"default_access": "public", "protected_paths": ("/secrets/*", "/api/secrets/*")}
    assert status(web(app=pyramid, **public), path) == 401
    # A public glob around it does not hand the view out.
    relaxed = web(app=pyramid, public_paths=("/*",))
    assert status(relaxed, path) == 401
    assert status(relaxed, "/api/reports") == 200


# -- under real servers, whose parsing of the request line is the point ----------------------


@pytest.fixture
def served_env(store_url: str, tmp_path: Path, fake_provider: FakeProvider) -> dict[str, str]:
    fake_provider.route("/me", serve_claims)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    return cli_env(
        store_url,
        RESTAUTH_DEFAULT_ACCESS="public",
        RESTAUTH_PROTECTED_PATHS="/rest/*,/api/*,/données/*",
        RESTAUTH_RULES_FILE=str(rules),
        RESTAUTH_PROVIDERS="idp",
        RESTAUTH_IDP_TYPE="oauth2",
        RESTAUTH_IDP_USERINFO_URL=f"{fake_provider.url}/me",
    )


def request_line(port: int, line: str, token: str | None = None) -> int:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    raw = f"{line} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    answer = raw_request(port, raw.encode("utf-8"))
    return int(answer.split(b" ", 2)[1])


SERVED = [
    pytest.param("GET //rest/", None, 401, id="double-slash"),
    pytest.param("GET /x/%2e%2e/rest/", None, 401, id="encoded-dot-dot"),
    pytest.param("GET /x/../rest/", None, 401, id="dot-dot"),
    pytest.param("GET /rest//admin/", BOB, 403, id="rule-double-slash"),
    pytest.param("GET /rest/./admin/", BOB, 403, id="rule-dot"),
    pytest.param("GET /donn%C3%A9es/paie.csv", BOB, 403, id="non-ascii"),
    pytest.param("HEAD /api/secret", BOB, 403, id="head"),
    pytest.param("GET /elsewhere", None, 200, id="public"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("line", "token", "expected"), SERVED)
def test_under_gunicorn(
    served_env: dict[str, str], line: str, token: str | None, expected: int
) -> None:
    port = free_port()
    command = gunicorn_command("tests.apps:application", port)
    with server_process(command, port, served_env, cwd=ROOT):
        assert request_line(port, line, token) == expected
        # gunicorn itself refuses a method that is not upper case.
        assert request_line(port, "delete /api/items/9", BOB) == 400


@pytest.fixture
def werkzeug_server(served_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The echo app behind the middleware under werkzeug's own server."""
    for name, value in served_env.items():
        if name.startswith("RESTAUTH_"):
            monkeypatch.setenv(name, value)
    server = make_server("127.0.0.1", 0, RestAuthMiddleware(echo_app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(10)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("line", "token", "expected"),
    [
        *SERVED,
        pytest.param("delete /api/items/9", BOB, 403, id="lower-case-method"),
        pytest.param("DELETE /api/items/9", ROOT_USER, 200, id="delete-for-root"),
    ],
)
def test_under_werkzeugs_server(
    werkzeug_server: int, line: str, token: str | None, expected: int
) -> None:
    assert request_line(werkzeug_server, line, token) == expected
