"""Reader of the canary section: the canaries (hosts or a share) and the analysis rules."""

from __future__ import annotations

from yaml.nodes import Node

from canarytui.config.limits import MAX_CHECKS, MAX_HOSTS, MAX_MIN_COUNT, shown
from canarytui.config.model import Analysis, Canary, Rule
from canarytui.config.reader import NodeReader


def _read_rules(r: NodeReader, node: Node | None) -> tuple[Rule, ...]:
    items = r.sequence(node, "canary.analysis.rules") or []
    rules = []
    names: set[str] = set()
    for i, item in enumerate(items):
        path = f"canary.analysis.rules[{i}]"
        m = r.mapping(
            item,
            path,
            {
                "name",
                "metric",
                "per",
                "max",
                "max_vs_baseline",
                "quantile",
                "must_have_data",
                "min_count",
            },
            {"name", "metric"},
        )
        if m is None:
            continue
        name = r.string(m.get("name"), f"{path}.name", None)
        if name is not None and name in names:
            r.problem(m["name"], f"{path}.name", f"duplicate rule name {shown(name)}")
        if name is not None:
            names.add(name)
        metric = r.string(m.get("metric"), f"{path}.metric", None)
        rule_max = r.number(m.get("max"), f"{path}.max", None)
        vs = r.number(m.get("max_vs_baseline"), f"{path}.max_vs_baseline", None, positive=True)
        quantile = r.number(m.get("quantile"), f"{path}.quantile", None)
        if quantile is not None and not 0 < quantile < 1:
            r.problem(m["quantile"], f"{path}.quantile", f"must be between 0 and 1, got {quantile}")
        per = r.string(m.get("per"), f"{path}.per", None)
        if per is not None and quantile is not None:
            r.problem(m["per"], f"{path}.per", "a rule takes either per or quantile, not both")
        if "max" not in m and "max_vs_baseline" not in m:
            r.problem(item, f"{path}.max", "required (or max_vs_baseline): a rule needs a limit")
        if name and metric:
            rules.append(
                Rule(
                    name=name,
                    metric=metric,
                    per=per,
                    max=rule_max,
                    max_vs_baseline=vs,
                    quantile=quantile,
                    must_have_data=r.boolean(
                        m.get("must_have_data"), f"{path}.must_have_data", False
                    ),
                    min_count=r.integer(
                        m.get("min_count"), f"{path}.min_count", 100, 0, most=MAX_MIN_COUNT
                    ),
                )
            )
    return tuple(rules)


def read_canary(r: NodeReader, node: Node | None, host_names: set[str]) -> Canary:
    d = Canary()
    if node is None:
        return d
    m = r.mapping(node, "canary", {"hosts", "percent", "analysis"})
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
    if percent is not None and percent > 100:
        r.problem(m["percent"], "canary.percent", f"must be at most 100, got {percent:g}")
    if "hosts" in m and "percent" in m:
        r.problem(m["percent"], "canary.percent", "give either canary.hosts or canary.percent")
    analysis = Analysis()
    if "analysis" in m:
        am = r.mapping(
            m["analysis"], "canary.analysis", {"duration", "max_failed_checks", "baseline", "rules"}
        )
        if am is not None:
            da = Analysis()
            analysis = Analysis(
                # 0s: a health gate only, judged on one round of probes.
                duration=r.duration(
                    am.get("duration"), "canary.analysis.duration", da.duration, zero=True
                ),
                max_failed_checks=r.integer(
                    am.get("max_failed_checks"),
                    "canary.analysis.max_failed_checks",
                    da.max_failed_checks,
                    0,
                    most=MAX_CHECKS,
                ),
                baseline=r.integer(
                    am.get("baseline"), "canary.analysis.baseline", da.baseline, 0, most=MAX_HOSTS
                ),
                rules=_read_rules(r, am.get("rules")),
            )
    return Canary(hosts=hosts, percent=percent, analysis=analysis)
