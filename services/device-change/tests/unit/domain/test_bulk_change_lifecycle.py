from device_change.domain.bulk_change import (
    BulkChangeStatus,
    LineStatus,
    bulk_status_from_counts,
    line_may_move,
)


def test_terminal_lines_never_move_again():
    for terminal in (LineStatus.SUCCEEDED, LineStatus.FAILED, LineStatus.CANCELLED):
        for target in LineStatus:
            assert not line_may_move(terminal, target)


def test_sent_lines_cannot_be_cancelled():
    assert line_may_move(LineStatus.PENDING, LineStatus.CANCELLED)
    assert not line_may_move(LineStatus.SUBMITTED, LineStatus.CANCELLED)


def test_bulk_status_follows_its_lines():
    assert (
        bulk_status_from_counts({LineStatus.PENDING: 3}, started=False, cancel_requested=False)
        is BulkChangeStatus.QUEUED
    )
    assert (
        bulk_status_from_counts(
            {LineStatus.SUBMITTED: 1, LineStatus.SUCCEEDED: 2},
            started=True,
            cancel_requested=False,
        )
        is BulkChangeStatus.PROCESSING
    )
    assert (
        bulk_status_from_counts({LineStatus.SUCCEEDED: 5}, started=True, cancel_requested=False)
        is BulkChangeStatus.COMPLETED
    )
    assert (
        bulk_status_from_counts(
            {LineStatus.SUCCEEDED: 5, LineStatus.FAILED: 1}, started=True, cancel_requested=False
        )
        is BulkChangeStatus.COMPLETED_WITH_ERRORS
    )
    assert (
        bulk_status_from_counts(
            {LineStatus.SUCCEEDED: 1, LineStatus.CANCELLED: 4},
            started=True,
            cancel_requested=True,
        )
        is BulkChangeStatus.CANCELLED
    )
