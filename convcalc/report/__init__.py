"""Stage 9, report: every renderer, and nothing else.

Turns results into rich renderables, JSON-ready dicts, Markdown, CSV and PNG pictures: the analysis summary
(``summary``), a run and its checks (``run``, ``rf_checks``), receptive-field reports and pictures (``rf``,
``rf_pictures``, ``drawing``, ``maps``) and lint reports (``lint_text``, ``lint_formats``). Every table is fitted
to the output's width by ``fit`` (columns left out whole, names shortened in the middle, a number never cut).
Returns renderables, strings and arrays; writes files only where asked to (``save_png``, ``save_maps``); never
prints or exits. May import every stage below it.
"""
