"""Extension points (typing.Protocol) and the built-in plugins. Imports schemas only."""
