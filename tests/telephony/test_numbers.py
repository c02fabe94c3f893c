"""Number formats: whatever arrives, one E.164 number; what is not a number is refused clearly."""

from __future__ import annotations

import pytest

from backend.errors import ValidationFailed
from backend.telephony.numbers import (
    normalise_area_code,
    normalise_block,
    normalise_caller,
    normalise_dialled,
    normalise_number,
    spoken,
)


@pytest.mark.parametrize(
    "raw",
    ["02921 30-0", "+49 (0)2921 300", "0049 2921 30-0", "+492921300", "02921/300", " 02921 30 0 ", "(02921) 30-0"],
)
def test_common_formats_are_one_number(raw: str) -> None:
    assert normalise_number(raw) == "+492921300"
    assert normalise_dialled(raw) == "+492921300"


def test_published_numbers_of_the_paper() -> None:
    assert normalise_number("02921 103-0") == "+4929211030"  # Stadt Soest
    assert normalise_number("02942 500-0") == "+4929425000"  # Stadt Geseke
    assert normalise_number("115") == "+49115"  # short number: national, no area code


@pytest.mark.parametrize(
    "raw", ["", "abc", "0", "++492921300", "0292130a", "+49 2921 30-0 ext", "4929213" * 8, "02921\x0030"]
)
def test_what_is_not_a_number_is_refused_with_a_clear_error(raw: str) -> None:
    with pytest.raises(ValidationFailed) as error:
        normalise_number(raw)
    assert str(error.value.message) == "number is not a telephone number"
    assert raw.strip() == "" or raw not in str(error.value.message)  # never echoes the input


def test_blocks_are_prefixes_in_e164() -> None:
    assert normalise_block("02921 30") == "+49292130"
    assert normalise_block("+49 2921 103") == "+492921103"
    assert normalise_area_code("02921") == "+492921"
    with pytest.raises(ValidationFailed):
        normalise_block("+4")


@pytest.mark.parametrize("raw", [None, "", "anonymous", "Unknown", "CLIR", "not a number", "+"])
def test_hidden_or_garbled_callers_are_none_never_an_error(raw: str | None) -> None:
    assert normalise_caller(raw) is None


def test_callers_are_normalised() -> None:
    assert normalise_caller("0171 1234567") == "+491711234567"
    assert normalise_caller("+31 20 123 4567") == "+31201234567"


def test_numbers_are_written_to_be_read_aloud() -> None:
    assert spoken("+492921300") == "0 2 9 2 1 – 3 0 0"
    assert spoken("+31201234567") == "+ 3 1 – 2 0 – 1 2 3 – 4 5 6 7"
    assert spoken(None) is None
