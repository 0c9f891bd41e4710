"""The consumer's paho client: chunked reads, every packet handled, a batch's acks in one write."""

from __future__ import annotations

import itertools

import pytest

from fleetops_devstack.iot_load import remaining_length
from iot_sync.adapters.mqtt.consumer import ReadAheadClient, new_client
from iot_sync.adapters.mqtt.settings import MqttSettings


class FakeSocket:
    """Hands out the chunks it is given, one per `recv`, as a non-blocking socket would."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.recv_calls = 0
        self.sent = b""

    def recv(self, bufsize: int) -> bytes:
        self.recv_calls += 1
        if not self.chunks:
            raise BlockingIOError
        chunk = self.chunks.pop(0)
        assert len(chunk) <= bufsize
        return chunk

    def close(self) -> None:
        pass

    def send(self, data: bytes) -> int:
        self.sent += bytes(data)
        return len(data)


def publish_packet(topic: str, payload: bytes, mid: int, *, v5: bool) -> bytes:
    raw_topic = topic.encode()
    body = len(raw_topic).to_bytes(2, "big") + raw_topic + mid.to_bytes(2, "big")
    if v5:
        body += b"\x00"  # no properties
    body += payload
    return b"\x32" + remaining_length(len(body)) + body  # PUBLISH, QoS 1


@pytest.fixture(params=["5", "3.1.1"])
def client(request):
    settings = MqttSettings(protocol=request.param)
    c = new_client(settings, client_id="t", manual_ack=True, client_class=ReadAheadClient)
    c._sock = FakeSocket()  # what a connect would have set
    received = []
    c.on_message = lambda _c, _u, m: received.append((m.mid, m.topic, m.payload))
    c.received = received
    c.v5 = request.param == "5"
    return c


def test_one_read_takes_in_every_packet_of_the_chunk(client):
    packets = [publish_packet("dt/a", b'{"n": %d}' % i, i + 1, v5=client.v5) for i in range(50)]
    client._sock.chunks = [b"".join(packets)]

    client.loop_read()

    assert [mid for mid, _, _ in client.received] == list(range(1, 51))
    assert client.received[7] == (8, "dt/a", b'{"n": 7}')
    assert client._sock.recv_calls == 1  # paho alone: three or more per packet


def test_a_packet_split_across_chunks_resumes_where_it_stopped(client):
    stream = b"".join(publish_packet("dt/b", b"x" * 300, i, v5=client.v5) for i in (1, 2, 3))
    cuts = [0, 1, 2, 150, 151, 400, len(stream)]  # inside the header, the length, the body
    chunks = [stream[a:b] for a, b in itertools.pairwise(cuts)]

    for chunk in chunks:
        client._sock.chunks.append(chunk)
        client.loop_read()

    assert [mid for mid, _, _ in client.received] == [1, 2, 3]
    assert all(payload == b"x" * 300 for _, _, payload in client.received)


def test_a_batch_is_acknowledged_in_one_write_of_every_puback(client):
    client.ack_many([1, 2, 300])

    assert client._sock.sent == b"\x40\x02\x00\x01" + b"\x40\x02\x00\x02" + b"\x40\x02\x01\x2c"


def test_a_closed_connection_is_reported_not_read_past(client):
    client._sock.chunks = [b""]

    assert client.loop_read() != 0  # paho's "connection lost", as with its own reads
