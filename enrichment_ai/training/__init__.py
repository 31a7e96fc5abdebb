"""Training and evaluation of the shipped shared-encoder heads/adapters (used only by the CLI)."""
