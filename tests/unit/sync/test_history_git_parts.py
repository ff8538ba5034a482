"""The sans-I/O parts of the history from git (sync/history/git.py; README, "Flow history"): git's log output,
the moves between two versions, and the cache lines read back."""

from madace_status.sync.history.git import MAX_MOVES, _parse_moves, moves_between, parse_log, with_moves

SHA = "a" * 40


def test_the_log_gives_each_commit_its_time_and_the_files_path_then_and_skips_what_does_not_parse():
    output = ("\x1e%s\x1f1767268800\n\ndocs/mam-workflow-status.md\n" % SHA
              + "\x1e%s\x1f1767182400\n\ndocs/workflow-status.md\n" % ("b" * 40)
              + "\x1enot-a-sha\x1f12\n\nx\n" + "\x1e%s\x1fsoon\n\nx\n" % ("c" * 40) + "\x1e%s\x1f12\n\n" % ("d" * 40))
    assert parse_log(output) == [(SHA, 1767268800, "docs/mam-workflow-status.md"),
                                 ("b" * 40, 1767182400, "docs/workflow-status.md")]
    assert parse_log("") == [] and parse_log("garbage \x1b[31m") == []


def test_moves_name_each_story_whose_state_changed_added_or_removed():
    before = {"US-1": "TODO", "US-2": "BACKLOG", "US-3": "DONE"}
    after = {"US-1": "DONE", "US-2": "BACKLOG", "US-4": "TODO"}
    assert moves_between(before, after) == [{"id": "US-1", "from": "TODO", "to": "DONE"},
                                            {"id": "US-4", "from": None, "to": "TODO"},
                                            {"id": "US-3", "from": "DONE", "to": None}]
    assert moves_between(None, after) == []  # the first version


def test_a_bulk_edit_lists_at_most_max_moves_and_counts_the_rest():
    sample = {"at": "2026-01-01T12:00:00.000Z", "counts": {}, "points": {}}
    moves = [{"id": "S-%d" % n, "from": "BACKLOG", "to": "DONE"} for n in range(MAX_MOVES + 7)]
    moved = with_moves(sample, moves)
    assert len(moved["moves"]) == MAX_MOVES and moved["movesMore"] == 7 and "moves" not in sample


def test_cache_lines_that_are_not_ours_are_refused():
    assert _parse_moves(b'[[{"id": "US-1", "from": "TODO", "to": "DONE"}], 0]') == (
        [{"id": "US-1", "from": "TODO", "to": "DONE"}], 0)
    for bad in (b"", b"[]", b"[[], true]", b'[[{"id": 1, "from": null, "to": null}], 0]',
                b'[[{"id": "x", "from": null}], 0]', b"[" * 5000 + b"]" * 5000, b"\xff"):
        assert _parse_moves(bad) is None
