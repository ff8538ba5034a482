"""GET /static/<name> over real HTTP against a `serve` process: the pages' scripts and styles with the right
type, a strong ETag and 304 on revalidation; any other name (unknown, a page, a path, an encoded traversal)
is a 404 JSON envelope and no file outside the static directory is ever read."""

import hashlib
import os
import re

import pytest

from madace_status.web import assets
from sync_helpers import ProjectFiles, ServeProcess, raw_http, serve_args

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(assets.__file__)), "static")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    project = ProjectFiles.copy_of_sample(tmp_path_factory.mktemp("static") / "project")
    server = ServeProcess(serve_args(project.root)).wait_started()
    yield server
    server.stop()


def shipped(name):
    with open(os.path.join(STATIC_DIR, name), "rb") as handle:
        return handle.read()


@pytest.mark.parametrize("name,content_type", [
    ("status.js", "text/javascript; charset=utf-8"), ("board.js", "text/javascript; charset=utf-8"),
    ("dashboard-core.js", "text/javascript; charset=utf-8"), ("connection.js", "text/javascript; charset=utf-8"),
    ("lookup.js", "text/javascript; charset=utf-8"),
    ("sync.js", "text/javascript; charset=utf-8"), ("dashboard.css", "text/css; charset=utf-8"),
    ("sync.css", "text/css; charset=utf-8")])
def test_a_static_file_is_served_with_its_type_and_a_strong_etag_of_its_bytes(api, name, content_type):
    response = api.get("/static/" + name)
    assert response.status == 200, response
    assert response.body == shipped(name)
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    etag = response.headers["etag"]
    assert not etag.startswith("W/")
    assert etag == '"%s"' % hashlib.sha256(response.body).hexdigest()[:assets.ETAG_HEX_CHARS]
    assert int(response.headers["content-length"]) == len(response.body)


def test_if_none_match_with_the_current_etag_is_a_304_without_a_body(api):
    etag = api.get("/static/status.js").headers["etag"]
    for header in (etag, "W/" + etag, '"other", ' + etag, "*"):
        response = api.get("/static/status.js", headers={"If-None-Match": header})
        assert response.status == 304, header
        assert response.body == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == "no-cache"


def test_a_stale_etag_gets_the_whole_file(api):
    response = api.get("/static/status.js", headers={"If-None-Match": '"0123456789abcdef0123456789abcdef"'})
    assert response.status == 200 and response.body == shipped("status.js")


def test_head_answers_the_headers_without_the_body(api):
    response = api.http("HEAD", "/static/dashboard.css")
    assert response.status == 200 and response.body == b""
    assert int(response.headers["content-length"]) == len(shipped("dashboard.css"))


@pytest.mark.parametrize("path", [
    "/static/nope.js", "/static/status.html", "/static/sync.html", "/static/", "/static",
    "/static/../app.py", "/static/../http.py", "/static/%2e%2e/app.py", "/static/%2E%2E%2Fapp.py",
    "/static/..%2fapp.py", "/static/./status.js", "/static//status.js", "/static/Status.js",
    "/static/status.js/", "/static/status.js%00.css", "/static/status.jsx",
    "/static/..\\app.py", "/static/dir/status.js", "/static/" + "a" * 5000 + ".js"])
def test_anything_but_a_plain_shipped_name_is_a_404_envelope(api, path):
    response = api.get(path)
    assert response.status == 404, (path, response)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    document = response.json()
    assert document["success"] is False and document["code"] == "NOT_FOUND"
    assert b"import" not in response.body  # no Python source came back


def test_a_raw_traversal_request_line_reads_nothing_outside_the_static_directory(api):
    for target in (b"/static/../app.py", b"/static/../../../pyproject.toml", b"/static/%2e%2e%2f%2e%2e%2fapp.py"):
        response = raw_http(api.http_port, b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Connection: close\r\n\r\n")
        assert response.status == 404, target
        assert b"import" not in response.body


def test_a_query_string_does_not_change_the_file(api):
    response = api.get("/static/status.js?v=1")
    assert response.status == 200 and response.body == shipped("status.js")


def test_a_write_to_a_static_file_is_refused(api):
    response = api.http("POST", "/static/status.js", b"{}", {"Content-Type": "application/json",
                                                             "Origin": "http://127.0.0.1:%d" % api.http_port})
    assert response.status == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"


def test_the_pages_csp_allows_scripts_and_styles_from_self_only_with_no_hash(api):
    for path in ("/status", "/sync-status"):
        csp = api.get(path).headers["content-security-policy"]
        directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert "unsafe-inline" not in csp and "sha256-" not in csp and "unsafe-eval" not in csp


def test_every_file_the_pages_load_is_served(api):
    for path in ("/status", "/sync-status"):
        text = api.get(path).body.decode("utf-8")
        names = re.findall(r'(?:src|href)="static/([^"]+)"', text)
        assert names
        for name in names:
            assert api.get("/static/" + name).status == 200, name
