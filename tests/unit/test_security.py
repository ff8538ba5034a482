"""The shared request checks (madace_status.security) and the log escaper (madace_status.logsafe), as pure
functions: which Host values pass, what a write needs, what the cookie holds, what a log line can contain."""

import logging

import pytest

from madace_status.logsafe import SafeFormatter, escape
from madace_status.security import Credentials, HostPolicy, own_origins, write_refusal

ALLOWED = ["localhost", "localhost:3000", "LocalHost.:1", "127.0.0.1", "127.0.0.1:65535", "[::1]", "[::1]:3000",
           "10.0.0.2", "192.168.1.9:80", "[fe80::1]:3000", "[2001:db8::1]", "dev.example", "DEV.example:8080",
           "bind.example:1"]
REFUSED = [None, "", " ", "evil.example", "evil.example:3000", "localhost.evil.example", "127.0.0.1.nip.io",
           "dev.example.evil", "sub.dev.example", "::1", "[::1", "[::1]x", "localhost:port", "localhost:99999999",
           "localhost:%s" % "\u0661", "localhost:\u00b2", "a" * 400, "local\x1bhost", "10.0.0.256"]


@pytest.mark.parametrize("host", ALLOWED)
def test_host_policy_accepts_loopback_ip_literals_the_bind_host_and_allowed_names(host):
    assert HostPolicy("bind.example", ["dev.example:9999"]).refusal(host) is None


@pytest.mark.parametrize("host", REFUSED)
def test_host_policy_refuses_other_names_with_a_reason_naming_the_flag(host):
    reason = HostPolicy("bind.example", ["dev.example"]).refusal(host)
    assert reason is not None and "--allowed-host" in reason and "\n" not in reason


def test_host_policy_star_turns_the_check_off_and_http_10_may_omit_the_host():
    assert HostPolicy("127.0.0.1", ["*"]).refusal("evil.example") is None
    assert HostPolicy("127.0.0.1").refusal(None, http_11=False) is None
    assert HostPolicy("::1").refusal("[::1]:1") is None


def test_own_origins_follow_the_host_names_and_the_port():
    origins = own_origins(HostPolicy("127.0.0.1", ["dev.example"]), 3000)
    assert origins == {"http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000",
                       "http://dev.example:3000"}


WRITE_CASES = [
    (None, None, None),  # curl
    ("http://localhost:3000", "same-origin", None),
    ("http://other.example", None, "origin"),
    ("null", None, "origin"),
    ("http://localhost:3001", None, "origin"),  # another port: same site, another origin
    (None, "cross-site", "Sec-Fetch-Site"),
    ("http://localhost:3000", "same-site", "Sec-Fetch-Site"),
    (None, " Cross-Site ", "Sec-Fetch-Site"),
    ("http://dash.example:8080", "cross-site", "Sec-Fetch-Site"),
    ("http://dash.example:8080", None, None),
]


@pytest.mark.parametrize("origin,fetch_site,refused_for", WRITE_CASES)
def test_write_refusal(origin, fetch_site, refused_for):
    reason = write_refusal(origin, fetch_site, {"http://localhost:3000", "http://dash.example:8080"})
    if refused_for is None:
        assert reason is None
    else:
        assert refused_for in reason


def test_the_cookie_holds_an_hmac_named_for_the_port_and_void_in_another_run():
    credentials = Credentials("s3cret", 3000)
    header = credentials.set_cookie_header()
    name, value = header.split(";", 1)[0].split("=", 1)
    assert name == "madace_token_3000" and "s3cret" not in header and len(value) == 64
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header
    assert credentials.cookie_ok("a=b; madace_token_3000=%s; c=d" % value)
    assert not credentials.cookie_ok("madace_token_3000=s3cret")
    assert not credentials.cookie_ok("madace_token_3001=%s" % value)
    assert not Credentials("s3cret", 3000).cookie_ok("madace_token_3000=%s" % value), "a new run, a new secret"
    assert not Credentials(None, 3000).cookie_ok("madace_token_3000=%s" % value), "no token, no cookie"


def test_the_csrf_token_differs_from_the_cookie_and_is_checked_in_constant_time():
    credentials = Credentials("s3cret", 3000)
    assert credentials.csrf_token() != credentials.cookie_value()
    assert credentials.csrf_ok(credentials.csrf_token())
    assert not credentials.csrf_ok(None) and not credentials.csrf_ok("") and not credentials.csrf_ok("é" * 64)
    assert credentials.token_ok("s3cret") and not credentials.token_ok("s3cre") and not credentials.token_ok(None)
    assert Credentials(None, 3000).token_ok(None)


def test_escape_makes_every_control_character_inert_text():
    assert escape("\x1b]0;x\x07\x1b[2J\nline\r\x00\x7f\x85\x9b") == \
        "\\x1b]0;x\\x07\\x1b[2J\\x0aline\\x0d\\x00\\x7f\\x85\\x9b"
    assert escape("\u202eevil\u2066\u2028") == "\\u202eevil\\u2066\\u2028"
    assert escape("back\\slash") == "back\\\\slash"
    assert escape(("127.0.0.1", 5)) == "('127.0.0.1', 5)"
    assert escape("é漢字 plain") == "é漢字 plain"
    long = escape("y" * 5000)
    assert long.startswith("y" * 300) and long.endswith("…(cut)") and len(long) < 320


def test_safe_formatter_keeps_a_message_on_one_line():
    formatter = SafeFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "got %s", ("a\nb\x1b[2J\\x",), None)
    assert formatter.format(record) == "INFO got a\\x0ab\\x1b[2J\\x"
