"""The fleet grid's filter: which hosts the operator's text shows, kept as hosts change.

A host is shown when the text (case-insensitive) is in its name, address, a role (``api``,
or ``role=api`` as the command line's ``--hosts`` writes it) or a label (``zone=eu-1``),
which never change, or in what changes with it: its state (``state=failed`` too), its
tile's colour, ``canary`` (the deployment's canaries, else the picked ones, else the file's:
those ``d`` takes), or ``version=`` and the version it runs, or its first parts
(``version=1.2``: 1.2.0 and 1.2.3-rc1, not 1.20).
What matches by configuration is asked once per text; a host update asks again only of
that host, and only when the text can match by what changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from canarytui.config import Host

VERSION_KEY = "version="  # the text that matches hosts by the version they run
STATE_KEY = "state="  # written before a state, as role= before a role
_PARTS = ".-+_~"  # what separates the parts of a version (1.2.0-rc1+build.7)


def version_matches(version: str, wanted: str) -> bool:
    """Whether ``version`` is ``wanted`` (any case) or one of its parts' continuations:
    ``1.2`` matches 1.2, 1.2.0 and 1.2.3-rc1, never 1.20 nor 11.2 (a part is whole)."""
    version = version.lower()
    if not version.startswith(wanted):
        return False
    return (
        len(version) == len(wanted)
        or not wanted
        or (wanted[-1] in _PARTS)
        or (version[len(wanted)] in _PARTS)
    )


class HostFilter:
    """The text typed and the hosts it shows (all of them, in the file's order, for none).

    ``now(name, needle)``: whether ``needle`` (stripped, lower-case) matches what changes
    with the host; ``changing(needle)``: whether it can match any such thing at all."""

    def __init__(
        self,
        hosts: Sequence[Host],
        now: Callable[[str, str], bool],
        changing: Callable[[str], bool],
    ) -> None:
        self._hosts = {h.name: h for h in hosts}
        self._names = [h.name for h in hosts]
        self._now = now
        self._changing = changing
        self.text = ""
        self.shown: list[str] = list(self._names)
        self._shown_set = set(self.shown)
        self._by_config = self._shown_set  # hosts the text matches by their config
        self._by_state = False  # can the text match a host by what changes with it?
        self._haystacks: dict[str, str] = {}  # host: its config's text, lower-case

    def _config_matches(self, needle: str) -> set[str]:
        """Hosts whose name, address, roles or labels contain ``needle`` (``Host.matches``),
        from one lower-case text per host, made at the first use of the filter."""
        if not self._haystacks:
            self._haystacks = {
                h.name: "\n".join(
                    [
                        h.name,
                        h.address,
                        *h.roles,
                        *(f"role={r}" for r in h.roles),  # as ``deploy --hosts role=web``
                        *(f"{k}={v}" for k, v in h.labels.items()),
                    ]
                ).lower()
                for h in self._hosts.values()
            }
        if "\n" in needle:  # it could span two fields of the joined text
            return {n for n, h in self._hosts.items() if h.matches(needle)}
        return {n for n, text in self._haystacks.items() if needle in text}

    def apply(self, text: str) -> list[str]:
        self.text = text
        needle = _needle(text)
        names = self._names
        # What matches by its name, address, roles or labels keeps matching: asked once.
        self._by_config = self._config_matches(needle) if needle else set(names)
        by_config = self._by_config
        # Text nothing changing can contain never matches by it: its hosts are those of
        # the config, and changes of state cannot alter them.
        self._by_state = bool(needle) and self._changing(needle)
        if not self._by_state:
            self.shown = [n for n in names if n in by_config]
        else:
            self.shown = [n for n in names if n in by_config or self._now(n, needle)]
        self._shown_set = set(self.shown)
        return self.shown

    def refilter(self, names: Iterable[str]) -> bool:
        """Hosts that changed, checked again against the text (the others cannot have
        changed their answer): True if the hosts shown changed."""
        needle = _needle(self.text)
        if not needle or not self._by_state:
            return False
        shown, by_config = self._shown_set, self._by_config
        changed = False
        for name in names:
            if name in by_config:
                continue
            if (name in shown) != self._now(name, needle):
                changed = True
                (shown.discard if name in shown else shown.add)(name)
        if changed:
            self.shown = [n for n in self._names if n in shown]
        return changed


def _needle(text: str) -> str:
    """What the operator typed, as matched: lower case, and a state written as ``role=``
    and ``zone=`` are (``state=failed``) the same as the state itself."""
    needle = text.strip().lower()
    return needle.removeprefix(STATE_KEY) or needle
