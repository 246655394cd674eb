"""The README's deadline table is generated from conf/rules.conf by
scripts/rules-table.py (one definition): README.md must hold exactly what
the script prints, and every rule and version of the shipped file must be in
it with its basis."""

import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_readme_holds_the_generated_table():
    printed = subprocess.run([sys.executable, str(REPO / "scripts" / "rules-table.py")],
                             check=True, capture_output=True, text=True).stdout
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert printed in readme, ("README.md's deadline table is stale: run "
                               "scripts/rules-table.py --write")
    rules = (REPO / "conf" / "rules.conf").read_text(encoding="utf-8")
    names = re.findall(r"^\[([a-z_]+)\]$", rules, re.M)
    bases = re.findall(r"^basis = (.+)$", rules, re.M)
    versions = re.findall(r"^\[([a-z_]+) since (\d{4}-\d{2}-\d{2})\]$", rules, re.M)
    assert len(names) >= 11 and len(bases) == len(names) + len(versions)
    for name in names:
        assert re.search(rf"^\| {name} \S+ \|", printed, re.M), name
    for basis in bases:
        assert basis in printed
    for name, date in versions:
        assert re.search(rf"^\| {name} .*from {date}", printed, re.M), (name, date)


def test_a_rule_without_basis_is_refused(tmp_path):
    """A rule without basis is refused by the daemon (test_clock_setup.c) and
    by the script, which prints no table without it."""
    rules = tmp_path / "rules.conf"
    rules.write_text("[r]\nlabel = x\naction = y\nstart = detention.decided\n"
                     "stop = detention.executed\nkey = ref\nlength = 1 day\nyellow = none\n"
                     "orange = none\nred_repeat = none\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "rules-table.py"),
                             str(rules)], capture_output=True, text=True)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr == f"{rules}: rule 'r' has no basis (the daemon refuses it too)\n"
