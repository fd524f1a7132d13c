"""The documentation cannot drift from the code.

- Every configuration key in the loader's field tables (printed by
  build/asan/levee-config-keys, which walks the same tables levee reads files
  with) has an entry in levee.yaml(5) and a row in README.md's reference
  table, and neither documents a key the loader does not know.
- levee(8) documents every option `levee --help` prints and every signal
  src/main.c handles.
- Both man pages build with scdoc and render without a groff warning.
"""

import re
import subprocess

from harness import REPO_ROOT, levee_bin, require_binary, run_levee

MAN_DIR = REPO_ROOT / "man"


def code_keys():
    """{dotted key: "group" | "value"} from the loader's tables."""
    tool = require_binary(levee_bin().parent / "levee-config-keys", "LEVEE_BIN")
    out = subprocess.run([str(tool)], capture_output=True, text=True, check=True, timeout=30).stdout
    keys = {}
    for line in out.splitlines():
        key, kind = line.split("\t")
        keys[key] = kind
    assert len(keys) > 50 and "timeouts.connect" in keys, f"implausible key list:\n{out}"
    return keys


def normalize(key):
    """`listen[].tls.min_version` (as documented) -> `listen.tls.min_version`;
    `pools.<name>.retry` -> `pools.retry` (the keys of such a mapping are the
    user's names: the loader's tables do not name them)."""
    return re.sub(r"\.<[a-z_]+>", "", key.replace("[]", ""))


def definition_terms(page):
    """The term lines of an scdoc page's definition lists: a line at the left
    margin followed by a tab-indented line (its definition)."""
    lines = page.splitlines()
    return [line for line, nxt in zip(lines, lines[1:]) if line and line[0] != "\t"
            and nxt.startswith("\t")]


def man_keys():
    """Keys with an entry in levee.yaml(5): the bold names of a term line
    (`*key*`, or several, comma-separated) before any parenthesis."""
    keys = set()
    for term in definition_terms((MAN_DIR / "levee.yaml.5.scd").read_text()):
        names = term.split(" (")[0]
        keys.update(normalize(k) for k in re.findall(r"\*([a-z][a-z0-9_.\[\]<>]*)\*", names))
    return keys


def readme_keys():
    """Keys in the first cell of the rows of README.md's reference table."""
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index("### Reference")
    end = text.index("\n## ", start)
    keys = set()
    for line in text[start:end].splitlines():
        if line.startswith("| `"):
            keys.update(normalize(k) for k in re.findall(r"`([^`]+)`", line.split("|")[1]))
    return keys


def test_every_config_key_is_in_the_man_page_and_nothing_else():
    code = code_keys()
    documented = man_keys()

    missing = sorted(set(code) - documented)
    unknown = sorted(documented - set(code))

    assert not missing, ("keys the loader accepts but levee.yaml(5) (man/levee.yaml.5.scd) "
                         f"does not document: {missing}")
    assert not unknown, f"keys levee.yaml(5) documents but the loader does not know: {unknown}"


def test_every_config_value_key_is_in_the_readme_reference_and_nothing_else():
    code = code_keys()
    values = {k for k, kind in code.items() if kind == "value"}
    listed = readme_keys()

    missing = sorted(values - listed)
    unknown = sorted(listed - set(code))

    assert not missing, f"keys missing from README.md's reference table: {missing}"
    assert not unknown, f"keys in README.md's reference table that the loader does not know: {unknown}"


def test_levee_8_documents_every_option_of_help():
    help_text = run_levee(["--help"], REPO_ROOT).stdout
    options = re.findall(r"^\s+(-\w), (--[\w-]+)", help_text, re.MULTILINE)
    page = (MAN_DIR / "levee.8.scd").read_text()

    assert len(options) >= 4, help_text
    for short, long in options:
        assert f"*{short}*, *{long}*" in page, f"levee(8) does not document {short}, {long}"


def test_levee_8_documents_every_signal_levee_handles():
    main_c = (REPO_ROOT / "src" / "main.c").read_text()
    handled = set(re.findall(r"uv_signal_start\([^;]*?\b(SIG[A-Z0-9]+)\)", main_c))
    section = (MAN_DIR / "levee.8.scd").read_text().split("# SIGNALS")[1].split("\n# ")[0]

    assert {"SIGTERM", "SIGHUP"} <= handled, handled
    terms = " ".join(definition_terms(section))
    for sig in sorted(handled):
        assert f"*{sig}*" in terms, f"levee(8) SIGNALS lacks {sig}"


def test_man_pages_build_and_render_without_warnings(tmp_path):
    for src in sorted(MAN_DIR.glob("*.scd")):
        out = tmp_path / src.stem
        with src.open("rb") as fin, out.open("wb") as fout:
            built = subprocess.run(["scdoc"], stdin=fin, stdout=fout, stderr=subprocess.PIPE,
                                   timeout=30)
        assert built.returncode == 0, f"scdoc {src.name}: {built.stderr.decode()}"
        rendered = subprocess.run(["man", "--warnings", "-l", str(out)], capture_output=True,
                                  text=True, timeout=60, env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
        assert rendered.returncode == 0 and rendered.stderr == "", (
            f"man {out.name}: {rendered.stderr}")
        assert "NAME" in rendered.stdout
