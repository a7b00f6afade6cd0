#!/usr/bin/env python3
"""Runs `portres selftest --json` and checks its report.

Native Linux: every check runs against the Linux backend and none may fail
(persistent needs root: as root it runs inside a private network namespace
with private portres folders). Native Windows: none may fail. Under Wine
(--wine): the native checks must report not_supported with the code Wine
answers, and none may fail.
Also checks the text mode prints one line per check, that os_error carries
the OS's own code (null where portres itself detected the failure), and that
a cancellation check passes only when its operation was really pending.
"""
import argparse
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

CHECKS = ["wildcard_acquire", "specific_acquire", "associate_bind_20", "exhausted_21st", "release",
          "cancel_pending", "cancel_pool_waiter", "close_with_pending", "ipv6_bind", "persistent", "socket_reuse"]
RESULTS = {"pass", "fail", "not_supported", "skipped", "inconclusive"}
CANCEL_CHECKS = ["cancel_pending", "cancel_pool_waiter", "close_with_pending"]
# Categories whose codes are the OS's own (Winsock/Win32 codes, errno values).
OS_CATEGORIES = {"system", "generic", "asio.system"}
# Checks that need a native runtime reservation first.
NEEDS_RUNTIME = ["wildcard_acquire", "specific_acquire", "ipv6_bind"]

problems = []


def expect(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        problems.append(what)


def run(cmd, env):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--wine", action="store_true", help="the CLI is portres.exe under the emulator")
    ap.add_argument("emulator", nargs="*")
    a = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="portres-selftest-")
    atexit.register(shutil.rmtree, scratch, True)  # nothing left in /tmp
    env = dict(os.environ, PORTRES_RUNTIME_DIR=os.path.join(scratch, "run"),
               PORTRES_STATE_DIR=os.path.join(scratch, "state"))
    for folder in ("run", "state"):
        os.makedirs(os.path.join(scratch, folder), mode=0o700)
    cmd = list(a.emulator) + [a.cli, "selftest"]
    if not a.wine and sys.platform.startswith("linux") and os.geteuid() == 0:
        # loopback only, and persistent reservations touch ip_local_reserved_ports: a private namespace.
        cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] + cmd

    rc, out, err = run(cmd + ["--json"], env)
    try:
        report = json.loads(out)
    except ValueError as e:
        expect(False, f"selftest --json prints one JSON document ({e}): {out!r} {err!r}")
        return 1
    checks = report.get("checks", [])
    expect([c.get("name") for c in checks] == CHECKS, f"every check reported, in order: {[c.get('name') for c in checks]}")
    for c in checks:
        expect(c.get("result") in RESULTS, f"{c.get('name')}: result {c.get('result')!r} is one of {sorted(RESULTS)}")
        os_error, category = c.get("os_error"), c.get("category")
        if category in OS_CATEGORIES:
            expect(os_error == c.get("error"), f"{c.get('name')}: os_error {os_error} is the OS's code {c.get('error')}")
        elif category.startswith("portres") or category == "":
            # portres' own codes are never passed off as the OS's (a check may add the OS's code it saw itself).
            expect(os_error is None or (isinstance(os_error, int) and os_error not in (c.get("error"), 0)),
                   f"{c.get('name')}: os_error {os_error} is not portres' code {category}:{c.get('error')}")
        else:
            expect(False, f"{c.get('name')}: unexpected error category {category!r}")
        if c.get("name") in CANCEL_CHECKS:
            expect(isinstance(c.get("pending"), bool), f"{c.get('name')}: records whether it was pending ({c.get('pending')})")
            if c.get("result") == "pass":
                expect(c.get("pending") is True, f"{c.get('name')}: passes only when the operation was pending")
            if c.get("pending") is False:
                expect(c.get("result") in ("inconclusive", "not_supported"),
                       f"{c.get('name')}: not pending is inconclusive, not {c.get('result')}")
        expect(isinstance(c.get("detail"), str) and c["detail"] != "", f"{c.get('name')}: has a detail")
        expect(c.get("result") != "fail", f"{c.get('name')}: did not fail ({c.get('detail')})")
    failed = sum(1 for c in checks if c.get("result") == "fail")
    expect(report.get("failed") == failed and rc == (1 if failed else 0), f"exit code {rc} and 'failed' agree")
    expect(report.get("backend") in ("native", "fallback"), f"backend chosen: {report.get('backend')}")
    expect(isinstance(report.get("os"), str) and report["os"] != "", f"OS reported: {report.get('os')}")
    expect(re.fullmatch(r"\d+\.\d+\.\d+.*", report.get("os_build", "")) is not None, f"OS build: {report.get('os_build')}")
    by_name = {c.get("name"): c for c in checks}
    if a.wine:
        expect(report["os"].startswith("Wine"), "Wine is named in the report")
        expect(report.get("native_runtime") is False, "native runtime reported unusable under Wine")
        for name in NEEDS_RUNTIME + ["persistent", "socket_reuse"]:
            c = by_name.get(name, {})
            expect(c.get("result") == "not_supported", f"{name} is not_supported under Wine ({c.get('detail')})")
        for name in ["cancel_pool_waiter", "close_with_pending"]:
            c = by_name.get(name, {})
            expect(c.get("result") == "not_supported", f"{name} is not_supported under Wine ({c.get('detail')})")
        # Wine completes the overlapped IOCTL with ERROR_NOT_SUPPORTED (50), which portres
        # reports as the Winsock code of the same failure, WSAEOPNOTSUPP (10045).
        for name in NEEDS_RUNTIME:
            expect(by_name[name].get("os_error") == 10045, f"{name} carries Winsock's code: {by_name[name].get('os_error')}")
        # GetProcAddress of the persistent functions: ERROR_PROC_NOT_FOUND (127).
        expect(by_name["persistent"].get("os_error") == 127,
               f"persistent carries GetProcAddress' code: {by_name['persistent'].get('os_error')}")
        expect(by_name["cancel_pending"].get("result") in ("not_supported", "pass"),
               f"cancel_pending under Wine: {by_name['cancel_pending'].get('result')}")
    elif sys.platform == "win32":
        # Native Windows (the MSVC build's ctest): the generic checks above, and the OS named.
        expect(report["os"].startswith("Windows"), f"Windows is named in the report: {report['os']}")
    else:
        expect(report["os"].startswith("Linux"), "Linux is named in the report")
        for name in ["wildcard_acquire", "specific_acquire", "associate_bind_20", "exhausted_21st", "release", "ipv6_bind"]:
            expect(by_name.get(name, {}).get("result") == "pass", f"{name} passes on Linux")
        expect(by_name["socket_reuse"].get("result") == "not_supported", "socket reuse is not offered on Linux")
        c = by_name["cancel_pool_waiter"]
        expect(c.get("result") == "pass" and c.get("pending") is True and c.get("os_error") == 125,
               f"a pending pool waiter is cancelled with ECANCELED (125) on Linux: {c}")
        for name in ["cancel_pending", "close_with_pending"]:
            expect(by_name[name].get("result") in ("pass", "inconclusive"), f"{name} on Linux: {by_name[name].get('result')}")
        # A failure portres detects itself carries no OS code: the released token is refused by portres.
        expect(by_name["release"].get("os_error") is None and by_name["release"].get("category") == "portres",
               f"release: portres' refusal of the old token is not an OS code: {by_name['release']}")

    rc, out, err = run(cmd, env)
    lines = [line for line in out.splitlines() if line.split() and line.split()[0] in RESULTS]
    expect(len(lines) == len(CHECKS), f"text mode prints one line per check ({len(lines)})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
