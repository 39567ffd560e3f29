"""Priority classes from caller ID and dialled number (ACD-3).

A rule names a priority class (0 is served first) and the conditions a call must meet: caller
prefixes, a caller regex, a VIP list, dialled numbers. All conditions given must hold; the first
rule that matches wins, so operators list VIPs before broad rules such as "mobile".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Indonesian mobile numbers start 08 nationally, +628 / 628 internationally; fixed lines start
# with an area code (021 Jakarta, 022 Bandung, ...).
INDONESIAN_MOBILE = r"^(\+62|62|0)8"
INDONESIAN_FIXED = r"^(\+62|62|0)[1-79]"

_PUNCT = re.compile(r"[\s\-().]")


def normalise_number(number: str, country_code: str = "62") -> str:
    """E.164 form of a national or international number: "0812-345" → "+62812345".

    Strips a SIP URI's scheme and host ("sip:0812@host" → "+62812"), spaces and punctuation.
    """
    n = number.strip()
    if n.startswith(("sip:", "sips:", "tel:")):
        n = n.split(":", 1)[1]
    n = _PUNCT.sub("", n.split("@", 1)[0].split(";", 1)[0])
    if n.startswith("+"):
        return n
    if n.startswith("00"):
        return "+" + n[2:]
    if n.startswith("0"):
        return "+" + country_code + n[1:]
    if n.startswith(country_code) and len(n) >= len(country_code) + 7:
        return "+" + n
    return n


@dataclass(frozen=True, slots=True)
class PriorityRule:
    name: str
    priority_class: int
    caller_prefixes: tuple[str, ...] = ()
    caller_regex: str | None = None
    caller_numbers: frozenset[str] = field(default_factory=frozenset)  # VIP list
    dialled: tuple[str, ...] = ()


class Classifier:
    """Compiled rules; `classify(caller, dialled)` → (priority class, name of the rule)."""

    __slots__ = ("_rules", "default_class", "country_code")

    def __init__(
        self, rules: Sequence[PriorityRule] = (), default_class: int = 1,
        country_code: str = "62",
    ) -> None:
        self.default_class = default_class
        self.country_code = country_code
        self._rules = [
            (
                rule,
                re.compile(rule.caller_regex) if rule.caller_regex else None,
                frozenset(normalise_number(n, country_code) for n in rule.caller_numbers),
                frozenset(_digits(d) for d in rule.dialled),
            )
            for rule in rules
        ]

    def classify(self, caller: str, dialled: str = "") -> tuple[int, str]:
        raw = _PUNCT.sub("", _user_part(caller))
        e164: str | None = None
        dialled_digits = _digits(dialled)
        for rule, regex, vips, dialled_set in self._rules:
            if rule.caller_prefixes and not raw.startswith(rule.caller_prefixes):
                continue
            if regex is not None and regex.search(raw) is None:
                continue
            if vips:
                if e164 is None:
                    e164 = normalise_number(caller, self.country_code)
                if e164 not in vips:
                    continue
            if dialled_set and dialled_digits not in dialled_set:
                continue
            return rule.priority_class, rule.name
        return self.default_class, ""


def _user_part(number: str) -> str:
    n = number.strip()
    if n.startswith(("sip:", "sips:", "tel:")):
        n = n.split(":", 1)[1]
    return n.split("@", 1)[0].split(";", 1)[0]


def _digits(number: str) -> str:
    return _PUNCT.sub("", _user_part(number))


def vip_rule(name: str, priority_class: int, numbers: Iterable[str]) -> PriorityRule:
    return PriorityRule(name, priority_class, caller_numbers=frozenset(numbers))
