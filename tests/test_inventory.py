"""Ansible inventories (`hosts_from`) and `canarytui init`: hosts, roles, vars, every mistake.

INI and YAML inventories are read as Ansible reads them (groups and children as roles,
``ansible_host`` / ``_user`` / ``_port``, other variables as labels, ranges, ``[g:vars]``,
``group_vars/`` and ``host_vars/``), merged with the environment file's own hosts, and every
malformed inventory is one ``INVENTORY:LINE: where: problem`` line with exit status 2.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canarytui.cli import main
from canarytui.config import EnvFileError, Host, load_env, parse_env
from canarytui.config.inventory import parse_inventory, read_inventory
from canarytui.config.model import SshDefaults

INI = textwrap.dedent("""\
    # the shop's fleet
    ; a comment too
    lonely ansible_host=10.9.9.9

    [web]
    web[01:03] zone=eu-1                  # a range: web01, web02, web03
    web-04:2222 ansible_host=10.0.0.14 note="two words" db_password=hunter2

    [web:vars]
    http_port=8080 # a literal, its comment dropped as in Ansible
    tier='front'

    [db]
    db-[a:c] ansible_port=5432 ansible_user=postgres

    [prod:children]
    web
    db

    [prod:vars]
    tier=prod
    env=production

    [all:vars]
    ansible_user=deploy
    """)

YAML = textwrap.dedent("""\
    all:
      vars:
        ansible_user: deploy
      hosts:
        lonely:
          ansible_host: 10.9.9.9
      children:
        prod:
          vars: {tier: prod, env: production, on: yes}
          children:
            web:
              hosts:
                web[01:03]:
                  zone: eu-1
                web-04:
                  ansible_host: 10.0.0.14
                  ansible_port: 2222
                  note: !unsafe '{{ not a template }}'
                  token: !vault |
                    $ANSIBLE_VAULT;1.1;AES256
                    6162
                  packages: [nginx, curl]
              vars:
                http_port: 8080
                tier: front
            db:
              hosts: db-a
        canary:
          hosts:
            web01:
    """)

ENV = textwrap.dedent("""\
    name: production
    app: shop
    hosts_from: {inventory}
    deploy:
      current: cat ~/current/VERSION
      steps:
        - name: switch
          run: ln -sfn ~/releases/{{version}} ~/current
    health:
      check: 'true'
    """)


def hosts_of(text: str, name: str = "inv.ini", **ssh: object) -> dict[str, Host]:
    return {h.name: h for h in parse_inventory(text, name, SshDefaults(**ssh))}  # type: ignore[arg-type]


def problems(text: str, name: str = "inv.ini") -> list[str]:
    with pytest.raises(EnvFileError) as info:
        parse_inventory(text, name)
    return info.value.problems


def write_env(folder: Path, inventory: str, extra: str = "") -> Path:
    env = folder / "prod.yaml"
    env.write_text(ENV.format(inventory=inventory) + extra)
    return env


# Reading ------------------------------------------------------------------------------


def test_ini_groups_children_vars_ranges_and_connection() -> None:
    hosts = hosts_of(INI)
    assert list(hosts) == [
        "lonely",
        "web01",
        "web02",
        "web03",
        "web-04",
        "db-a",
        "db-b",
        "db-c",
    ]
    web01 = hosts["web01"]
    assert (web01.address, web01.user, web01.port) == ("web01", "deploy", None)
    assert web01.roles == ("web", "prod")  # its group, then the group's parent
    assert dict(web01.labels) == {
        "tier": "front",  # the child group's vars win over the parent's
        "env": "production",
        "http_port": "8080",
        "zone": "eu-1",
    }
    web04 = hosts["web-04"]
    assert (web04.address, web04.port) == ("10.0.0.14", 2222)  # name:port
    assert web04.labels["note"] == "two words"
    assert "db_password" not in web04.labels  # named like a secret: never a label
    db = hosts["db-b"]
    assert (db.address, db.user, db.port, db.roles) == ("db-b", "postgres", 5432, ("db", "prod"))
    assert db.labels["tier"] == "prod"
    lonely = hosts["lonely"]
    assert (lonely.address, lonely.roles, dict(lonely.labels)) == ("10.9.9.9", (), {})


def test_yaml_inventory_reads_the_same_fleet() -> None:
    hosts = hosts_of(YAML, "inv.yml")
    assert list(hosts) == ["lonely", "web01", "web02", "web03", "web-04", "db-a"]
    assert hosts["web01"].roles == ("web", "canary", "prod")
    assert dict(hosts["web02"].labels) == {
        "tier": "front",
        "env": "production",
        "on": "yes",  # a key read from the nodes: `on` stays text, its value as written
        "http_port": "8080",
        "zone": "eu-1",
    }
    web04 = hosts["web-04"]
    assert (web04.address, web04.user, web04.port) == ("10.0.0.14", "deploy", 2222)
    assert web04.labels["note"] == "{{ not a template }}"
    assert "token" not in web04.labels and "packages" not in web04.labels
    assert hosts["db-a"].roles == ("db", "prod")


def test_ranges_as_ansible_expands_them() -> None:
    text = "[a]\nn[01:10:3]\nm[8:11]\nx-[a:c]-[1:2]\nz[:1]\n"
    assert list(hosts_of(text)) == [
        *("n01", "n04", "n07", "n10"),  # a stride, zero-padded
        *("m8", "m9", "m10", "m11"),
        *("x-a-1", "x-a-2", "x-b-1", "x-b-2", "x-c-1", "x-c-2"),  # the first range slowest
        *("z0", "z1"),  # a missing start is 0
    ]


def test_the_short_forms_ansible_accepts() -> None:
    text = (
        "all:\n  children:\n    web:\n      hosts: w1\n    empty:\n    db:\n      children: web\n"
    )
    hosts = hosts_of(text, "inv.yaml")
    assert list(hosts) == ["w1"] and hosts["w1"].roles == ("web", "db")
    hosts = hosts_of("all:\n  hosts:\n    'w[1:2]:2222':\n    w2:\n", "inv.yml")
    assert [(h.name, h.port) for h in hosts.values()] == [("w1", 2222), ("w2", 2222)]
    text = "[all]\nh1 flag=True hex=0x10 q=\"'kept # too'\" plain=a#b\n[all:vars]\nv = x y # z\n"
    labels = dict(hosts_of(text)["h1"].labels)
    # Python literals as in Ansible; `#` ends a host line; a vars line keeps it
    assert labels == {"v": "x y # z", "flag": "True", "hex": "16", "q": "kept # too", "plain": "a"}
    assert hosts_of(text)["h1"].roles == ()


def test_ssh_defaults_fill_what_the_inventory_leaves_out() -> None:
    hosts = hosts_of("a\nb ansible_user=other ansible_port=2200\n", user="deploy", port=2222)
    assert (hosts["a"].user, hosts["a"].port) == ("deploy", 2222)
    assert (hosts["b"].user, hosts["b"].port) == ("other", 2200)


def test_group_priority_and_depth_decide_between_groups() -> None:
    text = textwrap.dedent("""\
        [a]
        h
        [b]
        h
        [a:vars]
        colour=red
        [b:vars]
        colour=blue
        """)
    assert hosts_of(text)["h"].labels["colour"] == "blue"  # same depth: by name, b last
    text += "ansible_group_priority=0\n"
    assert hosts_of(text)["h"].labels["colour"] == "red"  # a lower priority applies first


def test_format_from_the_name_else_the_first_line(tmp_path: Path) -> None:
    for name, text in (("hosts", "[web]\nw1\n"), ("hosts", "# x\nall:\n  hosts:\n    w1:\n")):
        path = tmp_path / name
        path.write_text(text)
        assert [h.name for h in read_inventory(path)] == ["w1"]


def test_group_vars_and_host_vars_beside_the_inventory(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text("[web]\nw1 zone=eu-1\nw2\n[web:vars]\ntier=front\n")
    (tmp_path / "group_vars" / "web").mkdir(parents=True)
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("ansible_user: deploy\nteam: shop\n")
    (tmp_path / "group_vars" / "web" / "10.yml").write_text("tier: web\nzone: eu-9\n")
    (tmp_path / "group_vars" / "web" / "vault.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n61\n")
    (tmp_path / "group_vars" / "web" / ".hidden.yml").write_text("[not, a, mapping]\n")
    (tmp_path / "host_vars" / "w2").write_text("ansible_host: 10.0.0.2\n")
    hosts = {h.name: h for h in read_inventory(tmp_path / "inv.ini")}
    assert hosts["w1"].user == "deploy" and hosts["w2"].address == "10.0.0.2"
    # group_vars/ wins over the inventory's group vars; the host's own vars win over both
    assert dict(hosts["w1"].labels) == {"tier": "web", "team": "shop", "zone": "eu-1"}
    assert hosts["w2"].labels["zone"] == "eu-9"
    (tmp_path / "group_vars" / "web" / "20.yml").write_text("a: 1\nansible_port: [22]\n")
    with pytest.raises(EnvFileError) as info:
        read_inventory(tmp_path / "inv.ini")
    bad = tmp_path / "group_vars" / "web" / "20.yml"
    assert info.value.problems == [f"{bad}:2: ansible_port: expected a single value, got a list"]


# Mistakes -------------------------------------------------------------------------------

BAD_INI = [
    ("[web]\nweb[01:xx]\n", "inv.ini:2: [web] web[01:xx]: [01:xx]: a range is [START:END] or"),
    ("[web]\nw[01:5]\n", "inv.ini:2: [web] w[01:5]: [01:5]: a zero-padded start needs an end"),
    ("[web]\nw[1:3\n", "inv.ini:2: [web] w[1:3: unbalanced brackets"),
    ("[web]\nw[1:3:0]\n", "inv.ini:2: [web] w[1:3:0]: [1:3:0]: the step must be a whole number"),
    ("[web]\nw[5:1]\n", "inv.ini:2: [web] w[5:1]: [5:1]: the start is after the end"),
    ("[web]\nw[0:9999999]\n", "inv.ini:2: [web] w[0:9999999]: [0:9999999]: stands for more"),
    ("[web]\nw1 ansible_port=abc\n", "inv.ini:2: [web] w1: ansible_port: expected a port"),
    ("[web]\nw1 ansible_port=70000\n", "inv.ini:2: [web] w1: ansible_port: expected a port"),
    ("[web]\nw1:0\n", "inv.ini:2: [web] w1:0: (port): expected a port (1 to 65535), got '0'"),
    ("[web]\nw1:\n", "inv.ini:2: [web] w1:: a name ending in ':' needs a port after it"),
    ("[web]\nw1 ansible_host=\n", "inv.ini:2: [web] w1: ansible_host: must not be empty"),
    (
        "[web]\nw1 ansible_host=10.0.0.1:2222\n",
        "inv.ini:2: [web] w1: ansible_host: '10.0.0.1:2222' holds a port: write "
        "ansible_host='10.0.0.1' and ansible_port=2222",
    ),
    (
        "[web]\nw1 ansible_host=deploy@10.0.0.1\n",
        "inv.ini:2: [web] w1: ansible_host: 'deploy@10.0.0.1' holds a user: write "
        "ansible_host='10.0.0.1' and ansible_user='deploy'",
    ),
    (
        "[web]\nw1\n[db]\nw1:2222\n",
        "inv.ini:4: [db] w1:2222: w1 is first listed at line 2, where Ansible takes its port "
        "from: give the port there, or write ansible_port=2222",
    ),
    ("[web]\nw1 solo\n", "inv.ini:2: [web] w1: expected key=value after the host, got 'solo'"),
    ("[web]\nw1 a='open\n", "inv.ini:2: [web]: No closing quotation (close the quote)"),
    ("[web]\nbad/name\n", "inv.ini:2: [web] bad/name: host name 'bad/name': use letters"),
    ("[web]\nfe80::1\n", "inv.ini:2: [web] fe80::1: host name 'fe80::1': use letters"),
    (
        "[web]\nw1 ansible_host=10.0.0.1\n[db]\nw1 ansible_host=10.0.0.2\n",
        "inv.ini:4: [db] w1: ansible_host: '10.0.0.2' for w1, but '10.0.0.1' at line 2: "
        "a host has one ansible_host",
    ),
    ("[web:nope]\n", "inv.ini:1: [web:nope]: unknown section type 'nope' (known: vars, children)"),
    ("[bad name]\n", "inv.ini:1: '[bad name]': not a section header: [NAME], [NAME:vars]"),
    ("[web]\nw1\n[web:vars]\nsolo\n", "inv.ini:4: [web:vars]: expected key=value, got 'solo'"),
    ("[web]\nw1\n[ghost:vars]\na=1\n", "inv.ini:3: [ghost:vars]: no group 'ghost' in this file"),
    ("[web]\nw1\n[p:children]\nmissing\n", "inv.ini:4: [p:children]: no group 'missing' in"),
    ("[web]\nw1\n[p:children]\na b\n", "inv.ini:4: [p:children]: expected a group name, got"),
    (
        "[a]\nw1\n[a:children]\nb\n[b:children]\na\n",
        "inv.ini:4: (children): the groups 'a', 'b' are their own ancestors",
    ),
    ("[web]\n---\n", "inv.ini:2: [web] ---: '---' starts a YAML file"),
    ("[web]\nw1 a=\x1b[31m\n", "inv.ini:2: [web] w1: a: contains the control character '\\x1b'"),
    ("# only a comment\n", "inv.ini:1: (inventory): no hosts in it"),
    ("[web]\nw1 ansible_group_priority=x\n", "inv.ini:2: [web] w1: ansible_group_priority:"),
]

BAD_YAML = [
    ("- a\n", "inv.yml:1: (top level): expected a mapping of groups (all: ...), got a list"),
    ("", "inv.yml:1: (top level): the file is empty"),
    ("plugin: aws_ec2\n", "inv.yml:1: plugin: an inventory plugin's configuration"),
    ("all: [a]\n", "inv.yml:1: all: expected a group (hosts, vars, children), got a list"),
    ("all:\n  host: {a: }\n", "inv.yml:2: all.host: unknown key (known: children, hosts, vars)"),
    ("all:\n  hosts: [a]\n", "inv.yml:2: all.hosts: expected a mapping of names, got a list"),
    ("all:\n  hosts:\n    a: [1]\n", "inv.yml:3: all.hosts.a: expected the host's variables"),
    ("all:\n  vars: 5\n", "inv.yml:2: all.vars: expected a mapping of variables, got a number"),
    (
        "all:\n  hosts:\n    a: {ansible_port: '99999'}\n",
        "inv.yml:3: all.hosts.a.ansible_port: expected a port (1 to 65535), got '99999'",
    ),
    (
        "all:\n  hosts:\n    a: {ansible_host: 'ssh://a.internal'}\n",
        "inv.yml:3: all.hosts.a.ansible_host: 'ssh://a.internal' is a URL: the host's DNS "
        "name or IP address alone",
    ),
    (
        "all:\n  hosts:\n    a: {ansible_host: '[fd00::1]:2222'}\n",
        "inv.yml:3: all.hosts.a.ansible_host: '[fd00::1]:2222' holds a port: write "
        "ansible_host: 'fd00::1' and ansible_port: 2222",
    ),
    (
        "all:\n  hosts:\n    a: {ansible_host: [1]}\n",
        "inv.yml:3: all.hosts.a.ansible_host: expected a single value, got a list",
    ),
    (
        "all:\n  hosts:\n    a: {x: !!python/name:os.system ''}\n",
        "inv.yml:3: all.hosts.a.x: expected a single value, got a value tagged",
    ),
    ("all:\n  hosts:\n    a:\n    a:\n", "inv.yml:4: all.hosts.a: duplicate key"),
    ("all:\n  hosts:\n    w[1:x]:\n", "inv.yml:3: all.hosts.'w[1:x]': [1:x]: a range is"),
    ("a: &x {hosts: {b: }}\nc: *x\n", "inv.yml:2: c: *x is an alias of a mapping or list"),
    (
        "all:\n  hosts: {a: }\n\tb: 1\n",
        "inv.yml:3: (yaml): found character that cannot start any token (a tab: indent",
    ),
    (
        "all:\n  children:\n    a:\n      children:\n        a:\n          hosts: {h: }\n",
        "inv.yml:5: (children): the groups 'a' are their own ancestors",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_INI + BAD_YAML)
def test_every_mistake_is_one_line_where_it_is(text: str, expected: str) -> None:
    name = "inv.yml" if expected.startswith("inv.yml") else "inv.ini"
    found = problems(text, name)
    assert any(p.startswith(expected) for p in found), found


def test_problems_in_line_order_all_at_once() -> None:
    text = "[web]\nw1 ansible_port=x\n[p:children]\nnothere\nw[1:x]\n[web:vars]\nsolo\n"
    found = problems(text)
    assert [int(p.split(":")[1]) for p in found] == sorted(int(p.split(":")[1]) for p in found)
    assert len(found) == 4  # w[1:x] under [p:children] is no group name


def test_unreadable_inventories(tmp_path: Path) -> None:
    cases = {
        "missing.ini": "missing.ini:1: (file): no such file",
        "folder": "folder:1: (file): a folder: give the inventory file",
        "latin1.ini": "latin1.ini:2: (file): not valid UTF-8 (byte 0xe9 at column 2): save the "
        "file as UTF-8",
        "fifo.ini": "fifo.ini:1: (file): not a regular file (a FIFO): give the inventory file",
    }
    (tmp_path / "folder").mkdir()
    (tmp_path / "latin1.ini").write_bytes(b"[web]\nw\xe9\n")
    os.mkfifo(tmp_path / "fifo.ini")
    for name, expected in cases.items():
        with pytest.raises(EnvFileError) as info:
            read_inventory(tmp_path / name)
        assert info.value.problems == [f"{tmp_path}/{expected}"]


# The environment file ------------------------------------------------------------------


def test_hosts_from_merges_with_the_files_hosts(tmp_path: Path) -> None:
    (tmp_path / "ansible").mkdir()
    (tmp_path / "ansible" / "hosts.ini").write_text(INI)
    extra = textwrap.dedent("""\
        ssh:
          user: base
        hosts:
          - name: web02
            address: 127.0.0.2
            roles: [special]
          - name: extra
            address: 127.0.0.9
        """)
    env = load_env(write_env(tmp_path, "ansible/hosts.ini", extra))
    names = [h.name for h in env.hosts]
    assert names == ["lonely", "web01", "web02", "web03", "web-04", "db-a", "db-b", "db-c", "extra"]
    # the file's entry wins for a name in both, in the inventory's place
    assert (env.host("web02").address, env.host("web02").roles) == ("127.0.0.2", ("special",))
    assert env.host("web02").user == "base" and env.host("extra").user == "base"
    assert env.host("web01").user == "deploy"  # the inventory's ansible_user


def test_hosts_from_is_relative_to_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "envs").mkdir()
    (tmp_path / "hosts.yml").write_text(YAML)
    env_path = write_env(tmp_path / "envs", "../hosts.yml")
    monkeypatch.chdir("/")
    assert len(load_env(env_path).hosts) == 6


def test_canary_role_picks_a_group(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(YAML)
    env = load_env(write_env(tmp_path, "hosts.yml", "canary:\n  role: canary\n"))
    assert env.canary.role == "canary" and env.default_canaries() == ["web01"]
    env = load_env(write_env(tmp_path, "hosts.yml", "canary:\n  role: db\n"))
    assert env.default_canaries() == ["db-a"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "canary:\n  role: nope\n",
            "prod.yaml:12: canary.role: no host has the role 'nope' (roles: 'canary', 'db', "
            "'prod', 'web')",
        ),
        (
            "canary:\n  hosts: [web01]\n  role: web\n",
            "prod.yaml:13: canary.role: give one of canary.hosts, canary.percent or canary.role",
        ),
        ("canary:\n  role: [web]\n", "prod.yaml:12: canary.role: expected a string, got a list"),
    ],
)
def test_canary_role_mistakes(tmp_path: Path, extra: str, expected: str) -> None:
    (tmp_path / "hosts.yml").write_text(YAML)
    with pytest.raises(EnvFileError) as info:
        load_env(write_env(tmp_path, "hosts.yml", extra))
    assert [p.replace(f"{tmp_path}/", "") for p in info.value.problems] == [expected]


def test_hosts_from_mistakes_in_the_env_file(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    cases = {
        "nope.ini": "prod.yaml:3: hosts_from: no such file: 'nope.ini'",
        "folder": "prod.yaml:3: hosts_from: 'folder' is a folder: name the inventory file",
        "[a.ini]": "prod.yaml:3: hosts_from: expected a string, got a list",
    }
    for value, expected in cases.items():
        with pytest.raises(EnvFileError) as info:
            load_env(write_env(tmp_path, value))
        assert [p.replace(f"{tmp_path}/", "") for p in info.value.problems] == [expected]
    with pytest.raises(EnvFileError) as info:
        parse_env(ENV.replace("hosts_from: {inventory}\n", ""), "prod.yaml")
    assert info.value.problems == [
        "prod.yaml:1: hosts: required (or hosts_from: an Ansible inventory)"
    ]


def test_a_bad_inventory_is_exit_2_through_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hosts.ini").write_text("[web]\nw1 ansible_port=22x\nw[1:q]\n")
    env = write_env(tmp_path, "hosts.ini")
    assert main(["check", str(env)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{tmp_path}/hosts.ini:2: [web] w1: ansible_port: expected a port (1 to 65535), got '22x'",
        f"{tmp_path}/hosts.ini:3: [web] w[1:q]: [1:q]: a range is [START:END] or "
        "[START:END:STEP], with numbers or single letters",
    ]


# canarytui init ---------------------------------------------------------------------------


def test_init_from_an_inventory_writes_a_file_check_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ansible").mkdir()
    (tmp_path / "ansible" / "hosts.ini").write_text(INI)
    (tmp_path / "envs").mkdir()
    out = tmp_path / "envs" / "staging.yaml"
    code = main(["init", "--inventory", str(tmp_path / "ansible" / "hosts.ini"), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    text = out.read_text()
    assert "hosts_from: ../ansible/hosts.ini" in text and "# " in text
    env = load_env(out)
    assert env.name == "staging" and len(env.hosts) == 8
    assert env.default_canaries() == ["lonely"]  # the first host
    assert f"wrote {out} (8 hosts)" in capsys.readouterr().out
    # Printed (saved anywhere, later): the inventory by its whole path, which loads there.
    assert main(["init", "--inventory", str(tmp_path / "ansible" / "hosts.ini")]) == 0
    printed = tmp_path / "envs" / "deeper" / "printed.yaml"
    printed.parent.mkdir()
    printed.write_text(capsys.readouterr().out)
    assert f"hosts_from: {tmp_path / 'ansible' / 'hosts.ini'}" in printed.read_text()
    assert len(load_env(printed).hosts) == 8


def test_init_with_hosts_or_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prod.yaml"
    assert main(["init", "--hosts", "app-1, app-2,true", "-o", str(out)]) == 0
    env = load_env(out)
    assert [(h.name, h.address) for h in env.hosts] == [
        ("app-1", "app-1"),
        ("app-2", "app-2"),
        ("true", "true"),
    ]
    assert env.default_canaries() == ["app-1"]
    capsys.readouterr()
    assert main(["init"]) == 0  # to stdout: an example fleet
    text = capsys.readouterr().out
    env = parse_env(text, "stdout.yaml")
    assert env.host_names == ["web-01", "web-02"] and env.default_canaries() == ["web-01"]


def test_init_with_an_inventory_and_hosts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hosts.yml").write_text(YAML)
    out = tmp_path / "prod.yaml"
    inventory = str(tmp_path / "hosts.yml")
    assert main(["init", "--inventory", inventory, "--hosts", "web02,new-1", "-o", str(out)]) == 0
    env = load_env(out)
    assert env.host_names == ["lonely", "web01", "web02", "web03", "web-04", "db-a", "new-1"]
    assert env.host("web02").roles == ()  # listed in the file: that entry wins
    assert "hosts_from: hosts.yml" in out.read_text()


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prod.yaml"
    out.write_text("mine\n")
    assert main(["init", "--hosts", "a", "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"canarytui: init: {out} exists; nothing written (--force overwrites it)\n"
    )
    assert out.read_text() == "mine\n"
    assert main(["init", "--hosts", "a", "-o", str(out), "--force"]) == 0
    assert load_env(out).host_names == ["a"]


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["--hosts", "a,b c"], 2, "canarytui: init: --hosts: 'b c' is not a host name"),
        (["--hosts", ","], 2, "canarytui: init: --hosts needs host names"),
        (["--hosts", "a,a"], 2, "canarytui: init: --hosts: a given twice"),
        (["--inventory", "{d}/nope.ini"], 2, "{d}/nope.ini:1: (file): no such file"),
        (["--inventory", "{d}/bad.ini"], 2, "{d}/bad.ini:1: [web:x]: unknown section type 'x'"),
        (["-o", "{d}/no/such/x.yaml"], 2, "canarytui: init: cannot write {d}/no/such/x.yaml"),
        (["-o", "{d}"], 2, "canarytui: init: {d} is a folder: give a file name"),
    ],
)
def test_init_mistakes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, expected: str
) -> None:
    (tmp_path / "bad.ini").write_text("[web:x]\n")
    assert main(["init", *(a.format(d=tmp_path) for a in args)]) == code
    captured = capsys.readouterr()
    assert captured.err.startswith(expected.format(d=tmp_path)), captured.err
    assert captured.out == ""


# Hostile inventories ---------------------------------------------------------------------

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=3000,
    max_examples=600,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PIECES = [
    "[web]",
    "[web:vars]",
    "[web:children]",
    "[all:vars]",
    "[a:b]",
    "[",
    "]",
    "[]",
    "[x y]",
    "web[01:20]",
    "w[a:c]",
    "w[1:5:2]",
    "w[:3]",
    "w[1:",
    "w[9:1]",
    "w[0:99999999]",
    "w[1:2][3:4]",
    "host",
    "host:22",
    "host:",
    "host:0",
    "fe80::1",
    "ansible_host=",
    "ansible_port=x",
    "ansible_port=22",
    "ansible_user=u",
    "a=b",
    "a='q",
    'b="x y"',
    "k=[1,2]",
    "k=(((((",
    "#",
    ";",
    "x=1 # c",
    "\t",
    " ",
    "\x00",
    "\x1b[2J",
    "\u202e",
    "é",
    "---",
    "all:",
    "  hosts:",
    "    h1:",
    "      ansible_port: 22",
    "  children:",
    "    web:",
    "  vars:",
    "      - x",
    "!vault |",
    "!!python/object:os.system",
    "&a",
    "*a",
    "{",
    "}",
    "<<: *a",
    "null",
    "~",
    "''",
    "ansible_group_priority=9",
    "ansible_group_priority=x",
    "9" * 50,
    "a" * 70,
]


@st.composite
def inventories(draw: st.DrawFn) -> str:
    """Lines of pieces; or one of the good inventories with a few lines changed."""
    line = st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=4).map(" ".join)
    if draw(st.booleans()):
        return "\n".join(draw(st.lists(line, max_size=25)))
    lines = draw(st.sampled_from([INI, YAML])).split("\n")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        lines[at : at + draw(st.integers(0, 1))] = [
            lines[at][: draw(st.integers(0, 12))] + draw(line)
        ]
    return "\n".join(lines)


RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@FUZZ
@given(inventories(), st.sampled_from(["fuzz.ini", "fuzz.yml", "fuzz"]))
def test_no_inventory_text_raises_anything_but_the_config_error(text: str, name: str) -> None:
    try:
        hosts = parse_inventory(text, name)
    except EnvFileError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert re.match(rf"{re.escape(name)}:\d+: \S.*: .+", problem), problem
            assert not RAW_CONTROL.search(problem) and "\n" not in problem
        return
    for h in hosts:
        for text_value in (h.name, h.address, h.user or "", *h.roles, *h.labels.values()):
            assert not RAW_CONTROL.search(text_value)
        assert h.port is None or 1 <= h.port <= 65535


def test_one_machine_under_two_names_is_refused_from_an_inventory_too(tmp_path: Path) -> None:
    """Two aliases of one machine in the inventory, or an inventory host that is one the
    file lists under another name: refused at hosts_from (it would be deployed twice at
    once), the names and the machine said."""
    (tmp_path / "hosts.ini").write_text(
        "web1 ansible_host=127.0.0.5\nweb1-admin ansible_host=127.0.0.5\n"
    )
    with pytest.raises(EnvFileError) as info:
        load_env(write_env(tmp_path, "hosts.ini"))
    assert info.value.problems == [
        f"{tmp_path / 'prod.yaml'}:3: hosts_from: 'web1-admin' is 127.0.0.5, as 'web1' "
        "is: one machine listed twice would be deployed twice at once (list it once)"
    ]
    (tmp_path / "hosts.ini").write_text("web1 ansible_host=127.0.0.5\n")
    extra = "hosts:\n  - name: box\n    address: 127.0.0.5\n"
    with pytest.raises(EnvFileError) as info:
        load_env(write_env(tmp_path, "hosts.ini", extra))
    assert len(info.value.problems) == 1 and "'box' is 127.0.0.5, as 'web1' is" in str(
        info.value.problems
    ), info.value.problems
