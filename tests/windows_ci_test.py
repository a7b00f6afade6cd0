#!/usr/bin/env python3
"""Checks what the project's own runs cannot execute: the Windows workflow
(.github/workflows/windows.yml), the presets it names (CMakePresets.json) and
the vcpkg manifest agree with each other, and the workflow is valid YAML of
the shape GitHub Actions reads. Prints SKIPPED when PyYAML is missing."""
import json
import os
import re
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
problems = []


def expect(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        problems.append(what)


def main():
    try:
        import yaml
    except ImportError:
        print("SKIPPED: PyYAML is not installed for this Python (python3 -m pip install pyyaml, or Debian's python3-yaml)")
        return 0
    workflow_path = os.path.join(root, ".github", "workflows", "windows.yml")
    with open(workflow_path, encoding="utf-8") as f:
        workflow = yaml.safe_load(f)
    with open(os.path.join(root, "CMakePresets.json"), encoding="utf-8") as f:
        presets = json.load(f)
    with open(os.path.join(root, "vcpkg.json"), encoding="utf-8") as f:
        manifest = json.load(f)

    # YAML 1.1 reads the key `on` as true.
    expect(isinstance(workflow, dict) and (workflow.get("on") or workflow.get(True)) is not None,
           "the workflow has triggers (on:)")
    # Each Windows run costs up to 90 minutes of a hosted runner: a commit on a
    # branch with a pull request runs once (push only for named branches), and
    # a newer push to the same ref cancels the run it makes obsolete.
    triggers = workflow.get("on") or workflow.get(True) or {}
    if isinstance(triggers, dict) and "push" in triggers and "pull_request" in triggers:
        expect(bool((triggers.get("push") or {}).get("branches")),
               "with pull_request runs, push runs only for named branches (no second run of each PR commit)")
    concurrency = workflow.get("concurrency") or {}
    expect(isinstance(concurrency, dict) and concurrency.get("cancel-in-progress") is True
           and "github.ref" in str(concurrency.get("group", "")),
           "a newer run on the same ref cancels the older one (concurrency)")
    jobs = workflow.get("jobs") or {}
    expect(len(jobs) > 0, "the workflow has jobs")
    steps = []
    for name, job in jobs.items():
        expect(str(job.get("runs-on", "")).startswith("windows"), f"job {name} runs on a hosted Windows runner")
        expect(isinstance(job.get("steps"), list) and job["steps"], f"job {name} has steps")
        for step in job.get("steps") or []:
            expect(("uses" in step) != ("run" in step), f"step {step.get('name', step)} has exactly one of uses/run")
            steps.append(step)
    script = "\n".join(step.get("run", "") for step in steps)

    kinds = {"configure": "configurePresets", "build": "buildPresets", "test": "testPresets"}
    named = {kind: {p["name"]: p for p in presets.get(key, [])} for kind, key in kinds.items()}
    used = {"configure": re.findall(r"cmake --preset[ =]([\w-]+)", script),
            "build": re.findall(r"cmake --build --preset[ =]([\w-]+)", script),
            "test": re.findall(r"ctest --preset[ =]([\w-]+)", script)}
    for kind, names in used.items():
        expect(len(names) > 0, f"the workflow runs a {kind} preset")
        for name in names:
            expect(name in named[kind], f"{kind} preset {name} exists in CMakePresets.json")
            preset = named[kind].get(name, {})
            if kind != "configure":
                expect(preset.get("configurePreset") in named["configure"],
                       f"{kind} preset {name} names an existing configure preset")

    # The self-test runs the exe where the configure preset's build puts it.
    for configure in used["configure"]:
        preset = named["configure"].get(configure, {})
        base = next((p for p in presets["configurePresets"] if p["name"] in preset.get("inherits", [])), {})
        binary_dir = (preset.get("binaryDir") or base.get("binaryDir", "")).replace("${presetName}", configure)
        expected = binary_dir.replace("${sourceDir}/", "").replace("/", "\\")
        expect(f"{expected}\\lib\\programs\\Release\\portres.exe" in script,
               f"the self-test runs the Release portres.exe under {expected}")
        features = preset.get("cacheVariables", {}).get("VCPKG_MANIFEST_FEATURES", "")
        for feature in filter(None, features.split(";")):
            expect(feature in manifest.get("features", {}), f"vcpkg feature {feature} (preset {configure}) is in vcpkg.json")
        expect("vcpkg.cmake" in preset.get("toolchainFile", ""), f"preset {configure} uses vcpkg's toolchain")
    expect("selftest --json" in script, "the workflow runs portres selftest --json")

    # A pwsh step (the default shell on Windows runners) fails only on its last
    # native command's exit code: one failing earlier is lost unless the script
    # looks at $LASTEXITCODE itself or makes native failures stop it.
    for step in steps:
        run = step.get("run", "")
        native = [line for line in run.splitlines() if re.match(r"\s*(cmake|ctest|git|cmd|&)\s", line)]
        shell = step.get("shell", "pwsh")
        handled = "$LASTEXITCODE" in run or re.search(r"\$PSNativeCommandUseErrorActionPreference\s*=\s*\$true", run)
        expect(len(native) <= 1 or shell not in ("pwsh", "powershell") or handled,
               f"step {step.get('name')}: no native command's failure is hidden by a later one ({len(native)} native commands)")
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    expect(any("results/" in str(s.get("with", {}).get("path", "")) for s in uploads),
           "the self-test report (results/) is uploaded as an artifact")
    expect(re.search(r"results\\selftest\.json", script) is not None, "the JSON report is written into results/")

    names = [d if isinstance(d, str) else d.get("name") for d in manifest.get("dependencies", [])]
    expect({"asio", "ms-gsl"} <= set(names), f"vcpkg.json depends on asio and ms-gsl: {names}")
    expect(re.fullmatch(r"[0-9a-f]{40}", manifest.get("builtin-baseline", "")) is not None,
           "vcpkg.json pins a builtin-baseline commit")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
