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


def resolved(presets, name):
    """A configure preset with what it inherits (the first parent wins, as in CMake)."""
    by_name = {p["name"]: p for p in presets.get("configurePresets", [])}
    preset = dict(by_name.get(name, {}))
    parents = preset.get("inherits", [])
    for parent in [parents] if isinstance(parents, str) else parents:
        base = resolved(presets, parent)
        for key, value in base.items():
            if key == "cacheVariables":
                preset[key] = {**value, **preset.get(key, {})}
            elif key not in preset and key not in ("hidden", "name"):
                preset[key] = value
    return preset


def crt_linkage(triplet):
    """VCPKG_CRT_LINKAGE of vcpkg's own triplets: *-static(-release) static, others (-static-md) dynamic."""
    return "static" if re.search(r"-static(-release)?$", triplet) else "dynamic"


def check_msvc_preset(name, preset):
    """A Visual Studio preset names its generator and an architecture that agrees
    with the vcpkg triplet; a runtime named in it agrees with the triplet's."""
    cache = preset.get("cacheVariables", {})
    triplet = cache.get("VCPKG_TARGET_TRIPLET", "")
    if "vcpkg.cmake" not in preset.get("toolchainFile", "") or not triplet:
        return
    expect(preset.get("generator") == "Visual Studio 17 2022",
           f"preset {name} names its generator (Visual Studio 17 2022), not whatever CMake finds first")
    arch = preset.get("architecture") or {}
    arch_value = arch.get("value") if isinstance(arch, dict) else arch
    expect(arch_value == "x64" and isinstance(arch, dict) and arch.get("strategy") == "set",
           f"preset {name} sets the architecture x64 (strategy set: -A x64)")
    expect(triplet.startswith(f"{arch_value}-"), f"preset {name}: triplet {triplet} is for the architecture {arch_value}")
    runtime = cache.get("CMAKE_MSVC_RUNTIME_LIBRARY")
    if runtime is not None:
        linkage = "dynamic" if "DLL" in runtime else "static"
        expect(linkage == crt_linkage(triplet),
               f"preset {name}: CMAKE_MSVC_RUNTIME_LIBRARY {runtime} ({linkage}) agrees with triplet {triplet}")


# The Visual Studio 2022 release whose IDE reads each presets schema version
# (Microsoft's "Configure and build with CMake Presets in Visual Studio": 4 in
# 17.4, 5 in 17.5; 6, with workflow presets, after that: 17.8, whose CMake 3.27
# also meets cmakeMinimumRequired 3.25).
VS_FOR_SCHEMA = {2: (16, 10), 3: (16, 10), 4: (17, 4), 5: (17, 5), 6: (17, 8)}


def check_visual_studio_release(presets):
    version = presets.get("version")
    expect(version in VS_FOR_SCHEMA, f"CMakePresets.json schema version {version} is one a Visual Studio release reads")
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    stated = re.search(r"Visual Studio 2022 \((\d+)\.(\d+) or later", readme)
    needed = VS_FOR_SCHEMA.get(version, (99, 0))
    expect(stated is not None and (int(stated[1]), int(stated[2])) >= needed,
           f"README asks for a Visual Studio 2022 release that reads schema {version} "
           f"({needed[0]}.{needed[1]}+; README: {stated[0] if stated else 'none'})")


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

    # The self-test runs the exe where its job's configure preset puts it.
    for job in jobs.values():
        job_script = "\n".join(step.get("run", "") for step in job.get("steps") or [])
        if "selftest --json" not in job_script:
            continue
        for configure in re.findall(r"cmake --preset[ =]([\w-]+)", job_script):
            binary_dir = resolved(presets, configure).get("binaryDir", "").replace("${presetName}", configure)
            expected = binary_dir.replace("${sourceDir}/", "").replace("/", "\\")
            expect(f"{expected}\\lib\\programs\\Release\\portres.exe" in job_script,
                   f"the self-test runs the Release portres.exe under {expected}")
    for configure in used["configure"]:
        preset = resolved(presets, configure)
        check_msvc_preset(configure, preset)
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

    check_visual_studio_release(presets)
    # portres exports nothing from a DLL (no dllexport): MSVC builds it static
    # whatever BUILD_SHARED_LIBS says, and the manifest and README say so.
    expect("static library" in manifest.get("description", ""), "vcpkg.json says portres is a static library")

    names = [d if isinstance(d, str) else d.get("name") for d in manifest.get("dependencies", [])]
    expect({"asio", "ms-gsl"} <= set(names), f"vcpkg.json depends on asio and ms-gsl: {names}")
    expect(re.fullmatch(r"[0-9a-f]{40}", manifest.get("builtin-baseline", "")) is not None,
           "vcpkg.json pins a builtin-baseline commit")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
