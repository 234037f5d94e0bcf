"""The decision rule, on random histories from both sides."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from consent.rules import (
    WITHDRAWN,
    Action,
    ConsentState,
    PersonConsent,
    counting_person,
    decide,
    decide_for_contact,
)

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
BASES = ["61A", "61B", "61F", WITHDRAWN]

# Few distinct minutes, so equal times and duplicates come up often.
times = st.integers(min_value=0, max_value=6).map(lambda m: EPOCH + timedelta(minutes=m))
changes = st.builds(ConsentState, st.sampled_from(BASES), times)
histories = st.lists(changes, max_size=5)


def latest(history: list[ConsentState]) -> ConsentState | None:
    """A side's current state: the newest change; at equal times a withdrawal wins."""
    best = None
    for change in history:
        if (
            best is None
            or change.changed_at > best.changed_at
            or (change.changed_at == best.changed_at and change.is_withdrawn)
        ):
            best = change
    return best


def expected_outcome(hub, so):
    """What both sides must hold afterwards, worked out without the rule's code:
    the newest change; at a tie a withdrawal; at a tie of two grants, no change."""
    sides = [s for s in (hub, so) if s is not None]
    if not sides:
        return None
    newest = max(s.changed_at for s in sides)
    at_newest = {s.legal_basis for s in sides if s.changed_at == newest}
    if WITHDRAWN in at_newest:
        return WITHDRAWN
    if len(at_newest) == 1:
        return at_newest.pop()
    return "unchanged"


def apply(decision, hub, persons):
    """Carry a decision out the way the engine does: SuperOffice stamps its own time
    (later than anything before), the hub stores the winner's time."""
    if decision.action is Action.WRITE_HUB:
        hub = decision.result
    elif decision.action is Action.WRITE_SUPEROFFICE:
        stamped = ConsentState(decision.result.legal_basis, EPOCH + timedelta(days=1))
        persons = [
            PersonConsent(p.person_id, p.registered_at, stamped)
            if p.person_id == decision.person_id
            else p
            for p in persons
        ]
    return hub, persons


@st.composite
def persons_sharing_an_email(draw):
    ids = draw(st.lists(st.integers(1, 50), min_size=1, max_size=4, unique=True))
    registered = st.one_of(st.none(), st.integers(0, 3).map(lambda d: EPOCH - timedelta(days=d)))
    return [PersonConsent(pid, draw(registered), latest(draw(histories))) for pid in ids]


@given(hub_history=histories, so_history=histories)
def test_the_newest_change_ends_up_on_both_sides_and_a_second_cycle_changes_nothing(
    hub_history, so_history
):
    hub, so = latest(hub_history), latest(so_history)
    persons = [PersonConsent(7, EPOCH, so)]
    decision = decide_for_contact(hub=hub, persons=persons)
    hub_after, persons_after = apply(decision, hub, persons)
    so_after = persons_after[0].state

    expected = expected_outcome(hub, so)
    if expected is None:
        assert decision.action is Action.NONE and hub_after is None and so_after is None
    elif expected == "unchanged":
        assert decision.action is Action.NONE
        assert (hub_after, so_after) == (hub, so)
    else:
        assert hub_after.legal_basis == expected
        assert so_after.legal_basis == expected
    again = decide_for_contact(hub=hub_after, persons=persons_after)
    assert again.action is Action.NONE


@given(hub_history=histories, persons=persons_sharing_an_email())
def test_among_persons_sharing_an_email_the_oldest_counts_and_is_the_one_written(
    hub_history, persons
):
    hub = latest(hub_history)
    decision = decide_for_contact(hub=hub, persons=persons)
    oldest = min(
        persons,
        key=lambda p: (p.registered_at is None, p.registered_at or datetime.min, p.person_id),
    )
    assert decision.person_id == oldest.person_id
    expected = expected_outcome(hub, oldest.state)
    hub_after, persons_after = apply(decision, hub, persons)
    counted_after = next(p for p in persons_after if p.person_id == oldest.person_id)
    if expected not in (None, "unchanged"):
        assert hub_after.legal_basis == expected == counted_after.state.legal_basis
    # The other persons are never written.
    for before, after in zip(persons, persons_after, strict=True):
        if before.person_id != oldest.person_id:
            assert before == after
    assert decide_for_contact(hub=hub_after, persons=persons_after).action is Action.NONE
    disagree = len({p.state.legal_basis if p.state else None for p in persons}) > 1
    assert decision.conflict == (len(persons) > 1 and disagree)


@given(when=times, basis=st.sampled_from(["61A", "61F"]))
def test_a_withdrawal_that_ties_with_a_grant_wins_on_either_side(when, basis):
    grant, withdrawal = ConsentState(basis, when), ConsentState(WITHDRAWN, when)
    to_superoffice = decide(hub=withdrawal, superoffice=grant)
    to_hub = decide(hub=grant, superoffice=withdrawal)
    assert to_superoffice.action is Action.WRITE_SUPEROFFICE
    assert to_hub.action is Action.WRITE_HUB
    assert to_superoffice.result.is_withdrawn and to_hub.result.is_withdrawn
    assert "withdrawal wins" in to_superoffice.reason


def test_equal_times_with_different_grants_change_nothing():
    decision = decide(hub=ConsentState("61A", EPOCH), superoffice=ConsentState("61F", EPOCH))
    assert decision.action is Action.NONE
    assert "Equal times" in decision.reason


def test_a_newer_superoffice_change_is_written_to_the_hub_with_a_reason_naming_both_sides():
    decision = decide(
        hub=ConsentState("61A", EPOCH),
        superoffice=ConsentState(WITHDRAWN, EPOCH + timedelta(hours=1)),
    )
    assert decision.action is Action.WRITE_HUB
    assert "newer than the hub's" in decision.reason and "consent at" in decision.reason
    assert "61A" not in decision.reason


def test_sides_that_agree_are_left_alone_whatever_their_times():
    decision = decide(
        hub=ConsentState("61A", EPOCH), superoffice=ConsentState("61A", EPOCH + timedelta(days=3))
    )
    assert decision.action is Action.NONE


def test_the_oldest_person_is_the_earliest_registered_then_the_lowest_id():
    same_day = EPOCH
    persons = [
        PersonConsent(9, same_day, None),
        PersonConsent(4, same_day, None),
        PersonConsent(2, same_day + timedelta(days=1), None),
        PersonConsent(1, None, None),
    ]
    assert counting_person(persons).person_id == 4
