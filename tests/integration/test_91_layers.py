"""scripts/layers.sh, the layer order of src/ (run by `make lint`): each rule
fires on a small fake tree, and the real tree passes.

No levee process here: the script is run on trees made in the test's tmp dir.
"""
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "layers.sh"


def tree(tmp_path, files):
    """Writes files ({"src/core/a.c": ["core/a.h", ...]}: the headers each
    includes) under tmp_path; every header named exists."""
    for path, includes in files.items():
        for inc in includes:
            hdr = tmp_path / "src" / inc
            hdr.parent.mkdir(parents=True, exist_ok=True)
            if not hdr.exists():
                hdr.write_text("/* a header */\n")
        f = tmp_path / path
        f.parent.mkdir(parents=True, exist_ok=True)
        body = "".join(f'#include "{inc}"\n' for inc in includes)
        f.write_text("#include <stdio.h>\n" + body)
    return tmp_path


def run(root, proxy_rules="fail"):
    env = dict(os.environ, PROXY_RULES=proxy_rules)
    p = subprocess.run(["sh", str(SCRIPT), "--root", str(root)], env=env,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout.splitlines()


def findings(lines):
    return [l for l in lines if not l.startswith("layers: ")]


def test_a_tree_that_follows_the_order_passes(tmp_path):
    root = tree(tmp_path, {
        "src/core/a.c": ["core/a.h", "core/b.h"],
        "src/net/n.c": ["net/n.h", "core/a.h"],
        "src/http/h.c": ["http/h.h", "core/a.h"],
        "src/upstream/u.c": ["upstream/u.h", "net/n.h", "http/h.h"],
        "src/limit/l.c": ["limit/l.h", "net/n.h"],
        "src/config/c.c": ["config/c.h", "upstream/u.h", "limit/l.h", "admin/guard.h"],
        "src/proxy/proxy.c": ["proxy/proxy.h", "proxy/client.h", "config/c.h"],
        "src/proxy/client.c": ["proxy/client.h", "proxy/exchange.h"],
        "src/admin/admin.c": ["admin/admin.h", "proxy/proxy.h", "config/c.h"],
        "src/main.c": ["admin/admin.h", "proxy/proxy.h"],
        "src/demo/demo.c": ["demo/demo.h", "core/a.h", "http/h.h"],
    })
    rc, out = run(root)
    assert rc == 0, out
    assert findings(out) == [], out
    assert out[-1] == "layers: ok"


def test_an_include_of_a_higher_layer_fails(tmp_path):
    root = tree(tmp_path, {
        "src/core/a.c": ["net/n.h"],
        "src/limit/l.c": ["config/config.h"],
        "src/config/c.c": ["admin/admin.h"],
        "src/proxy/proxy.c": ["admin/status.h"],
    })
    rc, out = run(root)
    assert rc == 1, out
    assert sorted(findings(out)) == [
        "src/config/c.c: includes admin/admin.h (layer admin above config)",
        "src/core/a.c: includes net/n.h (layer net above core)",
        "src/limit/l.c: includes config/config.h (layer config above limit)",
        "src/proxy/proxy.c: includes admin/status.h (layer admin above proxy)",
    ], out
    assert out[-1] == "layers: 4 violation(s) of the layer order (scripts/layers.sh)"


def test_folders_of_the_same_rank_do_not_include_each_other(tmp_path):
    root = tree(tmp_path, {
        "src/net/n.c": ["http/h.h"],
        "src/upstream/u.c": ["limit/l.h"],
    })
    rc, out = run(root)
    assert rc == 1, out
    assert sorted(findings(out)) == [
        "src/net/n.c: includes http/h.h (layer http beside net: same rank)",
        "src/upstream/u.c: includes limit/l.h (layer limit beside upstream: same rank)",
    ], out


def test_a_module_placed_apart_from_its_folder_keeps_its_own_rank(tmp_path):
    # admin/guard is a policy module (config checks admin.allowed_hosts with
    # it); the rest of admin stays above config, and the guard below it.
    root = tree(tmp_path, {
        "src/config/c.c": ["admin/guard.h"],
        "src/admin/guard.c": ["admin/guard.h", "core/a.h"],
        "src/admin/admin.c": ["admin/guard.h"],
    })
    assert run(root)[0] == 0
    (tmp_path / "src/admin/guard.c").write_text('#include "admin/admin.h"\n')
    (tmp_path / "src/admin/admin.h").write_text("/* */\n")
    rc, out = run(root)
    assert rc == 1, out
    assert sorted(findings(out)) == [
        "src/admin/admin.c: includes admin/guard.h, and src/admin/guard.c includes "
        "admin/admin.h (cycle)",
        "src/admin/guard.c: includes admin/admin.h (layer admin above admin/guard)",
    ], out


def test_two_modules_of_a_folder_including_each_other_fail(tmp_path):
    root = tree(tmp_path, {
        "src/limit/a.c": ["limit/a.h", "limit/b.h"],
        "src/limit/b.c": ["limit/b.h", "limit/a.h"],
    })
    rc, out = run(root)
    assert rc == 1, out
    assert findings(out) == [
        "src/limit/a.c: includes limit/b.h, and src/limit/b.c includes limit/a.h (cycle)"], out


def test_a_longer_cycle_in_a_folder_fails(tmp_path):
    root = tree(tmp_path, {
        "src/upstream/a.c": ["upstream/b.h"],
        "src/upstream/b.c": ["upstream/c.h"],
        "src/upstream/c.c": ["upstream/a.h"],
        "src/upstream/d.c": ["upstream/a.h"],  # not in the cycle
    })
    rc, out = run(root)
    assert rc == 1, out
    (line,) = findings(out)
    assert line.startswith("src/upstream/"), line
    assert ": in an include cycle of 3 modules: " in line, line
    for m in ("upstream/a", "upstream/b", "upstream/c"):
        assert m in line, line
    assert "upstream/d" not in line


def test_a_folder_in_no_layer_fails(tmp_path):
    root = tree(tmp_path, {"src/zzz/z.c": ["core/a.h"], "src/core/a.c": []})
    rc, out = run(root)
    assert rc == 1, out
    assert findings(out) == [
        "src/zzz/z.c: in no layer (add its folder to LAYERS in scripts/layers.sh)"], out


def test_the_demo_is_a_separate_program(tmp_path):
    root = tree(tmp_path, {
        "src/demo/d.c": ["demo/d.h", "core/a.h", "http/h.h", "upstream/u.h"],
        "src/proxy/proxy.c": ["demo/d.h"],
    })
    rc, out = run(root)
    assert rc == 1, out
    assert sorted(findings(out)) == [
        "src/demo/d.c: includes upstream/u.h (layer upstream is not one demo may use)",
        "src/proxy/proxy.c: includes demo/d.h (layer demo is a separate program)",
    ], out


PROXY_TREE = {
    "src/proxy/upconn.c": ["proxy/upconn.h", "proxy/exchange.h", "proxy/wstats.h"],
    "src/proxy/exchange.c": ["proxy/exchange.h", "proxy/upconn.h", "proxy/attempt.h"],
    "src/proxy/attempt.c": ["proxy/attempt.h", "proxy/ratelimit.h"],
    "src/proxy/newthing.c": ["proxy/upconn.h"],
}
PROXY_FINDINGS = [
    "src/proxy/attempt.c: includes proxy/ratelimit.h "
    "(proxy/ratelimit beside proxy/attempt: same rank in the proxy order)",
    "src/proxy/exchange.c: includes proxy/upconn.h, and src/proxy/upconn.c includes "
    "proxy/exchange.h (cycle)",
    "src/proxy/newthing.c: in no rank of the proxy order (ORDER in scripts/layers.sh)",
    "src/proxy/upconn.c: includes proxy/exchange.h "
    "(proxy/exchange is above proxy/upconn in the proxy order)",
]


def test_the_proxy_order_fails_when_enforced(tmp_path):
    rc, out = run(tree(tmp_path, PROXY_TREE), proxy_rules="fail")
    assert rc == 1, out
    assert sorted(findings(out)) == PROXY_FINDINGS, out


def test_the_proxy_order_only_warns_with_proxy_rules_warn(tmp_path):
    rc, out = run(tree(tmp_path, PROXY_TREE), proxy_rules="warn")
    assert rc == 0, out
    assert sorted(findings(out)) == ["warning: " + f for f in PROXY_FINDINGS], out
    assert "layers: 4 finding(s) inside ordered folders reported, not failing " \
        "(PROXY_RULES=warn)" in out
    # Warnings never hide a violation of the layer order itself.
    (tmp_path / "src/proxy/exchange.c").write_text('#include "admin/admin.h"\n')
    (tmp_path / "src/admin").mkdir()
    (tmp_path / "src/admin/admin.h").write_text("/* */\n")
    rc, out = run(tmp_path, proxy_rules="warn")
    assert rc == 1, out
    assert "src/proxy/exchange.c: includes admin/admin.h (layer admin above proxy)" in out


def test_levees_own_tree_follows_the_order():
    env = {k: v for k, v in os.environ.items() if k != "PROXY_RULES"}
    p = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert [l for l in p.stdout.splitlines()
            if not l.startswith(("warning: ", "layers: "))] == [], p.stdout
