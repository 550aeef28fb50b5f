"""`convcalc report`: one self-contained HTML page of a network: its architecture diagram (laid out by the
vendored @dagrejs/dagre), the per-layer table, totals, cost charts, receptive fields on the input, lint findings
and, on request, the executor's checks.

``payload`` gathers the library's results into JSON-able data, ``page`` inlines them with the style sheet, script
(``page.css``, ``page_*.js``, ``page.html``) and layout library into one page, ``build`` is the one call that does
both (`report_page`). Nothing here prints or writes files; it imports the stages before ``report``.
"""

from .build import report_page, report_payload
from .page import render_page

__all__ = ["render_page", "report_page", "report_payload"]
