#!/usr/bin/env python3
"""Renders Manifests/ from the Helm chart, so that `kubectl apply -f Manifests/` and
`helm install` install the same objects.

    scripts/render-manifests.py                 # rewrite Manifests/ (not Manifests/examples/)
    scripts/render-manifests.py --check         # exit 1 if Manifests/ differs from the chart
    scripts/render-manifests.py --out DIR       # write the rendering somewhere else

Manifests/*.yaml is `helm template` with the chart's default values plus `namespace.create=true`
(with Helm the namespace comes from --create-namespace); one file per chart template, in the
order kubectl applies them. Manifests/<variant>/ does the same with
Helm/chaperone/examples/<variant>-values.yaml. HELM names the helm binary (default: helm on
PATH, else ~/.local/bin/helm).
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "Helm" / "chaperone"
MANIFESTS = ROOT / "Manifests"
NAMESPACE = "chaperone-system"
RELEASE = "chaperone"
VARIANTS = {"postgresql": CHART / "examples" / "postgresql-values.yaml"}
HEADER = (
    "# Generated from Helm/chaperone by scripts/render-manifests.py ({variant}). Do not edit:\n"
    "# change the chart (or its values) and run `make manifests`.\n"
)


def helm() -> str:
    explicit = os.environ.get("HELM")
    if explicit:
        return explicit
    found = shutil.which("helm")
    if found:
        return found
    local = Path.home() / ".local" / "bin" / "helm"
    if local.exists():
        return str(local)
    sys.exit("render-manifests: helm not found (run ../shared/tools/install-helm, or set HELM)")


def render(values: Path | None, extra: list[str]) -> dict[str, str]:
    """`helm template` split by source template: {file name: YAML}."""
    command = [helm(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *extra]
    if values:
        command += ["--values", str(values)]
    text = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    files: dict[str, list[str]] = {}
    for document in re.split(r"^---\s*$", text, flags=re.MULTILINE):
        match = re.search(r"^# Source: chaperone/templates/(\S+)$", document, flags=re.MULTILINE)
        if not match:
            if document.strip():
                sys.exit(f"render-manifests: a rendered document without a # Source line:\n{document[:200]}")
            continue
        body = document[match.end():].strip("\n")
        if body.strip():
            files.setdefault(match.group(1), []).append(body + "\n")
    return {name: "---\n".join(parts) for name, parts in files.items()}


def rendering() -> dict[str, str]:
    """Every generated file, by path relative to Manifests/."""
    out: dict[str, str] = {}
    for name, body in render(None, ["--set", "namespace.create=true"]).items():
        out[name] = HEADER.format(variant="default values, namespace.create=true") + body
    for variant, values in VARIANTS.items():
        for name, body in render(values, ["--set", "namespace.create=true"]).items():
            out[f"{variant}/{name}"] = HEADER.format(variant=f"values {values.relative_to(ROOT)}, namespace.create=true") + body
    return out


def generated_files(directory: Path) -> dict[str, str]:
    found = {}
    for path in sorted(directory.rglob("*.yaml")):
        relative = path.relative_to(directory).as_posix()
        if relative.startswith("examples/"):
            continue
        found[relative] = path.read_text()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on any difference")
    parser.add_argument("--out", type=Path, default=MANIFESTS, help="where to write (default: Manifests/)")
    args = parser.parse_args()
    wanted = rendering()
    if args.check:
        present = generated_files(args.out)
        problems = []
        for name in sorted(set(wanted) | set(present)):
            if name not in present:
                problems.append(f"missing: Manifests/{name}")
            elif name not in wanted:
                problems.append(f"not produced by the chart: Manifests/{name}")
            elif present[name] != wanted[name]:
                diff = difflib.unified_diff(present[name].splitlines(), wanted[name].splitlines(), f"Manifests/{name}", "chart", lineterm="")
                problems.append("\n".join(list(diff)[:40]))
        if problems:
            print("Manifests/ has drifted from Helm/chaperone (run `make manifests`):", file=sys.stderr)
            print("\n".join(problems), file=sys.stderr)
            return 1
        print(f"Manifests/ matches the chart ({len(wanted)} files)")
        return 0
    for name in generated_files(args.out):
        if name not in wanted:
            (args.out / name).unlink()
    for name, body in wanted.items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    print(f"wrote {len(wanted)} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
