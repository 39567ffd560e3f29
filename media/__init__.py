"""media — placeholder package; see ../shared/ARCHITECTURE.md."""
