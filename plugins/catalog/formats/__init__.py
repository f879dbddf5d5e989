"""The built-in catalog formats."""
