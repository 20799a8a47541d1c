"""Themes: YAML files validated into Textual ``Theme`` objects.

A theme file has the fields of ``textual.theme.Theme`` (``name``, ``primary``, ...) and a
``variables`` mapping; canarytui's own variables are named by meaning (``state-healthy``,
``state-canary``, ...). A file that does not validate is reported (the app shows a
notification) and skipped: a broken theme never stops the program.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from textual.color import Color, ColorParseError
from textual.theme import Theme

import canarytui
from canarytui.config.limits import MAX_DEPTH
from canarytui.config.source import LOADER, nesting_bound

THEMES_DIR_ENV = "CANARYTUI_THEMES_DIR"
DEFAULT_THEME = "dark"
# A theme's name is shown in the command palette, which reads its prompts as markup.
THEME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
MAX_THEME_BYTES = 64 * 1024

# Every canarytui variable used in .tcss, with the default a theme that lacks it gets
# (Textual's built-in themes, a theme file that leaves some out).
STATE_VARIABLES: dict[str, str] = {
    "state-healthy": "#2e7d4f",
    "state-deployed": "#1f8a70",
    "state-failing": "#b3261e",
    "state-canary": "#f5b700",
    "state-deploying": "#2f6fbf",
    "state-pending": "#5b5f97",
    "state-rolled-back": "#8a5a00",
    "state-unreachable": "#6b6b6b",
    "state-unknown": "#3c3f46",
    "tile-cursor": "#f5b700",
}

_FIELDS = {f.name: f for f in dataclasses.fields(Theme)}
_COLOUR_FIELDS = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)

# Used when no theme file can be read at all (an installed package without themes/).
BUILTIN_DARK = Theme(
    name=DEFAULT_THEME,
    primary="#4a9fd8",
    secondary="#7f8fa6",
    accent="#f5b700",
    warning="#e0a030",
    error="#e05252",
    success="#3fae6a",
    foreground="#dfe3e8",
    background="#16191d",
    surface="#1e2227",
    panel="#262b31",
    dark=True,
    variables=dict(STATE_VARIABLES),
)


class ThemeError(ValueError):
    """A theme file that cannot be used; the message names the file and the problem."""


@dataclass
class ThemeSet:
    themes: list[Theme] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.themes]


def themes_dir() -> Path | None:
    """``$CANARYTUI_THEMES_DIR``, else ``themes/`` next to the package (a checkout)."""
    override = os.environ.get(THEMES_DIR_ENV)
    candidates = [Path(override).expanduser()] if override else []
    package = Path(canarytui.__file__).resolve().parent
    candidates += [package.parent / "themes", package / "themes"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def parse_theme(data: Any, source: str) -> Theme:
    """One theme file's data -> a Theme, or ThemeError naming what is wrong."""
    if not isinstance(data, dict):
        raise ThemeError(f"{source}: a theme is a mapping of Theme fields")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ThemeError(f"{source}: unknown key(s): {', '.join(map(str, unknown))}")
    for required in ("name", "primary"):
        if not isinstance(data.get(required), str) or not data[required].strip():
            raise ThemeError(f"{source}: {required}: required (a string)")
    if not THEME_NAME.fullmatch(data["name"]):
        raise ThemeError(
            f"{source}: name: letters, digits and . _ + - only (at most 64), got {data['name']!r}"
        )
    for key in _COLOUR_FIELDS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ThemeError(f"{source}: {key}: a colour string, got {value!r}")
        try:
            Color.parse(value)
        except ColorParseError:
            raise ThemeError(f"{source}: {key}: not a colour: {value!r}") from None
    for key in ("dark", "ansi"):
        if key in data and not isinstance(data[key], bool):
            raise ThemeError(f"{source}: {key}: true or false, got {data[key]!r}")
    for key in ("luminosity_spread", "text_alpha"):
        if key in data and (isinstance(data[key], bool) or not isinstance(data[key], int | float)):
            raise ThemeError(f"{source}: {key}: a number, got {data[key]!r}")
    variables = data.get("variables", {}) or {}
    if not isinstance(variables, dict):
        raise ThemeError(f"{source}: variables: a mapping of name: value")
    for name, value in variables.items():
        if not isinstance(name, str) or not isinstance(value, str | int | float):
            raise ThemeError(f"{source}: variables.{name}: a string value, got {value!r}")
        if name in STATE_VARIABLES:
            try:
                Color.parse(str(value))
            except ColorParseError:
                raise ThemeError(f"{source}: variables.{name}: not a colour: {value!r}") from None
    fields = dict(data)
    fields["variables"] = {**STATE_VARIABLES, **{str(k): str(v) for k, v in variables.items()}}
    try:
        return Theme(**fields)
    except (TypeError, ValueError) as exc:
        raise ThemeError(f"{source}: {exc}") from None


def load_theme_file(path: Path) -> Theme:
    """One theme file, read with libyaml (when present) once it is known to be a regular
    file of sane size and nesting: a deeply nested one would exhaust the composer's
    recursion, a FIFO would block the start."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the start
            raise ThemeError(f"{path.name}: not a regular file")
        if st.st_size > MAX_THEME_BYTES:
            raise ThemeError(f"{path.name}: too large: {st.st_size} bytes (a theme is a few lines)")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ThemeError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ThemeError(f"{path.name}: not valid UTF-8: save the file as UTF-8") from None
    if nesting_bound(text) > MAX_DEPTH:
        raise ThemeError(f"{path.name}: nested more than {MAX_DEPTH} deep: not a theme")
    try:
        data = yaml.load(text, Loader=LOADER)  # libyaml's, when present: ~10x faster
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ThemeError(f"{path.name}{where}: not valid YAML: {problem}") from None
    return parse_theme(data, path.name)


def load_themes(folder: Path | None = None) -> ThemeSet:
    """Every ``*.yaml`` theme in the folder; the built-in dark theme if none is usable."""
    found = ThemeSet()
    folder = folder if folder is not None else themes_dir()
    paths = sorted(folder.glob("*.y*ml")) if folder is not None else []
    for path in paths:
        try:
            found.themes.append(load_theme_file(path))
        except ThemeError as exc:
            found.problems.append(str(exc))
    if DEFAULT_THEME not in found.names:
        found.themes.insert(0, BUILTIN_DARK)
    return found
