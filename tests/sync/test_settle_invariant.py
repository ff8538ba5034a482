"""Nothing stale, ever (README, "Live updates: what is guaranteed"): after any sequence of file operations and a
short settle time, the project the sync service holds (and `/api/status`), the replica of a WebSocket client
that applied its snapshot and every event since, and a fresh read of the files are equal.

A hypothesis `RuleBasedStateMachine` drives a real `SyncService` on real files over real sockets, once per
change-detection backend this machine has (inotify and poll on Linux; kqueue where `select.kqueue` exists).
Each rule is one batch of file operations; after each, the invariant waits for the views to agree (settle
harness: tests/sync/settle_harness.py). The sequences that once broke it are replayed as plain tests below,
so a regression is caught on every run whatever hypothesis draws.

CI runs a bounded number of examples; `MADACE_SETTLE_EXAMPLES=200 MADACE_SETTLE_STEPS=40` runs longer.
"""

import functools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, Phase, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import settle_harness as harness
from settle_harness import LiveServer, ProjectTree, ReplicaClient, settle, workflow_document

EXAMPLES = int(os.environ.get("MADACE_SETTLE_EXAMPLES", "8"))
STEPS = int(os.environ.get("MADACE_SETTLE_STEPS", "15"))
BACKENDS = ["inotify", "poll"] + (["kqueue"] if hasattr(select, "kqueue") else [])
if not sys.platform.startswith("linux"):
    BACKENDS.remove("inotify")

NAMES = st.sampled_from(["alpha", "beta", "gamma", "pm-planning", "code-review"])
STATUSES = st.sampled_from(["pending", "in_progress", "completed", "failed"])
MODES = st.sampled_from(harness.WRITE_MODES)
EPIC_IDS = st.sampled_from(["EPIC-MAM", "EPIC-T1", "EPIC-T2"])
LARGE_DIRECTORY = st.integers(min_value=65, max_value=220)  # past watcher.ALWAYS_STAT_ENTRIES
# What a state file may hold besides a good document: empty, cut short, not an object, fields of the wrong type.
BROKEN = st.sampled_from(["", "{", "[]", "null", '{"workflow": 7}', '{"steps": [{"status": []}]}'])


def logged(function):
    """Record the rule and its arguments in the machine's `steps`, which a failure prints (a timing-dependent
    failure may not shrink, and then hypothesis cannot print the steps itself)."""
    @functools.wraps(function)
    def step(self, **kwargs):
        self.steps.append((function.__name__, kwargs))
        return function(self, **kwargs)
    return step


class SettleMachine(RuleBasedStateMachine):
    """One project, one server, one client; every rule changes files, every step ends settled."""

    backend = "poll"

    def __init__(self):
        super().__init__()
        self.base = tempfile.mkdtemp(prefix="settle-")
        self.tree = ProjectTree.copy_of_sample(os.path.join(self.base, "project"))
        self.server = LiveServer(self.tree.root, watcher=self.backend)
        self.client = ReplicaClient(self.server)
        self.touched = set()
        self.settle_times = []
        self.steps = []

    def teardown(self):
        try:
            self.client.close()
        finally:
            self.server.close()
            self.tree.cleanup()
            shutil.rmtree(self.base, ignore_errors=True)

    # -- state files ----------------------------------------------------------------------------------------------

    @rule(name=NAMES, status=STATUSES, step=st.integers(0, 6), total=st.integers(0, 6),
          schema=st.sampled_from(["A", "B"]), broken=st.none() | BROKEN, mode=MODES)
    @logged
    def write_state(self, name, status, step, total, schema, broken, mode):
        text = broken if broken is not None else workflow_document(name, status, step, total, schema)
        self.tree.write_state(name, text, mode)
        self.touched.add(name)

    @rule(name=NAMES, status=STATUSES, steps=st.lists(st.integers(1, 5), min_size=2, max_size=6), mode=MODES)
    @logged
    def rapid_writes(self, name, status, steps, mode):
        """Several writes of one file in a row, no pause: only the last may be what is shown."""
        for step in steps:
            self.tree.write_state(name, workflow_document(name, status, step, 5), mode)
        self.touched.add(name)

    @rule(name=NAMES)
    @logged
    def delete_state(self, name):
        self.tree.delete_state(name)
        self.touched.add(name)

    @rule(name=NAMES)
    @logged
    def grow_past_cap(self, name):
        self.tree.grow_past_cap(name)
        self.touched.add(name)

    @rule(count=LARGE_DIRECTORY)
    @logged
    def mass_create(self, count):
        self.tree.mass_create(count)

    @rule()
    @logged
    def mass_delete(self):
        self.tree.mass_delete()

    # -- the state directory -------------------------------------------------------------------------------------

    @rule()
    @logged
    def remove_state_dir(self):
        self.tree.remove_state_dir()

    @rule(names=st.lists(NAMES, max_size=3, unique=True))
    @logged
    def recreate_state_dir(self, names):
        self.tree.recreate_state_dir(names)

    @rule(outside=st.booleans())
    @logged
    def swap_state_dir_for_symlink(self, outside):
        self.tree.swap_state_dir_for_symlink(outside)

    # -- the story file and the epics ---------------------------------------------------------------------------

    @rule(moves=st.integers(0, 40), stories=st.integers(0, 30), mode=MODES)
    @logged
    def rewrite_stories(self, moves, stories, mode):
        self.tree.write_stories(harness.story_board(moves, stories), mode)

    @rule()
    @logged
    def delete_stories(self):
        self.tree.delete_stories()

    @rule(epic_id=EPIC_IDS, revision=st.integers(0, 20), mode=MODES)
    @logged
    def write_epic(self, epic_id, revision, mode):
        self.tree.write_epic(epic_id, revision, mode)

    @rule(epic_id=EPIC_IDS)
    @logged
    def remove_epic(self, epic_id):
        self.tree.remove_epic(epic_id)

    # -- the client ------------------------------------------------------------------------------------------------

    @rule()
    @logged
    def reconnect_client(self):
        """The client drops and resumes from its position (replayed events or a resync snapshot)."""
        self.client.reconnect()

    # -- the invariant ----------------------------------------------------------------------------------------------

    @invariant()
    def settled_views_agree(self):
        try:
            self.settle_times.append(settle(self.server, [self.client], self.tree.root))
            harness.check_entities(self.server, self.tree.root, sorted(self.touched)[:5])
        except AssertionError as error:
            raise AssertionError("%s\nafter the steps (%s backend):\n%s" % (error, self.backend, "\n".join(
                "  (%r, %r)," % step for step in self.steps)))


def run_machine(backend, examples=EXAMPLES, steps=STEPS):
    machine = type("SettleMachine_" + backend, (SettleMachine,), {"backend": backend})
    # No shrinking: a failure depends on timing, so its replays rarely fail the same way; the steps it took are
    # printed by settled_views_agree instead.
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_served_state_settles_on_a_fresh_read_of_the_files(backend):
    run_machine(backend)


# -- the sequences that broke it once, replayed on every run ----------------------------------------------------

def replay(backend, steps):
    """Run `steps` ([(rule name, kwargs)]) on a fresh machine, checking the invariant after each."""
    machine = type("SettleMachine_" + backend, (SettleMachine,), {"backend": backend})()
    try:
        machine.settled_views_agree()
        for name, kwargs in steps:
            getattr(machine, name)(**kwargs)
            machine.settled_views_agree()
        return machine
    finally:
        machine.teardown()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_large_state_directory_emptied_at_once_settles(backend):
    """Issue 18: 400 state files created then all deleted made the cold-slice cursor divide by zero; that
    look's changes were dropped and the server listed workflows that no longer existed."""
    replay(backend, [("mass_create", {"count": 200}), ("mass_delete", {})])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_large_state_directory_swapped_for_a_symlink_out_of_the_root_settles(backend):
    replay(backend, [("mass_create", {"count": 120}), ("swap_state_dir_for_symlink", {"outside": True})])


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_state_directory_removed_after_a_mass_create_settles_with_its_warning(backend):
    """No workflow event was left to carry "no workflow state directory": replicas kept the old notices."""
    replay(backend, [("mass_create", {"count": 101}), ("remove_state_dir", {}),
                     ("recreate_state_dir", {"names": []}), ("remove_state_dir", {})])


@pytest.mark.parametrize("backend", BACKENDS)
def test_writes_after_the_state_directory_became_a_symlink_settle(backend):
    """inotify: the directory moved away and a symlink made in its place fired only IN_MOVE_SELF; the watch was
    dropped before the symlink existed and its creation (not an IN_ISDIR event) never re-armed it."""
    replay(backend, [("swap_state_dir_for_symlink", {"outside": False}), ("mass_create", {"count": 168}),
                     ("rapid_writes", {"name": "code-review", "status": "pending", "steps": [2, 5, 3],
                                       "mode": "truncate_then_write"})])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_state_directory_made_again_where_a_symlink_was_settles(backend):
    """The symlink removed and a directory made in its place are entries of the parent: the watch on the
    symlink's target saw nothing, so every later write waited for the safety rescan."""
    replay(backend, [("swap_state_dir_for_symlink", {"outside": False}), ("recreate_state_dir", {"names": []}),
                     ("write_state", {"name": "alpha", "status": "in_progress", "step": 2, "total": 4,
                                      "schema": "A", "broken": None, "mode": "in_place"})])


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_state_directory_removed_and_made_again_between_writes_settles(backend):
    """The reader listed the directory while it was gone, the watcher saw it before and after: the notice
    "no workflow state directory" stayed. A directory replaced (a new inode) is reported itself now."""
    write = {"status": "in_progress", "step": 1, "total": 3, "schema": "A", "broken": None, "mode": "in_place"}
    steps = []
    for _ in range(5):
        steps += [("write_state", dict(write, name="alpha")), ("remove_state_dir", {}),
                  ("recreate_state_dir", {"names": []}), ("write_state", dict(write, name="pm-planning")),
                  ("mass_delete", {}), ("recreate_state_dir", {"names": []})]
    replay(backend, steps)


def test_status_json_agrees_with_the_server_after_changes(tmp_path):
    """The third view as a user gets it: a real `status -f json` process after the files are quiet."""
    tree = ProjectTree.copy_of_sample(tmp_path / "project")
    server = LiveServer(tree.root, watcher="auto")
    client = ReplicaClient(server)
    try:
        tree.mass_create(80)
        tree.write_state("alpha", workflow_document("alpha", "failed", 2, 4))
        tree.write_stories(harness.story_board(3, 9), "atomic")
        tree.remove_epic("EPIC-MAM")
        settle(server, [client], tree.root)
        env = dict(os.environ, PYTHONPATH=harness.REPO_ROOT)
        output = subprocess.run([sys.executable, "-m", "madace_status", "status", "-f", "json", "--root", tree.root],
                                env=env, capture_output=True, timeout=30, check=True).stdout
        printed = json.loads(output)
        status, served = server.get_json("/api/status")
        assert status == 200
        assert printed["data"] == served["data"]
        assert (printed["warnings"], printed["errors"]) == (served["warnings"], served["errors"])
    finally:
        client.close()
        server.close()
        tree.cleanup()
