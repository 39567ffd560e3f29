"""reporting — placeholder package; see ../shared/ARCHITECTURE.md."""
