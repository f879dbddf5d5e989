"""`copyflow eval`: the merchant's text, a naive generation and copyflow, scored side by side."""
