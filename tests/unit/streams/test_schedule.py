from __future__ import annotations

from streams.schedule import Schedule

DEADLINE = ("tasks_deadline_passed_total", "call")
MET = ("regulation_checks_total", "default", "proposal", "met")


def test_entries_are_taken_soonest_first_and_only_before_the_clock() -> None:
    owed = Schedule()
    owed.add(30.0, DEADLINE)
    owed.add(10.0, MET)
    owed.add(20.0, DEADLINE)
    assert owed.soonest() == 10.0
    assert owed.take_before(20.0) == [(10.0, MET)]  # 20.0 is not before 20.0
    assert owed.take_before(31.0) == [(20.0, DEADLINE), (30.0, DEADLINE)]
    assert len(owed) == 0
    assert owed.soonest() == float("inf")


def test_remove_takes_one_entry_of_that_cell_at_that_time() -> None:
    owed = Schedule([(10.0, DEADLINE), (10.0, MET), (10.0, DEADLINE)])
    assert owed.remove(10.0, MET)
    assert not owed.remove(10.0, MET)
    assert not owed.remove(11.0, DEADLINE)
    assert owed.remove(10.0, DEADLINE)
    assert list(owed) == [(10.0, DEADLINE)]
