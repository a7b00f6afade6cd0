#!/usr/bin/env python3
"""Runs `portres selftest --json` and checks its report.

Native Linux: every check runs against the Linux backend and none may fail
(persistent needs root: as root it runs inside a private network namespace
with private portres folders); the probes answer. Native Windows: none may
fail. Under Wine (--wine): the native checks must report not_supported with
the code Wine answers (the raw completion-port code beside the translated
Winsock code for the overlapped ones, and each OS call with its raw answer and
byte count), and none may fail.
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
          "async_tcp", "async_udp", "cancel_pending", "cancel_pool_waiter", "close_with_pending", "ipv6_bind",
          "probe_ipv4_on_dual_mode", "probe_failed_bind_keeps_association", "probe_release_while_bound",
          "probe_shared_port", "persistent", "socket_reuse", "socket_reuse_active_close"]
RESULTS = {"pass", "fail", "not_supported", "skipped", "inconclusive", "answered", "slow"}
PROBES = ["probe_ipv4_on_dual_mode", "probe_failed_bind_keeps_association", "probe_release_while_bound",
          "probe_shared_port"]
CALL_FIELDS = {"call": str, "socket": int, "overlapped": bool, "immediate": int, "bytes": int, "error": int,
               "category": str}
CANCEL_CHECKS = ["cancel_pending", "cancel_pool_waiter", "close_with_pending"]
# Categories whose codes are the OS's own (Winsock/Win32 codes, errno values).
OS_CATEGORIES = {"system", "generic", "asio.system"}
# Checks that need a native runtime reservation first (synchronous acquire).
NEEDS_RUNTIME = ["wildcard_acquire", "specific_acquire", "ipv6_bind"]
# Checks whose first step is the overlapped acquire.
ASYNC = ["async_tcp", "async_udp"]


def raw(call):
    """The OS's raw code of a recorded call: the completion port's, else the call's own."""
    return call["completion"] if call.get("completion") is not None else call["immediate"]


def check_calls(c):
    calls = c.get("os_calls")
    expect(isinstance(calls, list), f"{c.get('name')}: os_calls is a list")
    for call in calls or []:
        ok = all(isinstance(call.get(k), t) for k, t in CALL_FIELDS.items())
        ok = ok and (call.get("completion") is None or isinstance(call["completion"], int))
        expect(ok, f"{c.get('name')}: OS call record has its fields: {call}")
    return calls or []

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
        calls = check_calls(c)
        os_error, category = c.get("os_error"), c.get("category")
        raw_of_error = [raw(k) for k in calls if k["error"] == c.get("error") and k["category"] == category and raw(k)]
        if category in OS_CATEGORIES:
            # The OS's own code: the raw code of the call that answered (a completion
            # port's Win32 code where portres translated it), else the error itself.
            expect(os_error == (raw_of_error[-1] if raw_of_error else c.get("error")),
                   f"{c.get('name')}: os_error {os_error} is the OS's raw code for {c.get('error')} ({raw_of_error})")
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
        if c.get("result") == "answered":
            expect(isinstance(c.get("answer"), str) and c["answer"] != "", f"{c.get('name')}: the OS's answer: {c.get('answer')}")
        else:
            expect(c.get("answer") is None, f"{c.get('name')}: only probes that answered carry an answer")
        if c.get("result") == "slow":
            expect(isinstance(c.get("elapsed_ms"), int), f"{c.get('name')}: a slow result says how long")
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
        for name in NEEDS_RUNTIME + ASYNC + PROBES + ["persistent", "socket_reuse", "socket_reuse_active_close"]:
            c = by_name.get(name, {})
            expect(c.get("result") == "not_supported", f"{name} is not_supported under Wine ({c.get('detail')})")
        for name in ["cancel_pool_waiter", "close_with_pending"]:
            c = by_name.get(name, {})
            expect(c.get("result") == "not_supported", f"{name} is not_supported under Wine ({c.get('detail')})")
        # The synchronous IOCTL fails at once with WSAEOPNOTSUPP (10045), no bytes returned.
        for name in NEEDS_RUNTIME + PROBES:
            expect(by_name[name].get("os_error") == 10045, f"{name} carries Winsock's code: {by_name[name].get('os_error')}")
            acquire = [k for k in by_name[name]["os_calls"] if k["call"] == "SIO_ACQUIRE_PORT_RESERVATION"]
            expect(len(acquire) >= 1 and not acquire[0]["overlapped"] and acquire[0]["immediate"] == 10045
                   and acquire[0]["completion"] is None and acquire[0]["bytes"] == 0,
                   f"{name}: the acquire IOCTL as Wine answered it: {acquire}")
        # Wine completes the overlapped IOCTL with ERROR_NOT_SUPPORTED (50) on the port;
        # portres reports the Winsock code of the same failure, WSAEOPNOTSUPP (10045),
        # and keeps the raw 50 beside it.
        for name in ASYNC:
            c = by_name[name]
            expect(c.get("error") == 10045 and c.get("os_error") == 50,
                   f"{name}: translated 10045 beside the raw completion code 50: {c.get('error')}/{c.get('os_error')}")
            acquire = [k for k in c["os_calls"] if k["call"] == "SIO_ACQUIRE_PORT_RESERVATION"]
            expect(len(acquire) == 1 and acquire[0]["overlapped"] and acquire[0]["immediate"] == 997
                   and acquire[0]["completion"] == 50 and acquire[0]["error"] == 10045,
                   f"{name}: pending (997), then 50 through the port: {acquire}")
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
        for name in ["wildcard_acquire", "specific_acquire", "associate_bind_20", "exhausted_21st", "release", "ipv6_bind"] + ASYNC:
            expect(by_name.get(name, {}).get("result") == "pass", f"{name} passes on Linux")
        for name in ["probe_ipv4_on_dual_mode", "probe_failed_bind_keeps_association", "probe_release_while_bound"]:
            c = by_name[name]
            expect(c.get("result") == "answered" and c.get("answer") == "yes", f"{name} on Linux: {c.get('answer')}")
        expect(by_name["probe_shared_port"].get("result") == "skipped", "the shared-port probe is a Windows question")
        for name in ["socket_reuse", "socket_reuse_active_close"]:
            expect(by_name[name].get("result") == "not_supported", f"{name}: socket reuse is not offered on Linux")
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
