"""Entity ids and names: every accepted form, and a typed error for the rest."""

from __future__ import annotations

import uuid

import pytest

from schemaless import InvalidId, InvalidName
from schemaless.ids import check_name, new_id, to_bytes, to_uuid

U = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize("form", [U, str(U), U.hex, U.bytes, bytearray(U.bytes), U.hex.upper()])
def test_every_accepted_form_gives_the_same_uuid(form: object) -> None:
    assert to_uuid(form) == U
    assert to_bytes(form) == U.bytes


@pytest.mark.parametrize("bad", ["", "xyz", "1234", b"\x00" * 15, 12345, None, 1.5, "g" * 32])
def test_anything_else_raises_invalid_id_which_is_a_value_error(bad: object) -> None:
    with pytest.raises(InvalidId):
        to_uuid(bad)
    with pytest.raises(ValueError):
        to_uuid(bad)


def test_new_ids_are_random_version_4() -> None:
    a, b = new_id(), new_id()
    assert a != b and a.version == 4


@pytest.mark.parametrize("name", ["a", "entry", "entry_2", "x" * 48])
def test_valid_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Entry", "1a", "_a", "a-b", "a b", "x" * 49, "é", None, 3])
def test_invalid_names_raise_invalid_name(name: object) -> None:
    with pytest.raises(InvalidName):
        check_name(name)
