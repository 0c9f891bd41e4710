"""Which URL the carrier is told to call back."""

from device_change.settings import DeviceChangeSettings


def settings(**values):
    return DeviceChangeSettings(_env_file=None, public_url="https://dc.example.com/", **values)


def test_the_api_takes_callbacks_when_no_receiver_runs():
    assert settings().registered_callback_url() == (
        "https://dc.example.com/v1/callbacks/thingspace"
    )


def test_a_receiver_of_the_embedded_default_gets_them_on_its_port():
    assert settings(callback_receiver_port=8011, host="127.0.0.1").registered_callback_url() == (
        "http://127.0.0.1:8011/v1/callbacks/thingspace"
    )


def test_a_url_given_outright_wins():
    given = "https://callbacks.example.com/v1/callbacks/thingspace"
    assert settings(callback_receiver_port=8011, callback_url=given).registered_callback_url() == (
        given
    )
