"""What was used, by whom: the usage records, their rollups, reports, pages, metrics and commands.

The /v1 path hands finished rows to ``gateway.usage.writer``; nothing in this
package imports the /v1 path (tests/test_layering.py checks it).
"""
