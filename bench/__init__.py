"""Load scripts and their driver: our broadcaster measured side by side with soketi."""
