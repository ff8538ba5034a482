"""Replicas (README, "Replicas"): three `serve` processes on one project behind the shipped nginx-replicas
configuration over TLS, 300 clients following through it. One replica is stopped — SIGTERM in one run, SIGKILL in
the other — and a change is made to the files during the switch: every client of that replica is live again within
5 s, every client's replica equals a fresh read of the files, nothing is lost, and a surviving replica takes over
writing the flow history. The reconnect times are printed. And when only the proxy restarts, the clients resume
from the same server's ring: the change made meanwhile is replayed, with no snapshot."""

import asyncio
import signal
import time

import pytest

from failover import following, percentile
from proxies import BASE_PATH, client_ssl_context
from settle_harness import first_difference, fresh_view, view_of
from story_edits import move_story
from sync_helpers import WAIT_S, parse_prometheus, run

CLIENTS = 300
REPLICAS = 3
LIVE_AGAIN_S = 5.0  # the bound for every client of the stopped replica
CONVERGE_S = 10.0


def history_writers(replicas):
    return [replica for replica in replicas if replica.get_json(BASE_PATH + "/api/sync")["history"]["persisted"]]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_replicas_clients_reconnect_to_another_and_converge(proxied_serve, nginx_in_front, certificate,
                                                                     project, signum, capsys):
    replicas = [proxied_serve() for _ in range(REPLICAS)]
    proxy = nginx_in_front("nginx-replicas", **{"REPLICA_%d" % (index + 1): "127.0.0.1:%d" % replica.http_port
                                                for index, replica in enumerate(replicas)})
    writers = history_writers(replicas)
    assert len(writers) == 1, "one history writer at a time"
    victim = writers[0]  # the writer goes: another one must take over
    survivors = [replica for replica in replicas if replica is not victim]
    url = "wss://127.0.0.1:%d%s/ws" % (proxy.port, BASE_PATH)
    root = str(project.root)

    async def scenario():
        async with following(CLIENTS, url, client_ssl_context(certificate[0]), root) as clients:
            await asyncio.wait_for(asyncio.gather(*(client.live.wait() for client in clients)), 60)
            counts = await asyncio.to_thread(lambda: [replica.get_json(BASE_PATH + "/api/sync")["clientCount"]
                                                      for replica in replicas])
            assert sum(counts) == CLIENTS and min(counts) > 0, counts  # nginx spread them over every replica
            on_victim = counts[replicas.index(victim)]
            victim.send_signal(signum)
            move_story(root, "STORY-V3-020")  # during the switch: it must reach every client all the same
            await asyncio.to_thread(victim.wait, 10)
            deadline = time.monotonic() + LIVE_AGAIN_S + 5
            while sum(client.back_at is not None for client in clients) < on_victim:
                assert time.monotonic() < deadline, "only %d of %d clients came back" % (
                    sum(client.back_at is not None for client in clients), on_victim)
                await asyncio.sleep(0.05)
            expected = await asyncio.to_thread(fresh_view, root)
            deadline = time.monotonic() + CONVERGE_S
            while True:
                differences = [first_difference(expected, view_of(client.replica.project())) for client in clients]
                if not any(differences):
                    break
                assert time.monotonic() < deadline, "%d clients differ from the files, e.g. %s" % (
                    sum(map(bool, differences)), next(d for d in differences if d))
                await asyncio.sleep(0.1)
            return clients, on_victim

    clients, on_victim = run(scenario, timeout=150)
    times = [client.reconnect_s for client in clients if client.reconnect_s is not None]
    with capsys.disabled():  # the figures, in the test command's own output
        print("\nfailover (%s) of 1 replica of %d, %d clients, %d reconnected: reconnect-and-converge p50 %.0f ms, "
              "p90 %.0f ms, p99 %.0f ms, max %.0f ms" % (signal.Signals(signum).name, REPLICAS, CLIENTS, len(times),
                                                         *(1000 * percentile(times, f) for f in (0.5, 0.9, 0.99, 1.0))))
    assert len(times) == on_victim, "exactly the stopped replica's clients reconnected"
    assert max(times) <= LIVE_AGAIN_S
    assert not [client.failure for client in clients if client.failure]
    story = next(s for s in clients[0].replica.project().stories if s.id == "STORY-V3-020")
    assert story.status == "DONE"
    # The survivors saw the change: one of them took over writing the history (within its retry interval).
    deadline = time.monotonic() + 5
    while len(history_writers(survivors)) != 1:
        assert time.monotonic() < deadline, "no surviving replica took over the flow history"
        time.sleep(0.1)


def test_clients_cut_off_by_a_proxy_restart_resume_from_the_same_server_with_nothing_lost(
        proxied_serve, nginx_in_front, certificate, project):
    # The stream is the same (one server, the same run): the clients resume from the ring, no snapshot needed.
    server = proxied_serve()
    upstream = "127.0.0.1:%d" % server.http_port
    proxy = nginx_in_front(UPSTREAM=upstream)
    url = "wss://127.0.0.1:%d%s/ws" % (proxy.port, BASE_PATH)
    root = str(project.root)

    async def scenario():
        async with following(20, url, client_ssl_context(certificate[0]), root) as clients:
            await asyncio.wait_for(asyncio.gather(*(client.live.wait() for client in clients)), 30)
            proxy.stop_signal = signal.SIGTERM  # nginx's fast stop: every connection cut at once
            await asyncio.to_thread(proxy.stop)
            move_story(root, "STORY-V3-020")  # while no client is connected
            await asyncio.to_thread(wait_for_seq, server, 1)
            await asyncio.to_thread(nginx_in_front, port=proxy.port, UPSTREAM=upstream)
            deadline = time.monotonic() + CONVERGE_S
            expected = await asyncio.to_thread(fresh_view, root)
            while any(first_difference(expected, view_of(client.replica.project())) for client in clients):
                assert time.monotonic() < deadline, "the clients did not catch up through the new proxy"
                await asyncio.sleep(0.05)
            return clients

    clients = run(scenario, timeout=60)
    assert all(client.connections == 2 and client.snapshots == 1 for client in clients), [
        (client.connections, client.snapshots) for client in clients]
    assert not [client.failure for client in clients if client.failure]
    metrics = parse_prometheus(server.get(BASE_PATH + "/metrics").body.decode("utf-8"))[0]
    assert metrics["madace_resyncs_total"] == 0


def wait_for_seq(server, seq):
    deadline = time.monotonic() + WAIT_S
    while server.get_json(BASE_PATH + "/api/sync")["seq"] < seq:
        assert time.monotonic() < deadline, "the server did not publish event %d" % seq
        time.sleep(0.02)
