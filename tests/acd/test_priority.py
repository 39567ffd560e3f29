from __future__ import annotations

import pytest

from acd.priority import (
    INDONESIAN_FIXED,
    INDONESIAN_MOBILE,
    Classifier,
    PriorityRule,
    normalise_number,
    vip_rule,
)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0812-3456-789", "+628123456789"),
        ("628123456789", "+628123456789"),
        ("+628123456789", "+628123456789"),
        ("sip:0215551234@gw.example;user=phone", "+62215551234"),
        ("00441234567", "+441234567"),
        ("1500", "1500"),
    ],
)
def test_normalise_number(raw: str, e164: str) -> None:
    assert normalise_number(raw) == e164


def classifier() -> Classifier:
    return Classifier(
        [
            vip_rule("vip", 0, ["+62811000111", "021 555 0000"]),
            PriorityRule("hotline", 0, dialled=("112",)),
            PriorityRule("mobile", 2, caller_regex=INDONESIAN_MOBILE),
            PriorityRule("fixed", 1, caller_regex=INDONESIAN_FIXED),
            PriorityRule("jakarta-prefix", 3, caller_prefixes=("021",)),  # shadowed by "fixed"
        ],
        default_class=4,
    )


@pytest.mark.parametrize(
    ("caller", "dialled", "expected"),
    [
        ("081234567890", "1500123", (2, "mobile")),
        ("+6281234567890", "1500123", (2, "mobile")),
        ("6281234567890", "1500123", (2, "mobile")),
        ("sip:081234567890@10.0.0.1", "", (2, "mobile")),
        ("0215551234", "", (1, "fixed")),
        ("+62215551234", "", (1, "fixed")),
        ("0811000111", "", (0, "vip")),  # VIP list compares normalised numbers
        ("+62215550000", "", (0, "vip")),
        ("081234567890", "112", (0, "hotline")),
        ("anonymous", "", (4, "")),
    ],
)
def test_classify(caller: str, dialled: str, expected: tuple[int, str]) -> None:
    assert classifier().classify(caller, dialled) == expected


def test_all_conditions_of_a_rule_must_hold() -> None:
    rule = PriorityRule("mobile-on-vip-line", 0, caller_regex=INDONESIAN_MOBILE,
                        dialled=("1500999",))
    c = Classifier([rule], default_class=5)
    assert c.classify("0812", "1500999") == (0, "mobile-on-vip-line")
    assert c.classify("0812", "1500123") == (5, "")
    assert c.classify("0215", "1500999") == (5, "")
