"""The shipped deployment files and `python -m madace_status.deploy` (README, "Behind a reverse proxy"): every
placeholder filled, values that could open a directive refused, clear usage errors. tests/deploy runs the files
themselves with nginx, Caddy and systemd-analyze."""

import subprocess
import sys

import pytest

from madace_status import deploy


@pytest.mark.parametrize("name", sorted(deploy.CONFIGS))
def test_every_placeholder_has_a_default_and_none_is_left(name):
    assert set(deploy.placeholders(name)) <= set(deploy.defaults())
    text = deploy.render(name, {"SERVER_NAME": "status.example.org"})
    assert deploy.PLACEHOLDER.search(text) is None
    assert "status.example.org" in text


@pytest.mark.parametrize("value", ["a b", "x;y", "}", "$host", "a#b", "'q'", '"q"', "a\\b", "a\nb", ""])
def test_a_value_that_could_open_a_directive_is_refused(value):
    with pytest.raises(ValueError, match="SERVER_NAME must be one word"):
        deploy.render("nginx", {"SERVER_NAME": value})


def test_a_key_the_file_does_not_use_is_refused_with_the_ones_it_does():
    with pytest.raises(ValueError, match=r"caddy takes .*SERVER_NAME.*; not PORT"):
        deploy.render("caddy", {"PORT": "1"})


def run(*args):
    return subprocess.run([sys.executable, "-m", "madace_status.deploy"] + list(args), capture_output=True,
                          text=True, timeout=30)


def test_the_command_prints_lists_and_refuses_in_one_line():
    printed = run("nginx", "SERVER_NAME=status.example.org", "LISTEN=8443")
    assert printed.returncode == 0 and "listen 8443 ssl;" in printed.stdout and printed.stderr == ""
    listed = run("--help")
    assert listed.returncode == 0 and all(name in listed.stdout for name in deploy.CONFIGS)
    for args, message in ((("apache",), "no configuration 'apache'"), (("nginx", "LISTEN"), "is not KEY=VALUE"),
                          (("nginx", "LISTEN=1 2"), "LISTEN must be one word"), ((), "usage:")):
        refused = run(*args)
        assert refused.returncode == 2, args
        assert message in refused.stderr + refused.stdout and "Traceback" not in refused.stderr
