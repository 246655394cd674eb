"""The Debian package (debian/).

`dpkg-buildpackage -us -uc -b`, run in a copy of the source tree (the checkout
stays clean), builds duewatch_<VERSION>_<arch>.deb holding exactly the files
the tree says (conf/, man/, systemd/, the two programs, the sysusers.d entry,
README, changelog, copyright), and lintian reports no errors on it.  The
package then installs into this machine with `dpkg -i`: the files under
/etc/duewatch are its conffiles, the duewatch system user exists,
duewatch.conf is root:duewatch 0640, the unit is enabled and not started,
`duewatchd -c /etc/duewatch/duewatch.conf --check-config` passes (as root and
as the service user) and the operator tool starts.  `dpkg --purge` then
removes every file; the user, which dpkg keeps by policy, is removed by the
test when the test's installation created it.  So the machine is left as it
was.

Skipped (all but the LICENSE and version checks):
  - unless run as root (dpkg -i);
  - when duewatch is already on this machine (a package, /etc/duewatch or
    /usr/bin/duewatchd): the test would replace the host's installation;
  - in a sanitizer pass (DUEWATCH_SANITIZER set, or a sanitizer build
    directory): the package is compiled from the sources with
    dpkg-buildflags, never from DUEWATCH_BUILD, so CI's second, sanitized
    `make test` would build and check the very same package again.
    DUEWATCH_PACKAGE_TEST=1 runs it there too; DUEWATCH_PACKAGE_TEST=0 skips
    it everywhere.
"""

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import duewatch_testlib as lib

pytestmark = pytest.mark.slow

REPO = lib.REPO_ROOT
PACKAGE = "duewatch"
USER = "duewatch"
UNIT = "duewatchd.service"
CONF_DIR = Path("/etc/duewatch")
CONF = CONF_DIR / "duewatch.conf"
DAEMON = Path("/usr/bin/duewatchd")
TOOL = Path("/usr/bin/duewatch")
WANTS_LINK = Path("/etc/systemd/system/multi-user.target.wants") / UNIT
BUILD_TIMEOUT = 240
# make's variables (make test's SANITIZER=, WERROR=) must not reach the
# package build's own make; nor compiler flags from the caller's shell.
SCRUBBED_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CFLAGS", "CPPFLAGS",
                "LDFLAGS", "DUEWATCH_BUILD")
SANITIZER_BUILD = re.compile(r"^build-.*(address|undefined|thread|memory|leak)")


def _skip_reason():
    forced = os.environ.get("DUEWATCH_PACKAGE_TEST", "")
    if forced == "0":
        return "DUEWATCH_PACKAGE_TEST=0"
    if os.geteuid() != 0:
        return "installing a package needs root"
    sanitizer = os.environ.get("DUEWATCH_SANITIZER") or (
        lib.build_dir().name if SANITIZER_BUILD.match(lib.build_dir().name) else "")
    if sanitizer and forced != "1":
        return (f"the package is built from the sources, not from the sanitized build"
                f" ({sanitizer}): it runs in the non-sanitizer pass"
                f" (DUEWATCH_PACKAGE_TEST=1 runs it here too)")
    status = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", PACKAGE],
                            capture_output=True, text=True)
    if status.returncode == 0 and status.stdout.strip() not in ("", "un"):
        return f"package {PACKAGE} is installed here ({status.stdout.strip()}): not replacing it"
    for path in (CONF_DIR, DAEMON, TOOL):
        if path.exists():
            return f"{path} exists on this machine (make install?): not replacing it"
    return None


SKIP_REASON = _skip_reason()


def run(argv, check=True, timeout=120, **kwargs):
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout[-6000:]}\nstderr:\n{result.stderr[-6000:]}")
    return result


def version():
    return (REPO / "VERSION").read_text().strip()


def copy_source_tree(target):
    """The checkout's files as git sees them (tracked and untracked, not
    ignored: no build*/ directories), uncommitted edits included."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                 cwd=REPO, check=False)
    if listed.returncode != 0:  # not a git checkout: everything but build output
        shutil.copytree(REPO, target, symlinks=True,
                        ignore=shutil.ignore_patterns("build", "build-*", ".git", "__pycache__",
                                                      ".pytest_cache"))
        return
    for name in filter(None, listed.stdout.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is skipped
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name, follow_symlinks=False)


def package_env():
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["LC_ALL"] = "C.UTF-8"
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(source copy, .deb path, dpkg-buildpackage output)."""
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    for tool in ("dpkg-buildpackage", "dh", "lintian", "fakeroot"):
        assert shutil.which(tool), f"{tool} not found: scripts/install-deps.sh installs it"
    top = tmp_path_factory.mktemp("package")
    source = top / "duewatch"
    source.mkdir()
    copy_source_tree(source)
    result = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=source, env=package_env(),
                 timeout=BUILD_TIMEOUT)
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    deb = top / f"{PACKAGE}_{version()}_{arch}.deb"
    assert deb.is_file(), (f"{deb.name} not built; the build left "
                           f"{sorted(p.name for p in top.iterdir())}\n{result.stdout[-3000:]}")
    return source, deb, result.stdout


def expected_files():
    """The package's regular files, as the source tree defines them."""
    files = {"usr/bin/duewatchd", "usr/bin/duewatch", "usr/lib/sysusers.d/duewatch.conf",
             "usr/share/doc/duewatch/README.md.gz", "usr/share/doc/duewatch/changelog.gz",
             "usr/share/doc/duewatch/copyright", "usr/share/lintian/overrides/duewatch",
             "usr/share/duewatch/rules-table.py", "usr/lib/duewatch/duewatch_redis.so"}
    files |= {f"etc/duewatch/{p.name}" for p in (REPO / "conf").iterdir()}
    files |= {f"usr/share/man/man{p.suffix[1:]}/{p.name}.gz" for p in (REPO / "man").iterdir()}
    files |= {f"lib/systemd/system/{p.name}" for p in (REPO / "systemd").glob("*.service")}
    return files


def deb_files(deb):
    """{path: mode string} of the regular files in a .deb."""
    listing = run(["dpkg-deb", "-c", deb]).stdout
    files = {}
    for line in listing.splitlines():
        fields = line.split()
        if fields and fields[0].startswith("-"):
            files[fields[-1].removeprefix("./")] = fields[0]
    return files


def test_package_builds_with_the_version_and_files_of_the_tree(built):
    source, deb, _ = built
    assert run(["dpkg-deb", "-f", deb, "Version"]).stdout.strip() == version()
    files = deb_files(deb)
    assert set(files) == expected_files()
    assert files["etc/duewatch/duewatch.conf"] == "-rw-r-----"
    assert files["usr/bin/duewatchd"] == "-rwxr-xr-x"
    assert files["usr/bin/duewatch"] == "-rwxr-xr-x"
    # Redis 7.0 refuses a module without execute permission
    assert files["usr/lib/duewatch/duewatch_redis.so"] == "-rwxr-xr-x"
    # The build ran in the copy: nothing of it in the checkout.
    assert not (REPO / "debian" / PACKAGE).exists()
    assert not (REPO / "build-deb").exists()
    assert (source / "debian" / PACKAGE).is_dir()


def test_lintian_reports_no_errors(built):
    _, deb, _ = built
    result = run(["lintian", "--allow-root", "--info", deb], check=False, timeout=180)
    print(result.stdout)
    # Warnings are acceptable (the deliberate 0640 duewatch.conf is overridden
    # in debian/duewatch.lintian-overrides; there are none left on Debian 12).
    errors = [line for line in result.stdout.splitlines() if line.startswith("E: ")]
    assert errors == [], "\n".join(errors)
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_refuses_a_version_differing_from_the_changelog(tmp_path):
    (tmp_path / "debian").mkdir()
    for name in ("debian/rules", "debian/changelog", "debian/control"):
        shutil.copy2(REPO / name, tmp_path / name)
    (tmp_path / "VERSION").write_text(version() + ".1\n")
    result = run(["make", "-f", "debian/rules", "override_dh_auto_configure"], check=False,
                 cwd=tmp_path, env=package_env())
    assert result.returncode != 0
    assert (f"VERSION says {version()}.1, debian/changelog says {version()}"
            in result.stderr), result.stderr
    (tmp_path / "VERSION").write_text(version() + "\n")
    run(["make", "-f", "debian/rules", "override_dh_auto_configure"], cwd=tmp_path,
        env=package_env())


def test_copyright_holds_the_license_text():
    def words(text):
        return " ".join(text.split())
    license_text = (REPO / "LICENSE").read_text()
    permission = license_text[license_text.index("Permission is hereby granted"):]
    copyright_file = (REPO / "debian" / "copyright").read_text()
    assert re.search(r"^Copyright \(c\) \d{4} duewatch developers$", license_text, re.MULTILINE)
    paragraph = copyright_file[copyright_file.index("License: Expat\n Permission"):]
    body = "\n".join(line[1:] for line in paragraph.splitlines()[1:] if line.startswith(" "))
    assert words(body.replace("\n.\n", "\n")) == words(permission)


def file_md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def duewatchd_processes():
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "exe") == str(DAEMON):
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


def user_exists():
    return run(["getent", "passwd", USER], check=False).returncode == 0


@pytest.fixture(scope="module")
def installed(built):
    """The package installed with dpkg -i; purged afterwards in any case."""
    _, deb, _ = built
    user_before = user_exists()
    try:
        result = run(["dpkg", "-i", deb], env=package_env())
        yield result.stdout + result.stderr
    finally:
        run(["dpkg", "--purge", PACKAGE], check=False, env=package_env())
        if not user_before and user_exists():
            run(["userdel", USER], check=False)


def test_installed_conffiles_are_the_configuration(installed):
    conf_names = sorted(p.name for p in (REPO / "conf").iterdir())
    expected = [str(CONF_DIR / name) for name in conf_names]
    listed = Path(f"/var/lib/dpkg/info/{PACKAGE}.conffiles").read_text().split()
    assert sorted(listed) == expected
    shown = run(["dpkg-query", "-W", "-f=${Conffiles}\n", PACKAGE]).stdout
    conffiles = {}
    for line in shown.splitlines():
        if line.strip():
            path, md5 = line.split()[:2]
            conffiles[path] = md5
    assert sorted(conffiles) == expected
    for path, md5 in conffiles.items():
        assert file_md5(path) == md5, f"{path} differs from the package's"


def test_installed_user_owns_the_configuration(installed):
    entry = run(["getent", "passwd", USER]).stdout.strip().split(":")
    assert int(entry[2]) < 1000, entry  # a system user
    assert entry[6] in ("/usr/sbin/nologin", "/sbin/nologin"), entry
    group = run(["getent", "group", USER]).stdout.strip().split(":")
    info = CONF.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, int(group[2]), 0o640)
    for name in ("rules.conf", "holidays-cn.conf"):
        assert (CONF_DIR / name).stat().st_mode & 0o7777 == 0o644


def test_installed_unit_is_enabled_and_not_started(installed):
    assert os.readlink(WANTS_LINK) == f"/lib/systemd/system/{UNIT}"
    enabled = run(["systemctl", "is-enabled", UNIT], check=False)
    assert enabled.stdout.strip() == "enabled", enabled.stdout + enabled.stderr
    # Without a running systemd (a container) is-active fails with no state;
    # with one it says "inactive".  Either way not active, and no daemon runs.
    active = run(["systemctl", "is-active", UNIT], check=False)
    assert active.returncode != 0 and active.stdout.strip() != "active", active.stdout
    assert duewatchd_processes() == []


def test_installed_daemon_checks_its_configuration(installed):
    for prefix in ([], ["runuser", "-u", USER, "--"]):
        result = run(prefix + [DAEMON, "-c", CONF, "--check-config"])
        assert result.stdout.startswith(f"{CONF}: configuration OK ("), result.stdout
    assert version() in run([DAEMON, "--version"]).stdout
    # The shipped unit starts exactly this: its ExecStart names the installed files.
    unit = Path(f"/lib/systemd/system/{UNIT}").read_text()
    assert re.search(rf"^ExecStart={DAEMON} -c {CONF}$", unit, re.MULTILINE), unit


def test_installed_tool_starts(installed):
    result = run([TOOL, "--help"])
    assert "usage: duewatch" in result.stdout, result.stdout


def test_installed_module_loads_into_debians_redis(installed, tmp_path):
    """/usr/lib/duewatch/duewatch_redis.so, as README "The Redis module" has
    redis.conf load it: Debian's redis-server loads it and it answers the
    daemon's probe with this release's argument version."""
    module = "/usr/lib/duewatch/duewatch_redis.so"
    redis = lib.RedisServer(tmp_path / "redis", module=False,
                            extra_args=("--loadmodule", module)).start()
    try:
        version = re.search(r"#define SCRIPT_ARGS_VERSION (\d+)",
                            (REPO / "include" / "formats.h").read_text()).group(1)
        assert redis.client().execute_command("DUEWATCH.APPLY", version) == int(version)
    finally:
        redis.stop()


def test_purge_removes_everything_it_installed(built, installed):
    _, deb, _ = built
    run(["dpkg", "--purge", PACKAGE], env=package_env())
    status = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", PACKAGE], check=False)
    assert status.stdout.strip() in ("", "un", "pn"), status.stdout
    left = [f"/{name}" for name in deb_files(deb) if Path(f"/{name}").exists()]
    assert left == []
    assert not CONF_DIR.exists()
    assert not WANTS_LINK.is_symlink()
    assert list(Path("/var/lib/dpkg/info").glob(f"{PACKAGE}.*")) == []
