"""pandera models mirroring Silver, carrying the contract's rules; no Dagster imports."""
