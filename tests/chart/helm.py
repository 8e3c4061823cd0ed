"""Renders, lints and schema-checks the chart with the Helm v4 engine of helm-python-sdk.

Usage: helm.py render|lint|schema CHART VALUES_JSON [RELEASE NAMESPACE]
Prints JSON: the rendered manifests by template path, the lint report, or
{"ok": bool, "error": str}. Driven by crates/initguard/tests/chart.rs.
"""

import json
import sys

import helm_python as helm


def main() -> int:
    command, chart_path, values = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if command == "render":
        release, namespace = sys.argv[4], sys.argv[5]
        chart = helm.Chart.load(chart_path)
        chart.validate_schema(values)
        print(json.dumps(chart.render(values, name=release, namespace=namespace, is_install=True)))
    elif command == "lint":
        print(json.dumps(helm.lint(chart_path, values, strict=True)))
    elif command == "schema":
        try:
            helm.Chart.load(chart_path).validate_schema(values)
            print(json.dumps({"ok": True, "error": ""}))
        except helm.HelmError as error:
            print(json.dumps({"ok": False, "error": str(error)}))
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
