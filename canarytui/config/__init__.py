"""The environment file: its typed model, templates, and the YAML reader (re-exports only).

Modules, bottom up: ``limits`` (every bound, values shown safely in messages), ``model``
(dataclasses, errors), ``template`` (placeholders, quoting, durations), ``source`` (the file
and its YAML read without trusting either), ``reader`` (the YAML-node walker), ``sections``
and ``canary`` (one reader per section), ``inventory`` (``hosts_from``: an Ansible inventory,
read by ``inventory_ini``, ``inventory_yaml`` and ``inventory_vars`` into ``inventory_graph``),
``loader`` (``parse_env``, ``load_env``).
"""

from canarytui.config.loader import TOP_KEYS, load_env, parse_env
from canarytui.config.model import (
    DEFAULT_VERSION_PATTERN,
    Analysis,
    Canary,
    Change,
    Deploy,
    EnvFileError,
    Environment,
    Health,
    Hooks,
    Host,
    Promote,
    Rule,
    SshDefaults,
    Step,
    Traffic,
    VersionError,
    WaveSpec,
    canaries_by_percent,
)
from canarytui.config.template import PLACEHOLDERS, parse_duration, placeholders_in, render

__all__ = [
    "DEFAULT_VERSION_PATTERN",
    "PLACEHOLDERS",
    "TOP_KEYS",
    "Analysis",
    "Canary",
    "Change",
    "Deploy",
    "EnvFileError",
    "Environment",
    "Health",
    "Hooks",
    "Host",
    "Promote",
    "Rule",
    "SshDefaults",
    "Step",
    "Traffic",
    "VersionError",
    "WaveSpec",
    "canaries_by_percent",
    "load_env",
    "parse_duration",
    "parse_env",
    "placeholders_in",
    "render",
]
