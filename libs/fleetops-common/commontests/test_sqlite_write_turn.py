"""SQLite writers of one process take turns on a Python lock instead of SQLite's busy sleeps."""

import subprocess
import sys
import threading

import pytest
from sqlalchemy import text

from fleetops_common.db import _WriteTurn, make_engine, read_only


def turn(tmp_path):
    path = str((tmp_path / "turns.db").resolve())
    return _WriteTurn.for_database(path, key=path)


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE log (who TEXT)"))
    yield engine
    engine.dispose()


def start_writer(engine, who, started: threading.Event) -> threading.Thread:
    def write():
        with engine.connect() as conn:
            started.set()
            conn.execute(text("INSERT INTO log VALUES (:who)"), {"who": who})
            conn.commit()

    thread = threading.Thread(target=write)
    thread.start()
    return thread


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_a_second_writer_waits_for_the_first_to_end_its_transaction(engine, end, tmp_path):
    first = engine.connect()
    assert not turn(tmp_path).locked()
    first.execute(text("INSERT INTO log VALUES ('first')"))
    assert turn(tmp_path).locked(), "a write transaction runs without the turn"
    started = threading.Event()
    second = start_writer(engine, "second", started)
    assert started.wait(5)
    second.join(0.3)
    assert second.is_alive(), "the second writer did not wait for its turn"

    getattr(first, end)()
    second.join(5)
    assert not second.is_alive(), f"{end} did not hand the turn over"
    with engine.connect() as conn:
        rows = [r[0] for r in conn.execute(text("SELECT who FROM log ORDER BY rowid"))]
    assert rows == (["first", "second"] if end == "commit" else ["second"])
    first.close()
    assert not turn(tmp_path).locked(), "the turn outlived the transactions"


def test_a_reader_neither_takes_the_turn_nor_waits_for_it(engine, tmp_path):
    with engine.connect() as reader:
        read_only(reader)
        assert reader.execute(text("SELECT count(*) FROM log")).scalar() == 0
        assert not turn(tmp_path).locked()
    with engine.connect() as writer:
        writer.execute(text("INSERT INTO log VALUES ('uncommitted')"))
        with engine.connect() as reader:
            read_only(reader)
            assert reader.execute(text("SELECT count(*) FROM log")).scalar() == 0


def test_engines_on_the_same_file_share_the_turn(engine, tmp_path):
    other = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    try:
        with engine.connect() as first:
            first.execute(text("INSERT INTO log VALUES ('first')"))
            started = threading.Event()
            second = start_writer(other, "second", started)
            assert started.wait(5)
            second.join(0.3)
            assert second.is_alive()
            first.commit()
        second.join(5)
        assert not second.is_alive()
    finally:
        other.dispose()


def other_process_can_take_the_turn(tmp_path) -> bool:
    """Whether another process could take the file's turn right now (without waiting)."""
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "try:\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    sys.exit(1)\n"
    )
    turn_file = tmp_path / "turns.db-turn"
    probed = subprocess.run([sys.executable, "-c", probe, str(turn_file)], check=False)
    return probed.returncode == 0


def test_other_processes_wait_for_the_turn_while_a_write_transaction_is_open(engine, tmp_path):
    assert other_process_can_take_the_turn(tmp_path)
    with engine.connect() as writer:
        writer.execute(text("INSERT INTO log VALUES ('first')"))
        assert not other_process_can_take_the_turn(tmp_path)
        writer.commit()
        assert other_process_can_take_the_turn(tmp_path)
    with engine.connect() as reader:
        read_only(reader)
        reader.execute(text("SELECT count(*) FROM log")).scalar_one()
        assert other_process_can_take_the_turn(tmp_path), "a reader took the turn"
