"""Issue 4: `[[services]]` menus (IVR-2), queue announcements (ACD-2) and the survey (ACC-8)
in the configuration: parsing, and whole-file validation with errors by key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from softswitch.acd_config import MenuAction, ServiceEntry
from softswitch.config import ConfigError, load_config
from softswitch.contact_centre import _number

PROMPTS = Path(__file__).resolve().parent.parent / "conf" / "prompts"
CONF = Path(__file__).resolve().parent.parent / "conf"

BASE = (f'[contact_centre]\nprompts = "{PROMPTS}"\nlanguage = "en"\n'
        '[[queues]]\nname = "general"\n[[queues]]\nname = "billing"\nsurvey = true\n'
        'survey_rate = 0.5\nannounce_welcome = true\nannounce_every_s = 30\n')
MENU = ('[[services]]\nnumber = "1500"\nlanguage = "id"\n'
        '[services.menu]\ntimeout_s = 4\nretries = 1\ndefault = { queue = "general" }\n'
        '[services.menu.options]\n"1" = { info = "info", then = "menu" }\n'
        '"2" = { queue = "billing" }\n')


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "softswitch.toml"
    path.write_text(BASE + text, encoding="utf-8")
    return load_config(path)


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.errors


def test_menu_parses_with_actions_and_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, MENU)
    service = config.services[0]  # type: ignore[attr-defined]
    assert isinstance(service, ServiceEntry) and service.queue is None
    menu = service.menu
    assert menu is not None
    assert menu.prompt == "menu" and menu.invalid == "invalid"
    assert menu.timeout_s == 4 and menu.retries == 1
    assert menu.options == {"1": MenuAction(info="info", then="menu"),
                            "2": MenuAction(queue="billing")}
    assert menu.default == MenuAction(queue="general")
    billing = config.queues[1]  # type: ignore[attr-defined]
    assert billing.survey and billing.survey_rate == 0.5
    acd = billing.queue()
    assert acd.announce_welcome and acd.announce_interval == 30.0


def test_demo_centre_has_the_menu_announcements_and_survey() -> None:
    config = load_config(CONF / "softswitch.toml")
    demo = next(s for s in config.services if s.number == "1500")
    assert demo.menu is not None and demo.language == "id"
    assert demo.menu.options["2"].queue == "general"
    assert demo.menu.options["1"].info == "info"
    general = next(q for q in config.queues if q.name == "general")
    assert general.survey and general.announce_welcome and general.announce_every_s


@pytest.mark.parametrize(("text", "error"), [
    # A dangling queue in an option and in the default, by key path.
    (MENU.replace('queue = "billing"', 'queue = "nope"'),
     "services[0].menu.options.2.queue: no such queue 'nope'"),
    (MENU.replace('default = { queue = "general" }', 'default = { queue = "gone" }'),
     "services[0].menu.default.queue: no such queue 'gone'"),
    # Missing prompts: the info branch, the menu prompt, the invalid prompt.
    (MENU.replace('info = "info"', 'info = "no-such-info"'),
     "services[0].menu.options.1.info: prompt not found:"),
    (MENU.replace("timeout_s = 4", 'timeout_s = 4\nprompt = "missing-menu"'),
     "services[0].menu.prompt: prompt not found:"),
    (MENU.replace("timeout_s = 4", 'timeout_s = 4\ninvalid = "missing-invalid"'),
     "services[0].menu.invalid: prompt not found:"),
    # Shape errors.
    (MENU.replace('"1" = { info = "info", then = "menu" }', '"12" = { info = "info" }'),
     "services[0].menu.options.12.[key]: '12': menu keys are one keypad key"),
    (MENU.replace('"2" = { queue = "billing" }', '"2" = { queue = "billing", info = "info" }'),
     "services[0].menu.options.2: give exactly one of queue, info, transfer or voicemail"),
    (MENU.replace('then = "menu"', 'then = "elsewhere"'),
     "services[0].menu.options.1.then:"),
    (MENU.replace("retries = 1", "retries = -1"), "services[0].menu.retries:"),
    ('[[services]]\nnumber = "1500"\n', "services[0]: give a queue or a menu"),
    ('[[services]]\nnumber = "1500"\nqueue = "general"\n[services.menu]\noptions = {}\n',
     "services[0].menu.options:"),
])
def test_menu_errors_by_key_path(tmp_path: Path, text: str, error: str) -> None:
    errors = errors_of(tmp_path, text)
    assert any(e.startswith(error) for e in errors), errors


def test_announcing_queue_needs_number_prompts_in_the_service_language(
        tmp_path: Path) -> None:
    (tmp_path / "prompts" / "xx").mkdir(parents=True)
    for name in ("greeting", "after-hours", "menu", "invalid", "info"):
        (tmp_path / "prompts" / "xx" / f"{name}.wav").write_bytes(
            (PROMPTS / "en" / f"{name}.wav").read_bytes())
    text = MENU.replace('language = "id"', 'language = "xx"').replace(
        f'prompts = "{PROMPTS}"', "")
    path = tmp_path / "softswitch.toml"
    path.write_text(BASE.replace(f'prompts = "{PROMPTS}"', f'prompts = "{tmp_path / "prompts"}"')
                    + text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    missing = {e.rsplit("/", 1)[-1] for e in info.value.errors}
    assert all(e.startswith("services[0].language: prompt not found:")
               for e in info.value.errors), info.value.errors
    assert {"you-are-number.wav", "number-7.wav", "minutes.wav", "survey.wav",
            "survey-thanks.wav"} <= missing


@pytest.mark.parametrize("rate", ["-0.1", "1.5"])
def test_survey_rate_is_a_share(tmp_path: Path, rate: str) -> None:
    errors = errors_of(tmp_path, f'[[queues]]\nname = "x"\nsurvey_rate = {rate}\n')
    assert any(e.startswith("queues[2].survey_rate:") for e in errors), errors


def test_numbers_are_said_whole_to_twenty_then_digit_by_digit() -> None:
    assert _number(0) == ["number-0"]
    assert _number(20) == ["number-20"]
    assert _number(105) == ["number-1", "number-0", "number-5"]


# -- call-flow nodes (issue 4 IVR-1..3, ACC-7): transfer, voicemail, priority/service type --
NODES = ('[[users]]\nextension = "1003"\npassword = "secret"\n'
         '[[services]]\nnumber = "1500"\n'
         'after_hours_action = { voicemail = true }\n'
         '[services.menu.options]\n'
         '"1" = { transfer = "1003" }\n"2" = { voicemail = true }\n'
         '"3" = { queue = "general", priority = 0, service_type = "sales" }\n')


def load_cc(tmp_path: Path, cc: str, text: str) -> object:
    """`load` with more `[contact_centre]` settings."""
    path = tmp_path / "softswitch.toml"
    path.write_text(BASE.replace('language = "en"\n', 'language = "en"\n' + cc, 1) + text,
                    encoding="utf-8")
    return load_config(path)


def cc_errors_of(tmp_path: Path, cc: str, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_cc(tmp_path, cc, text)
    return info.value.errors


def test_nodes_parse(tmp_path: Path) -> None:
    config = load_cc(tmp_path, f'voicemail_dir = "{tmp_path}/vm"\nvoicemail_max_s = 30\n',
                     NODES)
    cc = config.contact_centre  # type: ignore[attr-defined]
    assert cc.voicemail_dir == f"{tmp_path}/vm" and cc.voicemail_max_s == 30
    assert (tmp_path / "vm").is_dir()  # created by the check
    service = config.services[0]  # type: ignore[attr-defined]
    assert service.after_hours_action == MenuAction(voicemail=True)
    options = service.menu.options
    assert options["1"] == MenuAction(transfer="1003")
    assert options["2"].voicemail
    assert (options["3"].queue, options["3"].priority, options["3"].service_type) == (
        "general", 0, "sales")
    assert [w for w, _ in service.actions()][0] == ("after_hours_action",)


def test_voicemail_dir_defaults_next_to_the_file(tmp_path: Path) -> None:
    config = load(tmp_path, NODES)
    cc = config.contact_centre  # type: ignore[attr-defined]
    assert cc.voicemail_dir == str(tmp_path / "var" / "voicemail") and cc.voicemail_max_s == 120


@pytest.mark.parametrize("action, message", [
    ('{ queue = "general", info = "info" }', "exactly one of queue, info, transfer"),
    ('{ transfer = "1003", voicemail = true }', "exactly one of"),
    ('{ voicemail = false }', "exactly one of"),
    ('{ info = "info", priority = 1 }', "go with a queue"),
    ('{ transfer = "10a3" }', "digits"),
    ('{ queue = "general", priority = -1 }', "greater than or equal to 0"),
])
def test_bad_node_is_named_by_key_path(tmp_path: Path, action: str, message: str) -> None:
    errors = errors_of(tmp_path, '[[services]]\nnumber = "1500"\n'
                       f'[services.menu.options]\n"4" = {action}\n')
    assert any("services[0].menu.options.4" in e and message in e for e in errors), errors


def test_unknown_transfer_number(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, NODES.replace('transfer = "1003"', 'transfer = "1009"'))
    assert any(e.startswith("services[0].menu.options.1.transfer")
               and "no user has extension '1009'" in e for e in errors), errors


def test_negative_voicemail_length(tmp_path: Path) -> None:
    errors = cc_errors_of(tmp_path, "voicemail_max_s = -5\n", NODES)
    assert any("contact_centre.voicemail_max_s" in e and "greater than 0" in e
               for e in errors), errors


def test_unwritable_voicemail_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    errors = cc_errors_of(tmp_path, f'voicemail_dir = "{blocker}/vm"\n', NODES)
    assert any(e.startswith("contact_centre.voicemail_dir") and "cannot create" in e
               for e in errors), errors
