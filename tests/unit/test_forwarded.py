"""forwarded.py: a trusted proxy's Forwarded / X-Forwarded-* headers believed, anyone else's ignored; --base-path
and --trust-proxy values checked (README, "Behind a reverse proxy")."""

import time

import pytest

from madace_status.forwarded import (MAX_FORWARDED_CHARS, ProxyTrust, PublicView, host_name, normalise_base_path,
                                     parse_networks)

PROXY = ("127.0.0.1", 51000)
TRUST = ProxyTrust(parse_networks(["127.0.0.1", "10.0.0.0/8"]))


class Headers:
    def __init__(self, **lines):
        self.lines = lines

    def get_all(self, name):
        return self.lines.get(name)


def view(peer=PROXY, host="127.0.0.1:3000", forwarded=(), proto=(), fhost=(), ffor=(), trust=TRUST):
    return trust.view(peer, host, Headers(**{"Forwarded": list(forwarded), "X-Forwarded-Proto": list(proto),
                                             "X-Forwarded-Host": list(fhost), "X-Forwarded-For": list(ffor)}))


def test_a_trusted_proxy_names_the_scheme_host_and_client():
    seen = view(proto=["https"], fhost=["madace.example"], ffor=["203.0.113.7"])
    assert (seen.scheme, seen.host, seen.client, seen.proxied) == ("https", "madace.example", "203.0.113.7", True)
    assert seen.origin == "https://madace.example" and seen.websocket_scheme == "wss"


def test_headers_from_an_untrusted_peer_change_nothing():
    for trust in (TRUST, ProxyTrust()):
        seen = view(peer=("192.0.2.9", 4000), proto=["https"], fhost=["evil.example"], ffor=["1.2.3.4"],
                    forwarded=['for=1.2.3.4;proto=https;host=evil.example'], trust=trust)
        assert (seen.scheme, seen.host, seen.client, seen.proxied) == ("http", "127.0.0.1:3000", "192.0.2.9", False)


def test_forwarded_wins_and_its_last_element_is_the_nearest_proxys():
    seen = view(forwarded=['for=198.51.100.1;host=spoofed.example;proto=http, for="[2001:db8::5]:4711";'
                           'proto=https;host="madace.example:8443"'],
                proto=["http"], fhost=["other.example"], ffor=["192.0.2.1"])
    assert (seen.scheme, seen.host, seen.client) == ("https", "madace.example:8443", "2001:db8::5")
    assert seen.origin == "https://madace.example:8443"


def test_the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy():
    # A client may write X-Forwarded-For itself: only what the trusted proxies appended is believed.
    assert view(ffor=["6.6.6.6, 203.0.113.7, 10.1.2.3"]).client == "203.0.113.7"
    assert view(ffor=["6.6.6.6", "203.0.113.7:5555"]).client == "203.0.113.7"
    assert view(ffor=["unknown"]).client == "127.0.0.1", "nothing believable: the proxy itself"
    assert view(ffor=["10.0.0.1, 10.0.0.2"]).client == "10.0.0.1", "all proxies: the farthest one"


@pytest.mark.parametrize("proto, fhost", [(["javascript"], ["a b"]), (["HTTPS, ftp"], ["x/y"]),
                                          ([""], ["evil.example:99999999"]), (["http\r\n"], ["[::1"])])
def test_a_malformed_value_is_ignored_as_if_absent(proto, fhost):
    seen = view(proto=proto, fhost=fhost)
    assert seen.scheme == "http" and seen.host == "127.0.0.1:3000"


def test_the_default_port_is_not_part_of_the_origin():
    assert PublicView("https", "Madace.Example:443", "x").origin == "https://madace.example"
    assert PublicView("http", "madace.example:80", "x").origin == "http://madace.example"
    assert PublicView("http", None, "x").origin is None


def test_huge_headers_are_read_in_linear_time_and_cut():
    started = time.perf_counter()
    seen = view(forwarded=['"' * 200_000], ffor=["1.2.3.4," * 50_000], fhost=["a" * 100_000])
    assert time.perf_counter() - started < 1.0
    assert seen.host == "127.0.0.1:3000", "a 100 kB host is no host"
    assert len(",".join(["x"] * MAX_FORWARDED_CHARS)) > MAX_FORWARDED_CHARS


@pytest.mark.parametrize("given, expected", [(None, ""), ("", ""), ("/", ""), ("/madace", "/madace"),
                                             ("madace/", "/madace"), ("/team/madace-1", "/team/madace-1")])
def test_base_path_forms(given, expected):
    assert normalise_base_path(given) == expected


@pytest.mark.parametrize("bad", ["/a b", "/a/../b", "/./x", "/a//b", "/a?b", "/a#b", "/%2e", "/" + "a" * 300])
def test_a_bad_base_path_is_refused_with_its_rule(bad):
    with pytest.raises(ValueError, match="--base-path must be a path such as /madace"):
        normalise_base_path(bad)


def test_trust_proxy_values():
    assert [str(n) for n in parse_networks(["127.0.0.1", "10.0.0.0/8", "[::1]", "192.168.1.7/24"])] == [
        "127.0.0.1/32", "10.0.0.0/8", "::1/128", "192.168.1.0/24"]
    with pytest.raises(ValueError, match="--trust-proxy takes an IP address or network"):
        parse_networks(["proxy.example"])
    assert TRUST.trusts("10.9.9.9") and TRUST.trusts(("127.0.0.1", 1)) and not TRUST.trusts("11.0.0.1")
    assert not TRUST.trusts(None) and not TRUST.trusts("")


def test_host_name():
    assert host_name("name:3000") == "name" and host_name("[::1]:3000") == "[::1]" and host_name("a b") is None
