"""The footer of keys is built once for a screen and again only when the keys it shows
change: not on every "bindings updated" the screen signals (three while the first screen is
drawn, two on each focus move)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_ui_hostile import screen_text
from test_ui_support import Script, record_notifications, settle, until
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Button

from canarytui import events as ev
from canarytui.ui.widgets.key_footer import KeyFooter

SIZE = (120, 40)


def keys_of(footer: KeyFooter) -> list[Any]:
    """The footer's key widgets (Textual's FooterKey, by its CSS type name)."""
    return list(footer.query("FooterKey"))


async def test_the_fleet_screen_builds_its_footer_once_and_again_only_for_other_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[list[str]] = []
    recompose = KeyFooter.recompose

    async def counted(self: KeyFooter) -> None:
        await recompose(self)
        builds.append([k.key for k in keys_of(self)])

    monkeypatch.setattr(KeyFooter, "recompose", counted)
    script = Script(tmp_path, hosts=12)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        script.discovered()
        await settle(pilot)
        # The fleet screen's 8 keys that act with nothing open, nothing before (not p, P, s,
        # r) and the command palette's, built once (the screen said its bindings were
        # updated three times meanwhile).
        assert len(builds) == 1
        assert builds[0][:4] == ["question_mark", "q", "d", "a"] and len(builds[0]) == 9
        footer = app.fleet_screen.query_one(KeyFooter)
        built = keys_of(footer)

        await pilot.press("slash")  # the filter's input takes the keys: two are left
        await settle(pilot)
        assert builds[1:] == [["slash", "ctrl+p"]]
        await pilot.press("escape")  # the grid has them back
        await settle(pilot)
        assert app.focused is not None and app.focused.id == "grid"
        assert builds[2:] == [builds[0]]  # once each way (the screen said so twice each)
        assert keys_of(footer) != built  # rebuilt, as it had to be


class _Switchable(App[None]):
    """A footer over a key whose action can be turned off (``check_action``: None shows it
    dimmed)."""

    BINDINGS = [Binding("x", "go", "Go"), Binding("y", "other", "Other")]

    def __init__(self) -> None:
        super().__init__()
        self.allowed = True

    def compose(self) -> ComposeResult:
        yield Button("focus me", id="one")
        yield Button("or me", id="two")
        yield KeyFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "go" and not self.allowed else True

    def action_go(self) -> None:
        pass

    def action_other(self) -> None:
        pass


async def test_a_key_turned_off_rebuilds_the_footer_and_shows_it_off() -> None:
    app = _Switchable()
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        footer = app.query_one(KeyFooter)
        built = keys_of(footer)
        go = next(k for k in built if k.key == "x")
        assert not go.has_class("-disabled")

        app.query_one("#two", Button).focus()  # a focus move: the same keys
        await pilot.pause()
        assert keys_of(footer) == built

        app.allowed = False
        app.refresh_bindings()
        await until(pilot, lambda: keys_of(footer) != built, 5, "the footer rebuilt")
        rebuilt = keys_of(footer)
        assert next(k for k in rebuilt if k.key == "x").has_class("-disabled")
        assert not next(k for k in rebuilt if k.key == "y").has_class("-disabled")


@pytest.mark.parametrize("width", [80, 120])
async def test_help_and_the_rollout_keys_are_in_the_footer_of_a_narrow_terminal(
    tmp_path: Path, width: int
) -> None:
    """The footer shows what fits, in order: at 80 columns help, quit and every rollout key
    come first (it showed space, c, d, p, P and half of s: no r, no ?; then no q, even at
    120 columns); space and c are said by the rollout panel, where a canary is picked.
    It offers the keys that act now: nothing open, deploy and not promote or hold (the
    footer fits 80 columns then, the grid's keys too); open, promote and hold, not
    deploy. A key left out still answers, with why it does nothing now."""
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=(width, 24)) as pilot:
        await until(pilot, lambda: app.fleet_screen.is_mounted, 10, "screen mounted")
        await settle(pilot)
        lines = screen_text(app).splitlines()
        footer = lines[-1]
        idle = ("? Help", "q Quit", "d Deploy", "a Analysis", "/ Filter")
        for shown in idle:
            assert shown in footer, (shown, footer)
        assert "Promote" not in footer and "Hold" not in footer, footer
        assert "Rollback" not in footer, footer  # nothing deployed yet: nothing to undo
        assert "space toggle canary" in "\n".join(lines)  # the rollout panel's hint
        said = record_notifications(app)
        await pilot.press("p")
        assert said == ["nothing to promote: no deployment is open"], said

        def footer_now() -> str:
            return screen_text(app).splitlines()[-1]

        # Its canary analysed: only r acts (p answered "p promotes once it passed").
        script.start("1.1.0", ["web-01"])
        script.phase(ev.Phase.ANALYSIS)
        await until(pilot, lambda: "r Rollback" in footer_now(), 5, "rollback offered")
        assert "Promote" not in footer_now() and "Hold" not in footer_now(), footer_now()

        script.canary_passed("1.1.0", ["web-01"])
        await until(pilot, lambda: "p Promote" in footer_now(), 5, "promote offered")
        footer = footer_now()
        for shown in ("? Help", "q Quit", "p Promote", "P Promote all", "r Rollback"):
            assert shown in footer, (shown, footer)
        assert "Deploy" not in footer and "Hold" not in footer, footer  # between waves: waits
        await pilot.press("d")
        assert "deployment #2 of 1.1.0 is still open" in said[-1], said  # (#1: analysed)
        await pilot.press("s")
        assert said[-1].startswith("nothing to hold"), said
        assert "L Back" not in footer
        await pilot.press("L")  # the logs over the screen: the way back is offered
        await until(pilot, lambda: "L Back" in screen_text(app).splitlines()[-1], 5, "back")
        assert "⏎ Host" not in screen_text(app).splitlines()[-1]  # (the grid's keys)
        await pilot.press("L")
        await until(pilot, lambda: "L Back" not in screen_text(app).splitlines()[-1], 5, "grid")
        # The filter's input says its keys first: a narrow terminal cut them off the end.
        await pilot.press("slash")
        await until(
            pilot, lambda: "enter keeps, escape clears" in screen_text(app), 5, "filter hint"
        )
        await pilot.press("escape")


async def test_the_footer_follows_the_rollout_panels_keys_without_a_new_phase(
    tmp_path: Path,
) -> None:
    """The keys that act can change with no new phase (a hold taking effect, a call that
    starts or ends): the footer showed a promote's keys for seconds after, unlike the
    panel. Held: s (resume), p, P and r, as the panel says them."""
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        script.canary_passed("1.1.0", ["web-01"])

        def footer_now() -> str:
            return screen_text(app).splitlines()[-1]

        await until(pilot, lambda: "p Promote" in footer_now(), 5, "promote offered")
        assert "s Hold" not in footer_now()
        script.engine.state.held = ("ops", 0.0)  # no event: the panel's next redraw
        app.fleet_screen.repaint_now()
        await until(pilot, lambda: "s Hold" in footer_now(), 5, footer_now)
        for shown in ("p Promote", "P Promote all", "r Rollback"):
            assert shown in footer_now(), footer_now()
