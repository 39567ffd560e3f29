"""acd — placeholder package; see ../shared/ARCHITECTURE.md."""
