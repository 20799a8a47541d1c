"""Asks which version to deploy: picked from the releases known, or typed and validated.

Versions the environment refuses (``version_pattern``) are refused here. The list
(``deploy.releases`` on the canaries plus the journal's, from the engine) loads in a
worker while the dialog is already open. Typing filters it; the arrows move its
highlight; enter takes the highlighted entry, or the typed text when no entry is
highlighted (a typed version that is exactly an entry highlights it). The line above the
keys always says what enter will take.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static

from canarytui.config import Environment, VersionError
from canarytui.engine.releases import Catalogue, unlisted
from canarytui.textsafe import harmless, harmless_block, listed
from canarytui.ui.widgets.plain_input import PlainInput
from canarytui.ui.widgets.release_list import ReleaseList

MAX_NOTES = 4  # note lines shown under the list
DEFAULT_HINT = "↑↓ pick · type to filter, or a new version · escape: cancel"

# Lists the releases for the dialog (``Engine.releases`` on the chosen canaries).
ReleaseLoader = Callable[[], Awaitable[Catalogue]]


class VersionScreen(ModalScreen[str | None]):
    """Dismisses with a valid version, or None (escape)."""

    DEFAULT_CSS = """
    VersionScreen {
        align: center middle;
    }
    VersionScreen > #dialog {
        width: 70;
        max-width: 90%;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $panel;
        padding: 1 2;
    }
    VersionScreen #title { text-style: bold; margin-bottom: 1; }
    VersionScreen #notes { color: $text-muted; height: auto; }
    VersionScreen #notes.-empty { display: none; }
    VersionScreen #choice { text-style: bold; }
    VersionScreen #hint { color: $text-muted; }
    VersionScreen #error { color: $error; height: auto; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("down", "move(1)", "Next", show=False),
    ]

    class Loaded(Message):
        """The releases came back (``catalogue``), or could not be listed (``error``)."""

        def __init__(self, catalogue: Catalogue | None, error: str = "") -> None:
            super().__init__()
            self.catalogue = catalogue
            self.error = error

    def __init__(
        self,
        env: Environment,
        canaries: list[str],
        hint: str = "",
        *,
        releases: ReleaseLoader | None = None,
        prefer: str | None = None,
    ) -> None:
        super().__init__()
        self.env = env
        self.canaries = canaries
        self.hint = hint
        self.loader = releases
        self.prefer = prefer  # highlighted first instead of the release after the stable
        self.catalogue = Catalogue()
        self.listing = releases is not None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                harmless(f"Deploy to {self.env.name} / {self.env.app}"), id="title", markup=False
            )
            canaries = listed(self.canaries, 10) or "none (straight to the waves)"
            yield Static(harmless(f"canaries: {canaries}"), markup=False)
            yield PlainInput(placeholder="version: type to filter, or a new one", id="version")
            yield ReleaseList(id="releases")
            yield Static(self._listing_note(), id="notes", markup=False)
            yield Static("", id="error", markup=False)
            yield Static("", id="choice", markup=False)
            yield Static(harmless_block(self.hint) or DEFAULT_HINT, id="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._refilter()
        if self.loader is not None:
            self.load_releases(self.loader)

    def _listing_note(self) -> str:
        if not self.listing:
            return ""
        where = listed(self.canaries, 3) or "the first host"
        return harmless(f"listing the releases on {where} …", 200)

    # Listing (a worker: it only calls the loader and reports) ----------------------------

    @work(exclusive=True, group="releases", exit_on_error=False, description="list releases")
    async def load_releases(self, loader: ReleaseLoader) -> None:
        try:
            catalogue = await loader()
        except Exception as exc:  # SSH trouble, a journal that cannot be read
            self.post_message(self.Loaded(None, error=str(exc) or type(exc).__name__))
        else:
            self.post_message(self.Loaded(catalogue))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.listing = False
        notes = self.query_one("#notes", Static)
        if message.catalogue is None:
            text = f"could not list the releases: {message.error}; type a version"
        else:
            self.catalogue = message.catalogue
            lines = list(message.catalogue.notes)
            if len(lines) > MAX_NOTES:
                lines = [*lines[: MAX_NOTES - 1], f"… and {len(lines) - MAX_NOTES + 1} more"]
            if not message.catalogue.releases:
                lines.append("no release known: type a version")
            text = "\n".join(lines)
        notes.update(harmless_block(text, limit=200, max_lines=MAX_NOTES + 1))
        notes.set_class(not text, "-empty")
        self._refilter()

    # Typing, moving, picking -------------------------------------------------------------

    @property
    def typed(self) -> str:
        return self.query_one(Input).value.strip()

    def _refilter(self) -> None:
        """Show the entries that contain what is typed; highlight the entry typed exactly,
        or with nothing typed, the release after the stable one."""
        typed = self.typed
        releases = self.catalogue.releases
        if typed:
            needle = typed.lower()
            releases = tuple(r for r in releases if needle in r.version.lower())
            target: str | None = typed
        else:
            known = self.prefer is not None and self.catalogue.get(self.prefer) is not None
            target = self.prefer if known else self.catalogue.default
        self.query_one(ReleaseList).show(releases, target)
        self._show_choice()

    def _choice(self) -> str:
        """What enter takes now: the highlighted entry, else the typed text."""
        return self.query_one(ReleaseList).highlighted_version or self.typed

    def _show_choice(self) -> None:
        choice = self._choice()
        if not choice:
            text = "enter: type a version, or pick one with ↑↓"
        elif self.catalogue.get(choice) is None:
            shown = self.query_one(ReleaseList).shown
            near = f"; ↓ picks {shown[0]}" if shown else ""
            text = f"enter: {choice}, not in the list (a new version){near}"
        else:
            text = f"enter: {choice}"
        self.query_one("#choice", Static).update(harmless(text, 200))

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#error", Static).update("")
        self._refilter()

    def action_move(self, step: int) -> None:
        self.query_one(ReleaseList).move(step)
        self._show_choice()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._take(self._choice())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        picked = self.query_one(ReleaseList).shown
        if 0 <= event.option_index < len(picked):
            self._take(picked[event.option_index])

    def _take(self, version: str) -> None:
        error = self.query_one("#error", Static)
        if not version:
            error.update(
                "type a version, or wait for the list" if self.listing else "type a version first"
            )
            return
        try:
            self.env.validate_version(version)
        except VersionError as exc:  # it echoes what was typed
            error.update(harmless_block(str(exc), max_lines=5))
            return
        self.dismiss(version)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def unlisted(self, version: str) -> str | None:
        """Why ``version`` may be a slip of the keys (``releases.unlisted``), or None."""
        said = unlisted(self.catalogue, version)
        if said is None:
            return None
        return f"{said}: it was typed, not picked from the list; is it the release you meant?"
