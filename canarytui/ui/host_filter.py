"""The fleet grid's filter: which hosts the operator's text shows, kept as hosts change.

A host is shown when every word of the text (case-insensitive) is in its name, address, a
role (``api``, or ``role=api`` as the command line's ``--hosts`` writes it, whole) or a
label (``zone=eu-1``, whole), which never change, or in what changes with it: its state
(``state=failed`` too), its tile's colour, ``canary`` (the deployment's canaries, else the
picked ones, else the file's: those ``d`` takes), or ``version=`` and the version it runs,
or its first parts (``version=1.2``: 1.2.0 and 1.2.3-rc1, not 1.20).
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

    Several words (``role=web zone=eu-1``) show the hosts every word matches. A word with
    ``=`` matches a role or label whole (``zone=eu`` is not ``zone=eu-1``), as
    ``deploy --hosts role=web`` does; another is found in the name, address, roles, labels.
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
        # Each word: (its needle, the hosts it matches by config, can it match by state?).
        self._terms: list[tuple[str, set[str], bool]] = []
        self._fields: dict[str, list[str]] = {}  # host: its config's fields, lower-case
        self._joined: dict[str, str] = {}  # host: those fields, one a line

    def _config_matches(self, needle: str) -> set[str]:
        """Hosts whose name, address, roles or labels contain ``needle`` (a ``key=value``:
        are it), from each host's fields, made at the first use of the filter."""
        if not self._fields:
            self._fields = {
                h.name: [
                    x.lower()
                    for x in (
                        h.name,
                        h.address,
                        *h.roles,
                        *(f"role={r}" for r in h.roles),  # as ``deploy --hosts role=web``
                        *(f"{k}={v}" for k, v in h.labels.items()),
                    )
                ]
                for h in self._hosts.values()
            }
            self._joined = {n: "\n".join(fields) for n, fields in self._fields.items()}
        if "=" in needle:
            return {n for n, fields in self._fields.items() if needle in fields}
        # (a word holds no line break: found in the joined fields, it is in one of them)
        return {n for n, text in self._joined.items() if needle in text}

    def _matches(self, name: str) -> bool:
        return all(
            name in by_config or (changes and self._now(name, needle))
            for needle, by_config, changes in self._terms
        )

    def apply(self, text: str) -> list[str]:
        self.text = text
        # What matches by its name, address, roles or labels keeps matching: asked once a
        # word; a word nothing changing can contain never matches by state.
        self._terms = [
            (needle, self._config_matches(needle), self._changing(needle))
            for needle in map(_needle, text.split())
        ]
        self.shown = [n for n in self._names if self._matches(n)]
        self._shown_set = set(self.shown)
        return self.shown

    def refilter(self, names: Iterable[str]) -> bool:
        """Hosts that changed, checked again against the text (the others cannot have
        changed their answer): True if the hosts shown changed."""
        if not any(changes for _, _, changes in self._terms):
            return False
        shown = self._shown_set
        changed = False
        for name in names:
            if (name in shown) != self._matches(name):
                changed = True
                (shown.discard if name in shown else shown.add)(name)
        if changed:
            self.shown = [n for n in self._names if n in shown]
        return changed


def _needle(text: str) -> str:
    """A word typed, as matched: lower case, and a state written as ``role=`` and
    ``zone=`` are (``state=failed``) the same as the state itself."""
    needle = text.strip().lower()
    return needle.removeprefix(STATE_KEY) or needle
