"""Issue 10 §3 and issue 19 (HTTP part) against a real `serve`: slow-loris peers are closed at the head deadline
and take no thread while they drip (a request gets a thread only once it is whole), a flood beyond the
connection cap gets 503, and a process out of file descriptors does not spin and serves again by itself once
descriptors are freed.

The deadlines are shortened through their environment variables (the defaults are tens of seconds); the
mechanism under test is the one that runs with the defaults."""

import os
import resource
import socket
import subprocess
import sys
import time

import pytest

from sync_helpers import WAIT_S, clean_env

HEAD_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 1.5
BODY_TIMEOUT_S = 1.0
DRIP_EVERY_S = 0.2
LORIS_PEERS = 300  # well past the handler threads (web/limits.HTTP_WORKERS): they must hold none of them
CLOSE_SLACK_S = 4.0  # past a deadline, how long a loaded 2-core machine may take to close the connection


def short_deadlines(**extra):
    return clean_env(MADACE_STATUS_HTTP_HEAD_TIMEOUT=str(HEAD_TIMEOUT_S),
                     MADACE_STATUS_HTTP_IDLE_TIMEOUT=str(IDLE_TIMEOUT_S),
                     MADACE_STATUS_HTTP_BODY_TIMEOUT=str(BODY_TIMEOUT_S), **extra)


def thread_count(pid):
    with open("/proc/%d/status" % pid) as status:
        return int([line for line in status if line.startswith("Threads:")][0].split()[1])


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_until(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.02)


def read_to_eof(sock):
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def healthz(server, timeout=WAIT_S):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=timeout) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        return read_to_eof(sock)


def healthy(server):
    try:
        return healthz(server, timeout=1.0).startswith(b"HTTP/1.0 200 ")
    except OSError:
        return False


class Dripper:
    """A slow-loris peer: it sends `first`, then one more piece every DRIP_EVERY_S until the server closes."""

    def __init__(self, port, first, piece):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        self.sock.sendall(first)
        self.sock.setblocking(False)
        self.piece = piece
        self.received = b""
        self.closed_at = None

    def step(self, now):
        if self.closed_at is not None:
            return
        try:
            while True:
                chunk = self.sock.recv(4096)
                if not chunk:
                    self.closed_at = now
                    return
                self.received += chunk
        except BlockingIOError:
            pass
        except OSError:
            self.closed_at = now
            return
        try:
            self.sock.send(self.piece)
        except BlockingIOError:
            pass
        except OSError:
            self.closed_at = now

    def close(self):
        self.sock.close()


def test_slow_loris_peers_are_closed_at_the_head_deadline_and_others_are_served(project, serve):
    server = serve(project.root, env=short_deadlines())
    pid = server.process.pid
    threads_before = thread_count(pid)
    started = time.monotonic()
    peers = [Dripper(server.http_port, b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Drip: 1\r\n")
             for _ in range(LORIS_PEERS)]
    peers.append(Dripper(server.http_port, b"G", b"E"))  # the request line itself, one byte at a time
    served_meanwhile = 0
    most_threads = 0
    try:
        while any(peer.closed_at is None for peer in peers):
            now = time.monotonic()
            assert now - started < HEAD_TIMEOUT_S + CLOSE_SLACK_S + WAIT_S, \
                "%d slow-loris peers still open" % sum(peer.closed_at is None for peer in peers)
            for peer in peers:
                peer.step(now)
            most_threads = max(most_threads, thread_count(pid))
            if served_meanwhile < 3 and now - started > HEAD_TIMEOUT_S / 2:
                assert healthz(server).startswith(b"HTTP/1.0 200 "), "a well-behaved client was not served"
                served_meanwhile += 1
            time.sleep(DRIP_EVERY_S)
    finally:
        for peer in peers:
            peer.close()
    assert served_meanwhile == 3
    assert most_threads <= threads_before + 2, (threads_before, most_threads)  # /healthz's own thread, at most
    for peer in peers:
        assert peer.closed_at - started < HEAD_TIMEOUT_S + CLOSE_SLACK_S
        assert peer.received.startswith(b"HTTP/1.0 408 "), peer.received[:200]
        assert b'"REQUEST_TIMEOUT"' in peer.received
    wait_until(lambda: thread_count(pid) <= threads_before + 1, WAIT_S, "the handler threads did not end")


def test_idle_and_slow_body_peers_are_closed_at_their_deadlines(project, serve):
    server = serve(project.root, env=short_deadlines())
    idle = socket.create_connection(("127.0.0.1", server.http_port), timeout=IDLE_TIMEOUT_S + CLOSE_SLACK_S)
    body = socket.create_connection(("127.0.0.1", server.http_port), timeout=BODY_TIMEOUT_S + CLOSE_SLACK_S)
    started = time.monotonic()
    body.sendall(b"POST /api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"action\":")
    try:
        answer = read_to_eof(body)
        assert answer.startswith(b"HTTP/1.0 408 ") and b'"REQUEST_TIMEOUT"' in answer, answer
        assert idle.recv(4096) == b"", "an idle connection is closed without an answer"
        assert time.monotonic() - started < IDLE_TIMEOUT_S + CLOSE_SLACK_S
    finally:
        idle.close()
        body.close()
    assert server.get_json("/api/sync")["running"] is True, "the half-sent action was carried out"


def test_connections_beyond_the_cap_get_503_and_health_returns_when_they_go(project, serve):
    cap = 4
    server = serve(project.root, env=clean_env(MADACE_STATUS_HTTP_MAX_CONNECTIONS=str(cap)))
    pid = server.process.pid
    threads_before = thread_count(pid)
    holders = [socket.create_connection(("127.0.0.1", server.http_port), timeout=WAIT_S) for _ in range(cap)]
    try:
        # Accepted in order, the holders take every place: each later connection is answered 503 and closed.
        wait_until(lambda: healthz(server).startswith(b"HTTP/1.0 503 "), WAIT_S, "the holders were not accepted")
        for _ in range(3 * cap):
            answer = healthz(server)
            assert answer.startswith(b"HTTP/1.0 503 "), answer[:200]
            assert b'"SERVER_BUSY"' in answer and b"Retry-After: 1" in answer
        assert thread_count(pid) <= threads_before + 1, "a thread per idle connection (+ the refusal thread)"
    finally:
        for holder in holders:
            holder.close()
    wait_until(lambda: healthy(server), WAIT_S, "/healthz did not come back")
    assert server.get_json("/api/sync")["running"] is True


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux prlimit to lower a running server's limit")
def test_out_of_descriptors_the_server_backs_off_and_recovers_by_itself(project, serve):
    server = serve(project.root, env=clean_env(MADACE_STATUS_HTTP_MAX_CONNECTIONS="1000",
                                               MADACE_STATUS_HTTP_IDLE_TIMEOUT="60"))
    pid = server.process.pid
    limit = open_fds(pid) + 40  # as `ulimit -n` low enough for a test to reach it
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    idle = []
    try:
        for _ in range(80):  # more than the server can hold: the rest wait in the listen backlog
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", server.http_port))
            idle.append(sock)
        wait_until(lambda: open_fds(pid) >= limit - 1, WAIT_S, "the server did not run out of descriptors")
        wait_until(lambda: "out of file descriptors" in server.stderr_text, WAIT_S, "no warning was logged")
        before = cpu_seconds(pid)
        window_s = 2.0
        time.sleep(window_s)  # a measurement window: a spinning accept loop burns all of it
        used = cpu_seconds(pid) - before
        print("CPU out of descriptors: %.3f s in %.1f s" % (used, window_s))
        assert used < 0.1 * window_s, "the server used %.2f s of CPU in %.1f s out of descriptors" % (used, window_s)
    finally:
        for sock in idle:
            sock.close()
    wait_until(lambda: healthy(server), 3 * WAIT_S, "/healthz did not come back")
    wait_until(lambda: "accepting connections again" in server.stderr_text, WAIT_S, "no recovery was logged")
    assert server.stderr_text.count("out of file descriptors") == 1, "one warning per episode, not one per accept"
    assert "Traceback" not in server.stderr_text


@pytest.mark.parametrize("name,value", [("HTTP_HEAD_TIMEOUT", "0"), ("HTTP_IDLE_TIMEOUT", "inf"),
                                        ("HTTP_BODY_TIMEOUT", "nan"), ("HTTP_MAX_CONNECTIONS", "-1"),
                                        ("HTTP_MAX_CONNECTIONS", "many")])
def test_a_limit_that_cannot_work_is_a_usage_error(project, name, value):
    result = subprocess.run([sys.executable, "-m", "madace_status", "serve", "--root", project.root, "--port", "0",
                             "--ws-port", "0"], env=clean_env(**{"MADACE_STATUS_" + name: value}),
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert result.returncode == 2, result
    assert ("MADACE_STATUS_" + name).encode() in result.stderr and result.stdout == b""


def test_slow_bodies_take_no_thread_and_are_closed_at_their_deadline(project, serve):
    """A POST whose body never comes is waited for by the request reader, not by a handler thread (issue 19):
    past the number of handler threads, /healthz is still answered, and each gets 408 at the body deadline."""
    server = serve(project.root, env=short_deadlines())
    pid = server.process.pid
    threads_before = thread_count(pid)
    started = time.monotonic()
    stalled = []
    try:
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=WAIT_S)
            sock.sendall(b"POST /api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"action\":")
            stalled.append(sock)
        answer = healthz(server)
        assert answer.startswith(b"HTTP/1.0 200 "), server.stderr_text[-3000:]
        assert thread_count(pid) <= threads_before + 2
        for sock in stalled:
            answer = read_to_eof(sock)
            assert answer.startswith(b"HTTP/1.0 408 ") and b"the body did not arrive" in answer, answer[:200]
        assert time.monotonic() - started < BODY_TIMEOUT_S + CLOSE_SLACK_S
    finally:
        for sock in stalled:
            sock.close()
    assert server.get_json("/api/sync")["running"] is True, "a half-sent action was carried out"
