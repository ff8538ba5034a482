"""Real reverse proxies for the tests (README, "Behind a reverse proxy"): a self-signed certificate made by
`openssl`, and Debian's nginx and Caddy started from the configurations the package ships (printed by
`python -m madace_status.deploy`, as a user makes them) with only the test's ports, paths and certificate filled in.
tests/run.sh installs nginx, caddy and openssl when they are missing.

Every wait has a deadline; nothing sleeps and hopes."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PUBLIC_NAME = "madace.test"  # the proxy's host name: Chromium maps it to 127.0.0.1, the certificate names it
BASE_PATH = "/madace"
START_TIMEOUT_S = 15.0


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, process=None, timeout=START_TIMEOUT_S, what="proxy"):
    """Wait until 127.0.0.1:`port` accepts a connection; fail if `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise AssertionError("%s exited (%s) before listening on %d" % (what, process.returncode, port))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("%s did not listen on %d within %.0f s" % (what, port, timeout))
            time.sleep(0.02)


def stop_process(process, signum, timeout=10):
    """`signum`, then SIGKILL if `process` has not exited within `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def make_certificate(directory):
    """(certificate path, key path): a self-signed certificate for madace.test, localhost and 127.0.0.1."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=%s" % PUBLIC_NAME, "-addext", "subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1" % PUBLIC_NAME,
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


def client_ssl_context(cert):
    return ssl.create_default_context(cafile=cert)


def shipped_config(name, **values):
    """A shipped configuration as `python -m madace_status.deploy NAME KEY=VALUE...` prints it."""
    result = subprocess.run([sys.executable, "-m", "madace_status.deploy", name]
                            + ["%s=%s" % item for item in values.items()],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


class _ProxyProcess:
    """A proxy started by a test: its log file, and how it is stopped."""

    stop_signal = signal.SIGTERM
    log_path = ""
    process: subprocess.Popen

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def stop(self):
        stop_process(self.process, self.stop_signal)


class Nginx(_ProxyProcess):
    """nginx in the foreground with the shipped site file included in a minimal main configuration of the test's
    own (pid, logs and temporary files in `directory`)."""

    def __init__(self, directory, site_text, port):
        self.directory = directory
        self.port = port
        self.log_path = self.error_log = os.path.join(directory, "error.log")
        for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(directory, folder), exist_ok=True)
        with open(os.path.join(directory, "site.conf"), "w") as handle:
            handle.write(site_text)
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers keep the test's own files readable
        main = (user + "daemon off;\nworker_processes auto;\nworker_rlimit_nofile 8192;\npid {d}/nginx.pid;\n"
                "error_log {d}/error.log info;\nevents {{ worker_connections 4096; }}\n"
                "http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n"
                "  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n"
                "  include {d}/site.conf;\n}}\n").format(d=directory)
        self.config = os.path.join(directory, "nginx.conf")
        with open(self.config, "w") as handle:
            handle.write(main)
        test = subprocess.run([NGINX, "-t", "-p", directory, "-e", self.error_log, "-c", self.config],
                              capture_output=True, text=True, timeout=30)
        assert test.returncode == 0, "nginx -t refused the shipped configuration: %s" % test.stderr
        self.process = subprocess.Popen([NGINX, "-p", directory, "-e", self.error_log, "-c", self.config],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # -e: the log file
        wait_for_port(port, self.process, what="nginx")

    stop_signal = signal.SIGQUIT  # nginx's graceful stop: the workers finish, then exit


class Caddy(_ProxyProcess):
    """Caddy in the foreground with the shipped Caddyfile after a global block of the test's own (no admin
    endpoint, no certificate automation, its state in `directory`)."""

    def __init__(self, directory, site_text, port):
        self.port = port
        path = os.path.join(directory, "Caddyfile")
        with open(path, "w") as handle:
            handle.write("{\n  admin off\n  auto_https disable_redirects\n  storage file_system %s/data\n}\n\n%s"
                         % (directory, site_text))
        env = dict(os.environ, HOME=directory, XDG_DATA_HOME=directory, XDG_CONFIG_HOME=directory)
        self.log_path = os.path.join(directory, "caddy.log")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([CADDY, "run", "--config", path, "--adapter", "caddyfile"], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        wait_for_port(port, self.process, what="caddy")

    def stop(self):
        super().stop()
        self._log.close()


def proxied_serve_flags():
    """What the shipped configurations say the server behind them runs with."""
    return ["--one-port", "--base-path", BASE_PATH, "--trust-proxy", "127.0.0.1", "--allowed-host", PUBLIC_NAME]
