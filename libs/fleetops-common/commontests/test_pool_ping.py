"""Pooled PostgreSQL connections: pinged before use, or only after sitting idle.

The server kills the pooled connection's backend (as a restart or an idle timeout would),
and what the next unit of work sees depends on whether its checkout pinged.
"""

import time

import pytest
from sqlalchemy import exc, text

from fleetops_common.db import lookups, make_engine
from fleetops_devstack import databases

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server_url():
    url = databases.test_server_url("FLEETOPS_TEST_DATABASE_URL")
    if url.startswith("sqlite"):
        pytest.skip("pooled pings are PostgreSQL's; SQLite has no server to lose")
    return url


def backend_pid(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def kill(server_url, pid):
    killer = make_engine(server_url)
    try:
        with lookups(killer.connect()) as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
            # wait until the backend has gone, so the next checkout meets a dead socket
            gone = text("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :p)")
            deadline = time.monotonic() + 10
            while not conn.execute(gone, {"p": pid}).scalar_one():
                assert time.monotonic() < deadline, "the backend did not go"
                time.sleep(0.01)
    finally:
        killer.dispose()


@pytest.mark.parametrize("ping_after_idle_s", [None, 0.0])
def test_a_pinged_checkout_replaces_a_dead_connection_unseen(server_url, ping_after_idle_s):
    engine = make_engine(server_url, pool_size=1, ping_after_idle_s=ping_after_idle_s)
    try:
        first = backend_pid(engine)
        kill(server_url, first)
        # the ping finds the connection dead; the pool connects anew and the work succeeds
        assert backend_pid(engine) != first
    finally:
        engine.dispose()


def test_a_connection_back_from_use_a_moment_ago_is_handed_out_without_a_ping(server_url):
    engine = make_engine(server_url, pool_size=1, ping_after_idle_s=3600)
    try:
        first = backend_pid(engine)
        kill(server_url, first)
        # no ping: this one unit of work meets the dead connection ...
        with pytest.raises(exc.OperationalError) as failed:
            backend_pid(engine)
        assert failed.value.connection_invalidated
        # ... and the pool, told it was a disconnect, connects anew for the next one
        assert backend_pid(engine) != first
    finally:
        engine.dispose()


def test_lookups_run_outside_a_transaction_and_see_the_last_commit(server_url):
    engine = make_engine(server_url, pool_size=1)
    try:
        with lookups(engine.connect()) as conn:
            conn.execute(text("SELECT 1"))
            # autocommit: no transaction block is left open after a statement
            status = conn.connection.driver_connection.info.transaction_status
            assert status.name == "IDLE"
        with engine.connect() as conn:  # given back to the pool in its usual mode
            conn.execute(text("SELECT 1"))
            assert conn.connection.driver_connection.info.transaction_status.name == "INTRANS"
    finally:
        engine.dispose()
