"""Plant models for the host simulator: pH benchmark tank, mixer-settlers, pumps, meters, ORP."""
