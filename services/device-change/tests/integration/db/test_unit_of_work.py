"""The reading unit of work: no wait behind a writer, and no write through it."""

import threading

import pytest
from sqlalchemy.exc import DBAPIError

from device_change.adapters.db.uow import SqlAlchemyUnitOfWorkFactory

pytestmark = pytest.mark.integration


def test_a_reader_sees_the_last_commit_while_a_writer_holds_its_transaction(
    engine_each_dialect, make
):
    uow = SqlAlchemyUnitOfWorkFactory(engine_each_dialect)
    tenant, committed, pending = make.tenant(), make.state(), make.state()
    with uow() as u:
        u.devices.upsert_from_carrier(tenant, [committed])
        u.commit()
    read: dict[str, object] = {}

    def look() -> None:
        with uow.reader() as r:
            read.update(r.devices.get_many(tenant, [committed.iccid, pending.iccid]))

    # Given a writer in the middle of its transaction (on SQLite: holding the write lock)
    with uow() as writer:
        writer.devices.upsert_from_carrier(tenant, [pending])
        # When a reader looks both devices up
        reader = threading.Thread(target=look)
        reader.start()
        reader.join(timeout=5)
        # Then it answered at once, without waiting for the writer, from the last commit
        assert not reader.is_alive(), "the reader waited for the writer's lock"
        writer.commit()
    reader.join()
    assert set(read) == {committed.iccid}


def test_a_reader_refuses_writes_on_postgresql(engine, make):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no read-only transactions; the reader only skips the lock")
    with SqlAlchemyUnitOfWorkFactory(engine).reader() as r, pytest.raises(DBAPIError):
        r.devices.upsert_from_carrier(make.tenant(), [make.state()])
