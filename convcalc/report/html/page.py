"""The page: the payload inlined as JSON into one HTML file with its style sheet, its script and the vendored
layout library (`convcalc/report/assets`), so it opens offline and loads nothing from the network."""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

ASSET = "dagre.min.js"              # @dagrejs/dagre, the layered-DAG layout (assets/README.md: version, licence)
SCRIPTS = ("page_common.js", "page_diagram.js", "page_details.js", "page_table.js", "page_fields.js",
           "page_start.js")         # the page's script, in this order, inside one function (names shared, none global)


def _text(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def layout_library() -> str:
    """The vendored layout library's code, without its source-map comment (the map is not shipped)."""
    code = _text("convcalc.report", f"assets/{ASSET}")
    return "\n".join(line for line in code.splitlines() if not line.startswith("//# sourceMappingURL="))


def script_json(data: Any) -> str:
    """``data`` as JSON safe inside a <script> element: '<', '>' and '&' escaped as JSON's \\u escapes, so no text
    of a spec (a layer named '</script>') ends the element; `JSON.parse` reads back the same data."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def script() -> str:
    """The page's script: SCRIPTS joined inside one strict-mode function, so they share their names and leave only
    ``window.convcalcReport`` (what the page exposes to tests and users) behind."""
    body = "\n".join(_text(__package__, name) for name in SCRIPTS)
    return '"use strict";\n(function () {\n' + body + "})();\n"


def render_page(payload: dict[str, Any]) -> str:
    """The HTML text of the report of ``payload`` (`payload.build_payload`)."""
    page = _text(__package__, "page.html")
    parts = {
        "TITLE": html.escape(f"convcalc report: {payload['analysis']['name']}"),
        "STYLE": _text(__package__, "page.css"),
        "LAYOUT": layout_library().replace("</script", "<\\/script"),
        "SCRIPT": script(),
        "PAYLOAD": script_json(payload),
    }
    for key, value in parts.items():
        page = page.replace("{{" + key + "}}", value, 1)
    return page


__all__ = ["ASSET", "SCRIPTS", "layout_library", "render_page", "script", "script_json"]
