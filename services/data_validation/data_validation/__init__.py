"""DataValidation: check an uploaded CSV batch against schema.toml, quarantine invalid rows."""
