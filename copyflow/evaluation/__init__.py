"""`copyflow eval`: the merchant's text, a naive generation, copyflow and a composed title with a
template description, scored side by side by the same judge that picks copyflow's copy."""

# Every system the evaluation knows, in the order tables and charts show them.
SYSTEMS = ("original", "naive", "copyflow", "composed")
