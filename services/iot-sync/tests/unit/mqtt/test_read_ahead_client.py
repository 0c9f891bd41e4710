"""The consumer's paho client: chunked reads, every packet handled, a batch's acks in one write."""

from __future__ import annotations

import itertools

import pytest
from paho.mqtt.enums import MQTTErrorCode

from fleetops_devstack.iot_load import remaining_length
from iot_sync.adapters.mqtt.consumer import InboundPublish, ReadAheadClient, new_client
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


def publish_packet(
    topic: str, payload: bytes, mid: int, *, v5: bool, qos: int = 1, properties: bytes = b""
) -> bytes:
    raw_topic = topic.encode()
    body = len(raw_topic).to_bytes(2, "big") + raw_topic
    if qos:
        body += mid.to_bytes(2, "big")
    if v5:
        body += remaining_length(len(properties)) + properties
    body += payload
    return bytes([0x30 | qos << 1]) + remaining_length(len(body)) + body


def make_client(protocol: str) -> ReadAheadClient:
    settings = MqttSettings(protocol=protocol)
    c = new_client(settings, client_id="t", manual_ack=True, client_class=ReadAheadClient)
    c._sock = FakeSocket()  # what a connect would have set
    received = []
    c.on_message = lambda _c, _u, m: received.append((m.mid, m.topic, m.payload))
    c.received = received
    c.v5 = protocol == "5"
    return c


@pytest.fixture(params=["5", "3.1.1"])
def client(request):
    return make_client(request.param)


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


def test_with_an_inbound_sink_publishes_are_cut_from_the_packet(client):
    inbound: list[InboundPublish] = []
    client.on_inbound = inbound.append
    # correlation data "c-7", then a user property traceparent=x
    props = b"\x09\x00\x03c-7" + b"\x26\x00\x0btraceparent\x00\x01x"
    packets = [
        publish_packet("dt/a", b'{"n": 1}', 9, v5=client.v5, properties=props),
        publish_packet("dt/b", b"", 0, v5=client.v5, qos=0),
        publish_packet("call/c", b"x" * 200, 65535, v5=client.v5),  # two-byte remaining length
    ]
    client._sock.chunks = [b"".join(packets)]

    client.loop_read()

    assert inbound == [
        InboundPublish(b"dt/a", b'{"n": 1}', 9, 1, props if client.v5 else b""),
        InboundPublish(b"dt/b", b"", 0, 0, b""),
        InboundPublish(b"call/c", b"x" * 200, 65535, 1, b""),
    ]
    assert client.received == []  # paho's own path did not run as well


def test_a_publish_whose_properties_overrun_it_is_a_protocol_error():
    client = make_client("5")
    client.on_inbound = lambda message: pytest.fail(f"delivered {message}")
    raw_topic = b"dt/a"
    body = len(raw_topic).to_bytes(2, "big") + raw_topic + b"\x00\x01" + b"\x7f" + b"\x01"
    client._sock.chunks = [b"\x32" + remaining_length(len(body)) + body]

    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_PROTOCOL


def test_a_message_on_pahos_own_path_reaches_the_inbox_as_on_the_fast_path():
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes

    from iot_sync.adapters.mqtt.consumer import MqttSignalConsumer
    from iot_sync.adapters.mqtt.envelope import new_properties

    consumer = MqttSignalConsumer(MqttSettings(protocol="5"), lambda batch: None)
    message = mqtt.MQTTMessage(mid=4, topic=b"dt/a")
    message.qos, message.payload = 2, b"{}"
    message.properties = new_properties(PacketTypes.PUBLISH)
    message.properties.CorrelationData = b"c-7"

    consumer._on_message(consumer._client, None, message)

    generation = 0  # no connection yet
    expected = InboundPublish(b"dt/a", b"{}", 4, 2, b"\x09\x00\x03c-7")
    assert consumer._inbox.get_nowait() == (generation, expected)
