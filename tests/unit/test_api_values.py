"""The JSON API's values that are not routes: numbers in ASCII digits (web/api_values.py), and the brief form of
an event (sync/clients/subscribers.py)."""

import pytest

from madace_status.sync.clients.subscribers import brief_message as brief_event
from madace_status.web.api_values import MAX_NUMBER_DIGITS, ascii_number


@pytest.mark.parametrize("raw,expected", [("0", 0), ("7", 7), ("0042", 42),
                                          ("9" * MAX_NUMBER_DIGITS, 10 ** MAX_NUMBER_DIGITS - 1)])
def test_ascii_digits_are_a_number(raw, expected):
    assert ascii_number(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "-1", "+1", " 1", "1 ", "1.0", "1e3", "²", "٣", "１", "0x10",
                                 "9" * (MAX_NUMBER_DIGITS + 1), "1" * 5000])
def test_anything_else_is_not_a_number(raw):
    assert ascii_number(raw) is None


def test_max_digits_can_be_narrowed():
    assert ascii_number("123", max_digits=3) == 123 and ascii_number("1234", max_digits=3) is None


def test_brief_event_counts_the_stories_instead_of_sending_them_and_leaves_the_original_alone():
    event = {"type": "stories_updated", "seq": 4, "data": {"stories": [{"id": "A-1"}, {"id": "A-2"}], "changes": []}}
    brief = brief_event(event)
    assert brief == {"type": "stories_updated", "seq": 4, "data": {"storyCount": 2, "changes": []}}
    assert event["data"]["stories"] == [{"id": "A-1"}, {"id": "A-2"}]


@pytest.mark.parametrize("event", [{"type": "state_updated", "data": {"workflowName": "x"}}, {"type": "ping"},
                                   {"type": "odd", "data": ["stories"]}])
def test_an_event_without_a_story_list_is_returned_as_it_is(event):
    assert brief_event(event) is event


def test_a_null_story_list_counts_zero():
    assert brief_event({"data": {"stories": None}})["data"] == {"storyCount": 0}
