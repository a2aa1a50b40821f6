"""mfstore: Metaflow's runs, artifacts and Client API in one SQLite file."""
