"""`make package-test`: the Debian package `make package` built (build/deb/),
checked without a booted systemd and without touching this machine's dpkg
database: lintian; its control data, contents and maintainer scripts; and
what it installs, unpacked into a scratch root (`dpkg -x`): the installed
levee accepts the shipped configuration and serves through it, the unit
passes `systemd-analyze verify` and `security` in that root. Then `make
install` / `make uninstall` with DESTDIR, in the tree the package was built
in (no second compilation of everything).
"""

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness import PORTS, REPO_ROOT, wait_for

EXPECTED_FILES = {
    "/etc/levee/levee.yaml": 0o644,
    "/etc/logrotate.d/levee": 0o644,
    "/lib/systemd/system/levee.service": 0o644,
    "/lib/systemd/system/levee.socket": 0o644,
    "/usr/sbin/levee": 0o755,
    "/usr/lib/levee/levee-demo-backend": 0o755,
    "/usr/share/man/man8/levee.8.gz": 0o644,
    "/usr/share/man/man5/levee.yaml.5.gz": 0o644,
    "/usr/share/doc/levee/README.md.gz": 0o644,
    "/usr/share/doc/levee/changelog.gz": 0o644,
    "/usr/share/doc/levee/copyright": 0o644,
}


def run(cmd, **kw):
    kw.setdefault("timeout", 300)
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def test_lintian_finds_no_error(pkg):
    result = run(["lintian", "--fail-on", "error", "--display-info", pkg.changes])
    tags = [line for line in result.stdout.splitlines() if re.match(r"[EWIXPO]: ", line)]
    print("lintian:\n" + "\n".join(tags))

    errors = [t for t in tags if t.startswith("E: ")]
    assert result.returncode == 0 and not errors, f"lintian:\n{result.stdout}{result.stderr}"


def test_control_data_names_the_version_and_the_conffiles(pkg, tmp_path):
    field = lambda name: run(["dpkg-deb", "-f", pkg.deb, name]).stdout.strip()  # noqa: E731
    run(["dpkg-deb", "-e", pkg.deb, tmp_path / "control"], check=True)

    assert field("Package") == "levee"
    assert field("Version") == pkg.version, "debian/changelog and VERSION disagree"
    depends = field("Depends")
    for lib in ("adduser", "libsystemd0", "libuv1", "libssl3", "libyaml-0-2", "libhiredis"):
        assert lib in depends, depends
    conffiles = (tmp_path / "control" / "conffiles").read_text().split()
    assert sorted(conffiles) == ["/etc/levee/levee.yaml", "/etc/logrotate.d/levee"]


def test_the_package_holds_exactly_the_expected_files(pkg):
    found = {}
    for dirpath, _dirs, files in os.walk(pkg.root):
        for name in files:
            full = os.path.join(dirpath, name)
            found["/" + os.path.relpath(full, pkg.root)] = stat.S_IMODE(os.lstat(full).st_mode)

    assert found == EXPECTED_FILES
    assert pkg.path("/etc/levee/levee.yaml").read_text() == (REPO_ROOT / "dist/levee.yaml").read_text()


def test_the_installed_levee_accepts_the_shipped_config(pkg):
    levee = pkg.path("/usr/sbin/levee")

    result = run([levee, "-t", "-c", pkg.path("/etc/levee/levee.yaml")])

    assert (result.returncode, result.stdout) == (0, "configuration OK\n"), result.stderr


def test_the_installed_levee_reads_etc_and_names_its_revision(pkg):
    levee = pkg.path("/usr/sbin/levee")

    usage = run([levee, "--help"]).stdout
    version = run([levee, "--version"]).stdout.splitlines()

    assert "(default /etc/levee/levee.yaml)" in usage, usage
    rev = run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT).stdout.strip()
    assert version[0] == f"levee {pkg.version} ({rev or 'unknown'})", version
    assert [line.split()[0] for line in version[1:]] == [
        "libuv", "llhttp", "OpenSSL", "hiredis", "libyaml"], version


def test_the_installed_levee_serves_through_the_shipped_config(pkg, h, monkeypatch, tmp_path):
    """The README's `systemctl start levee` + curl, without systemd: the
    installed binary, the shipped file with its ports and log path moved."""
    monkeypatch.setenv("LEVEE_BIN", str(pkg.path("/usr/sbin/levee")))
    monkeypatch.setenv("LEVEE_DEMO_BACKEND", str(pkg.path("/usr/lib/levee/levee-demo-backend")))
    backend = h.demo("app1")
    access_log = tmp_path / "access.log"
    text = pkg.path("/etc/levee/levee.yaml").read_text()
    for old, new in (("listen: 0.0.0.0:8080", f"listen: 127.0.0.1:{PORTS.get()}"),
                     ("listen: 127.0.0.1:9901", f"listen: 127.0.0.1:{PORTS.get()}"),
                     ("url: http://127.0.0.1:8001", f"url: {backend.url}"),
                     ("path: /var/log/levee/access.log", f"path: {access_log}")):
        assert text.count(old) == 1, f"the shipped config no longer has `{old}`"
        text = text.replace(old, new)

    lv = h.levee(text)
    resp = lv.get("/hello")

    assert resp.status == 200 and resp.headers.get("x-backend-id") == "app1", resp
    wait_for(lambda: access_log.exists() and "GET /hello" in access_log.read_text(), 10,
             what="the request in the access log file")


def test_the_installed_unit_passes_systemd_analyze(pkg, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(pkg.root, root, symlinks=True)
    units = root / "lib/systemd/system"
    for target in Path("/usr/lib/systemd/system").glob("*.target"):
        shutil.copy(target, units / target.name)
    env = dict(os.environ, MANPATH=str(root / "usr/share/man"), SYSTEMD_LOG_COLOR="0")

    verify = run(["systemd-analyze", "verify", f"--root={root}", "levee.service", "levee.socket"],
                 env=env)
    security = run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                    f"--root={root}", "levee.service"], env=env)

    assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), (
        f"systemd-analyze verify:\n{verify.stdout}{verify.stderr}")
    exposure = re.search(r"Overall exposure level for levee.service: ([0-9.]+)",
                         security.stdout + security.stderr)
    print(exposure.group(0) if exposure else security.stdout)
    assert security.returncode == 0 and exposure, f"{security.stdout}{security.stderr}"


def stub_path(tmp_path, fails):
    """A PATH of stubs for the commands the maintainer scripts call: each logs
    its arguments to tmp_path/calls and exits 0, except that a command named
    in `fails` ({name: (first argument, exit code)}) exits with that code
    when called with that first argument (a query that finds nothing)."""
    bindir = tmp_path / "stubs"
    bindir.mkdir()
    log = tmp_path / "calls"
    for name in ("adduser", "getent", "dpkg-statoverride", "deb-systemd-helper",
                 "deb-systemd-invoke", "systemctl", "rm"):
        script = bindir / name
        fail = ""
        if name in fails:
            arg, code = fails[name]
            fail = f'[ "$1" = "{arg}" ] && exit {code}\n'
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{fail}exit 0\n')
        script.chmod(0o755)
    return f"{bindir}:/usr/bin:/bin", log


def test_postinst_creates_the_user_then_enables_the_unit(pkg, tmp_path):
    run(["dpkg-deb", "-e", pkg.deb, tmp_path / "control"], check=True)
    path, log = stub_path(tmp_path, {"getent": ("passwd", 2), "dpkg-statoverride": ("--list", 1)})

    result = run(["sh", "-e", tmp_path / "control/postinst", "configure", ""],
                 env={"PATH": path, "DPKG_MAINTSCRIPT_PACKAGE": "levee"})

    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    adduser = [i for i, c in enumerate(calls) if c.startswith("adduser ")]
    enable = [i for i, c in enumerate(calls) if c == "deb-systemd-helper enable levee.service"]
    assert adduser and enable and adduser[0] < enable[0], calls
    assert "--system" in calls[adduser[0]] and calls[adduser[0]].endswith(" levee"), calls
    assert "dpkg-statoverride --quiet --update --add root levee 0750 /etc/levee" in calls


def test_postinst_on_upgrade_keeps_the_existing_user(pkg, tmp_path):
    run(["dpkg-deb", "-e", pkg.deb, tmp_path / "control"], check=True)
    path, log = stub_path(tmp_path, {})

    result = run(["sh", "-e", tmp_path / "control/postinst", "configure", "0.0.9"],
                 env={"PATH": path, "DPKG_MAINTSCRIPT_PACKAGE": "levee"})

    assert result.returncode == 0, result.stderr
    assert not any(c.startswith("adduser") for c in log.read_text().splitlines())


def test_postrm_purge_removes_the_logs(pkg, tmp_path):
    run(["dpkg-deb", "-e", pkg.deb, tmp_path / "control"], check=True)
    path, log = stub_path(tmp_path, {})

    result = run(["sh", "-e", tmp_path / "control/postrm", "purge"],
                 env={"PATH": path, "DPKG_MAINTSCRIPT_PACKAGE": "levee"})

    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert "rm -rf /var/log/levee" in calls and \
        "dpkg-statoverride --quiet --remove /etc/levee" in calls, calls


def test_make_install_and_uninstall_follow_prefix_and_destdir(pkg, tmp_path):
    dest = tmp_path / "dest"
    make = ["make", "-C", pkg.src, "--no-print-directory", f"DESTDIR={dest}"]

    installed = run([*make, "install"])
    assert installed.returncode == 0, installed.stdout + installed.stderr

    files = {"/" + str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    assert files == {"/usr/local/sbin/levee", "/usr/local/lib/levee/levee-demo-backend",
                     "/usr/local/etc/levee/levee.yaml", "/usr/local/share/man/man8/levee.8",
                     "/usr/local/share/man/man5/levee.yaml.5",
                     "/usr/local/lib/systemd/system/levee.service",
                     "/usr/local/lib/systemd/system/levee.socket"}
    unit = (dest / "usr/local/lib/systemd/system/levee.service").read_text()
    assert "\nExecStart=/usr/local/sbin/levee -c /usr/local/etc/levee/levee.yaml\n" in unit
    assert not re.search(r"@\w+@", unit), unit
    usage = run([dest / "usr/local/sbin/levee", "--help"]).stdout
    assert "(default /usr/local/etc/levee/levee.yaml)" in usage

    config = dest / "usr/local/etc/levee/levee.yaml"
    config.write_text(config.read_text() + "# edited\n")
    again = run([*make, "install"])
    assert again.returncode == 0 and config.read_text().endswith("# edited\n"), (
        "a second `make install` overwrote an edited config")

    removed = run([*make, "uninstall"])
    assert removed.returncode == 0, removed.stdout + removed.stderr
    left = {"/" + str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    assert left == {"/usr/local/etc/levee/levee.yaml"}


def test_make_install_with_prefix_usr_puts_the_config_in_etc(pkg, tmp_path):
    dest = tmp_path / "dest"

    installed = run(["make", "-C", pkg.src, "--no-print-directory", f"DESTDIR={dest}",
                     "PREFIX=/usr", "install"])

    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (dest / "etc/levee/levee.yaml").is_file()
    assert (dest / "usr/sbin/levee").is_file()
    unit = (dest / "usr/lib/systemd/system/levee.service").read_text()
    assert "\nExecStart=/usr/sbin/levee -c /etc/levee/levee.yaml\n" in unit


# --------------------------------------------------------------------------
# the postinst of an upgrade: the running levee is upgraded in place


def systemctl_stub(tmp_path, takes_over):
    """A PATH whose systemctl answers like systemd with levee running as pid
    100: after `systemctl kill --kill-whom=main --signal=USR2`, MainPID
    becomes 200 (takes_over) or StatusText reports the failed upgrade."""
    path, log = stub_path(tmp_path, {})
    killed = tmp_path / "killed"
    stub = tmp_path / "stubs" / "systemctl"
    stub.write_text(f"""#!/bin/sh
echo "systemctl $*" >> "{log}"
case "$*" in
"show --property=MainPID --value levee.service")
    if [ -e "{killed}" ] && [ {int(takes_over)} = 1 ]; then echo 200; else echo 100; fi ;;
"show --property=StatusText --value levee.service")
    if [ -e "{killed}" ] && [ {int(takes_over)} = 0 ]; then
        echo "upgrade failed (pid 201): exited with status 1 before it served; still serving (pid 100)"
    else
        echo "serving configuration generation 1"
    fi ;;
"kill --kill-whom=main --signal=USR2 levee.service") touch "{killed}" ;;
esac
exit 0
""")
    return path, log


def run_postinst_with_systemd(pkg, tmp_path, path, *args):
    """The postinst as dpkg runs it, on a machine where systemd runs: in a
    mount namespace of its own with /run/systemd/system present (no booted
    systemd is needed, and this machine's /run is left alone)."""
    run(["dpkg-deb", "-e", pkg.deb, tmp_path / "control"], check=True)
    probe = run(["unshare", "-m", "true"])
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here (unshare -m: {probe.stderr.strip()})")
    script = (f'mount -t tmpfs none /run && mkdir -p /run/systemd/system && '
              f'exec sh -e "{tmp_path}/control/postinst" "$@"')
    return run(["unshare", "-m", "sh", "-c", script, "postinst", *args],
               env={"PATH": path, "DPKG_MAINTSCRIPT_PACKAGE": "levee"}, timeout=120)


def test_postinst_upgrades_the_running_levee_in_place(pkg, tmp_path):
    path, log = systemctl_stub(tmp_path, takes_over=True)

    result = run_postinst_with_systemd(pkg, tmp_path, path, "configure", "0.0.9")

    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    kill = calls.index("systemctl kill --kill-whom=main --signal=USR2 levee.service")
    assert not any("restart" in c or c.endswith(" stop levee.service") for c in calls), calls
    started = [i for i, c in enumerate(calls) if c.startswith("deb-systemd-invoke start")]
    assert started and started[0] < kill, "signalled before the unit files were reloaded"
    assert "levee: upgraded in place: pid 200 serves, pid 100 finishes its connections" in \
        result.stdout, result.stdout + result.stderr


def test_postinst_leaves_the_old_levee_serving_when_the_upgrade_fails(pkg, tmp_path):
    path, log = systemctl_stub(tmp_path, takes_over=False)

    result = run_postinst_with_systemd(pkg, tmp_path, path, "configure", "0.0.9")

    assert result.returncode == 0, "a failed in-place upgrade must not fail the package"
    assert "systemctl kill --kill-whom=main --signal=USR2 levee.service" in log.read_text()
    assert "did not take over" in result.stderr and "pid 100 keeps serving" in result.stderr, (
        result.stdout + result.stderr)
    # It saw the failure: it did not wait out its minute.
    assert log.read_text().count("show --property=MainPID") < 50


def test_postinst_of_a_first_install_signals_nothing(pkg, tmp_path):
    path, log = systemctl_stub(tmp_path, takes_over=True)

    result = run_postinst_with_systemd(pkg, tmp_path, path, "configure", "")

    assert result.returncode == 0, result.stderr
    assert "kill" not in log.read_text()


def test_an_upgrade_never_stops_levee_and_a_removal_stops_both_units(pkg, tmp_path):
    path, log = stub_path(tmp_path, {})
    run(["dpkg-deb", "-e", pkg.deb, tmp_path / "control"], check=True)
    probe = run(["unshare", "-m", "true"])
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here (unshare -m: {probe.stderr.strip()})")

    def script(name, *args):
        sh = (f'mount -t tmpfs none /run && mkdir -p /run/systemd/system && '
              f'exec sh -e "{tmp_path}/control/{name}" "$@"')
        result = run(["unshare", "-m", "sh", "-c", sh, name, *args],
                     env={"PATH": path, "DPKG_MAINTSCRIPT_PACKAGE": "levee"})
        assert result.returncode == 0, result.stderr
        calls = log.read_text().splitlines() if log.exists() else []
        log.write_text("")
        return calls

    for name in ("preinst", "prerm"):
        if not (tmp_path / "control" / name).exists():
            continue  # no script: nothing stopped
        calls = script(name, "upgrade", "0.1.0")
        assert not [c for c in calls if " stop " in c or "restart" in c], (name, calls)
    calls = script("prerm", "remove")
    assert "deb-systemd-invoke stop levee.service" in calls, calls
    assert "deb-systemd-invoke stop levee.socket" in calls, calls
