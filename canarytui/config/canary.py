"""Reader of the canary section: the canaries (hosts or a share) and the analysis rules."""

from __future__ import annotations

import re

from yaml.nodes import Node, ScalarNode

from canarytui.config.limits import MAX_CHECKS, MAX_HOSTS, MAX_MIN_COUNT, shown
from canarytui.config.model import Analysis, Canary, Change, Rule
from canarytui.config.reader import NodeReader
from canarytui.config.selector import SelectorError, parse_selector

RULE_KEYS = {
    "name",
    "metric",
    "per",
    "max",
    "max_vs_baseline",
    "min",
    "min_vs_baseline",
    "quantile",
    "must_have_data",
    "optional",
    "min_count",
    "compare",
    "compare_to",
    "max_increase",
    "max_decrease",
    "confidence",
}
ANALYSIS_KEYS = {
    "before",
    "warmup",
    "duration",
    "interval",
    "max_failed_checks",
    "baseline",
    "early_fail",
    "rules",
}
COMPARISONS = ("mann-whitney",)
LIMIT_KEYS = ("max", "max_vs_baseline", "min", "min_vs_baseline")
_CHANGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*")


def _selector(r: NodeReader, node: Node | None, path: str) -> str | None:
    text = r.string(node, path, None)
    if text is None:
        return None
    try:
        parse_selector(text)
    except SelectorError as exc:
        r.problem(node, path, f"not a series selector: {exc}")
        return None
    return str(text)


def _change(r: NodeReader, node: Node | None, path: str) -> Change | None:
    """``20%`` (of the reference) or an absolute number."""
    if node is None:
        return None
    raw = str(node.value) if isinstance(node, ScalarNode) else ""
    match = _CHANGE.fullmatch(raw) if len(raw) < 32 else None
    if match is None:
        r.problem(node, path, f"expected a change like 20% or 0.05, got {shown(raw)}")
        return None
    value = float(match.group(1))
    if match.group(2) and value > 10_000:
        r.problem(node, path, f"must be at most 10000%, got {value:g}%")
        return None
    return Change(value, bool(match.group(2)))


def _read_rule(r: NodeReader, item: Node, path: str, before: bool) -> Rule | None:
    m = r.mapping(item, path, RULE_KEYS, {"name", "metric"})
    if m is None:
        return None
    name = r.string(m.get("name"), f"{path}.name", None)
    metric = _selector(r, m.get("metric"), f"{path}.metric")
    per = _selector(r, m.get("per"), f"{path}.per")
    limits = {
        key: r.number(m.get(key), f"{path}.{key}", None, positive=key.endswith("baseline"))
        for key in LIMIT_KEYS
    }
    quantile = r.number(m.get("quantile"), f"{path}.quantile", None)
    if quantile is not None and not 0 < quantile < 1:
        r.problem(m["quantile"], f"{path}.quantile", f"must be between 0 and 1, got {quantile}")
    if per is not None and quantile is not None:
        r.problem(m["per"], f"{path}.per", "a rule takes either per or quantile, not both")
    compare = r.string(m.get("compare"), f"{path}.compare", None)
    if compare is not None and compare not in COMPARISONS:
        r.problem(m["compare"], f"{path}.compare", f"expected mann-whitney, got {shown(compare)}")
        compare = None
    compare_to = r.string(m.get("compare_to"), f"{path}.compare_to", "baseline")
    if compare_to not in ("baseline", "before"):
        r.problem(
            m["compare_to"],
            f"{path}.compare_to",
            f"expected baseline or before, got {shown(compare_to)}",
        )
        compare_to = "baseline"
    if compare_to == "before" and not before:
        r.problem(
            m["compare_to"],
            f"{path}.compare_to",
            "compare_to: before needs canary.analysis.before (how long to probe first)",
        )
    increase = _change(r, m.get("max_increase"), f"{path}.max_increase")
    decrease = _change(r, m.get("max_decrease"), f"{path}.max_decrease")
    confidence = r.number(m.get("confidence"), f"{path}.confidence", 0.99)
    if not 0.5 <= confidence < 1:
        r.problem(m["confidence"], f"{path}.confidence", f"must be in [0.5, 1), got {confidence}")
        confidence = 0.99
    if compare is not None and increase is None and decrease is None:
        r.problem(item, f"{path}.max_increase", "required (or max_decrease) with compare")
    if compare is None:
        for key in ("max_increase", "max_decrease", "compare_to"):
            if key in m:
                r.problem(m[key], f"{path}.{key}", "only with compare: mann-whitney")
    if compare is None and all(key not in m for key in LIMIT_KEYS):
        r.problem(
            item,
            f"{path}.max",
            "required (or max_vs_baseline, min, min_vs_baseline, compare): a rule needs a limit",
        )
    if not (name and metric):
        return None
    return Rule(
        name=name,
        metric=metric,
        per=per,
        max=limits["max"],
        max_vs_baseline=limits["max_vs_baseline"],
        min=limits["min"],
        min_vs_baseline=limits["min_vs_baseline"],
        quantile=quantile,
        must_have_data=r.boolean(m.get("must_have_data"), f"{path}.must_have_data", False),
        optional=r.boolean(m.get("optional"), f"{path}.optional", False),
        min_count=r.integer(m.get("min_count"), f"{path}.min_count", 100, 0, most=MAX_MIN_COUNT),
        compare=compare,
        compare_to=compare_to,
        max_increase=increase,
        max_decrease=decrease,
        confidence=confidence,
    )


def _read_rules(r: NodeReader, node: Node | None, before: bool) -> tuple[Rule, ...]:
    items = r.sequence(node, "canary.analysis.rules") or []
    rules = []
    names: set[str] = set()
    for i, item in enumerate(items):
        rule = _read_rule(r, item, f"canary.analysis.rules[{i}]", before)
        if rule is None:
            continue
        if rule.name in names:
            mapping = dict((k.value, v) for k, v in getattr(item, "value", []))
            r.problem(
                mapping.get("name", item),
                f"canary.analysis.rules[{i}].name",
                f"duplicate rule name {shown(rule.name)}",
            )
        names.add(rule.name)
        rules.append(rule)
    return tuple(rules)


def _read_analysis(r: NodeReader, node: Node) -> Analysis:
    d = Analysis()
    am = r.mapping(node, "canary.analysis", ANALYSIS_KEYS)
    if am is None:
        return d
    path = "canary.analysis"
    before = r.duration(am.get("before"), f"{path}.before", d.before, zero=True)
    interval = None
    if "interval" in am:
        interval = r.duration(am.get("interval"), f"{path}.interval", 0.0) or None
    return Analysis(
        # 0s: a health gate only, judged on one round of probes.
        duration=r.duration(am.get("duration"), f"{path}.duration", d.duration, zero=True),
        max_failed_checks=r.integer(
            am.get("max_failed_checks"),
            f"{path}.max_failed_checks",
            d.max_failed_checks,
            0,
            most=MAX_CHECKS,
        ),
        baseline=r.integer(am.get("baseline"), f"{path}.baseline", d.baseline, 0, most=MAX_HOSTS),
        rules=_read_rules(r, am.get("rules"), before > 0),
        before=before,
        warmup=r.duration(am.get("warmup"), f"{path}.warmup", d.warmup, zero=True),
        interval=interval,
        early_fail=r.boolean(am.get("early_fail"), f"{path}.early_fail", d.early_fail),
    )


def read_canary(
    r: NodeReader, node: Node | None, host_names: set[str], roles: set[str] | None = None
) -> Canary:
    d = Canary()
    if node is None:
        return Canary(enabled=False)  # no canary phase: straight to the waves
    m = r.mapping(node, "canary", {"hosts", "percent", "role", "analysis"})
    if m is None:
        return d
    hosts: tuple[str, ...] = ()
    items = r.sequence(m.get("hosts"), "canary.hosts")
    for i, item in enumerate(items or ()):
        name = r.string(item, f"canary.hosts[{i}]", None)
        if name is None:
            continue
        if host_names and name not in host_names:
            r.problem(item, f"canary.hosts[{i}]", f"{shown(name)} is not in hosts")
        hosts += (name,)
    percent = r.number(m.get("percent"), "canary.percent", None, positive=True)
    if percent is not None and percent >= 100:
        r.problem(
            m["percent"],
            "canary.percent",
            f"must be less than 100, got {percent:g}: every host a canary leaves no host to "
            "compare them with and no wave after them (no canary section: every host in waves)",
        )
    if "hosts" in m and "percent" in m:
        r.problem(m["percent"], "canary.percent", "give either canary.hosts or canary.percent")
    role = _read_role(r, m, host_names, roles or set())
    analysis = _read_analysis(r, m["analysis"]) if "analysis" in m else Analysis()
    return Canary(hosts=hosts, percent=percent, analysis=analysis, role=role)


def _read_role(
    r: NodeReader, m: dict[str, Node], host_names: set[str], roles: set[str]
) -> str | None:
    """``canary.role``: the hosts with this role (a group of an inventory) are the canaries."""
    role = r.string(m.get("role"), "canary.role", None)
    if "role" in m and ("hosts" in m or "percent" in m):
        r.problem(
            m["role"], "canary.role", "give one of canary.hosts, canary.percent or canary.role"
        )
    if role is not None and host_names and role not in roles:
        known = ", ".join(shown(x) for x in sorted(roles)[:20]) or "none"
        r.problem(m["role"], "canary.role", f"no host has the role {shown(role)} (roles: {known})")
    return role
