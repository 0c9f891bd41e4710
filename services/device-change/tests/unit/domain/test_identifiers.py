import pytest

from device_change.domain.identifiers import Iccid, Imei, InvalidIdentifier, luhn_check_digit


def test_luhn_check_digit_of_known_imei():
    # 49015420323751 is the classic IMEI example; its check digit is 8.
    assert luhn_check_digit("49015420323751") == "8"


def test_valid_iccid_is_accepted():
    body = "8914800000000000001"
    assert str(Iccid(body + luhn_check_digit(body))) == body + luhn_check_digit(body)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("8914800000000000001x", "digits only"),
        ("89148000000000001", "19 or 20 digits"),
        ("1234567890123456789", "start with 89"),
    ],
)
def test_malformed_iccid_is_refused_with_reason(value, words):
    with pytest.raises(InvalidIdentifier, match=words):
        Iccid(value)


def test_iccid_with_wrong_check_digit_names_the_expected_digit():
    body = "8914800000000000001"
    good = luhn_check_digit(body)
    bad = str((int(good) + 1) % 10)
    with pytest.raises(InvalidIdentifier, match=f"expected {good}"):
        Iccid(body + bad)


def test_imei_needs_fifteen_digits_and_check_digit():
    Imei("490154203237518")
    with pytest.raises(InvalidIdentifier, match="wrong check digit"):
        Imei("490154203237519")
    with pytest.raises(InvalidIdentifier, match="15 digits"):
        Imei("49015420323751")
